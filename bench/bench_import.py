"""Bulk import speed, as a ratio to the plainest insert of the same rows.

    python bench/bench_import.py --count 1000000                 # SQLite
    python bench/bench_import.py --count 1000000 --postgres URL  # PostgreSQL

Ours: ``import_population`` on a Parquet file of synthetic people into a fresh, migrated
register (validation, name keys, households, relatives, checkpoints, one commit per batch).
Floor: exactly the rows our import wrote (read back beforehand, not timed), written into a fresh
register of the same schema (same columns, constraints, indexes) the plainest way: on SQLite one
``sqlite3.executemany`` of the persons (its households inserted first, not timed); on PostgreSQL
one ``COPY`` of the households and one of the persons (both timed, as the import writes both), in
one transaction.
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
import uuid
from pathlib import Path

from common import machine, population_file

import sqlalchemy as sa


def fresh(url: str | None, workdir: Path, name: str):
    from dinhdanh.store.engine import make_engine, upgrade

    if url is None:
        engine = make_engine(f"sqlite:///{workdir / (name + '.sqlite')}")
        upgrade(engine)
        return engine, None
    schema = f"bench_{name}_{uuid.uuid4().hex[:6]}"
    admin = make_engine(url)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    engine = make_engine(url, connect_args={"options": f"-csearch_path={schema}"})
    upgrade(engine)
    return engine, (admin, schema)


def drop(handle) -> None:
    if handle:
        admin, schema = handle
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")


def floor_sqlite(ours: sa.Engine, floor: sa.Engine) -> float:
    with ours.connect() as conn:
        cols = [r[1] for r in conn.exec_driver_sql("PRAGMA table_info(persons)")]
        rows = conn.exec_driver_sql(f"SELECT {', '.join(cols)} FROM persons").all()
        homes = conn.exec_driver_sql("SELECT * FROM households").all()
    with floor.begin() as conn:
        cur = conn.connection.driver_connection.cursor()
        cur.executemany(f"INSERT INTO households VALUES ({', '.join('?' * len(homes[0]))})", homes)
    raw = floor.raw_connection()
    try:
        cur = raw.driver_connection.cursor()
        start = time.perf_counter()
        cur.execute("BEGIN")  # the pragma lasts one transaction: outside one, it ended with its own statement
        cur.execute("PRAGMA defer_foreign_keys = ON")
        cur.executemany(f"INSERT INTO persons ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})", rows)
        raw.driver_connection.commit()
        return time.perf_counter() - start
    finally:
        raw.close()


def floor_postgres(ours: sa.Engine, floor: sa.Engine) -> float:
    buf, homes = io.BytesIO(), io.BytesIO()
    raw = ours.raw_connection()
    try:
        cur = raw.driver_connection.cursor()
        with cur.copy("COPY persons TO STDOUT") as copy:
            for block in copy:
                buf.write(block)
        with cur.copy("COPY households TO STDOUT") as copy:
            for block in copy:
                homes.write(block)
    finally:
        raw.close()
    raw = floor.raw_connection()
    try:
        cur = raw.driver_connection.cursor()
        start = time.perf_counter()  # both tables, as the import writes both
        with cur.copy("COPY households FROM STDIN") as copy:
            copy.write(homes.getvalue())
        with cur.copy("COPY persons FROM STDIN") as copy:
            copy.write(buf.getvalue())
        raw.driver_connection.commit()
        return time.perf_counter() - start
    finally:
        raw.close()


def main() -> None:
    from dinhdanh.population.importer import import_population

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--postgres", metavar="URL", help="PostgreSQL URL (default: SQLite)")
    args = parser.parse_args()
    path = population_file(args.count, args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        ours, h1 = fresh(args.postgres, work, "ours")
        start = time.perf_counter()
        report = import_population(ours, path, work / "rejects.csv", bulk=False)  # the normal path
        took = time.perf_counter() - start
        assert report.loaded == args.count, report
        floor, h2 = fresh(args.postgres, work, "floor")
        floor_took = (floor_postgres if args.postgres else floor_sqlite)(ours, floor)
        backend = "PostgreSQL (COPY)" if args.postgres else "SQLite (executemany)"
        ours.dispose()
        floor.dispose()
        drop(h1)
        drop(h2)
    print(f"machine: {machine()}")
    print("| back-end | rows | import s | rows/s | floor s | floor rows/s | ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    print(f"| {backend} | {args.count:,} | {took:.2f} | {args.count / took:,.0f} | {floor_took:.2f} | "
          f"{args.count / floor_took:,.0f} | {took / floor_took:.2f} |")


if __name__ == "__main__":
    main()
