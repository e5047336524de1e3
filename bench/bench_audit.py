"""Appending audit entries from one and two processes, and the sequencer integrating them, as a
ratio to the same INSERT through the bare driver.

    python bench/bench_audit.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432/postgres --seconds 10
    python bench/bench_audit.py --seconds 10                                   # SQLite, for the record

Register: a fresh one (PostgreSQL: a scratch database ``bench_audit_<random>`` on URL's server,
dropped at the end; SQLite: a temporary file) with ``--people`` synthetic people imported (the
entries' foreign key needs them; not timed).

Ours: ``audit.service.record_access(conn, actor, [person_id], "verify", "customer_verification",
fields=[...])`` in a ``UnitOfWork(engine).begin()`` per entry: one entry per transaction, as a
partner's request does. Floor: the same INSERT (same columns, values and JSON text) through the raw
driver (psycopg / sqlite3), one per transaction, into ``floor_audit``: on PostgreSQL ``LIKE
access_log INCLUDING ALL`` plus the foreign key to persons (same columns, defaults, indexes); on
SQLite the same ``CREATE TABLE`` and indexes as access_log. Each is run for ``--seconds`` by one
process, then by two (multiprocessing, spawn, each with its own engine or connection, started
together on a barrier); no pinning: the processes share the 2 cores with the database server.

Then the sequencer (``audit.sequencer.integrate_all``) integrates every entry ours appended, timed,
and ``audit.checks.verify_log`` must find the log valid with tree_size equal to the entries written.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import multiprocessing as mp
import os
import tempfile
import time
import uuid
from pathlib import Path

from common import conninfo, machine, population_file

BENCH_MASTER_KEY = base64.b64encode(hashlib.sha256(b"dinhdanh bench master key").digest()).decode()
FIELDS = ["full_name", "date_of_birth", "sex", "status"]
ACTOR = "partner:bench-audit"


# ----------------------------------------------------------------------------- workers

def _ours(url: str, person_ids: list[int], seconds: float, barrier, out) -> None:
    from dinhdanh.audit.service import record_access
    from dinhdanh.store.engine import make_engine
    from dinhdanh.store.unit_of_work import UnitOfWork

    engine = make_engine(url)
    uow = UnitOfWork(engine)
    with uow.begin() as conn:  # the connection made and warm before the clock starts
        conn.exec_driver_sql("SELECT 1")
    n, i = 0, os.getpid()
    barrier.wait()
    end = time.perf_counter() + seconds
    started = time.perf_counter()
    while time.perf_counter() < end:
        with uow.begin() as conn:
            record_access(conn, ACTOR, [person_ids[i % len(person_ids)]], "verify", "customer_verification",
                          fields=FIELDS, outcome="match")
        n += 1
        i += 7
    out.put((n, time.perf_counter() - started))
    engine.dispose()


def _floor(url: str, person_ids: list[int], seconds: float, barrier, out) -> None:
    import datetime as dt
    import json

    fields = json.dumps(FIELDS, ensure_ascii=False)
    if url.startswith("sqlite"):
        import sqlite3

        conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None, timeout=5)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        sql = ("INSERT INTO floor_audit (at, actor, person_id, action, purpose, fields, outcome) "
               "VALUES (?, ?, ?, 'verify', 'customer_verification', ?, 'match')")

        def one(pid: int) -> None:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(sql, (dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f"), ACTOR, pid, fields))
            conn.execute("COMMIT")
    else:
        import psycopg

        conn = psycopg.connect(conninfo(url))
        sql = ("INSERT INTO floor_audit (at, actor, person_id, action, purpose, fields, outcome) "
               "VALUES (%s, %s, %s, 'verify', 'customer_verification', %s, 'match')")

        def one(pid: int) -> None:
            conn.execute(sql, (dt.datetime.now(dt.UTC), ACTOR, pid, fields))
            conn.commit()
    one(person_ids[0])  # warm
    n, i = 0, os.getpid()
    barrier.wait()
    end = time.perf_counter() + seconds
    started = time.perf_counter()
    while time.perf_counter() < end:
        one(person_ids[i % len(person_ids)])
        n += 1
        i += 7
    out.put((n, time.perf_counter() - started))
    conn.close()


def run(kind: str, url: str, person_ids: list[int], seconds: float, processes: int) -> dict:
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(processes)
    out = ctx.Queue()
    target = _ours if kind == "ours" else _floor
    procs = [ctx.Process(target=target, args=(url, person_ids, seconds, barrier, out)) for _ in range(processes)]
    for p in procs:
        p.start()
    results = [out.get(timeout=seconds + 120) for _ in procs]
    for p in procs:
        p.join(30)
        if p.exitcode:
            raise SystemExit(f"{kind} worker failed ({p.exitcode})")
    entries = sum(n for n, _ in results)
    return {"entries": entries, "rate": sum(n / took for n, took in results), "processes": processes}


# ----------------------------------------------------------------------------- setup

def count(url: str, table: str) -> int:
    import sqlalchemy as sa

    from dinhdanh.store.engine import make_engine

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()
    finally:
        engine.dispose()


def build(url: str, people: int) -> list[int]:
    import sqlalchemy as sa

    from dinhdanh.population.importer import import_population
    from dinhdanh.store.engine import make_engine, upgrade

    engine = make_engine(url)
    upgrade(engine)
    import_population(engine, population_file(people, 7))
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(sa.text("CREATE TABLE floor_audit (LIKE access_log INCLUDING ALL)"))
            conn.execute(sa.text("ALTER TABLE floor_audit ADD FOREIGN KEY (person_id) REFERENCES persons (person_id)"))
        else:  # the same table and indexes under another name: access_log's own DDL, renamed
            for (ddl,) in conn.execute(sa.text("SELECT sql FROM sqlite_master WHERE tbl_name = 'access_log' "
                                               "AND sql IS NOT NULL ORDER BY type DESC")).all():
                conn.exec_driver_sql(ddl.replace("access_log", "floor_audit"))
        conn.execute(sa.text("ANALYZE"))
        ids = [r[0] for r in conn.execute(sa.text("SELECT person_id FROM persons ORDER BY person_id"))]
    engine.dispose()
    return ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", metavar="URL", help="a PostgreSQL server (default: SQLite)")
    parser.add_argument("--seconds", type=float, default=10.0, help="each run's length")
    parser.add_argument("--people", type=int, default=10_000, help="people in the register")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    postgres = args.postgres is not None
    if postgres:
        os.environ.setdefault("DINHDANH_MASTER_KEY", BENCH_MASTER_KEY)
    scratch = None
    results: dict[tuple[str, int], dict] = {}
    with tempfile.TemporaryDirectory(prefix="bench-audit-") as tmp:
        try:
            if postgres:
                import psycopg
                from sqlalchemy.engine import make_url

                scratch = f"bench_audit_{uuid.uuid4().hex[:8]}"
                with psycopg.connect(conninfo(args.postgres), autocommit=True) as conn:
                    conn.execute(f"CREATE DATABASE {scratch}")
                url = make_url(args.postgres).set(database=scratch).render_as_string(hide_password=False)
                with psycopg.connect(conninfo(url)) as conn:
                    print(f"PostgreSQL {conn.execute('SHOW server_version').fetchone()[0]}: synchronous_commit="
                          f"{conn.execute('SHOW synchronous_commit').fetchone()[0]}; scratch database {scratch}")
            else:
                url = f"sqlite:///{Path(tmp) / 'register.sqlite'}"
            person_ids = build(url, args.people)
            for processes in (1, 2):
                for kind in ("ours", "floor"):
                    table = "access_log" if kind == "ours" else "floor_audit"
                    before = count(url, table)
                    r = run(kind, url, person_ids, args.seconds, processes)
                    r["rows"] = count(url, table) - before
                    results[(kind, processes)] = r
                    print(f"{kind} x{processes}: {r['rate']:,.0f} entries/s, {r['entries']:,} entries, "
                          f"{r['rows']:,} rows in {table}", flush=True)
                    if r["rows"] != r["entries"] + processes * (kind == "floor"):  # the floor's warm-up row
                        raise SystemExit(f"{kind}: {r['entries']} entries counted but {r['rows']} rows written")
            seq = sequence(url)
        finally:
            if scratch:
                import psycopg

                with psycopg.connect(conninfo(args.postgres), autocommit=True) as conn:
                    conn.execute(f"DROP DATABASE IF EXISTS {scratch} WITH (FORCE)")

    backend = "PostgreSQL" if postgres else "SQLite"
    print()
    print("| back-end | processes | ours entries/s | floor entries/s | floor / ours |")
    print("|---|---:|---:|---:|---:|")
    for processes in (1, 2):
        o, f = results[("ours", processes)], results[("floor", processes)]
        print(f"| {backend} | {processes} | {o['rate']:,.0f} | {f['rate']:,.0f} | {f['rate'] / o['rate']:.2f} |")
    so = results[("ours", 2)]["rate"] / results[("ours", 1)]["rate"]
    sf = results[("floor", 2)]["rate"] / results[("floor", 1)]["rate"]
    print(f"scaling 2 processes / 1: ours {so:.2f}x, floor {sf:.2f}x"
          + (f" (target >= 1.5x: {'met' if so >= 1.5 else 'NOT met'})" if postgres else ""))
    written = sum(r["entries"] for (kind, _), r in results.items() if kind == "ours")
    print(f"sequencer: {seq['integrated']:,} entries integrated in {seq['took']:.2f} s = "
          f"{seq['integrated'] / seq['took']:,.0f} entries/s; verify_log: valid={seq['valid']}, "
          f"tree_size={seq['tree_size']:,} (entries written: {written:,}), pending={seq['pending']}; "
          f"verify_log took {seq['verify_took']:.2f} s")
    if not seq["valid"] or seq["tree_size"] != written:
        raise SystemExit("the log does not verify, or its size is not the number of entries written")


def sequence(url: str) -> dict:
    from dinhdanh.audit.checks import verify_log
    from dinhdanh.audit.sequencer import integrate_all
    from dinhdanh.store.engine import make_engine
    from dinhdanh.store.unit_of_work import UnitOfWork
    from dinhdanh.store.vault import for_database

    engine = make_engine(url)
    uow = UnitOfWork(engine)
    vault = for_database(url)
    started = time.perf_counter()
    integrated = integrate_all(uow, vault)
    took = time.perf_counter() - started
    started = time.perf_counter()
    report = verify_log(uow)
    verify_took = time.perf_counter() - started
    engine.dispose()
    return {"integrated": integrated, "took": took, "valid": report.valid, "tree_size": report.tree_size,
            "pending": report.pending, "verify_took": verify_took}


if __name__ == "__main__":
    main()
