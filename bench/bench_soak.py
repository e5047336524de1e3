"""Load and soak (issue 13): ``dinhdanh serve --workers 2`` on PostgreSQL driven by a realistic mix
for ten minutes: zero errors, p99 per route, memory flat, every acknowledged write in the database.

    python bench/bench_soak.py                                  # 100,000 people, 600 s
    python bench/bench_soak.py --people 10000 --seconds 30      # while developing

Register (not timed): a scratch database ``bench_soak_<random>`` on ``--postgres``'s server (made
here, dropped at the end; ``--keep`` keeps it), ``--people`` synthetic people imported with
``dinhdanh.population`` (seed 7, cached under bench/out/), the national PKI and chip cards for the
level-2 citizens, ``--citizens`` adults enrolled in the e-ID at level 1 and ``--level2`` at level 2
(TOTP), one relying party (``openid profile dinhdanh.me dinhdanh.dossiers``), one approved partner
allowed to verify (rate limit at its maximum) and ``--officers`` national officers (registrar)
with their machine tokens.

Server: ``python -m dinhdanh serve --workers 2`` as a subprocess on a free loopback port, as an
operator runs it: uvicorn's supervisor, two worker processes, the background loops (scheduler,
access-log sequencer, outbox) once in the parent; rate limits in Redis (``DINHDANH_REDIS_URL``,
``--redis``); logs at INFO (one JSON line a request) to a file, scanned for errors afterwards.

Load: this process, one asyncio loop, ``--concurrency`` virtual users in a closed loop (no think
time: the server is kept saturated, the hardest soak), each on its own keep-alive HTTP/1.1
connection spoken by a minimal client (below; no client library: httpx would spend several times
this client's CPU, and the machine has two cores for everything). Nothing is pinned: the two
workers, the parent, PostgreSQL, Redis and this load generator share the machine's two cores (and
with whatever else runs on it). Each user draws its next action from MIX:

    partner verification (POST /api/v1/verify; 80% exact, 10% wrong date, 10% unknown PID)  35
    officer reads a record (GET /api/v1/citizens/{pid})                                       20
    officer searches (GET /api/v1/citizens?name=&birth_year=)                                  8
    officer reads a history (GET /api/v1/citizens/{pid}/history)                               4
    citizen reads /api/v1/me                                                                  12
    citizen reads who read their data (GET /api/v1/me/access-log)                              4
    citizen files a dossier (GET prefill + POST /api/v1/dossiers, temporary absence)           14
    citizen logs in through the provider (authorize -> passcode [-> TOTP] -> consent if asked
      -> code exchange with PKCE at /token; 1 in 3 at level 2 with a TOTP code)                 3

Citizens use the access token of their latest login (10-minute tokens: one older than 9 minutes
is not used, a login comes first); the partner renews its client-credentials token every 8
minutes (``POST /token`` counted as its own route). Expected answers are 2xx only, checked for
content (the record of the PID asked, the verification's found/match as the body sent implies,
the dossier's code); anything else, and any connection error or timeout (10 s), is an error.

Floor: the same mix one action at a time (one user) for ``--single-seconds`` on the same server
in the same run, just before the soak: what each route costs with no queueing. The ratios are
soak p99 / floor p99 per route and soak throughput / floor throughput.

Memory: VmRSS (``/proc/PID/status``) of the parent and each worker after warm-up and the floor,
every 30 s during the soak, and at its end. Afterwards: every dossier acknowledged (201) is looked
up by id, code and applicant; the access log's entries written during the runs are counted per
action against the acknowledged requests that write one; the sequencer is given 60 s to leave no
entry without its leaf.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import datetime as dt
import json
import os
import random
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

from bench_file_dossier import ASKED, SERVICE, nested
from bench_verify import BENCH_MASTER_KEY
from common import (conninfo, drop_database, free_port, hidden_form, machine, percentile, pkce, population_file,
                    scratch_database)

HERE = Path(__file__).resolve()
ROOT = HERE.parent.parent
PASSCODE = "135790"
REDIRECT = "https://rp.example/cb"
SCOPE = "openid profile dinhdanh.me dinhdanh.dossiers"
TIMEOUT = 10.0
TOKEN_USE = 9 * 60  # a citizen's access token (10 minutes) is used for 9
PARTNER_RENEW = 8 * 60
MIX = {"verify": 35, "officer_read": 20, "officer_search": 8, "officer_history": 4, "me": 12,
       "me_access_log": 4, "file_dossier": 14, "login": 3}
LEVEL2_SHARE = 1 / 3
PREFILL = f"/api/v1/services/{SERVICE}/prefill"


# ----------------------------------------------------------------------------- the HTTP client

class Closed(Exception):
    """The server closed the connection (or never answered)."""


class Conn:
    """One keep-alive HTTP/1.1 connection to the server: a request out, its response back
    (Content-Length or chunked). Reopened when the server asked to close, or after an error."""

    def __init__(self, port: int):
        self.port = port
        self.reader = self.writer = None
        self.last = 0.0

    async def _open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def request(self, method: str, target: str, headers: dict | None = None,
                      body: bytes | None = None) -> tuple[int, dict, bytes]:
        # an idle connection the server may be closing (uvicorn: 5 s keep-alive): a fresh one
        if self.writer is None or time.monotonic() - self.last > 4.0:
            self.close()
            await self._open()
        head = f"{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
        for name, value in (headers or {}).items():
            head += f"{name}: {value}\r\n"
        if body is not None:
            head += f"Content-Length: {len(body)}\r\n"
        try:
            self.writer.write(head.encode() + b"\r\n" + (body or b""))
            raw = await self.reader.readuntil(b"\r\n\r\n")
            status = int(raw[9:12])
            answer: dict[str, list[str]] = {}
            for line in raw.decode("latin-1").split("\r\n")[1:]:
                if ":" in line:
                    name, value = line.split(":", 1)
                    answer.setdefault(name.strip().lower(), []).append(value.strip())
            if "content-length" in answer:
                data = await self.reader.readexactly(int(answer["content-length"][0]))
            elif answer.get("transfer-encoding", [""])[0].lower() == "chunked":
                data = b""
                while True:
                    size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                    data += await self.reader.readexactly(size + 2)
                    if size == 0:
                        break
                    data = data[:-2]
            else:
                data = b""
        except (asyncio.IncompleteReadError, ConnectionError, ValueError) as exc:
            self.close()
            raise Closed(f"{type(exc).__name__}: {exc}") from exc
        if answer.get("connection", [""])[0].lower() == "close":
            self.close()
        self.last = time.monotonic()
        return status, answer, data


# ----------------------------------------------------------------------------- what is measured

@dataclass
class Stats:
    """Latencies, errors and acknowledged writes of one run, per route."""

    latencies: dict = field(default_factory=lambda: collections.defaultdict(list))
    errors: dict = field(default_factory=lambda: collections.defaultdict(collections.Counter))
    examples: list = field(default_factory=list)
    dossiers: list = field(default_factory=list)  # (dossier_id, code, pid) of every 201
    logged: collections.Counter = field(default_factory=collections.Counter)  # access-log entries owed, by action

    def ok(self, route: str, seconds: float) -> None:
        self.latencies[route].append(seconds)

    def error(self, route: str, seconds: float, why: str, detail: str = "") -> None:
        self.latencies[route].append(seconds)
        self.errors[route][why] += 1
        if len(self.examples) < 20:
            self.examples.append(f"{route}: {why} {detail[:300]}")

    def total_errors(self) -> int:
        return sum(sum(c.values()) for c in self.errors.values())


class Failed(Exception):
    """An answer that is not the expected one: the action stops there (already counted)."""


@dataclass
class Citizen:
    pid: str
    level: int
    totp: str | None = None  # the TOTP secret of a level-2 account
    token: str | None = None
    at: float = 0.0  # when the token was got (monotonic)
    last_step: int = -1  # the last TOTP time step used (the provider refuses a code twice)


class Load:
    """The mix's actions, each one or more requests, each checked."""

    def __init__(self, port: int, setup: dict):
        self.port = port
        self.setup = setup
        self.people = setup["people"]
        self.officers = [{"Authorization": f"Bearer {t}"} for t in setup["officer_tokens"]]
        self.citizens = [Citizen(pid, 1) for pid in setup["level1"]] + \
                        [Citizen(pid, 2, secret) for pid, secret in setup["level2"]]
        self.rp = setup["rp"]
        self.partner = setup["partner"]
        self.partner_token: str | None = None
        self.partner_at = 0.0
        self.partner_lock = asyncio.Lock()
        self.busy: set[str] = set()  # citizens whose login is under way

    # ------------------------------------------------------------------ the steps

    async def call(self, stats: Stats, conn: Conn, route: str, method: str, target: str,
                   headers: dict | None = None, body: bytes | None = None,
                   expect: tuple[int, ...] = (200,)) -> tuple[int, dict, bytes]:
        started = time.perf_counter()
        try:
            status, answer, data = await asyncio.wait_for(conn.request(method, target, headers, body), TIMEOUT)
        except asyncio.TimeoutError:
            conn.close()
            stats.error(route, time.perf_counter() - started, "timeout")
            raise Failed
        except (Closed, OSError) as exc:
            conn.close()
            stats.error(route, time.perf_counter() - started, "connection", str(exc))
            raise Failed
        elapsed = time.perf_counter() - started
        if status not in expect:
            stats.error(route, elapsed, f"HTTP {status}", data.decode("utf-8", "replace"))
            raise Failed
        stats.ok(route, elapsed)
        return status, answer, data

    def wrong(self, stats: Stats, route: str, why: str) -> None:
        """An expected status with a wrong body: moved from the route's successes to its errors."""
        stats.errors[route][why] += 1
        if len(stats.examples) < 20:
            stats.examples.append(f"{route}: {why}")
        raise Failed

    async def partner_headers(self, stats: Stats, conn: Conn) -> dict:
        async with self.partner_lock:
            if self.partner_token is None or time.monotonic() - self.partner_at > PARTNER_RENEW:
                form = urlencode({"grant_type": "client_credentials", "scope": "dinhdanh.verify"}).encode()
                _, _, data = await self.call(stats, conn, "POST /token (client credentials)", "POST", "/token",
                                             {"Content-Type": "application/x-www-form-urlencoded",
                                              "Authorization": basic(self.partner)}, form)
                self.partner_token, self.partner_at = json.loads(data)["access_token"], time.monotonic()
        return {"Authorization": f"Bearer {self.partner_token}", "Content-Type": "application/json"}

    async def verify(self, stats: Stats, conn: Conn, rng: random.Random) -> None:
        person = rng.choice(self.people)
        body = {"pid": person[0], "full_name": person[1], "date_of_birth": person[2]}
        kind = rng.random()
        if kind < 0.10:
            body["date_of_birth"] = (dt.date.fromisoformat(person[2]) + dt.timedelta(days=1)).isoformat()
        elif kind < 0.20:
            body["pid"] = "999" + person[0][3:]  # no province 999: nobody's
        headers = await self.partner_headers(stats, conn)
        route = "POST /api/v1/verify"
        _, _, data = await self.call(stats, conn, route, "POST", "/api/v1/verify", headers,
                                     json.dumps(body, ensure_ascii=False).encode())
        got = json.loads(data)
        expected = (False, False) if kind >= 0.10 and kind < 0.20 else (True, kind >= 0.20)
        if (got.get("found"), got.get("match")) != expected:
            self.wrong(stats, route, f"found/match {got.get('found')}/{got.get('match')}, expected {expected}")
        if got["found"]:
            stats.logged["verify"] += 1

    async def officer_read(self, stats: Stats, conn: Conn, rng: random.Random) -> None:
        person = rng.choice(self.people)
        route = "GET /api/v1/citizens/{pid}"
        _, _, data = await self.call(stats, conn, route, "GET", f"/api/v1/citizens/{person[0]}", rng.choice(self.officers))
        if json.loads(data).get("pid") != person[0]:
            self.wrong(stats, route, "another person's record")
        stats.logged["read"] += 1

    async def officer_history(self, stats: Stats, conn: Conn, rng: random.Random) -> None:
        person = rng.choice(self.people)
        await self.call(stats, conn, "GET /api/v1/citizens/{pid}/history", "GET",
                        f"/api/v1/citizens/{person[0]}/history", rng.choice(self.officers))
        stats.logged["history"] += 1

    async def officer_search(self, stats: Stats, conn: Conn, rng: random.Random) -> None:
        person = rng.choice(self.people)
        query = urlencode({"name": " ".join(person[1].split()[:2]), "birth_year": person[2][:4]})
        route = "GET /api/v1/citizens?name=&birth_year="
        _, _, data = await self.call(stats, conn, route, "GET", f"/api/v1/citizens?{query}", rng.choice(self.officers))
        found = json.loads(data)
        if not isinstance(found, list):
            found = found.get("results", found.get("items", []))
        stats.logged["search"] += 1
        stats.logged["search results"] += len(found)

    async def citizen(self, stats: Stats, conn: Conn, rng: random.Random) -> Citizen:
        """A citizen with a usable token (one logs in first when the one drawn has none)."""
        who = rng.choice(self.citizens)
        if who.token is None or time.monotonic() - who.at > TOKEN_USE:
            if who.pid in self.busy or (who.level == 2 and not self._totp_free(who)):
                who = self._next_login(rng, level2=False)
            await self.login(stats, conn, rng, who)
        return who

    async def me(self, stats: Stats, conn: Conn, rng: random.Random) -> None:
        who = await self.citizen(stats, conn, rng)
        await self.call(stats, conn, "GET /api/v1/me", "GET", "/api/v1/me", {"Authorization": f"Bearer {who.token}"})

    async def me_access_log(self, stats: Stats, conn: Conn, rng: random.Random) -> None:
        who = await self.citizen(stats, conn, rng)
        await self.call(stats, conn, "GET /api/v1/me/access-log", "GET", "/api/v1/me/access-log?limit=20",
                        {"Authorization": f"Bearer {who.token}"})

    async def file_dossier(self, stats: Stats, conn: Conn, rng: random.Random) -> None:
        who = await self.citizen(stats, conn, rng)
        auth = {"Authorization": f"Bearer {who.token}"}
        started = time.perf_counter()
        _, _, data = await self.call(stats, conn, "GET /api/v1/services/{code}/prefill", "GET", PREFILL, auth)
        form = nested(json.loads(data)["fields"])
        for name, value in ASKED.items():
            form.setdefault(name, value)
        body = json.dumps({"service": SERVICE, "data": form}, ensure_ascii=False).encode()
        route = "POST /api/v1/dossiers"
        _, _, data = await self.call(stats, conn, route, "POST", "/api/v1/dossiers",
                                     {**auth, "Content-Type": "application/json"}, body, expect=(201,))
        filed = json.loads(data)
        if not filed.get("code") or not filed.get("dossier_id"):
            self.wrong(stats, route, f"no code: {filed}")
        stats.dossiers.append((filed["dossier_id"], filed["code"], who.pid))
        stats.ok("flow: file a dossier (prefill + submit)", time.perf_counter() - started)

    async def login(self, stats: Stats, conn: Conn, rng: random.Random, who: Citizen | None = None) -> None:
        """A whole login in a fresh browser (its own cookies), as the tests do it."""
        if who is None:
            who = self._next_login(rng)
        self.busy.add(who.pid)
        try:
            await self._login(stats, conn, who)
        finally:
            self.busy.discard(who.pid)

    @staticmethod
    def _totp_free(who: Citizen) -> bool:
        """A level-2 account's TOTP code of this 30-s step is still unused (the provider takes each once)."""
        return who.last_step < int(time.time()) // 30

    def _next_login(self, rng: random.Random, level2: bool | None = None) -> Citizen:
        """Who logs in next: 1 in 3 at level 2 (among the accounts whose code of this step is unused)."""
        if level2 is None:
            level2 = rng.random() < LEVEL2_SHARE
        if level2:
            free = [c for c in self.citizens if c.level == 2 and self._totp_free(c) and c.pid not in self.busy]
            if free:
                return rng.choice(free)
        return rng.choice([c for c in self.citizens if c.level == 1 and c.pid not in self.busy])

    async def _login(self, stats: Stats, conn: Conn, who: Citizen) -> None:
        import pyotp

        started = time.perf_counter()
        cookies: dict[str, str] = {}
        verifier, challenge = pkce()
        params = {"response_type": "code", "client_id": self.rp["client_id"], "redirect_uri": REDIRECT,
                  "scope": SCOPE, "state": secrets.token_urlsafe(8), "nonce": secrets.token_urlsafe(12),
                  "code_challenge": challenge, "code_challenge_method": "S256"}
        if who.level == 2:
            params["acr_values"] = "urn:dinhdanh:level2"

        async def browse(route: str, method: str, target: str, form: dict | None = None) -> tuple[int, dict, bytes]:
            headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())} if cookies else {}
            body = None
            if form is not None:
                headers["Content-Type"] = "application/x-www-form-urlencoded"
                body = urlencode(form).encode()
            answer = await self.call(stats, conn, route, method, target, headers, body, expect=(200, 302, 303))
            for line in answer[1].get("set-cookie", []):
                name, _, rest = line.partition("=")
                value = rest.split(";", 1)[0]
                if value and "max-age=0" not in line.lower():
                    cookies[name] = value
                else:
                    cookies.pop(name, None)
            return answer

        async def follow(answer) -> tuple[str | None, str]:
            """Redirects within the provider; (the RP's redirect URL or None, the last page)."""
            for _ in range(10):
                status, headers, data = answer
                if status not in (302, 303):
                    return None, data.decode("utf-8", "replace")
                location = headers["location"][0]
                if location.startswith(REDIRECT):
                    return location, ""
                target = provider_path(location)
                answer = await browse(f"GET {urlsplit(target).path}", "GET", target)
            self.wrong(stats, "login", "too many redirects")

        location, page = await follow(await browse("GET /authorize", "GET", "/authorize?" + urlencode(params)))
        steps = 0
        while location is None and steps < 4:
            steps += 1
            action, fields = hidden_form(page)
            path = urlsplit(action).path
            if path == "/login":
                fields.update(username=who.pid, password=PASSCODE)
            elif path == "/login/step-up":
                step = int(time.time()) // 30
                fields["totp"] = pyotp.TOTP(who.totp).at(step * 30)
                who.last_step = step
            elif path == "/consent":
                fields["decision"] = "allow"
            else:
                self.wrong(stats, "login", f"unexpected form {path}")
            location, page = await follow(await browse(f"POST {path}", "POST", provider_path(action), fields))
        if location is None:
            self.wrong(stats, f"POST {path}", f"still on a page: {re.sub(r'<[^>]+>', ' ', page)[:300]!r}")
        query = parse_qs(urlsplit(location).query)
        if "code" not in query:
            self.wrong(stats, "GET /authorize", f"no code: {query}")
        form = urlencode({"grant_type": "authorization_code", "code": query["code"][0], "redirect_uri": REDIRECT,
                          "code_verifier": verifier}).encode()
        _, _, data = await self.call(stats, conn, "POST /token (authorization code)", "POST", "/token",
                                     {"Content-Type": "application/x-www-form-urlencoded",
                                      "Authorization": basic(self.rp)}, form)
        tokens = json.loads(data)
        who.token, who.at = tokens["access_token"], time.monotonic()
        stats.ok(f"flow: login, level {who.level}", time.perf_counter() - started)

    # ------------------------------------------------------------------ the run

    async def run(self, users: int, seconds: float, seed: int) -> tuple[Stats, float]:
        stats = Stats()
        kinds, weights = zip(*MIX.items())
        deadline = time.monotonic() + seconds

        async def user(n: int) -> None:
            rng = random.Random(seed * 1000 + n)
            conn = Conn(self.port)
            try:
                while time.monotonic() < deadline:
                    action = getattr(self, rng.choices(kinds, weights)[0])
                    try:
                        await action(stats, conn, rng)
                    except Failed:
                        pass
            finally:
                conn.close()

        started = time.monotonic()
        await asyncio.gather(*(user(n) for n in range(users)))
        return stats, time.monotonic() - started


def basic(client: dict) -> str:
    import base64

    return "Basic " + base64.b64encode(f"{client['client_id']}:{client['client_secret']}".encode()).decode()


def provider_path(location: str) -> str:
    """A provider URL (absolute, on the issuer, or relative) as a request target."""
    parts = urlsplit(location)
    return parts.path + (f"?{parts.query}" if parts.query else "")


# ----------------------------------------------------------------------------- the register

def build(db: str, people: int, level1: int, level2: int, officers: int) -> dict:
    """The register and everyone's credentials (not timed)."""
    import numpy as np
    import sqlalchemy as sa

    from dinhdanh.cards import batch, pki
    from dinhdanh.eid import auth
    from dinhdanh.exchange import partners
    from dinhdanh.oidc import clients
    from dinhdanh.officers.service import add_officer
    from dinhdanh.population.importer import import_population
    from dinhdanh.registry.events import Actor
    from dinhdanh.registry.tables import persons
    from dinhdanh.store.engine import make_engine, upgrade
    from dinhdanh.store.vault import for_database

    engine = make_engine(db)
    upgrade(engine)
    started = time.perf_counter()
    report = import_population(engine, population_file(people, 7))
    print(f"register: {report.loaded:,} people imported in {time.perf_counter() - started:.1f} s (not timed)",
          flush=True)
    started = time.perf_counter()
    vault = for_database(db)
    adult = dt.date.today() - dt.timedelta(days=365 * 20)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(persons.c.pid, persons.c.full_name, persons.c.date_of_birth,
                                      persons.c.commune_code)
                            .where(persons.c.status == "alive").order_by(persons.c.person_id)).all()
    everyone = [(r.pid, r.full_name, r.date_of_birth.isoformat()) for r in rows]
    eligible = [r.pid for r in rows if r.date_of_birth < adult and r.commune_code is not None]
    rng = np.random.default_rng(13)
    chosen = [eligible[int(i)] for i in rng.choice(len(eligible), size=level1 + level2, replace=False)]
    ones, twos = chosen[:level1], chosen[level1:]
    setup: dict = {"people": everyone, "level1": ones, "level2": []}
    with engine.begin() as conn:
        pki.init_pki(conn, vault)
        batch.issue_first_cards(conn, vault, Actor("bench"), twos)  # level 2 needs a current chip card
        for pid in ones:
            auth.enroll(conn, vault, pid, level=1, passcode=PASSCODE, actor="bench")
        for pid in twos:
            uri = auth.enroll(conn, vault, pid, level=2, passcode=PASSCODE, actor="bench")["totp_uri"]
            setup["level2"].append((pid, parse_qs(urlsplit(uri).query)["secret"][0]))
        setup["rp"] = clients.register_client(conn, name="Cổng dịch vụ công (đo tải)", redirect_uris=[REDIRECT],
                                              scopes=SCOPE, grant_types=["authorization_code", "refresh_token"],
                                              actor="bench")
        clients.approve_client(conn, setup["rp"]["client_id"], agreement="BENCH-13", purpose="benchmark",
                               security_level=3, actor="bench")
        setup["partner"] = partners.add_partner(conn, name="Ngân hàng đo tải", kind="bank", operations=["verify"],
                                                fields=["full_name", "date_of_birth"],
                                                rate_per_minute=partners.MAX_RATE, actor="bench")
        partners.approve_partner(conn, setup["partner"]["client_id"], agreement="BENCH-13",
                                 legal_basis="Nghị định 69/2024/NĐ-CP",
                                 expires=dt.date.today() + dt.timedelta(days=365), security_level=3, actor="bench")
        setup["officer_tokens"] = [add_officer(conn, f"Cán bộ đo tải {i}", "national", None,
                                               roles=["registrar"])[1] for i in range(officers)]
        conn.execute(sa.text("ANALYZE"))
    engine.dispose()
    print(f"e-ID: {level1} citizens at level 1, {level2} at level 2 (chip card, TOTP); {officers} officers; "
          f"a relying party and a partner; in {time.perf_counter() - started:.1f} s (not timed)", flush=True)
    return setup


# ----------------------------------------------------------------------------- the server

def children(parent: int) -> dict[int, str]:
    """The server's processes below the parent: uvicorn's workers (multiprocessing spawn) and any other."""
    found = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (proc / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == parent:
            found[int(proc.name)] = ("worker" if b"spawn_main" in cmdline else
                                     "resource tracker" if b"resource_tracker" in cmdline else
                                     cmdline.replace(b"\0", b" ").decode(errors="replace")[:60])
    return found


def rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Server:
    """``python -m dinhdanh serve --workers N`` in a subprocess, its log in a file."""

    def __init__(self, db: str, work: Path, workers: int, redis: str | None):
        self.port = free_port()
        self.workers = workers
        self.log = work / "serve.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("DINHDANH_")}
        env.update(PYTHONPATH=str(ROOT / "src"), DINHDANH_MASTER_KEY=os.environ["DINHDANH_MASTER_KEY"],
                   DINHDANH_HOME=str(work), PYTHONIOENCODING="utf-8")
        if redis:
            env["DINHDANH_REDIS_URL"] = redis
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "dinhdanh", "serve", "--workers", str(workers),
                                          "--db", db, "--port", str(self.port), "--log-format", "json"],
                                         env=env, cwd=work, stdout=out, stderr=subprocess.STDOUT)

    def wait_up(self, timeout: float = 120.0) -> None:
        import urllib.request

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"serve exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2) as r:
                    if r.status == 200 and len(self.worker_pids()) == self.workers:
                        return
            except OSError:
                pass
            time.sleep(0.3)
        raise SystemExit(f"serve did not start:\n{self.tail()}")

    def worker_pids(self) -> list[int]:
        return sorted(pid for pid, kind in children(self.proc.pid).items() if kind == "worker")

    def processes(self) -> dict[int, str]:
        return {self.proc.pid: "parent", **children(self.proc.pid)}

    def rss(self) -> dict[int, float]:
        return {pid: rss_mib(pid) or 0.0 for pid in self.processes()}

    def cpu(self) -> float:
        return sum(cpu_seconds(pid) for pid in self.processes())

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def log_problems(self) -> tuple[collections.Counter, list[str]]:
        """Log lines at WARNING or above (and anything that is not a JSON line, e.g. a traceback)."""
        levels: collections.Counter = collections.Counter()
        examples = []
        for line in self.log.read_text(errors="replace").splitlines():
            try:
                level = json.loads(line).get("level", "?")
            except ValueError:
                level = "not JSON"
            if level in ("INFO", "DEBUG"):
                continue
            levels[level] += 1
            if len(examples) < 8:
                examples.append(line[:400])
        return levels, examples


# ----------------------------------------------------------------------------- checks after the run

def access_log_counts(db: str) -> collections.Counter:
    import psycopg

    with psycopg.connect(conninfo(db)) as conn:
        return collections.Counter(dict(conn.execute("SELECT action, count(*) FROM access_log GROUP BY action")))


def missing_dossiers(db: str, done: list[tuple[int, str, str]]) -> int:
    import psycopg

    with psycopg.connect(conninfo(db)) as conn:
        held = {r[0]: (r[1], r[2]) for r in conn.execute(
            "SELECT d.dossier_id, d.code, p.pid FROM dossiers d JOIN persons p ON p.person_id = d.person_id "
            "WHERE d.dossier_id = ANY(%s)", ([d[0] for d in done],))}
    return sum(1 for dossier_id, code, pid in done if held.get(dossier_id) != (code, pid))


def unsequenced(db: str) -> int:
    import psycopg

    with psycopg.connect(conninfo(db)) as conn:
        return conn.execute("SELECT count(*) FROM access_log WHERE leaf_index IS NULL").fetchone()[0]


# ----------------------------------------------------------------------------- report

def route_table(title: str, stats: Stats, seconds: float, floor: Stats | None = None,
                floor_seconds: float = 0.0) -> tuple[str, dict]:
    lines = [f"**{title}**", ""]
    head = "| route | requests | errors | req/s | p50 ms | p95 ms | p99 ms | max ms |"
    rule = "|---|---:|---:|---:|---:|---:|---:|---:|"
    if floor is not None:
        head += " floor p99 ms | p99 / floor |"
        rule += "---:|---:|"
    lines += [head, rule]
    routes = sorted(r for r in stats.latencies if not r.startswith("flow:"))
    flows = sorted(r for r in stats.latencies if r.startswith("flow:"))
    every = [s for r in routes for s in stats.latencies[r]]
    overall = {}
    for route in [*routes, "all requests", *flows]:
        lat = every if route == "all requests" else stats.latencies[route]
        if not lat:
            continue
        errors = (stats.total_errors() if route == "all requests" else sum(stats.errors[route].values()))
        ms = sorted(x * 1000 for x in lat)
        row = {"requests": len(ms), "errors": errors, "rps": len(ms) / seconds, "p50": percentile(ms, 50),
               "p95": percentile(ms, 95), "p99": percentile(ms, 99), "max": ms[-1]}
        name = f"**{route}**" if route == "all requests" else route
        line = (f"| {name} | {row['requests']:,} | {errors} | {row['rps']:,.1f} | {row['p50']:.1f} | "
                f"{row['p95']:.1f} | {row['p99']:.1f} | {row['max']:.0f} |")
        if floor is not None:
            base = ([s for r in floor.latencies if not r.startswith("flow:") for s in floor.latencies[r]]
                    if route == "all requests" else floor.latencies.get(route, []))
            if base:
                fp99 = percentile(sorted(x * 1000 for x in base), 99)
                line += f" {fp99:.1f} | {row['p99'] / fp99:.1f} |"
            else:
                line += " – | – |"
        lines.append(line)
        if route == "all requests":
            overall = row
    return "\n".join(lines), overall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
                        help="a PostgreSQL server: a scratch database is made on it and dropped after")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0", help="shared rate limits ('' for none)")
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--citizens", type=int, default=200, help="level-1 e-ID accounts")
    parser.add_argument("--level2", type=int, default=100, help="level-2 e-ID accounts (chip card, TOTP)")
    parser.add_argument("--officers", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=16, help="virtual users (closed loop)")
    parser.add_argument("--seconds", type=float, default=600, help="length of the soak")
    parser.add_argument("--single-seconds", type=float, default=30, help="the floor: the mix one at a time")
    parser.add_argument("--warmup", type=float, default=15)
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args()

    os.environ.setdefault("DINHDANH_MASTER_KEY", BENCH_MASTER_KEY)  # every process opens the same vault
    print(f"machine: {machine()}; load average before: {os.getloadavg()[0]:.2f}", flush=True)
    db, name = scratch_database(args.postgres, "bench_soak")
    print(f"scratch database: {name}", flush=True)
    server = None
    try:
        with tempfile.TemporaryDirectory(prefix="bench-soak-") as tmp:
            work = Path(tmp)
            setup = build(db, args.people, args.citizens, args.level2, args.officers)
            server = Server(db, work, args.workers, args.redis or None)
            server.wait_up()
            print(f"server: dinhdanh serve --workers {args.workers} on port {server.port}, parent {server.proc.pid}, "
                  f"workers {server.worker_pids()}; Redis {'at ' + args.redis if args.redis else 'not used'}",
                  flush=True)
            load = Load(server.port, setup)
            report = asyncio.run(drive(load, server, args, db))
            levels, log_lines = server.log_problems()
            server.stop()
    finally:
        if server is not None:
            server.stop()
        if args.keep:
            print(f"kept: {db} (DINHDANH_MASTER_KEY={os.environ['DINHDANH_MASTER_KEY']})")
        else:
            drop_database(args.postgres, name)
    print_report(args, report, levels, log_lines)


async def drive(load: Load, server: Server, args, db: str) -> dict:
    """Logins of everyone (set-up), warm-up, the floor, the soak; memory and CPU around them."""
    started = time.perf_counter()
    setup_stats = Stats()
    conns = [Conn(load.port) for _ in range(8)]

    async def first_logins(k: int) -> None:
        for who in load.citizens[k::len(conns)]:
            try:
                await load._login(setup_stats, conns[k], who)
            except Failed:
                pass
            if who.level == 2:
                who.last_step = int(time.time()) // 30

    await asyncio.gather(*(first_logins(k) for k in range(len(conns))))
    for c in conns:
        c.close()
    print(f"set-up: {len(load.citizens)} citizens logged in through the provider in "
          f"{time.perf_counter() - started:.1f} s ({setup_stats.total_errors()} errors; not timed)", flush=True)
    if setup_stats.total_errors():
        print("\n".join(setup_stats.examples[:5]))
    warm, _ = await load.run(args.concurrency, args.warmup, seed=1)
    print(f"warm-up: {args.warmup:.0f} s at concurrency {args.concurrency}, "
          f"{sum(len(v) for v in warm.latencies.values()):,} requests, {warm.total_errors()} errors", flush=True)
    single, single_s = await load.run(1, args.single_seconds, seed=2)
    print(f"floor: one at a time for {single_s:.0f} s, {sum(len(v) for v in single.latencies.values()):,} requests, "
          f"{single.total_errors()} errors", flush=True)

    logged_before = access_log_counts(db)
    rss_start = server.rss()
    processes = server.processes()
    samples = [(0.0, rss_start)]
    cpu_before, own_before = server.cpu(), os.times()
    soak_task = asyncio.create_task(load.run(args.concurrency, args.seconds, seed=3))
    t0 = time.monotonic()
    while not soak_task.done():
        await asyncio.wait({soak_task}, timeout=30)
        if not soak_task.done():
            samples.append((time.monotonic() - t0, server.rss()))
            print(f"  {samples[-1][0]:.0f} s: RSS " + ", ".join(f"{processes.get(p, '?')} {v:.0f}"
                                                            for p, v in samples[-1][1].items()) + " MiB", flush=True)
    soak, soak_s = soak_task.result()
    cpu_after, own_after = server.cpu(), os.times()
    rss_end = server.rss()
    samples.append((soak_s, rss_end))
    logged_after = access_log_counts(db)

    deadline = time.monotonic() + 60
    pending = unsequenced(db)
    while pending and time.monotonic() < deadline:
        await asyncio.sleep(1)
        pending = unsequenced(db)
    all_dossiers = warm.dossiers + single.dossiers + soak.dossiers
    return {"warm": warm, "single": single, "single_s": single_s, "soak": soak, "soak_s": soak_s,
            "rss_start": rss_start, "rss_end": rss_end, "samples": samples, "processes": processes,
            "processes_end": server.processes(),
            "server_cpu": cpu_after - cpu_before,
            "own_cpu": own_after.user - own_before.user + own_after.system - own_before.system,
            "logged": logged_after - logged_before, "missing": missing_dossiers(db, all_dossiers),
            "dossiers": len(all_dossiers), "unsequenced": pending}


def print_report(args, r: dict, levels: collections.Counter, log_lines: list[str]) -> None:
    soak, single = r["soak"], r["single"]
    print()
    text, overall = route_table(f"PostgreSQL, {args.workers} workers, {args.concurrency} users, {r['soak_s']:.0f} s "
                                f"({args.people:,} people)", soak, r["soak_s"], single, r["single_s"])
    print(text)
    print()
    text1, one = route_table(f"Floor: the same mix one action at a time, {r['single_s']:.0f} s", single, r["single_s"])
    print(text1)
    print()
    actions = sum(len(v) for k, v in soak.latencies.items() if k.startswith("flow:"))
    print(f"throughput: {overall['rps']:,.1f} requests/s (floor, one at a time: {one['rps']:,.1f}/s; "
          f"ratio {overall['rps'] / one['rps']:.2f}); p99 over all requests {overall['p99']:.1f} ms "
          f"(floor {one['p99']:.1f} ms, ratio {overall['p99'] / one['p99']:.1f})")
    print(f"server CPU over the soak: {r['server_cpu']:.0f} s of {2 * r['soak_s']:.0f} core-seconds "
          f"({r['server_cpu'] / r['soak_s'] * 100:.0f}% of one core), {r['server_cpu'] / overall['requests'] * 1000:.2f} ms "
          f"a request; load generator: {r['own_cpu'] / r['soak_s'] * 100:.0f}% of one core; "
          f"load average now {os.getloadavg()[0]:.2f} (PostgreSQL and other processes not counted)")
    print()
    half = min(r["samples"], key=lambda s: abs(s[0] - r["soak_s"] / 2))
    print(f"| process | RSS after warm-up MiB | at {half[0]:.0f} s | at end ({r['soak_s']:.0f} s) | max during | "
          f"change start to end | change half to end |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for pid, kind in r["processes"].items():
        start, mid, end = r["rss_start"].get(pid, 0.0), half[1].get(pid, 0.0), r["rss_end"].get(pid)
        peak = max(s[1].get(pid, 0.0) for s in r["samples"])
        change = f"{(end - start) / start * 100:+.1f}%" if end else "exited"
        second = f"{(end - mid) / mid * 100:+.1f}%" if end and mid else "–"
        print(f"| {kind} {pid} | {start:.1f} | {mid:.1f} | {end if end is not None else 0:.1f} | {peak:.1f} | "
              f"{change} | {second} |")
    print("RSS every 30 s (MiB): " + "; ".join(
        f"{t:.0f} s: " + "/".join(f"{v:.0f}" for p, v in sample.items() if r["processes"].get(p) != "resource tracker")
        for t, sample in r["samples"]) + " (parent/workers)")
    new = set(r["processes_end"]) - set(r["processes"])
    if new:
        print(f"processes that were not there at the start (a restarted worker?): {sorted(new)}")
    print()
    # every acknowledged officer read, history, verification about a known person writes one entry, and a
    # search one per person found (the counts are taken around the soak)
    owed = {"read": soak.logged["read"], "history": soak.logged["history"], "verify": soak.logged["verify"],
            "search": soak.logged["search results"]}
    print(f"access-log entries written during the soak, by action: {dict(r['logged'])}; owed by the soak's "
          f"acknowledged requests: {owed}")
    short = {a: (r["logged"].get(a, 0), n) for a, n in owed.items() if r["logged"].get(a, 0) != n}
    print(f"acknowledged dossiers: {r['dossiers']:,}, missing or wrong in the database: {r['missing']}; "
          f"access-log actions not equal to their acknowledged requests: {short or 'none'}; "
          f"entries still without a leaf 60 s after: {r['unsequenced']}")
    print(f"server log: lines at WARNING or above: {dict(levels) or 'none'}")
    for line in log_lines:
        print(f"  {line}")
    errors = soak.total_errors() + single.total_errors() + r["warm"].total_errors()
    for line in (soak.examples + single.examples + r["warm"].examples)[:10]:
        print(f"  error: {line}")
    growth = max(((r["rss_end"].get(p) or 0) - s) / s for p, s in r["rss_start"].items() if s)
    # flat: judged from the first sample a minute or more into the soak (the first minute fills each
    # worker's caches: statements, templates, checked tokens) to the end; the growth from the warm-up
    # is printed too
    settled = next((sample for t, sample in r["samples"] if t >= min(60, r["soak_s"] / 2)), r["rss_start"])
    later = max(((r["rss_end"].get(p) or 0) - v) / v for p, v in settled.items() if v)
    flat = later < 0.05
    print(f"target: zero errors: {'met' if errors == 0 else 'NOT met'} ({errors}, warm-up and floor included); "
          f"memory flat (no process +5% or more from one minute in to the end): {'met' if flat else 'NOT met'} "
          f"(largest change {later * 100:+.1f}%; from the end of the warm-up {growth * 100:+.1f}%); "
          f"acknowledged writes all there: "
          f"{'yes' if not r['missing'] and not short else 'NO'}; {actions:,} actions")
    if errors or r["missing"] or short:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
