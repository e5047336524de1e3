"""Partner verification over HTTP on loopback, with the audit write: requests/s on one core and
latency percentiles, as a ratio to a floor served the same way.

    python bench/bench_verify.py --count 100000 --seconds 15
    python bench/bench_verify.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432/postgres --workers 1,2

Register: a synthetic population of N people imported into a temporary SQLite register (not
timed), one approved telco partner (fields full_name, date_of_birth, sex, status) with a
client-credentials token from the provider's /token.

Server: uvicorn (httptools, uvloop), one worker pinned to core 0 (``taskset``). Load: ``wrk``
(Debian's package) on core 1, one thread, ``--connections`` keep-alive connections, each request
a different person (PID + full name + date of birth: 70% exact, 10% name without diacritics,
10% wrong date, 10% unknown PID), for ``--seconds``.

Ours: ``POST /api/v1/verify`` of the real app: bearer token validated (signature, expiry,
revocation row), partner policy, rate limit, the person read, the comparison, one hash-chained
access-log entry, commit.
Floor: a bare ASGI callable on the same uvicorn that does the plainest form of the same work on
the same database file: parse the JSON body, one ``SELECT`` of the person by PID with the raw
``sqlite3`` driver, compare name and date, one ``INSERT`` into an audit table, commit, answer
JSON. No authentication, no policy, no chain. The ratio is floor rps / our rps.

After each run the access-log rows are counted, so a figure without its audit rows cannot pass.

PostgreSQL (``--postgres URL``): a scratch database ``bench_verify_<random>`` is made on URL's
server and dropped at the end (``--keep`` keeps it; ``--existing`` uses URL's database as it is and
imports only if it holds no one). N people (1,000,000 by default) are imported with
``import_population`` (not timed). A register that already holds people (``--existing``, 10M) is
used as it is: the request bodies are drawn from its own people by primary key
(``common.sample_people``: no scan, only the 20,000 drawn held in memory), and the audit entries of
each run are counted above the largest id before it (an index range, not a count of the whole log). The vault's master key is a fixed bench key
(``DINHDANH_MASTER_KEY``), so that every process, and a kept database, open the same keys.
Floor: a bare ASGI callable on the same uvicorn with psycopg's async driver and as many
connections as wrk opens (at most 10, our pool's size): one ``SELECT`` of the person by PID,
compare, one ``INSERT`` into ``floor_audit`` (made ``LIKE access_log INCLUDING ALL`` plus its
foreign key to persons: same columns, defaults and indexes), ``COMMIT``, under the server's own
``synchronous_commit`` (printed). No authentication, no rate limit, no policy.

``--workers 1,2`` (the PostgreSQL default; SQLite: 1): each count of server processes is measured
for ours and for the floor. Two workers are two server processes on two ports, one pinned to each
core, each loaded by its own ``wrk`` (unpinned, ``--connections`` each), started together: the
requests are summed, the latencies are the worse of the two. (One port with SO_REUSEPORT would
spread 8 keep-alive connections unevenly and by chance.) On a 2-core machine two workers share the
cores with wrk and PostgreSQL: the scaling figure compares ours with the floor measured the same way.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import (conninfo, drop_database, free_port, machine, pg_database_size, pg_pool, pinned, population_file,
                    read_body, sample_people, scratch_database, wait_up)

HERE = Path(__file__).resolve()
# one issuer for the token server and the measured servers (their ports differ)
ENV = {**os.environ, "PYTHONPATH": str(HERE.parent.parent / "src"), "DINHDANH_OIDC_ISSUER": "https://dinhdanh.bench"}
# PostgreSQL needs the vault's master key from the environment: a fixed one for the bench's scratch databases
BENCH_MASTER_KEY = base64.b64encode(hashlib.sha256(b"dinhdanh bench master key").digest()).decode()


# ----------------------------------------------------------------------------- servers

def serve_ours(db: str, port: int, background: bool = False) -> None:
    import uvicorn

    from dinhdanh.store.engine import make_engine
    from dinhdanh.web.app import create_app, settle_heap

    app = create_app(make_engine(db), background=background)
    settle_heap()  # as serve does
    uvicorn.run(app, host="127.0.0.1", port=port,
                log_level="warning", access_log=False, loop="uvloop", http="httptools")


def floor_app(db_path: str):
    import sqlite3

    conn = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE IF NOT EXISTS floor_audit (id INTEGER PRIMARY KEY, person_id INTEGER, "
                 "actor TEXT, action TEXT, purpose TEXT, outcome TEXT, at TEXT)")

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        data = json.loads(body)
        row = conn.execute("SELECT person_id, full_name, date_of_birth FROM persons WHERE pid = ?",
                           (data["pid"],)).fetchone()
        if row is None:
            answer = {"found": False, "match": False}
        else:
            name = row[1] == data.get("full_name")
            dob = str(row[2]) == data.get("date_of_birth")
            answer = {"found": True, "match": name and dob}
            conn.execute("BEGIN")
            conn.execute("INSERT INTO floor_audit (person_id, actor, action, purpose, outcome, at) "
                         "VALUES (?, 'partner', 'verify', 'p', ?, datetime('now'))",
                         (row[0], "match" if answer["match"] else "mismatch"))
            conn.execute("COMMIT")
        out = json.dumps(answer).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(out)).encode())]})
        await send({"type": "http.response.body", "body": out})

    return app


FLOOR_INSERT = ("INSERT INTO floor_audit (at, actor, person_id, action, purpose, fields, outcome) "
                "VALUES (now(), %s, %s, 'verify', %s, %s, %s)")


def floor_app_pg(url: str, connections: int):
    pool = pg_pool(conninfo(url), connections)

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        data = json.loads(body)
        q = await pool()
        conn = await q.get()
        try:
            cur = await conn.execute("SELECT person_id, full_name, date_of_birth FROM persons WHERE pid = %s",
                                     (data["pid"],))
            row = await cur.fetchone()
            if row is None:
                answer = {"found": False, "match": False}
            else:
                name = row[1] == data.get("full_name")
                dob = str(row[2]) == data.get("date_of_birth")
                answer = {"found": True, "match": name and dob}
                await conn.execute(FLOOR_INSERT, ("partner:floor", row[0], "customer_verification",
                                                  '["full_name", "date_of_birth"]',
                                                  "match" if answer["match"] else "mismatch"))
            await conn.commit()
        finally:
            q.put_nowait(conn)
        out = json.dumps(answer).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(out)).encode())]})
        await send({"type": "http.response.body", "body": out})

    return app


def serve_floor(db: str, port: int, connections: int = 8) -> None:
    import uvicorn

    app = (floor_app(db.removeprefix("sqlite:///")) if db.startswith("sqlite")
           else floor_app_pg(db, min(connections, 10)))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning",
                access_log=False, loop="uvloop", http="httptools")


# ----------------------------------------------------------------------------- load

LUA = """
local bodies = {}
for line in io.lines("%(bodies)s") do bodies[#bodies + 1] = line end
local i = 0
request = function()
  i = i + 1
  return wrk.format("POST", "/api/v1/verify", {["Content-Type"] = "application/json",
                    ["Authorization"] = "Bearer %(token)s"}, bodies[(i %% #bodies) + 1])
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT %%d %%d %%d %%f %%f %%f %%f\\n", summary.requests,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.duration, latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
end
"""


def _wrk_result(out: str) -> dict:
    found = re.search(r"^RESULT (\d+) (\d+) (\d+) ([\d.]+) ([\d.]+) ([\d.]+) ([\d.]+)$", out, re.M)
    if not found:
        raise SystemExit(f"wrk printed no result:\n{out}")
    requests, errors, duration_us = (int(found.group(i)) for i in (1, 2, 3))
    p50, p95, p99, worst = (float(found.group(i)) / 1000 for i in (4, 5, 6, 7))  # microseconds -> ms
    return {"requests": requests, "errors": errors, "rps": requests / (duration_us / 1e6),
            "p50": p50, "p95": p95, "p99": p99, "max": worst}


def run_load(mode: str, db: str, token: str, bodies: Path, work: Path, seconds: int, connections: int,
             workers: int = 1, background: bool = False) -> dict:
    """``workers`` server processes (one per port, pinned one per core), each loaded by its own wrk."""
    ports = [free_port() for _ in range(workers)]
    servers = []
    for i, port in enumerate(ports):
        extra = ["--background"] if background and i == 0 else []  # one process runs the loops, as serve would
        servers.append(subprocess.Popen([*pinned(i), sys.executable, str(HERE), "--serve", mode, "--db", db,
                                         "--port", str(port), "--connections", str(connections), *extra], env=ENV))
    try:
        for port in ports:
            wait_up(port)
        script = work / f"{mode}.lua"
        script.write_text(LUA % {"bodies": bodies, "token": token})
        # wrk on the other core with one worker; with two, the servers hold both cores and wrk goes where it can
        wrk_pin = pinned(1) if workers == 1 else []

        def wrk(port: int, duration: str) -> subprocess.Popen:
            return subprocess.Popen([*wrk_pin, "wrk", "-t1", f"-c{connections}", f"-d{duration}", "--timeout", "5s",
                                     "-s", str(script), f"http://127.0.0.1:{port}"],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

        # a short warm-up (connections, caches, the trust of the token), then the measured run
        for p in [wrk(port, "2s") for port in ports]:
            p.communicate()
        loads = [wrk(port, f"{seconds}s") for port in ports]
        outs = []
        for p in loads:
            out, err = p.communicate()
            if p.returncode:
                raise SystemExit(f"wrk failed: {err}")
            outs.append(out)
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            server.wait(30)
    results = [_wrk_result(out) for out in outs]
    total = {"requests": sum(r["requests"] for r in results), "errors": sum(r["errors"] for r in results),
             "rps": sum(r["rps"] for r in results), "workers": workers}
    for key in ("p50", "p95", "p99", "max"):  # the worse of the servers (wrk's histograms cannot be merged)
        total[key] = max(r[key] for r in results)
    return total


# ----------------------------------------------------------------------------- setup

def build(count: int, work: Path, db: str | None = None) -> tuple[str, Path, dict]:
    import datetime as dt

    import numpy as np
    import pyarrow.parquet as pq
    import sqlalchemy as sa

    from dinhdanh.exchange import partners
    from dinhdanh.ids import names
    from dinhdanh.population.importer import import_population
    from dinhdanh.store.engine import make_engine, upgrade

    db = db or f"sqlite:///{work / 'register.sqlite'}"
    engine = make_engine(db)
    upgrade(engine)
    with engine.connect() as conn:
        held = conn.execute(sa.text("SELECT count(*) FROM persons")).scalar_one()
    if held == 0:
        started = time.perf_counter()
        import_population(engine, population_file(count, 7))
        print(f"register: {count:,} people imported in {time.perf_counter() - started:.1f} s (not timed)")
    else:
        print(f"register: {held:,} people already there (kept database); bodies drawn from them")
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(sa.text("DROP TABLE IF EXISTS floor_audit"))
            conn.execute(sa.text("CREATE TABLE floor_audit (LIKE access_log INCLUDING ALL)"))
            conn.execute(sa.text("ALTER TABLE floor_audit ADD FOREIGN KEY (person_id) REFERENCES persons (person_id)"))
            conn.execute(sa.text("ANALYZE"))
    with engine.begin() as conn:
        made = partners.add_partner(conn, name="Nhà mạng đo tốc độ", kind="telco",
                                    operations=["verify"], fields=["full_name", "date_of_birth", "sex", "status"],
                                    rate_per_minute=partners.MAX_RATE, actor="bench")
        partners.approve_partner(conn, made["client_id"], agreement="BENCH-1", legal_basis="Nghị định 69/2024/NĐ-CP",
                                 expires=dt.date.today() + dt.timedelta(days=365), security_level=3, actor="bench")

    rng = np.random.default_rng(11)
    if held == 0:
        people = pq.read_table(population_file(count, 7), columns=["pid", "full_name", "date_of_birth"]).to_pylist()
        drawn = [people[int(i)] for i in rng.integers(0, len(people), 20_000)]
    else:  # a kept or existing register: its own people, drawn by primary key (no scan, no file)
        with engine.connect() as conn:
            drawn = [r._asdict() for r in sample_people(conn, 20_000, "person_id, pid, full_name, date_of_birth", 11)]
    engine.dispose()
    lines = []
    for p in drawn:
        dob = p["date_of_birth"] if isinstance(p["date_of_birth"], str) else p["date_of_birth"].isoformat()
        kind = rng.random()
        body = {"pid": p["pid"], "full_name": p["full_name"], "date_of_birth": dob}
        if kind < 0.10:
            body["full_name"] = names.fold(p["full_name"]).title()
        elif kind < 0.20:
            body["date_of_birth"] = (dt.date.fromisoformat(dob) + dt.timedelta(days=1)).isoformat()
        elif kind < 0.30:
            body["pid"] = "999" + p["pid"][3:]
        lines.append(json.dumps(body, ensure_ascii=False))
    bodies = work / "bodies.jsonl"
    bodies.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return db, bodies, made


def token_for(db: str, partner: dict) -> str:
    import httpx

    port = free_port()
    server = subprocess.Popen([sys.executable, str(HERE), "--serve", "ours", "--db", db, "--port", str(port)],
                              env=ENV)
    try:
        wait_up(port)
        r = httpx.post(f"http://127.0.0.1:{port}/token", data={"grant_type": "client_credentials",
                                                                 "scope": "dinhdanh.verify"},
                       auth=(partner["client_id"], partner["client_secret"]))
        r.raise_for_status()
        return r.json()["access_token"]
    finally:
        server.terminate()
        server.wait(30)


def audit_rows(db: str, table: str = "access_log", above: int = 0) -> int:
    """The ``verify`` entries of ``table``; on PostgreSQL only those with an id above ``above`` (an index
    range: the access log of a national register holds millions of entries)."""
    if db.startswith("sqlite"):
        import sqlite3

        with sqlite3.connect(db.removeprefix("sqlite:///")) as conn:
            try:
                return conn.execute(f"SELECT count(*) FROM {table} WHERE action = 'verify'").fetchone()[0]
            except sqlite3.OperationalError:  # the floor makes its table when it starts
                return 0
    import psycopg

    with psycopg.connect(conninfo(db)) as conn:
        return conn.execute(f"SELECT count(*) FROM {table} WHERE access_id > %s AND action = 'verify'",
                            (above,)).fetchone()[0]


def last_id(db: str, table: str) -> int:
    """The largest id of ``table`` on PostgreSQL (0 on SQLite, where every entry is counted)."""
    if db.startswith("sqlite"):
        return 0
    import psycopg

    with psycopg.connect(conninfo(db)) as conn:
        return conn.execute(f"SELECT coalesce(max(access_id), 0) FROM {table}").fetchone()[0]


def server_setting(db: str, name: str) -> str:
    import psycopg

    with psycopg.connect(conninfo(db)) as conn:
        return conn.execute(f"SHOW {name}").fetchone()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, help="people in the register (100,000 on SQLite, 1,000,000 on PostgreSQL)")
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=8, help="keep-alive connections per server process")
    parser.add_argument("--postgres", metavar="URL", help="a PostgreSQL server (default: SQLite); see the doc")
    parser.add_argument("--existing", action="store_true", help="use URL's database as it is (no scratch database)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parser.add_argument("--workers", default=None, choices=("1", "2", "1,2"),
                        help="server processes: 1, 2 or both (default: 1,2 on PostgreSQL, 1 on SQLite)")
    parser.add_argument("--background", action="store_true",
                        help="ours runs serve's background loops (the audit sequencer among them) in one process")
    parser.add_argument("--serve", choices=("ours", "floor"), help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        if args.serve == "ours":
            serve_ours(args.db, args.port, args.background)
        else:
            serve_floor(args.db, args.port, args.connections)
        return
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed (apt-get install wrk)")
    postgres = args.postgres is not None
    count = args.count or (1_000_000 if postgres else 100_000)
    worker_counts = [int(w) for w in (args.workers or ("1,2" if postgres else "1")).split(",")]
    if postgres:
        os.environ.setdefault("DINHDANH_MASTER_KEY", BENCH_MASTER_KEY)
        ENV.setdefault("DINHDANH_MASTER_KEY", os.environ["DINHDANH_MASTER_KEY"])
    print(f"machine: {machine()}")
    scratch = None
    results: dict[tuple[str, int], dict] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="bench-verify-") as tmp:
            work = Path(tmp)
            db = None
            if postgres:
                if args.existing:
                    db = args.postgres
                else:
                    db, scratch = scratch_database(args.postgres, "bench_verify")
                    print(f"scratch database: {scratch}")
            db, bodies, partner = build(count, work, db)
            if postgres:
                print(f"PostgreSQL: database size {pg_database_size(db)}, "
                      f"synchronous_commit={server_setting(db, 'synchronous_commit')}, "
                      f"shared_buffers={server_setting(db, 'shared_buffers')}, "
                      f"max_connections={server_setting(db, 'max_connections')}")
            token = token_for(db, partner)
            for workers in worker_counts:
                for mode in ("ours", "floor"):
                    table = "access_log" if mode == "ours" else "floor_audit"
                    mark = last_id(db, table)
                    before = audit_rows(db, table, mark)
                    r = run_load(mode, db, token, bodies, work, args.seconds, args.connections, workers,
                                 args.background and mode == "ours")
                    r["written"] = audit_rows(db, table, mark) - before
                    results[(mode, workers)] = r
                    print(f"{mode} x{workers}: {r['rps']:,.0f} requests/s; p50 {r['p50']:.2f} ms, p95 {r['p95']:.2f} ms, "
                          f"p99 {r['p99']:.2f} ms, max {r['max']:.1f} ms; {r['requests']:,} requests "
                          f"({r['errors']} errors), {r['written']:,} audit rows written (warm-up included)",
                          flush=True)
            if postgres and args.background:
                pending = audit_rows_pending(db)
                print(f"access-log entries still unsequenced after the runs: {pending:,}")
    finally:
        if scratch and not args.keep:
            drop_database(args.postgres, scratch)
        elif scratch:
            print(f"kept: {db} (DINHDANH_MASTER_KEY={os.environ['DINHDANH_MASTER_KEY']})")
    print()
    backend = "PostgreSQL" if postgres else "SQLite"
    print("| back-end | workers | ours rps | p50 | p95 | p99 | floor rps | floor p50 | floor p99 | floor / ours |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for workers in worker_counts:
        o, f = results[("ours", workers)], results[("floor", workers)]
        print(f"| {backend} | {workers} | {o['rps']:,.0f} | {o['p50']:.2f} ms | {o['p95']:.2f} ms | {o['p99']:.2f} ms "
              f"| {f['rps']:,.0f} | {f['p50']:.2f} ms | {f['p99']:.2f} ms | {f['rps'] / o['rps']:.2f} |")
    if 1 in worker_counts and 2 in worker_counts:
        so = results[("ours", 2)]["rps"] / results[("ours", 1)]["rps"]
        sf = results[("floor", 2)]["rps"] / results[("floor", 1)]["rps"]
        print(f"scaling 2 workers / 1: ours {so:.2f}x, floor {sf:.2f}x (target for ours: >= 1.5x)")
    one = results.get(("ours", 1))
    if one:
        print(f"target >= 1,000/s per core: {'met' if one['rps'] >= 1000 else 'NOT met'}; "
              f"p99 < 25 ms: {'met' if one['p99'] < 25 else 'NOT met'}")
    # every known person's request writes one entry (unknown PIDs are about nobody: 10% of bodies);
    # the warm-up's requests write theirs too
    bad = [k for k, r in results.items() if r["errors"] or r["written"] < 0.85 * r["requests"]]
    if bad:
        raise SystemExit(f"errors during the run, or fewer audit entries than requests about known people: {bad}")


def audit_rows_pending(db: str) -> int:
    import psycopg

    with psycopg.connect(conninfo(db)) as conn:
        return conn.execute("SELECT count(*) FROM access_log WHERE leaf_index IS NULL").fetchone()[0]


if __name__ == "__main__":
    main()
