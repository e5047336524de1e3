"""Mixed load over HTTP on a real ``dinhdanh serve``: officers reading records, histories and
searching, partners verifying, officers recording life events, citizens reading their data
tracker, all at once; throughput and latency per kind, errors and timeouts, as a ratio to the
same requests sent one at a time in the same run.

    python bench/bench_mixed.py --count 100000 --seconds 30 --concurrency 32
    python bench/bench_mixed.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test

Register: a synthetic population of N people (seed 7, cached under bench/out/) imported into a
temporary SQLite register (or a fresh schema of the PostgreSQL database given, dropped after),
a national officer, a partner allowed to verify (rate limit at its maximum), a relying party
allowed ``dinhdanh.me`` and a few citizens with level-1 e-ID accounts who log in through the
provider's pages before the run (not timed).

Server: ``python -m dinhdanh serve`` (one process, as operators run it). Load: Python threads,
each with its own keep-alive connection (httpx, timeout 10 s), each request drawn from the mix of
tests/e2e/test_mixed_load.py (the same code): officer record read 25%, search 10%, history 5%,
partner verification 30%, temporary-residence event 15% (each client on its own people), citizen
access log 10% and account 5%. Latency is measured by the client, request sent to answer read.

Floor: the same mix, one request at a time (concurrency 1), in the same run, on the same
server. The ratios are concurrent p99 / single p99 and concurrent / single throughput: a server
that serialises everything behind one lock shows a p99 ratio near the concurrency and a
throughput ratio near 1; one that deadlocks shows errors and timeouts.

Afterwards every acknowledged event is read back through the officer API (``--no-check`` skips it).
The target from the issue: zero errors, p99 < 250 ms at concurrency 32 on SQLite.
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
import tempfile
import time
from pathlib import Path

from common import machine, percentile, population_file

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.e2e.test_mixed_load: the mix and its helpers
os.environ.setdefault("DINHDANH_MASTER_KEY", base64.b64encode(os.urandom(32)).decode())
# the server subprocess runs this tree's code, as this process does (common.py puts src/ first)
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "src"), os.environ.get("PYTHONPATH")) if p)


def table(title: str, outcomes: list, seconds: float) -> tuple[str, dict]:
    """A markdown table per kind and overall; and the overall figures."""
    kinds = sorted({o.kind for o in outcomes})
    lines = [f"**{title}**", "",
             "| kind | requests | errors | timeouts | req/s | p50 ms | p95 ms | p99 ms | max ms |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    overall = {}
    for kind in [*kinds, "all"]:
        rows = [o for o in outcomes if kind in ("all", o.kind)]
        if not rows:
            continue
        lat = [o.seconds * 1000 for o in rows]
        errors = sum(o.error is not None for o in rows)
        timeouts = sum(o.status is None for o in rows)
        figures = {"requests": len(rows), "errors": errors, "timeouts": timeouts, "rps": len(rows) / seconds,
                   "p50": percentile(lat, 50), "p95": percentile(lat, 95), "p99": percentile(lat, 99),
                   "max": max(lat)}
        name = "**all**" if kind == "all" else kind
        lines.append(f"| {name} | {figures['requests']:,} | {errors} | {timeouts} | {figures['rps']:,.1f} | "
                     f"{figures['p50']:.1f} | {figures['p95']:.1f} | {figures['p99']:.1f} | {figures['max']:.0f} |")
        if kind == "all":
            overall = figures
    return "\n".join(lines), overall


def pin(server, wanted: bool) -> str:
    """Start the server on core 0 and keep the clients (this process) off it, when there are cores to
    spare: the clients' own CPU time would otherwise be counted in the server's latency."""
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if not wanted or len(cores) < 2:
        server.start()
        return "not pinned"
    os.sched_setaffinity(0, {cores[0]})  # the server inherits it
    try:
        server.start()
    finally:
        os.sched_setaffinity(0, set(cores[1:]))  # the client threads, started later, inherit this
    return f"server on core {cores[0]}, clients on {cores[1:]}"


def timed(mix, clients: int, seconds: float, tag: str) -> tuple[list, float]:
    started = time.monotonic()
    outcomes = mix.run(clients, seconds, seed=len(tag) + clients, tag=tag)
    return outcomes, time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=100_000, help="people in the register")
    parser.add_argument("--seconds", type=float, default=30, help="length of the concurrent run")
    parser.add_argument("--single-seconds", type=float, default=10, help="length of the one-at-a-time run")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--citizens", type=int, default=8, help="citizens logged in for the /me reads")
    parser.add_argument("--postgres", metavar="URL", help="run on this PostgreSQL database (a fresh schema)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin the server and the clients to cores")
    parser.add_argument("--no-check", action="store_true", help="skip reading back the acknowledged events")
    args = parser.parse_args()

    from tests.e2e.test_mixed_load import (
        Mix,
        Server,
        check_acknowledged_visible,
        citizen_token,
        load_register,
        partner_token,
    )

    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory(prefix="bench-mixed-") as tmp:
        work = Path(tmp)
        schema_urls = None
        if args.postgres:
            import tests.e2e.test_mixed_load as support

            support.POSTGRES_URL = args.postgres
            schema_urls = support.postgres_schema_url()
            db = next(schema_urls)
        else:
            db = f"sqlite:///{work / 'register.sqlite'}"
        backend = "PostgreSQL" if args.postgres else "SQLite"
        server = Server(db, work)
        register = None
        try:
            started = time.perf_counter()
            register = load_register(db, work, population=args.count, citizens=args.citizens,
                                     file=population_file(args.count, 7))
            print(f"register: {args.count:,} people on {backend}, set up in {time.perf_counter() - started:.1f} s "
                  f"(not timed)")
            pinned = pin(server, not args.no_pin)
            tokens = {pid: citizen_token(server.url, register.rp, pid) for pid in register.citizens}
            mix = Mix(server.url, register, partner_token(server.url, register.partner), tokens)
            timed(mix, 1, 2, "warm")  # connections, caches, the tokens' first checks
            single, single_s = timed(mix, 1, args.single_seconds, "one")
            concurrent, concurrent_s = timed(mix, args.concurrency, args.seconds, "many")
            problems = [] if args.no_check else check_acknowledged_visible(server.url, register, mix.acknowledged)
            errors_in_log = sorted(set(server.log_errors()))
        finally:
            server.stop()
            if register is not None:
                register.engine.dispose()
            if schema_urls is not None:
                for _ in schema_urls:  # drops the schema
                    pass
    text_c, many = table(f"{backend}, concurrency {args.concurrency}, {concurrent_s:.0f} s", concurrent, concurrent_s)
    text_1, one = table(f"{backend}, one at a time, {single_s:.0f} s (floor)", single, single_s)
    print()
    print(text_c)
    print()
    print(text_1)
    print()
    print(f"pinning: {pinned}")
    print(f"p99 ratio (concurrent / one at a time): {many['p99'] / one['p99']:.2f}; "
          f"throughput ratio (concurrent / one at a time): {many['rps'] / one['rps']:.2f}")
    print(f"acknowledged events: {len(mix.acknowledged):,}; "
          + ("not read back" if args.no_check else f"missing or wrong after the run: {len(problems)}"))
    for line in problems[:5]:
        print(f"  {line}")
    if errors_in_log:
        print(f"server log errors: {errors_in_log[:5]}")
    met = many["errors"] == 0 and many["p99"] < 250
    print(f"target (concurrency {args.concurrency}: zero errors, p99 < 250 ms): {'met' if met else 'NOT met'} "
          f"({many['errors']} errors, {many['timeouts']} timeouts, p99 {many['p99']:.1f} ms)")
    failed = [o for o in concurrent + single if o.error is not None]
    for o in failed[:5]:
        print(f"  {o.kind}: {o.status} {o.error}")
    if failed or problems:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
