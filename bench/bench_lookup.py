"""PID lookup and citizen search latency at N people, in process, against raw SQL as the floor.

    python bench/bench_lookup.py --count 1000000 [--postgres URL]
    python bench/bench_lookup.py --postgres URL --existing     # a register already loaded (10M)

The register is built once from the synthetic population (seed 7) and kept under bench/out/
(SQLite) or in a schema named after the size (PostgreSQL); building it is not timed here.
Ours: ``registry.records.find_person`` (the lookup behind GET /citizens/{pid}),
``registry.records.read_record`` (the whole record with relatives and household), and
``registry.search.search`` for a name typed without diacritics + year of birth + province.
Floor: the same SELECT written by hand through the bare driver on the same database.

``--existing`` measures URL's database as it is (nothing generated or imported; ``--count`` is
ignored): the sample is drawn by primary key (``common.sample_people``), never by scanning the
table. Before the timed passes every sampled person is read once by each path (floor and ours), so
both are measured with the same pages cached; the first, cold read of each is not in the figures.
"""

from __future__ import annotations

import argparse
import random
import time

from common import OUT, machine, ms, pg_database_size, population_file, sample_people, summary

import sqlalchemy as sa


def register(count: int, seed: int, postgres: str | None) -> sa.Engine:
    from dinhdanh.population.importer import import_population
    from dinhdanh.registry.tables import persons
    from dinhdanh.store.engine import make_engine, upgrade

    if postgres:
        schema = f"bench_register_{count}_{seed}"
        admin = make_engine(postgres)
        with admin.begin() as conn:
            conn.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        engine = make_engine(postgres, connect_args={"options": f"-csearch_path={schema}"})
    else:
        engine = make_engine(f"sqlite:///{OUT / f'register-{count}-{seed}.sqlite'}")
    upgrade(engine)
    with engine.connect() as conn:
        have = conn.execute(sa.select(sa.func.count()).select_from(persons)).scalar_one()
    if have < count:
        import_population(engine, population_file(count, seed), OUT / "rejects.csv")
        if postgres:
            with engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE persons")
    return engine


def timed(fn, args_list) -> list[float]:
    out = []
    for args in args_list:
        start = time.perf_counter()
        fn(*args)
        out.append(time.perf_counter() - start)
    return out


def main() -> None:
    from dinhdanh.ids import names
    from dinhdanh.registry.records import find_person, read_record
    from dinhdanh.registry.search import SearchQuery, search

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--samples", type=int, default=5000)
    parser.add_argument("--postgres", metavar="URL")
    parser.add_argument("--existing", action="store_true", help="measure URL's database as it is (no import)")
    args = parser.parse_args()
    if args.existing:
        from dinhdanh.store.engine import make_engine

        if not args.postgres:
            raise SystemExit("--existing needs --postgres URL")
        engine = make_engine(args.postgres)
    else:
        engine = register(args.count, args.seed, args.postgres)
    rng = random.Random(1)
    t = time.perf_counter()
    with engine.connect() as conn:
        if args.existing:
            sample = sample_people(conn, args.samples, "person_id, pid, full_name, birth_year, province_code")
            args.count = conn.exec_driver_sql("SELECT count(*) FROM persons").scalar_one()
        else:
            people = conn.exec_driver_sql("SELECT pid, full_name, birth_year, province_code FROM persons").all()
            sample = rng.sample(people, min(args.samples, len(people)))
    sampled = time.perf_counter() - t
    pids = [(p.pid,) for p in sample]
    # what an officer types: no diacritics, upper case, the birth year and province
    queries = [(names.transliterate(p.full_name), p.birth_year, p.province_code) for p in sample[:1000]]
    mark = "%s" if args.postgres else "?"

    with engine.connect() as conn:
        raw = conn.connection.driver_connection
        cur = raw.cursor()

        def floor_lookup(pid):
            cur.execute(f"SELECT * FROM persons WHERE pid = {mark}", (pid,))
            return cur.fetchone()

        def floor_search(name, year, province):
            key = names.fold(name)
            cur.execute(f"SELECT person_id, pid, full_name, date_of_birth, sex, status, province_code, commune_code "
                        f"FROM persons WHERE name_key >= {mark} AND name_key < {mark} AND birth_year = {mark} "
                        f"AND province_code = {mark} ORDER BY name_key, birth_year, person_id LIMIT 21",
                        (key, key + "\x7f", year, province))
            return cur.fetchall()

        def ours_search(name, year, province):
            return search(conn, SearchQuery(name=name, birth_year=year, province=province))

        warm = (pids, pids[:2000], queries) if args.existing else (pids[:200], pids[:200], queries[:100])
        for fn, arg in ((floor_lookup, warm[0]), (lambda p: find_person(conn, p), warm[0]),
                        (lambda p: read_record(conn, p), warm[1]),
                        (floor_search, warm[2]), (ours_search, warm[2])):
            timed(fn, arg)  # warm the caches and SQLAlchemy's statement cache
        results = {
            "floor lookup": summary(timed(floor_lookup, pids)),
            "find_person": summary(timed(lambda p: find_person(conn, p), pids)),
            "read_record": summary(timed(lambda p: read_record(conn, p), pids[:2000])),
            "floor search": summary(timed(floor_search, queries)),
            "search": summary(timed(ours_search, queries)),
        }
        hits = sum(1 for q in queries if any(r["full_name"] for r in ours_search(*q).items))
    backend = "PostgreSQL" if args.postgres else "SQLite"
    print(f"machine: {machine()}; {backend}, {args.count:,} people; search found the person for {hits}/{len(queries)}")
    if args.postgres:
        print(f"database size: {pg_database_size(args.postgres)}; sample of {len(sample):,} people drawn in "
              f"{sampled:.2f} s")
    print("| operation | p50 | p95 | p99 | floor p99 | ratio (p99) |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, floor in (("find_person", "floor lookup"), ("read_record", "floor lookup"), ("search", "floor search")):
        r, f = results[label], results[floor]
        print(f"| {backend} {label} | {ms(r['p50'])} | {ms(r['p95'])} | {ms(r['p99'])} | {ms(f['p99'])} | "
              f"{r['p99'] / f['p99']:.2f} |")


if __name__ == "__main__":
    main()
