"""First load of an empty SQLite register in the bulk mode, as a ratio to the bare driver.

    python bench/bench_sqlite_bulk_load.py --count 1000000

Ours: ``import_population(..., bulk=True)`` of a Parquet file of N synthetic people (seed 7,
generated beforehand, not timed) into a fresh, migrated register: validation, name keys,
households, relatives, rejects, the search indexes dropped and rebuilt, ``ANALYZE``, one
transaction, written by the writer process (``population.bulk_writer``: ADBC's SQLite driver, its
pragmas), the writer's start included.

Floor: exactly the rows ours wrote (persons and households, read back beforehand, not timed), into
a fresh register of the same schema whose secondary indexes are dropped first (the table shapes
stay: columns, primary keys, UNIQUE, CHECK), with the same pragmas (rollback journal,
``synchronous=OFF``, 256 MiB cache) and no foreign-key checking (bare): one transaction with one
``sqlite3.executemany`` per table, then every dropped index built again, then ``ANALYZE``.
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from pathlib import Path

from common import machine, population_file


def fresh(path: Path):
    from dinhdanh.store.engine import make_engine, upgrade

    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    return engine


def floor(ours_path: Path, floor_path: Path) -> tuple[float, float]:
    """(seconds for the whole floor, of which building the indexes)."""
    from dinhdanh.population.bulk_writer import LOAD_PRAGMAS

    src = sqlite3.connect(ours_path)
    person_cols = [r[1] for r in src.execute("PRAGMA table_info(persons)")]
    home_cols = [r[1] for r in src.execute("PRAGMA table_info(households)")]
    people = src.execute(f"SELECT {', '.join(person_cols)} FROM persons ORDER BY person_id").fetchall()
    homes = src.execute(f"SELECT {', '.join(home_cols)} FROM households ORDER BY household_id").fetchall()
    src.close()
    fresh(floor_path).dispose()
    db = sqlite3.connect(floor_path, isolation_level=None)
    db.execute("PRAGMA journal_mode=DELETE")
    for pragma in LOAD_PRAGMAS:
        db.execute(pragma)
    db.execute("PRAGMA foreign_keys=OFF")
    indexes = db.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
                         "AND tbl_name IN ('persons', 'households')").fetchall()
    for name, _ in indexes:
        db.execute(f"DROP INDEX {name}")
    start = time.perf_counter()
    db.execute("BEGIN IMMEDIATE")
    db.executemany(f"INSERT INTO households ({', '.join(home_cols)}) VALUES ({', '.join('?' * len(home_cols))})",
                   homes)
    db.executemany(f"INSERT INTO persons ({', '.join(person_cols)}) VALUES ({', '.join('?' * len(person_cols))})",
                   people)
    built = time.perf_counter()
    for _, sql in indexes:
        db.execute(sql)
    db.execute("ANALYZE")
    db.execute("COMMIT")
    end = time.perf_counter()
    db.close()
    return end - start, end - built


def main() -> None:
    import statistics

    from dinhdanh.population.importer import import_population

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=1, help="pairs (ours, floor) run one after the other")
    args = parser.parse_args()
    path = population_file(args.count, args.seed)
    print(f"machine: {machine()}, SQLite {sqlite3.sqlite_version}")
    print("| people | bulk load (s) | people/s | floor (s) | of which indexes + ANALYZE (s) | floor people/s | ratio "
          "| writer waiting / writing / end (s) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---|")
    ratios = []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            ours = fresh(work / "ours.sqlite")
            start = time.perf_counter()
            report = import_population(ours, path, work / "rejects.csv", bulk=True)
            took = time.perf_counter() - start
            ours.dispose()
            assert report.loaded == args.count and report.mode == "bulk", report
            floor_took, floor_index = floor(work / "ours.sqlite", work / "floor.sqlite")
        ratios.append(took / floor_took)
        phases = report.phases or {}
        writer = " / ".join(f"{phases.get(k, 0):.2f}" for k in ("waiting", "writing", "end"))
        print(f"| {args.count:,} | {took:.2f} | {args.count / took:,.0f} | {floor_took:.2f} | {floor_index:.2f} | "
              f"{args.count / floor_took:,.0f} | {took / floor_took:.2f} | {writer} (indexes "
              f"{phases.get('indexes', 0):.2f}) |", flush=True)
    if args.repeat > 1:
        print(f"median ratio {statistics.median(ratios):.2f} (min {min(ratios):.2f}, max {max(ratios):.2f})")


if __name__ == "__main__":
    main()
