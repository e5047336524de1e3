"""Filing a pre-filled dossier over HTTP on loopback (issue 12): dossiers/s on one core and latency
percentiles, as a ratio to a floor served the same way.

    python bench/bench_file_dossier.py --people 20000 --seconds 15 --concurrency 16
    python bench/bench_file_dossier.py --service dd.national-exam-registration

Register: a synthetic population of N people (fixed seed) imported into a temporary SQLite register
(not timed); ``--citizens`` adults (300 by default, drawn with a fixed seed among the living adults
with a residence) enrolled in the e-ID (Argon2id passcode), one approved relying party with the
scope ``dinhdanh.dossiers``, and for each citizen an access token got the way the tests get theirs:
a whole login through our provider (authorize, passcode, consent, code exchange at /token), done in
process through httpx's ASGI transport before the measured runs (not timed).

Server: uvicorn (httptools, uvloop), one worker pinned to core 0 (``taskset``), as
``bench_verify.py`` starts it. Load: this process, pinned to core 1, ``--concurrency`` keep-alive
HTTP/1.1 connections driven by a minimal asyncio client (no client library: its parsing would
compete with nothing, but stays small beside the server's). One filing = ``GET
/api/v1/services/1.003677/prefill`` (temporary absence declaration: free, six fields) with the
citizen's bearer token, then ``POST /api/v1/dossiers`` with the values the prefill returned
(dotted paths made a nested form) plus the fields it asks (dates, destination, reason, case),
201 expected. Citizens are taken in turn; a warm-up of 2 s, then ``--seconds`` measured.

``--service dd.national-exam-registration``: the exam season instead (the Ministry's national
registration, free, decided the same day; nine prefilled fields, the school, year, two electives,
venue and priority typed), with the figure "1,000,000 candidates in X h on one core". Until 6
December 2026 its dossier codes were national (``G00-YYMMDD-NNNNNN``: every registration of the day
claimed the same counter row, at most 999,999 a day); from 7 December the catalogue's version names
the provinces' Departments of Education, and each province numbers its own (``G79-...``).

``--postgres URL``: the register in a scratch database on that server (dropped after), the servers
on it, and the floor through psycopg into ``floor_*`` tables made ``LIKE`` the register's.

``--workers N``: ours as ``dinhdanh serve --workers N`` runs it (``web.workers``: uvicorn's
supervisor and N worker processes on one port), on the whole machine, the load beside it, its CPU
the sum of the supervisor's and the workers'; the floor as without it. For "the season on one
machine".

Ours: the real app: bearer token checked twice (signature, expiry, revocation row), the prefill
(register read, card, wallet), the form checked against the catalogue's JSON Schema, routing, fee,
the due date over the working-day calendar, the dossier's code, one dossier row, its ``file``
event and one outbox notice, commit.
Floor ("the same inserts through the bare driver"): a bare ASGI callable on the same uvicorn, raw
``sqlite3`` on the same file with the engine's pragmas (WAL, synchronous=NORMAL, foreign keys):
the GET reads the person row by PID (the token mapped to its PID by a dict: no authentication) and
answers the four applicant fields in the prefill's shape; the POST parses the body, reads the
person row, checks the PID, and in one transaction inserts the same three rows into same-shaped
tables (``floor_dossiers``, ``floor_dossier_events``, ``floor_outbox``: the register's own CREATE
statements and indexes, renamed), commit, 201. No schema check, no catalogue, no calendar.
The ratio is floor filings/s / our filings/s. Each server's CPU time (user + system, from
``/proc``) over the measured run is printed too, per filing: on a shared machine the wall rate
also measures the neighbours' load, the CPU per filing the server alone (1 / it = filings per
CPU-second, what one whole core would file).

Afterwards every acknowledged dossier (201) is looked up by its id and code in the database: a
figure without its rows cannot pass.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import re
import secrets
import sqlite3
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

from bench_verify import BENCH_MASTER_KEY, ENV, serve_ours
from common import (conninfo, drop_database, free_port, hidden_form, machine, percentile, pg_pool, pinned, pkce,
                    population_file, read_body, scratch_database, wait_up)

HERE = Path(__file__).resolve()
ISSUER = ENV["DINHDANH_OIDC_ISSUER"]
SERVICE = "1.003677"  # temporary absence declaration: commune police, free, one working day
EXAM = "dd.national-exam-registration"  # the exam season: the Ministry's, national, free, the same day
REDIRECT = "https://rp.example/cb"
PASSCODE = "135790"
SCOPE = "openid dinhdanh.dossiers"
PREFILL = f"/api/v1/services/{SERVICE}/prefill"
DOSSIERS = "/api/v1/dossiers"
WARMUP = 2.0


# ----------------------------------------------------------------------------- setup



async def _login(client, rp: dict, pid: str) -> str:
    """One whole login in a fresh browser (as bench_oidc's, with our scope): the access token."""
    verifier, challenge = pkce()
    params = {"response_type": "code", "client_id": rp["client_id"], "redirect_uri": REDIRECT, "scope": SCOPE,
              "state": "s", "nonce": secrets.token_urlsafe(12), "code_challenge": challenge,
              "code_challenge_method": "S256", "prompt": "consent"}
    client.cookies.clear()

    async def follow(response):
        while response.status_code in (302, 303) and not response.headers["location"].startswith(REDIRECT):
            response = await client.get(response.headers["location"])
        return response

    response = await follow(await client.get("/authorize?" + urlencode(params)))
    action, fields = hidden_form(response.text)
    response = await follow(await client.post(action, data={**fields, "username": pid, "password": PASSCODE}))
    if response.status_code not in (302, 303):
        action, fields = hidden_form(response.text)
        response = await follow(await client.post(action, data={**fields, "decision": "allow"}))
    code = parse_qs(urlsplit(response.headers["location"]).query)["code"][0]
    token = await client.post("/token", data={"grant_type": "authorization_code", "code": code,
                                              "redirect_uri": REDIRECT, "code_verifier": verifier},
                              auth=(rp["client_id"], rp["client_secret"]))
    assert token.status_code == 200, token.text
    body = token.json()
    assert set(SCOPE.split()) <= set(body["scope"].split()), body["scope"]
    return body["access_token"]


def build(people: int, citizens: int, work: Path, db: str | None = None) -> tuple[str, list[tuple[str, str]]]:
    """The register (``db``, a scratch PostgreSQL database, or SQLite in ``work``); returns its URL
    and (PID, access token) for each citizen."""
    import httpx
    import numpy as np
    import sqlalchemy as sa

    from dinhdanh.eid import auth
    from dinhdanh.oidc import clients
    from dinhdanh.population.importer import import_population
    from dinhdanh.registry.tables import persons
    from dinhdanh.store.engine import make_engine, upgrade
    from dinhdanh.store.vault import for_database
    from dinhdanh.web.app import create_app

    os.environ["DINHDANH_OIDC_ISSUER"] = ISSUER  # the issuer the server processes will have
    db = db or f"sqlite:///{work / 'register.sqlite'}"
    engine = make_engine(db)
    upgrade(engine)
    started = time.perf_counter()
    import_population(engine, population_file(people, 7))
    print(f"register: {people:,} people imported in {time.perf_counter() - started:.1f} s (not timed)", flush=True)
    vault = for_database(db)  # the key file beside the database: the server processes open the same
    started = time.perf_counter()
    with engine.begin() as conn:
        eligible = conn.execute(sa.select(persons.c.pid).where(
            persons.c.status == "alive", persons.c.date_of_birth < dt.date(2006, 1, 1),
            persons.c.province_code.is_not(None)).order_by(persons.c.person_id)).scalars().all()
        rng = np.random.default_rng(12)
        pids = [eligible[int(i)] for i in rng.choice(len(eligible), size=min(citizens, len(eligible)), replace=False)]
        for pid in pids:
            auth.enroll(conn, vault, pid, level=1, passcode=PASSCODE, actor="bench")
        rp = clients.register_client(conn, name="Cổng dịch vụ công đo tốc độ", redirect_uris=[REDIRECT], scopes=SCOPE,
                                     grant_types=["authorization_code", "refresh_token"], actor="bench")
        clients.approve_client(conn, rp["client_id"], agreement="BENCH-12", purpose="benchmark",
                               security_level=3, actor="bench")

    async def logins() -> list[tuple[str, str]]:
        app = create_app(engine)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ISSUER) as client:
            return [(pid, await _login(client, rp, pid)) for pid in pids]

    tokens = asyncio.run(logins())
    engine.dispose()
    print(f"citizens: {len(tokens)} enrolled and logged in through the provider in "
          f"{time.perf_counter() - started:.1f} s (not timed)", flush=True)
    return db, tokens


# ----------------------------------------------------------------------------- floor

def floor_tables(conn: sqlite3.Connection) -> None:
    """floor_dossiers, floor_dossier_events, floor_outbox: the register's CREATE statements and
    indexes for dossiers, dossier_events and outbox, renamed."""
    renames = [(r"\bdossiers\b", "floor_dossiers"), (r"\bdossier_events\b", "floor_dossier_events"),
               (r"\boutbox\b", "floor_outbox"), (r"\bix_", "floor_ix_")]
    rows = conn.execute("SELECT type, sql FROM sqlite_master WHERE tbl_name IN ('dossiers', 'dossier_events', "
                        "'outbox') AND sql IS NOT NULL ORDER BY type DESC").fetchall()  # tables, then indexes
    for _, sql in rows:
        for pattern, name in renames:
            sql = re.sub(pattern, name, sql)
        sql = sql.replace('"floor_dossiers"', "floor_dossiers")
        sql = re.sub(r"^CREATE (TABLE|INDEX) ", r"CREATE \1 IF NOT EXISTS ", sql)
        conn.execute(sql)


async def _answer(send, status: int, body: dict) -> None:
    out = json.dumps(body, ensure_ascii=False).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(out)).encode())]})
    await send({"type": "http.response.body", "body": out})


def _prefilled(row) -> dict:
    """The floor's prefill: the person's (pid, full_name, date_of_birth, sex) in the prefill's shape."""
    fields = [{"field": f"applicant.{k}", "value": str(v), "source": f"register:{k}"}
              for k, v in zip(("pid", "full_name", "date_of_birth", "sex"), row)]
    return {"service": SERVICE, "version": FLOOR[SERVICE][0], "fields": fields, "ask": []}


def floor_app(db_path: str, tokens_file: str):
    conn = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON", "busy_timeout=5000",
                   "cache_size=-65536"):
        conn.execute(f"PRAGMA {pragma}")
    floor_tables(conn)
    who = {f"Bearer {token}".encode(): pid for pid, token in json.loads(Path(tokens_file).read_text())}
    prefix = secrets.token_hex(3).upper()
    counter = [0]

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        headers = dict(scope["headers"])
        pid = who.get(headers.get(b"authorization", b""))
        if pid is None:
            return await _answer(send, 401, {"error": "unauthenticated"})
        if scope["method"] == "GET":
            row = conn.execute("SELECT pid, full_name, date_of_birth, sex FROM persons WHERE pid = ?",
                               (pid,)).fetchone()
            return await _answer(send, 200, _prefilled(row))
        data = json.loads(body)
        row = conn.execute("SELECT person_id, pid, province_code, commune_code FROM persons WHERE pid = ?",
                           (pid,)).fetchone()
        if data["data"]["applicant"]["pid"] != row[1]:
            return await _answer(send, 422, {"error": "applicant_mismatch"})
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None).isoformat(sep=" ")
        due = (dt.date.today() + dt.timedelta(days=1)).isoformat()
        counter[0] += 1
        code = f"F{row[3] or row[2]}-{prefix}{counter[0]:07d}"
        conn.execute("BEGIN")
        dossier_id = conn.execute(
            "INSERT INTO floor_dossiers (code, service_code, version_id, person_id, account_id, place_province, "
            "place_commune, agency_code, agency_level, status, data, fee_amount, due_date, version, created_at, "
            "updated_at) VALUES (?, ?, ?, ?, NULL, ?, ?, ?, ?, 'submitted', ?, 0, ?, 1, ?, ?) "
            "RETURNING dossier_id",
            (code, data["service"], FLOOR[SERVICE][0], row[0], row[2], row[3], FLOOR[SERVICE][1], FLOOR[SERVICE][2],
             json.dumps(data["data"], ensure_ascii=False), due, now, now)).fetchone()[0]
        conn.execute("INSERT INTO floor_dossier_events (dossier_id, seq, from_status, to_status, action, actor, at) "
                     "VALUES (?, 1, NULL, 'submitted', 'file', ?, ?)", (dossier_id, f"citizen:{row[0]}", now))
        conn.execute("INSERT INTO floor_outbox (topic, person_id, payload, created_at) VALUES ('dossiers', ?, ?, ?)",
                     (row[0], json.dumps({"dossier": code, "status": "submitted", "action": "file", "at": now}), now))
        conn.execute("COMMIT")
        return await _answer(send, 201, {"dossier_id": dossier_id, "code": code, "status": "submitted",
                                        "due_date": due, "fee_amount": 0})

    return app


PG_FLOOR_TABLES = ("dossiers", "dossier_events", "outbox")


def floor_app_pg(url: str, tokens_file: str, connections: int = 8):
    """The floor on PostgreSQL: the same reads and the same three inserts as ``floor_app``, through
    psycopg (async, ``connections`` connections), into ``floor_<table>`` made ``LIKE`` the register's
    (columns, defaults, CHECKs and indexes; no foreign keys), one transaction a filing, committed
    (``synchronous_commit`` as the server has it) before the answer."""
    import psycopg

    dsn = conninfo(url)
    with psycopg.connect(dsn, autocommit=True) as conn:
        for table in PG_FLOOR_TABLES:
            conn.execute(f"CREATE TABLE IF NOT EXISTS floor_{table} (LIKE {table} INCLUDING ALL)")
    who = {f"Bearer {token}".encode(): pid for pid, token in json.loads(Path(tokens_file).read_text())}
    prefix = secrets.token_hex(3).upper()
    counter = [0]
    pool = pg_pool(dsn, connections)

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        pid = who.get(dict(scope["headers"]).get(b"authorization", b""))
        if pid is None:
            return await _answer(send, 401, {"error": "unauthenticated"})
        q = await pool()
        conn = await q.get()
        try:
            if scope["method"] == "GET":
                cur = await conn.execute("SELECT pid, full_name, date_of_birth, sex FROM persons WHERE pid = %s",
                                         (pid,))
                row = await cur.fetchone()
                await conn.rollback()
                return await _answer(send, 200, _prefilled(row))
            data = json.loads(body)
            cur = await conn.execute("SELECT person_id, pid, province_code, commune_code FROM persons WHERE pid = %s",
                                     (pid,))
            row = await cur.fetchone()
            if data["data"]["applicant"]["pid"] != row[1]:
                await conn.rollback()
                return await _answer(send, 422, {"error": "applicant_mismatch"})
            now = dt.datetime.now(dt.UTC)
            due = dt.date.today() + dt.timedelta(days=1)
            counter[0] += 1
            code = f"F{row[3] or row[2]}-{prefix}{counter[0]:07d}"
            cur = await conn.execute(
                "INSERT INTO floor_dossiers (code, service_code, version_id, person_id, account_id, place_province, "
                "place_commune, agency_code, agency_level, status, data, fee_amount, due_date, version, created_at, "
                "updated_at) VALUES (%s, %s, %s, %s, NULL, %s, %s, %s, %s, 'submitted', %s, 0, %s, 1, %s, %s) "
                "RETURNING dossier_id",
                (code, data["service"], FLOOR[SERVICE][0], row[0], row[2], row[3], FLOOR[SERVICE][1],
                 FLOOR[SERVICE][2], json.dumps(data["data"], ensure_ascii=False), due, now, now))
            dossier_id = (await cur.fetchone())[0]
            await conn.execute("INSERT INTO floor_dossier_events (dossier_id, seq, from_status, to_status, action, "
                               "actor, at) VALUES (%s, 1, NULL, 'submitted', 'file', %s, %s)",
                               (dossier_id, f"citizen:{row[0]}", now))
            await conn.execute("INSERT INTO floor_outbox (topic, person_id, payload, created_at) "
                               "VALUES ('dossiers', %s, %s, %s)",
                               (row[0], json.dumps({"dossier": code, "status": "submitted", "action": "file",
                                                    "at": now.isoformat()}), now))
            await conn.commit()
        finally:
            q.put_nowait(conn)
        return await _answer(send, 201, {"dossier_id": dossier_id, "code": code, "status": "submitted",
                                        "due_date": due.isoformat(), "fee_amount": 0})

    return app


def serve_floor(db: str, port: int, tokens_file: str) -> None:
    import uvicorn

    app = (floor_app(db.removeprefix("sqlite:///"), tokens_file) if db.startswith("sqlite")
           else floor_app_pg(db, tokens_file))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, loop="uvloop",
                http="httptools")


# ----------------------------------------------------------------------------- load

def nested(fields: list[dict]) -> dict:
    """The prefill's dotted paths as the nested form."""
    form: dict = {}
    for f in fields:
        *parents, leaf = f["field"].split(".")
        node = form
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = f["value"]
    return form


ASKED = {"absent_from": (dt.date.today() + dt.timedelta(days=7)).isoformat(),
         "absent_until": (dt.date.today() + dt.timedelta(days=400)).isoformat(),
         "destination": {"province_code": "79", "commune_code": "26743", "street": "12 Lê Lợi"},
         "reason": "Đi làm việc xa nhà", "case": "long_absence"}
# what each benched service's form asks beyond its prefill (the fields the citizen types)
FORMS = {
    SERVICE: ASKED,
    EXAM: {"school_code": "79012", "graduation_year": dt.date.today().year, "electives": ["physics", "chemistry"],
           "exam_venue_province": "79", "foreign_language_exemption": False, "priority_group": "none",
           "priority_area": "KV3", "for_admission": True},
}
# the floor's constants for each: the version a dossier keeps, the agency and its level
FLOOR = {SERVICE: (f"{SERVICE}@2021-07-01", "cong-an-xa", "commune"), EXAM: (f"{EXAM}@2025-01-01", "bo-gddt", "national")}


def use_service(code: str) -> None:
    """Bench ``code`` (one of ``FORMS``): the prefill's path, the form's asked fields."""
    global SERVICE, PREFILL, ASKED
    SERVICE, PREFILL, ASKED = code, f"/api/v1/services/{code}/prefill", FORMS[code]


class Conn:
    """One keep-alive HTTP/1.1 connection: a request out, one Content-Length response back."""

    def __init__(self, port: int):
        self.port = port

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)

    async def call(self, method: str, path: str, token: str, body: bytes | None = None) -> tuple[int, bytes]:
        head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        self.writer.write(head.encode() + b"\r\n" + (body or b""))
        raw = await self.reader.readuntil(b"\r\n\r\n")
        status = int(raw[9:12])
        length = int(re.search(rb"(?i)\r\ncontent-length: *(\d+)", raw).group(1))
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


async def drive(port: int, tokens: list[tuple[str, str]], concurrency: int, seconds: float) -> dict:
    """``concurrency`` clients filing one dossier after another until the deadline."""
    turn = [0]
    done: list[tuple[int, str, str]] = []  # (dossier_id, code, pid) of every 201
    latencies: list[float] = []
    errors: dict[str, int] = {}
    deadline = time.perf_counter() + seconds

    async def client() -> None:
        conn = Conn(port)
        await conn.open()
        try:
            while time.perf_counter() < deadline:
                pid, token = tokens[turn[0] % len(tokens)]
                turn[0] += 1
                started = time.perf_counter()
                status, body = await conn.call("GET", PREFILL, token)
                if status != 200:
                    errors[f"prefill {status}"] = errors.get(f"prefill {status}", 0) + 1
                    continue
                prefill = json.loads(body)
                data = nested(prefill["fields"])
                for name, value in ASKED.items():
                    data.setdefault(name, value)
                out = json.dumps({"service": SERVICE, "data": data}, ensure_ascii=False).encode()
                status, body = await conn.call("POST", DOSSIERS, token, out)
                if status != 201:
                    errors[f"file {status}"] = errors.get(f"file {status}", 0) + 1
                    if len(errors) == 1 and sum(errors.values()) == 1:
                        print(f"first error: {status} {body[:300]!r}", flush=True)
                    continue
                latencies.append(time.perf_counter() - started)
                filed = json.loads(body)
                done.append((filed["dossier_id"], filed["code"], pid))
        finally:
            conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return {"filed": len(done), "errors": errors, "seconds": elapsed, "rate": len(done) / elapsed,
            "latencies": latencies, "done": done}


def serve_workers(db: str, port: int, workers: int) -> None:
    """Ours as ``dinhdanh serve --workers N`` runs it (``web.workers``: uvicorn's supervisor and N
    worker processes on one port), its log level at WARNING as the one-process server's (no access
    log line a request), the background loops left out as in the one-process server."""
    import uvicorn

    os.environ.update(DINHDANH_DATABASE_URL=db, DINHDANH_OIDC_ISSUER=ISSUER, DINHDANH_LOG_LEVEL="WARNING",
                      DINHDANH_LOG_FORMAT="json")
    uvicorn.run("dinhdanh.web.workers:app", factory=True, workers=workers, host="127.0.0.1", port=port,
                log_level="warning", access_log=False, loop="uvloop", http="httptools")


def run_load(mode: str, db: str, tokens: list[tuple[str, str]], tokens_file: Path, seconds: int,
             concurrency: int, workers: int = 0) -> dict:
    port = free_port()
    if mode == "ours" and workers:  # the whole machine: the workers and the load share its cores
        command = [sys.executable, str(HERE), "--serve", mode, "--db", db, "--port", str(port),
                   "--service", SERVICE, "--workers", str(workers)]
    else:
        command = [*pinned(0), sys.executable, str(HERE), "--serve", mode, "--db", db, "--port",
                   str(port), "--tokens", str(tokens_file), "--service", SERVICE]
    server = subprocess.Popen(command, env=ENV)
    try:
        wait_up(port)
        warm = asyncio.run(drive(port, tokens, concurrency, WARMUP))
        cpu, server_cpu = os.times(), _cpu_seconds(server.pid)
        result = asyncio.run(drive(port, tokens, concurrency, seconds))
        after, server_after = os.times(), _cpu_seconds(server.pid)
        result["client_cpu"] = (after.user - cpu.user + after.system - cpu.system) / result["seconds"]
        result["server_cpu"] = server_after - server_cpu  # its CPU seconds (user + system) over the run
        result["done"] += warm["done"]
        result["warm_errors"] = warm["errors"]
    finally:
        server.terminate()
        server.wait(30)
    return result


def _cpu_seconds(pid: int) -> float:
    """CPU time (user + system) the process and its children alive now have used (a server with
    workers is their supervisor): on a shared, loaded machine the wall rate also measures the
    neighbours; CPU per filing measures the server alone."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if stat.parent.name == str(pid) or fields[1] == str(pid):  # fields[1]: the parent's pid
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def check_rows(db: str, mode: str, done: list[tuple[int, str, str]]) -> int:
    """How many acknowledged dossiers are missing from the database (id, code and applicant's PID)."""
    table = "dossiers" if mode == "ours" else "floor_dossiers"
    query = f"SELECT d.dossier_id, d.code, p.pid FROM {table} d JOIN persons p ON p.person_id = d.person_id"
    if db.startswith("sqlite"):
        with sqlite3.connect(db.removeprefix("sqlite:///")) as conn:
            held = {r[0]: (r[1], r[2]) for r in conn.execute(query)}
    else:
        import psycopg

        with psycopg.connect(conninfo(db)) as conn:
            held = {r[0]: (r[1], r[2]) for r in conn.execute(query)}
    return sum(1 for dossier_id, code, pid in done if held.get(dossier_id) != (code, pid))


def _per_filing(r: dict) -> float:
    """The server's CPU seconds per acknowledged filing over the measured run."""
    return r["server_cpu"] / r["filed"] if r["filed"] else float("inf")


@contextmanager
def _dropped(url: str | None):
    """A scratch PostgreSQL database on ``url``'s server (its URL), dropped at the end; None for SQLite."""
    if url is None:
        yield None
        return
    db, name = scratch_database(url, "bench_file_dossier")
    try:
        yield db
    finally:
        drop_database(url, name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=20_000, help="people in the register")
    parser.add_argument("--citizens", type=int, default=300, help="citizens logged in who file (taken in turn)")
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent clients (keep-alive connections)")
    parser.add_argument("--service", choices=tuple(FORMS), default=SERVICE,
                        help=f"the service filed: {SERVICE} (temporary absence, commune police) or {EXAM} (the "
                             "exam season: the Ministry's national registration)")
    parser.add_argument("--postgres", metavar="URL",
                        help="the register in a scratch database on this PostgreSQL server (dropped after), the "
                             "floor through psycopg; SQLite by default")
    parser.add_argument("--workers", type=int, default=0,
                        help="ours as `serve --workers N` on the whole machine (its cores shared with the load), "
                             "instead of one process on core 0")
    parser.add_argument("--serve", choices=("ours", "floor"), help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--tokens", help=argparse.SUPPRESS)
    args = parser.parse_args()
    use_service(args.service)
    if args.serve:
        if args.serve == "ours" and args.workers:
            serve_workers(args.db, args.port, args.workers)
        elif args.serve == "ours":
            serve_ours(args.db, args.port)
        else:
            serve_floor(args.db, args.port, args.tokens)
        return
    print(f"machine: {machine()}")
    print(f"service: {SERVICE}")
    if args.workers:
        print(f"ours: `serve --workers {args.workers}` on the whole machine ({os.cpu_count()} cores), the load beside it")
    results = {}
    scratch = None
    if args.postgres:
        os.environ.setdefault("DINHDANH_MASTER_KEY", BENCH_MASTER_KEY)  # the vault's key, the servers' too
        ENV.setdefault("DINHDANH_MASTER_KEY", os.environ["DINHDANH_MASTER_KEY"])
    with tempfile.TemporaryDirectory(prefix="bench-file-dossier-") as tmp, _dropped(args.postgres) as scratch:
        work = Path(tmp)
        db, tokens = build(args.people, args.citizens, work, scratch)
        print(f"back-end: {'PostgreSQL' if scratch else 'SQLite'}")
        tokens_file = work / "tokens.json"
        tokens_file.write_text(json.dumps(tokens))
        for mode in ("ours", "floor"):
            if pinned(1):  # the load on the other core (the servers are pinned to core 0), but beside
                # ``--workers``, which have the whole machine
                os.sched_setaffinity(0, set(range(os.cpu_count() or 1)) if mode == "ours" and args.workers else {1})
            r = run_load(mode, db, tokens, tokens_file, args.seconds, args.concurrency, args.workers)
            r["missing"] = check_rows(db, mode, r["done"])
            results[mode] = r
            lat = r["latencies"] or [float("nan")]
            print(f"{mode}: {r['rate']:,.0f} filings/s (prefill + submit); p50 {percentile(lat, 50) * 1000:.1f} ms, "
                  f"p95 {percentile(lat, 95) * 1000:.1f} ms, p99 {percentile(lat, 99) * 1000:.1f} ms; "
                  f"{r['filed']:,} filed (201), errors {r['errors'] or 0}, warm-up errors {r['warm_errors'] or 0}; "
                  f"{len(r['done']) - r['missing']:,} of {len(r['done']):,} acknowledged in the database "
                  f"(warm-up included); load client {r['client_cpu'] * 100:.0f}% of its core; server CPU "
                  f"{r['server_cpu'] / r['seconds'] * 100:.0f}% of its core, {_per_filing(r) * 1000:.2f} ms a filing "
                  f"(= {1 / _per_filing(r):,.0f} filings per CPU-second)", flush=True)
    o, f = results["ours"], results["floor"]
    print()
    print("| concurrency | ours filings/s | p50 | p95 | p99 | floor filings/s | floor p50 | floor p99 | floor / ours |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    ol, fl = o["latencies"] or [float("nan")], f["latencies"] or [float("nan")]
    print(f"| {args.concurrency} | {o['rate']:,.0f} | {percentile(ol, 50) * 1000:.1f} ms | "
          f"{percentile(ol, 95) * 1000:.1f} ms | {percentile(ol, 99) * 1000:.1f} ms | {f['rate']:,.0f} | "
          f"{percentile(fl, 50) * 1000:.1f} ms | {percentile(fl, 99) * 1000:.1f} ms | "
          f"{f['rate'] / o['rate'] if o['rate'] else float('inf'):.2f} |")
    print(f"ratio = floor_rate / dossier_rate = {f['rate']:,.0f} / {o['rate']:,.0f} = "
          f"{f['rate'] / o['rate'] if o['rate'] else float('inf'):.2f}")
    print(f"server CPU a filing: ours {_per_filing(o) * 1000:.2f} ms, floor {_per_filing(f) * 1000:.2f} ms, ratio "
          f"{_per_filing(o) / _per_filing(f):.2f} (per CPU-second: {1 / _per_filing(o):,.0f} and {1 / _per_filing(f):,.0f})")
    if not args.workers:
        print(f"target >= 300 dossiers/s per core: {'met' if o['rate'] >= 300 else 'NOT met'}; "
              f"1 million filings at this rate: {1_000_000 / o['rate'] / 3600 if o['rate'] else float('inf'):.2f} h "
              f"on one core")
    where = f"on this machine ({args.workers} workers, {os.cpu_count()} cores)" if args.workers else "on one core"
    if SERVICE == EXAM:
        print(f"exam season: 1,000,000 candidates in {1_000_000 / o['rate'] / 3600 if o['rate'] else float('inf'):.2f} h "
              f"{where} ({o['rate']:,.0f} registrations/s, prefill + submit)")
    bad = [m for m, r in results.items() if r["errors"] or r["warm_errors"] or r["missing"] or not r["filed"]]
    if bad:
        raise SystemExit(f"errors during the run, or acknowledged dossiers missing from the database: {bad}")


if __name__ == "__main__":
    main()
