"""Time the synthetic population generator against the floor of making that many string cells.

    python bench/bench_generate.py --count 1000000
    python bench/bench_generate.py --count 10000000 --out /work/data/population-10000000-2025.parquet

The floor is the plainest table of the same shape: as many rows and string columns, each column
random integers from numpy cast to text by Arrow, with no realism at all, made in the same parts
as ours (so neither holds more than one part in memory). The ratio says how many times that bare
cost the realistic generator takes. Above ``synthetic.CHUNK_ROWS`` people the population is made
part by part (``generate_chunks``) and written with one ``ParquetWriter``: the peak RSS printed
is the process's high-water mark and does not grow with the count.

Household templates: the share of households whose whole skeleton (each member's relation to
the head, age in whole years, sex, marital status, in order) is identical to another household's
anywhere in the file, by household size, next to the same share for one shared pool of 250,000
skeletons (what ``generate`` would do at this size) and the share that comes from a skeleton
drawn twice in a part before its copies are varied.
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
import pyarrow.compute as pc

from common import peak_rss_mib

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


_RELATION = {r: i for i, r in enumerate(synthetic.RELATIONS)}
_MARITAL = {m: i for i, m in enumerate(synthetic.MARITAL_STATUSES)}


def skeleton_keys(table: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """(size, 64-bit key of the skeleton) per household of a part (its rows are consecutive)."""
    number = pc.dictionary_encode(table.column("household_number").combine_chunks()).indices.to_numpy()
    starts = np.flatnonzero(np.r_[True, number[1:] != number[:-1]])
    dob = table.column("date_of_birth").to_numpy().astype("datetime64[D]")
    year = dob.astype("datetime64[Y]").astype(np.int64) + 1970
    before = np.char.less_equal(np.array([d[5:] for d in table.column("date_of_birth").to_pylist()]),
                                str(synthetic.REFERENCE_DATE)[5:])
    age = (2025 - year - ~before).astype(np.uint64)
    relation = pc.index_in(table.column("relation_to_head"), pa.array(synthetic.RELATIONS)).to_numpy()
    marital = pc.index_in(table.column("marital_status"), pa.array(synthetic.MARITAL_STATUSES)).to_numpy()
    female = pc.equal(table.column("sex"), "female").to_numpy(zero_copy_only=False)
    return _keys(starts, relation, age, female, marital)


def _keys(starts, relation, age, female, marital) -> tuple[np.ndarray, np.ndarray]:
    code = (((relation.astype(np.uint64) * 128 + age.astype(np.uint64)) * 2 + female.astype(np.uint64)) * 4
            + marital.astype(np.uint64)) + np.uint64(1)
    sizes = np.diff(np.r_[starts, len(relation)])
    position = np.arange(len(relation)) - np.repeat(starts, sizes)
    mixer = np.uint64(0x9E3779B97F4A7C15)
    with np.errstate(over="ignore"):
        # a different odd multiplier per position: the order of the members counts
        weight = (position.astype(np.uint64) * np.uint64(2) + np.uint64(1)) * mixer
        mixed = code * weight
        mixed ^= mixed >> np.uint64(29)
        mixed *= mixer
    return sizes, np.add.reduceat(mixed, starts)


def repeated_share(sizes: np.ndarray, keys: np.ndarray) -> dict[str, float]:
    """Share of households (by size class) whose skeleton key another household also has."""
    _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    repeated = counts[inverse] > 1
    out = {}
    for label, sel in (("1", sizes == 1), ("2", sizes == 2), ("3", sizes == 3), ("4", sizes == 4),
                       ("5", sizes == 5), ("6+", sizes >= 6), ("all", sizes > 0)):
        out[label] = float(repeated[sel].mean()) if sel.any() else 0.0
    return out


def independent_baseline(households: int, seed: int) -> dict[str, float]:
    """The same shares for as many skeletons each drawn once (no pool, no reuse): the coincidences
    that are in the nature of small households, which no generator could or should avoid."""
    rng = np.random.default_rng(seed)
    pool = synthetic._skeletons(rng, households)
    relation = synthetic._SLOT_RELATION[pool.slot]
    return repeated_share(*_keys(pool.start, relation, pool.age, pool.female, pool.marital))


def one_pool_reuse(count: int, seed: int) -> float:
    """Share of households sharing their skeleton if ``count`` people came from one pool of 250,000."""
    rng = np.random.default_rng(seed)
    pool = synthetic._skeletons(rng, synthetic._POOL[1])
    chosen = synthetic._pick_households(rng, synthetic._balance(pool), pool.size, count)
    uses = np.bincount(chosen)
    return float((uses[chosen] > 1).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1_000_000, help="people to generate")
    parser.add_argument("--seed", type=int, default=2025)
    parser.add_argument("--chunk-rows", type=int, default=synthetic.CHUNK_ROWS)
    parser.add_argument("--out", type=Path, help="keep the Parquet file here (default: a temporary file)")
    parser.add_argument("--templates", action="store_true", help="also measure household template repeats")
    args = parser.parse_args()

    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, {total_memory()} memory; "
          f"Python {platform.python_version()}, numpy {np.__version__}, pyarrow {pa.__version__}", flush=True)
    sizes = synthetic.part_sizes(args.count, args.chunk_rows)

    start = time.perf_counter()
    for k, n in enumerate(sizes):
        floor = floor_table(n, len(synthetic.COLUMNS), args.seed + k)
        assert floor.num_rows == n and floor.num_columns == len(synthetic.COLUMNS)
        del floor
    floor_seconds = time.perf_counter() - start
    floor_rss = peak_rss_mib()

    import pyarrow.parquet as pq

    schema = pa.schema([(name, pa.string()) for name in synthetic.COLUMNS])
    reuse: list = []
    all_sizes, all_keys = [], []
    with tempfile.TemporaryDirectory() as tmp:
        path = args.out or Path(tmp) / "people.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        seconds = cpu_seconds = write_seconds = 0.0
        rows = 0
        writer = pq.ParquetWriter(partial, schema)
        chunks = synthetic.generate_chunks(args.count, args.seed, args.chunk_rows, reuse)
        while True:
            start, cpu_start = time.perf_counter(), time.process_time()
            table = next(chunks, None)  # cold first part: includes building the data tables
            seconds += time.perf_counter() - start
            cpu_seconds += time.process_time() - cpu_start
            if table is None:
                break
            start = time.perf_counter()
            writer.write_table(table.cast(schema))
            write_seconds += time.perf_counter() - start
            rows += table.num_rows
            if args.templates:
                s, k = skeleton_keys(table)
                all_sizes.append(s)
                all_keys.append(k)
            del table
        writer.close()
        partial.replace(path)
        file_bytes = path.stat().st_size
    assert rows == args.count

    print()
    # CPU time too: on a shared machine the wall clock also counts other people's work.
    print("| rows | parts | generate (s) | generate CPU (s) | rows/s | write parquet (s) | file (MB) | peak RSS (MiB) "
          "| floor (s) | floor peak RSS (MiB) | ratio |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    print(f"| {args.count:,} | {len(sizes)} | {seconds:.2f} | {cpu_seconds:.2f} | {args.count / seconds:,.0f} "
          f"| {write_seconds:.2f} | {file_bytes / 1e6:,.0f} | {peak_rss_mib():,.0f} | {floor_seconds:.2f} "
          f"| {floor_rss:,.0f} | {seconds / floor_seconds:.1f} |", flush=True)
    if args.templates:
        shares = repeated_share(np.concatenate(all_sizes), np.concatenate(all_keys))
        households = sum(h for h, _ in reuse) if reuse else len(np.concatenate(all_sizes))
        drawn_twice = sum(r for _, r in reuse) / households if reuse else float("nan")
        base = independent_baseline(households, args.seed)
        print()
        print("independent skeletons, each drawn once, as many households (the floor of coincidence):")
        print("| size 1 | 2 | 3 | 4 | 5 | 6+ | all |")
        print("|---:|---:|---:|---:|---:|---:|---:|")
        print("| " + " | ".join(f"{base[k]:.1%}" for k in ("1", "2", "3", "4", "5", "6+", "all")) + " |")
        print()
        print("| households | identical skeleton elsewhere in the file: size 1 | 2 | 3 | 4 | 5 | 6+ | all "
              "| skeleton drawn twice in a part (before variation) | one pool of 250,000 (as generate) |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        print(f"| {households:,} | " + " | ".join(f"{shares[k]:.1%}" for k in ("1", "2", "3", "4", "5", "6+", "all"))
              + f" | {drawn_twice:.1%} | {one_pool_reuse(args.count, args.seed):.1%} |")


if __name__ == "__main__":
    main()
