"""Time the synthetic population generator against the floor of making that many string cells.

    python bench/bench_generate.py --count 1000000

The floor is the plainest table of the same shape: as many rows and string columns, each column
random integers from numpy cast to text by Arrow, with no realism at all. The ratio says how many
times that bare cost the realistic generator takes.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from dinhdanh.population import synthetic


def floor_table(count: int, columns: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    return pa.table({f"c{i}": pa.array(rng.integers(0, 10**12, count)).cast(pa.string()) for i in range(columns)})


def total_memory() -> str:
    try:
        with open("/proc/meminfo") as f:
            kib = next(int(line.split()[1]) for line in f if line.startswith("MemTotal:"))
        return f"{kib / 2**20:.1f} GiB"
    except (OSError, StopIteration):
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1_000_000, help="people to generate")
    parser.add_argument("--seed", type=int, default=2025)
    args = parser.parse_args()

    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, {total_memory()} memory; "
          f"Python {platform.python_version()}, numpy {np.__version__}, pyarrow {pa.__version__}")

    start = time.perf_counter()
    floor = floor_table(args.count, len(synthetic.COLUMNS), args.seed)
    floor_seconds = time.perf_counter() - start

    start, cpu_start = time.perf_counter(), time.process_time()
    table = synthetic.generate(args.count, args.seed)  # cold: includes building the data tables
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        synthetic.write(table, Path(tmp) / "people.parquet")
        write_seconds = time.perf_counter() - start
    assert table.num_rows == floor.num_rows == args.count and table.num_columns == floor.num_columns

    print()
    # CPU time too: on a shared machine the wall clock also counts other people's work.
    print("| rows | generate (s) | generate CPU (s) | rows/s | write parquet (s) | floor (s) | ratio |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    print(f"| {args.count:,} | {seconds:.2f} | {cpu_seconds:.2f} | {args.count / seconds:,.0f} "
          f"| {write_seconds:.2f} | {floor_seconds:.2f} | {seconds / floor_seconds:.1f} |")


if __name__ == "__main__":
    main()
