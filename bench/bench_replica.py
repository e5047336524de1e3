"""Reads on a real streaming replica: what routing costs, how much of the read load leaves the
primary, and that no answer is stale, with and without writes, and with replay paused.

    python bench/bench_replica.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432/postgres \\
        --count 50000 --requests 2000

Needs root (the servers run as ``postgres``). The pair is ``tests.replica_support.streaming_pair``:
a hot standby made by ``pg_basebackup -X stream -R`` of the server at ``--postgres`` when it allows
replication, else of a primary made for the bench with the same binaries (printed). N synthetic
people are imported on the primary (not timed), an officer and a bank partner are added.

In process, through the app (FastAPI TestClient, one thread): a record read
(``GET /api/v1/citizens/{pid}``, current), a search by name and year (``GET /api/v1/citizens``,
bounded) and a verification (``POST /api/v1/verify``, current), each of a random person, each with
its access-log entry on the primary. Floor: the same app without a replica (every read on the
primary), measured in the same run; the ratio is ours / floor per route (latency).

Phases with the replica: ``idle`` (no other writes; floor: ``floor``), ``writes`` (another
process-state writes changes on the primary, about ``--write-rate`` a second: current reads then find
the replica a moment behind and wait up to 20 ms or go to the primary; floor: ``floor+w``, the
primary-only app under the same writes), ``paused`` (replay paused for
``--pause`` seconds while the writes go on: every read must fall back once the lag passes 1 s, and
a death recorded during the pause must be answered ``dead`` by every verification). Printed per
phase: p50/p99 per route, the share served by the replica, the lag gauge's highest value.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent))
from common import OUT, machine, ms, population_file, summary  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--postgres", default=os.environ.get("DINHDANH_TEST_POSTGRES_URL"))
    ap.add_argument("--count", type=int, default=50_000)
    ap.add_argument("--requests", type=int, default=1_000, help="requests per route and phase")
    ap.add_argument("--write-rate", type=float, default=100.0)
    ap.add_argument("--pause", type=float, default=3.0)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    if not args.postgres:
        sys.exit("--postgres URL (or DINHDANH_TEST_POSTGRES_URL) is required")
    import base64

    os.environ.setdefault("DINHDANH_MASTER_KEY", base64.b64encode(b"bench-replica-master-key-32bytes").decode())
    from tests.replica_support import streaming_pair

    print(f"machine: {machine()}")
    with streaming_pair(args.postgres, budget=120) as pair:
        print(f"replica of {pair.whose}; pair ready in {pair.took:.1f} s")
        run(pair, args)


def run(pair, args) -> None:
    import sqlalchemy as sa
    from fastapi.testclient import TestClient

    from dinhdanh.officers.service import add_officer
    from dinhdanh.population.importer import import_population
    from dinhdanh.registry.tables import persons
    from dinhdanh.store.engine import make_engine
    from dinhdanh.web.app import create_app
    from tests.oidc_support import add_partner

    primary = make_engine(pair.primary_url)
    t0 = time.perf_counter()
    import_population(primary, population_file(args.count, args.seed), OUT / "rejects.csv")
    print(f"imported {args.count:,} people in {time.perf_counter() - t0:.1f} s (not timed)")
    with primary.begin() as conn:
        _, officer_token = add_officer(conn, "Cán bộ Bộ Công an", "national", None, roles=["registrar"])
        people = conn.execute(sa.select(persons.c.pid, persons.c.full_name, persons.c.birth_year)
                              .where(persons.c.status == "alive")).all()
    partner = add_partner(primary, kind="bank", fields=("full_name", "date_of_birth", "status"),
                          purposes=["customer_verification"], rate=1_000_000)
    rng = random.Random(args.seed)
    officer = {"Authorization": f"Bearer {officer_token}"}

    def client(replica: bool):
        if replica:
            os.environ["DINHDANH_REPLICA_URL"] = pair.replica_url
        else:
            os.environ.pop("DINHDANH_REPLICA_URL", None)
        app = create_app(primary)
        c = TestClient(app, base_url="https://testserver")
        token = c.post("/token", data={"grant_type": "client_credentials", "scope": "dinhdanh.verify"},
                       auth=(partner["client_id"], partner["client_secret"])).json()["access_token"]
        return app, c, {"Authorization": f"Bearer {token}"}

    def measure(c, bearer, n: int, app=None, sample_lag: list | None = None, times: dict | None = None) -> dict:
        times = {"record": [], "search": [], "verify": []} if times is None else times
        for _ in range(n):
            pid, name, year = rng.choice(people)
            for route in ("record", "search", "verify"):
                t = time.perf_counter()
                if route == "record":
                    r = c.get(f"/api/v1/citizens/{pid}", headers=officer)
                elif route == "search":
                    r = c.get("/api/v1/citizens", params={"name": name, "birth_year": year}, headers=officer)
                else:
                    r = c.post("/api/v1/verify", json={"pid": pid, "full_name": name}, headers=bearer)
                times[route].append(time.perf_counter() - t)
                assert r.status_code == 200, (route, r.status_code, r.text[:200])
            if sample_lag is not None and app is not None:
                lag = app.state.replica_lag()
                if lag is not None:
                    sample_lag.append(lag)
        return {k: summary(v) for k, v in times.items()}

    def line(phase: str, stats: dict, floor: dict | None, served: dict | None, lags: list | None) -> None:
        parts = []
        for route, s in stats.items():
            ratio = f" ({s['p50'] / floor[route]['p50']:.2f}x)" if floor else ""
            parts.append(f"{route} p50 {ms(s['p50'])}{ratio} p99 {ms(s['p99'])}")
        extra = ""
        if served:
            total = served["replica"] + served["primary"]
            extra = f"; replica served {served['replica']}/{total} ({100 * served['replica'] / max(1, total):.0f}%)"
        if lags:
            extra += f"; lag gauge max {max(lags):.3f} s"
        print(f"{phase:>8}: " + "; ".join(parts) + extra)

    stop = threading.Event()

    def writer() -> None:  # another process-state: writes on the primary, not through the app measured
        w = random.Random(args.seed + 1)
        while not stop.is_set():
            pid = w.choice(people)[0]
            with primary.begin() as conn:
                conn.execute(persons.update().where(persons.c.pid == pid).values(other_names="bench"))
            time.sleep(1 / args.write_rate)

    def writing():
        stop.clear()
        thread = threading.Thread(target=writer, daemon=True)
        thread.start()
        return thread

    _, floor_client, floor_bearer = client(replica=False)
    measure(floor_client, floor_bearer, 50)  # warm
    floor = measure(floor_client, floor_bearer, args.requests)
    line("floor", floor, None, None, None)
    thread = writing()
    floor_writes = measure(floor_client, floor_bearer, args.requests)
    stop.set()
    thread.join()
    line("floor+w", floor_writes, None, None, None)

    app, c, bearer = client(replica=True)
    router = app.state.replica
    measure(c, bearer, 50)  # warm
    router.served.update(replica=0, primary=0)
    lags: list[float] = []
    line("idle", measure(c, bearer, args.requests, app, lags), floor, dict(router.served), lags)

    thread = writing()
    try:
        router.served.update(replica=0, primary=0)
        lags = []
        line("writes", measure(c, bearer, args.requests, app, lags), floor_writes, dict(router.served), lags)

        replica = make_engine(pair.replica_url)
        with replica.connect() as conn:
            conn.exec_driver_sql("SELECT pg_wal_replay_pause()")
        victim = people[0][0]
        with primary.begin() as conn:  # a death during the pause (the register's own row, for the bench)
            conn.execute(persons.update().where(persons.c.pid == victim).values(status="dead"))
        router.served.update(replica=0, primary=0)
        lags = []
        deadline = time.monotonic() + args.pause
        stats, times, stale = None, {"record": [], "search": [], "verify": []}, 0
        while time.monotonic() < deadline:
            stats = measure(c, bearer, 20, app, lags, times)
            r = c.post("/api/v1/verify", json={"pid": victim, "full_name": people[0][1]}, headers=bearer)
            stale += r.json().get("status") != "dead"
        line("paused", stats, floor_writes, dict(router.served), lags)
        print(f"  verifications of the person who died during the pause answered 'alive': {stale}")
        with replica.connect() as conn:
            conn.exec_driver_sql("SELECT pg_wal_replay_resume()")
        replica.dispose()
    finally:
        stop.set()
        thread.join()
        router.close()
    primary.dispose()


if __name__ == "__main__":
    main()
