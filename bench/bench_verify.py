"""Partner verification over HTTP on loopback, with the audit write: requests/s on one core and
latency percentiles, as a ratio to a floor served the same way.

    python bench/bench_verify.py --count 100000 --seconds 15

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
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import machine, population_file

HERE = Path(__file__).resolve()
# one issuer for the token server and the measured servers (their ports differ)
ENV = {**os.environ, "PYTHONPATH": str(HERE.parent.parent / "src"), "DINHDANH_OIDC_ISSUER": "https://dinhdanh.bench"}


# ----------------------------------------------------------------------------- servers

def serve_ours(db: str, port: int) -> None:
    import uvicorn

    from dinhdanh.store.engine import make_engine
    from dinhdanh.web.app import create_app

    uvicorn.run(create_app(make_engine(db)), host="127.0.0.1", port=port, log_level="warning",
                access_log=False, loop="uvloop", http="httptools")


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
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
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


def serve_floor(db: str, port: int) -> None:
    import uvicorn

    uvicorn.run(floor_app(db.removeprefix("sqlite:///")), host="127.0.0.1", port=port, log_level="warning",
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"server on port {port} did not start")


def pinned(core: int) -> list[str]:
    return ["taskset", "-c", str(core)] if shutil.which("taskset") and (os.cpu_count() or 1) > 1 else []


def run_load(mode: str, db: str, token: str, bodies: Path, work: Path, seconds: int, connections: int) -> dict:
    port = free_port()
    server = subprocess.Popen([*pinned(0), sys.executable, str(HERE), "--serve", mode, "--db", db, "--port", str(port)],
                              env=ENV)
    try:
        wait_up(port)
        script = work / f"{mode}.lua"
        script.write_text(LUA % {"bodies": bodies, "token": token})
        # a short warm-up (connections, caches, the trust of the token), then the measured run
        subprocess.run([*pinned(1), "wrk", "-t1", f"-c{connections}", "-d2s", "-s", str(script),
                        f"http://127.0.0.1:{port}"], check=True, capture_output=True)
        out = subprocess.run([*pinned(1), "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s",
                              "-s", str(script), f"http://127.0.0.1:{port}"],
                             check=True, capture_output=True, text=True).stdout
    finally:
        server.terminate()
        server.wait(30)
    found = re.search(r"^RESULT (\d+) (\d+) (\d+) ([\d.]+) ([\d.]+) ([\d.]+) ([\d.]+)$", out, re.M)
    if not found:
        raise SystemExit(f"wrk printed no result:\n{out}")
    requests, errors, duration_us = (int(found.group(i)) for i in (1, 2, 3))
    p50, p95, p99, worst = (float(found.group(i)) / 1000 for i in (4, 5, 6, 7))  # microseconds -> ms
    return {"requests": requests, "errors": errors, "rps": requests / (duration_us / 1e6),
            "p50": p50, "p95": p95, "p99": p99, "max": worst}


# ----------------------------------------------------------------------------- setup

def build(count: int, work: Path) -> tuple[str, Path, dict]:
    import datetime as dt

    import numpy as np
    import pyarrow.parquet as pq

    from dinhdanh.exchange import partners
    from dinhdanh.ids import names
    from dinhdanh.population.importer import import_population
    from dinhdanh.store.engine import make_engine, upgrade

    db = f"sqlite:///{work / 'register.sqlite'}"
    engine = make_engine(db)
    upgrade(engine)
    started = time.perf_counter()
    import_population(engine, population_file(count, 7))
    print(f"register: {count:,} people imported in {time.perf_counter() - started:.1f} s (not timed)")
    with engine.begin() as conn:
        made = partners.add_partner(conn, name="Nhà mạng đo tốc độ", kind="telco",
                                    operations=["verify"], fields=["full_name", "date_of_birth", "sex", "status"],
                                    rate_per_minute=partners.MAX_RATE, actor="bench")
        partners.approve_partner(conn, made["client_id"], agreement="BENCH-1", legal_basis="Nghị định 69/2024/NĐ-CP",
                                 expires=dt.date.today() + dt.timedelta(days=365), security_level=3, actor="bench")
    engine.dispose()

    people = pq.read_table(population_file(count, 7), columns=["pid", "full_name", "date_of_birth"]).to_pylist()
    rng = np.random.default_rng(11)
    lines = []
    for i in rng.integers(0, len(people), 20_000):
        p = people[int(i)]
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


def audit_rows(db: str) -> int:
    import sqlite3

    with sqlite3.connect(db.removeprefix("sqlite:///")) as conn:
        return conn.execute("SELECT count(*) FROM access_log WHERE action = 'verify'").fetchone()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=100_000, help="people in the register")
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--serve", choices=("ours", "floor"), help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        (serve_ours if args.serve == "ours" else serve_floor)(args.db, args.port)
        return
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed (apt-get install wrk)")
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory(prefix="bench-verify-") as tmp:
        work = Path(tmp)
        db, bodies, partner = build(args.count, work)
        token = token_for(db, partner)
        before = audit_rows(db)
        ours = run_load("ours", db, token, bodies, work, args.seconds, args.connections)
        written = audit_rows(db) - before
        floor = run_load("floor", db, token, bodies, work, args.seconds, args.connections)
    # every known person's request writes one entry (unknown PIDs are about nobody: 10% of bodies)
    print(f"ours : {ours['rps']:,.0f} requests/s on one core; p50 {ours['p50']:.2f} ms, p95 {ours['p95']:.2f} ms, "
          f"p99 {ours['p99']:.2f} ms, max {ours['max']:.1f} ms; {ours['requests']:,} requests "
          f"({ours['errors']} errors), {written:,} access-log entries written")
    print(f"floor: {floor['rps']:,.0f} requests/s; p50 {floor['p50']:.2f} ms, p99 {floor['p99']:.2f} ms "
          f"({floor['errors']} errors)")
    print(f"ratio (floor / ours): {floor['rps'] / ours['rps']:.2f}")
    print(f"target >= 1,000/s per core: {'met' if ours['rps'] >= 1000 else 'NOT met'}; "
          f"p99 < 25 ms: {'met' if ours['p99'] < 25 else 'NOT met'}")
    if ours["errors"] or written < 0.85 * ours["requests"]:
        raise SystemExit("errors during the run, or fewer audit entries than requests about known people")


if __name__ == "__main__":
    main()
