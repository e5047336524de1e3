"""Batch subscriber matching speed, end to end (file in -> result file out), as a ratio to a floor.

    python bench/bench_match.py --rows 1000000
    python bench/bench_match.py --postgres URL --existing --rows 10000000   # a register already loaded

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

``--postgres URL --existing``: URL's register as it is (nothing generated or imported). The input's
people are drawn (with repeats, as above) from the register itself: a child process streams
``pid, full_name, date_of_birth, sex`` of every person out with ``COPY`` into a temporary file and
reads it as Arrow columns (about 100 bytes a person, no Python object per row), so the match's own
peak memory, printed, is not inflated by making its input. Only the cold and the warm Parquet runs
are made there: each writes its access-log entries (about 85% of the rows) into that register.

After every run the access-log entries of the bench's partner written by that run are counted
(above the largest ``access_id`` before it, an index range): the run fails unless there is exactly
one per person checked (outcome match or mismatch).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import machine, peak_rss_mib, pg_database_size, population_file

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


def register_people(url: str, work: Path) -> pa.Table:
    """``pid, full_name, date_of_birth, sex`` of every person in URL's register, as Arrow string columns:
    streamed out with COPY into a file first, so no Python object per person is ever made."""
    import psycopg
    import pyarrow.csv as pacsv
    from sqlalchemy.engine import make_url

    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    path = work / "people.csv"
    with psycopg.connect(dsn) as conn, path.open("wb") as f:
        with conn.cursor().copy("COPY (SELECT pid, full_name, CAST(date_of_birth AS text), sex FROM persons ORDER BY person_id) "
                                "TO STDOUT WITH (FORMAT csv)") as copy:
            for block in copy:
                f.write(block)
    names = ["pid", "full_name", "date_of_birth", "sex"]
    table = pacsv.read_csv(path, read_options=pacsv.ReadOptions(column_names=names),
                           convert_options=pacsv.ConvertOptions(column_types={n: pa.string() for n in names}))
    path.unlink()
    return table


def make_input(url: str, rows: int, out: Path, seed: int) -> None:
    """The child process of ``--existing``: the subscriber file from the register's own people."""
    kinds = subscriber_file(register_people(url, out.parent), rows, out, seed)
    print(json.dumps({"kinds": kinds, "peak_rss_mib": round(peak_rss_mib())}), flush=True)


def entries_above(engine, actor: str, above: int) -> int:
    """Access-log entries of ``actor`` with an ``access_id`` above ``above`` (a primary-key range)."""
    with engine.connect() as conn:
        return conn.exec_driver_sql("SELECT count(*) FROM access_log WHERE access_id > %s AND actor = %s"
                                    if engine.dialect.name == "postgresql" else
                                    "SELECT count(*) FROM access_log WHERE access_id > ? AND actor = ?",
                                    (above, actor)).scalar_one()


def last_access_id(engine) -> int:
    with engine.connect() as conn:
        return conn.exec_driver_sql("SELECT coalesce(max(access_id), 0) FROM access_log").scalar_one()


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
    parser.add_argument("--postgres", metavar="URL", help="with --existing: a PostgreSQL register already loaded")
    parser.add_argument("--existing", action="store_true", help="use URL's register as it is (see the doc)")
    parser.add_argument("--make-input", nargs=2, metavar=("URL", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.make_input:
        make_input(args.make_input[0], args.rows, Path(args.make_input[1]), args.seed)
        return
    if args.existing != bool(args.postgres):
        raise SystemExit("--existing and --postgres URL go together")
    with tempfile.TemporaryDirectory(prefix="bench-match-") as tmp:
        work = Path(tmp)
        if args.existing:
            engine = make_engine(args.postgres)
            with engine.connect() as conn:
                held = conn.exec_driver_sql("SELECT count(*) FROM persons").scalar_one()
            print(f"register: {held:,} people already in {engine.url.database} (PostgreSQL), "
                  f"{pg_database_size(args.postgres)}")
        else:
            pop_path = population_file(args.rows, args.seed)
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
        t = time.perf_counter()
        if args.existing:
            child = subprocess.run([sys.executable, __file__, "--rows", str(args.rows), "--seed", str(args.seed),
                                    "--make-input", args.postgres, str(work / "subscribers.parquet")],
                                   check=True, stdout=subprocess.PIPE, text=True)
            made_input = json.loads(child.stdout.strip().splitlines()[-1])
            kinds = made_input["kinds"]
            print(f"input made in {time.perf_counter() - t:.1f} s by a child process "
                  f"(peak RSS {made_input['peak_rss_mib']:,} MiB; not timed)")
        else:
            kinds = subscriber_file(pq.read_table(pop_path, columns=["pid", "full_name", "date_of_birth", "sex"]),
                                    args.rows, work / "subscribers.parquet", args.seed)
        print(f"input: {args.rows:,} rows, {kinds}")
        cache = work / "cache"
        runs, audits = {}, {}
        plan = [("cold (snapshot built)", "result-cold.parquet"), ("warm (snapshot cached)", "result-warm.parquet")]
        if not args.existing:
            plan.append(("warm, CSV out", "result-warm.csv"))
        actor = f"partner:{made['client_id']}"
        for label, out in plan:
            before = last_access_id(engine)
            t = time.perf_counter()
            summary = matching.match_file(engine, work / "subscribers.parquet", work / out, made["client_id"],
                                          chunk_rows=args.chunk_rows, cache_dir=cache, actor="bench")
            runs[label] = time.perf_counter() - t
            audits[label] = summary["audit_seconds"]
            assert summary["rows"] == args.rows
            checked = summary["counts"]["match"] + summary["counts"]["mismatch"]
            written = entries_above(engine, actor, before)
            print(f"{label}: {runs[label]:.2f} s, of which access log {audits[label]:.2f} s; "
                  f"{written:,} access-log entries for {checked:,} people checked", flush=True)
            if written != checked:
                raise SystemExit(f"{written:,} access-log entries written for {checked:,} people checked")
        match_rss = peak_rss_mib()
        expected = {"match": kinds["exact"] + kinds["nfd"] + kinds["case_spacing"],
                    "mismatch": kinds["folded"] + kinds["wrong_date"], "not_found": kinds["unknown_pid"],
                    "invalid": kinds["malformed"]}
        print(f"outcomes: {summary['counts']}; expected from the input's kinds: {expected} (a name with no "
              f"diacritics stays a match when folded)")
        snap, _, _ = matching.snapshot_file(engine, cache)
        floor_took = floor(work / "subscribers.parquet", snap, work / "floor.parquet")
        engine.dispose()
    print(f"machine: {machine()}; peak RSS of this process through the matches: {match_rss:,.0f} MiB")
    print("| run | rows | s | rows/s | of which access log (s) | floor s | floor rows/s | ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for label, took in runs.items():
        print(f"| {label} | {args.rows:,} | {took:.2f} | {args.rows / took:,.0f} | {audits[label]:.2f} | "
              f"{floor_took:.2f} | {args.rows / floor_took:,.0f} | {took / floor_took:.2f} |")


if __name__ == "__main__":
    main()
