"""Batch subscriber matching speed, end to end (file in -> result file out), as a ratio to a floor.

    python bench/bench_match.py --rows 1000000

Register: a synthetic population of N people imported into a temporary SQLite register (not
timed). Input: N subscriber rows with known kinds of answer (exact, NFD names, odd case and
spacing, names without diacritics, wrong dates, unknown PIDs, malformed PIDs and dates), shuffled,
as Parquet. Correctness is checked by the tests, not here.

Ours: ``matching.match_file`` (partner check, job row, snapshot, name keys, DuckDB join and
rules, part file, one chained access-log entry per person checked, final rename, summary), timed
cold (the register snapshot is built from SQLite) and warm (the snapshot for this register state
is cached). The time spent writing the access log is printed apart.
Floor: DuckDB alone, the bare LEFT JOIN of the same input Parquet to the snapshot Parquet on pid,
written as Parquet: no keys, no rules, no order, no bookkeeping.
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from pathlib import Path

from common import machine, population_file

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

KINDS = (("exact", 0.55), ("nfd", 0.08), ("case_spacing", 0.08), ("folded", 0.07), ("wrong_date", 0.07),
         ("unknown_pid", 0.07), ("malformed", 0.08))


def subscriber_file(people: pa.Table, rows: int, path: Path, seed: int) -> dict:
    from dinhdanh.exchange import keys

    rng = np.random.default_rng(seed)
    pick = rng.integers(0, people.num_rows, rows)
    base = people.take(pa.array(pick))
    pid, name = base["pid"].combine_chunks(), base["full_name"].combine_chunks()
    dob = pc.strftime(base["date_of_birth"], format="%Y-%m-%d") if base["date_of_birth"].type != pa.string() \
        else base["date_of_birth"]
    dob = dob.combine_chunks() if isinstance(dob, pa.ChunkedArray) else dob
    kind = rng.choice(len(KINDS), rows, p=[w for _, w in KINDS])

    def put(col, k, values):
        return pc.if_else(pa.array(kind == k), values, col)

    name = put(name, 1, pc.utf8_normalize(name, "NFD"))
    name = put(name, 2, pc.utf8_upper(pc.replace_substring(name, " ", "  ")))
    name = put(name, 3, keys.fold(name))
    shifted = pc.strftime(pc.add(pc.strptime(dob, format="%Y-%m-%d", unit="s"),
                                 pa.scalar(86400 * 1000, pa.duration("ms")).cast(pa.duration("s"))),
                          format="%Y-%m-%d")
    dob = put(dob, 4, shifted)
    pid = put(pid, 5, pc.binary_join_element_wise("999", pc.utf8_slice_codeunits(pid, 3), ""))
    half = rng.random(rows) < 0.5
    pid = put(pid, 6, pc.if_else(pa.array(half), pc.utf8_slice_codeunits(pid, 1), pid))
    dob = put(dob, 6, pc.if_else(pa.array(half), dob, pc.replace_substring(dob, "-", "/")))
    msisdn = pc.binary_join_element_wise("09", pc.utf8_lpad(
        pa.array(rng.integers(0, 10**8, rows)).cast(pa.string()), 8, "0"), "")
    table = pa.table({"msisdn": msisdn, "pid": pid, "full_name": name, "date_of_birth": dob,
                      "sex": base["sex"]})
    pq.write_table(table, path)
    return {k: int((kind == i).sum()) for i, (k, _) in enumerate(KINDS)}


def floor(input_path: Path, snapshot: Path, out: Path) -> float:
    import duckdb

    con = duckdb.connect()
    start = time.perf_counter()
    con.execute(f"COPY (SELECT i.*, s.* EXCLUDE (pid) FROM read_parquet('{input_path}') i "
                f"LEFT JOIN read_parquet('{snapshot}') s ON s.pid = i.pid) TO '{out}' (FORMAT parquet)")
    took = time.perf_counter() - start
    con.close()
    return took


def main() -> None:
    from dinhdanh.exchange import matching
    from dinhdanh.exchange import partners
    from dinhdanh.population.importer import import_population
    from dinhdanh.store.engine import make_engine, upgrade

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000, help="register size and input rows")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--chunk-rows", type=int, default=matching.CHUNK_ROWS)
    args = parser.parse_args()
    pop_path = population_file(args.rows, args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        engine = make_engine(f"sqlite:///{work / 'register.sqlite'}")
        upgrade(engine)
        t = time.perf_counter()
        report = import_population(engine, pop_path, work / "rejects.csv")
        print(f"register: {report.loaded:,} people imported in {time.perf_counter() - t:.1f} s (not timed)")
        with engine.begin() as conn:  # a bank: its batches do not feed the telcos' ladder (not timed here)
            made = partners.add_partner(conn, name="Bench bank", kind="bank", operations=["batch"],
                                        fields=["full_name", "date_of_birth", "sex"], actor="bench")
            partners.approve_partner(conn, made["client_id"], agreement="BENCH", legal_basis="bench",
                                     expires=dt.date.today() + dt.timedelta(days=30), security_level=3,
                                     actor="bench")
        kinds = subscriber_file(pq.read_table(pop_path, columns=["pid", "full_name", "date_of_birth", "sex"]),
                                args.rows, work / "subscribers.parquet", args.seed)
        print(f"input: {args.rows:,} rows, {kinds}")
        cache = work / "cache"
        runs, audits = {}, {}
        for label, out in (("cold (snapshot built)", "result-cold.parquet"),
                           ("warm (snapshot cached)", "result-warm.parquet"),
                           ("warm, CSV out", "result-warm.csv")):
            t = time.perf_counter()
            summary = matching.match_file(engine, work / "subscribers.parquet", work / out, made["client_id"],
                                          chunk_rows=args.chunk_rows, cache_dir=cache, actor="bench")
            runs[label] = time.perf_counter() - t
            audits[label] = summary["audit_seconds"]
            assert summary["rows"] == args.rows
        print(f"outcomes: {summary['counts']}")
        snap, _, _ = matching.snapshot_file(engine, cache)
        floor_took = floor(work / "subscribers.parquet", snap, work / "floor.parquet")
        engine.dispose()
    print(f"machine: {machine()}")
    print("| run | rows | s | rows/s | of which access log (s) | floor s | floor rows/s | ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for label, took in runs.items():
        print(f"| {label} | {args.rows:,} | {took:.2f} | {args.rows / took:,.0f} | {audits[label]:.2f} | "
              f"{floor_took:.2f} | {args.rows / floor_took:,.0f} | {took / floor_took:.2f} |")


if __name__ == "__main__":
    main()
