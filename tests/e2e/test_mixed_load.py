"""Mixed load on a real ``dinhdanh serve``, on SQLite and PostgreSQL: officers reading records and
searching, partners verifying, officers recording life events and citizens reading their data
tracker, all at once from 16 clients for a bounded time. Every answer must be the expected 2xx
(no 5xx, no timeout, no dropped connection), and every event the server acknowledged must be in
the register afterwards, with an event_id nobody else got.

The helpers here (a server subprocess, a database per back-end, the register's people and their
credentials) are shared with tests/e2e/test_crash_acknowledged.py.
"""

from __future__ import annotations

import collections
import concurrent.futures
import datetime as dt
import os
import random
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from dinhdanh.store.engine import make_engine, upgrade
from tests.oidc_support import PASSCODE, Browser, authorize_url, free_port, pkce, query_of

POSTGRES_URL = os.environ.get("DINHDANH_TEST_POSTGRES_URL")
NO_POSTGRES = "DINHDANH_TEST_POSTGRES_URL is not set: PostgreSQL tests skipped (.ci/run sets it)"
RP_SCOPES = "openid profile dinhdanh.me"
CLIENTS = 16
SECONDS = 15.0
TIMEOUT = 10.0
POPULATION = 2000
# the other side of the country from where each person lives: a temporary residence is always
# in another commune than the permanent one (Phường Bến Thành, HCMC / Phường Hoàn Kiếm, Hà Nội)
FAR_COMMUNES = ("26743", "00070")


# ------------------------------------------------------------------------------ databases


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request, tmp_path):
    """An empty database as a URL the ``dinhdanh`` command accepts (``--db``)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'register.sqlite'}"
        return
    if not POSTGRES_URL:
        pytest.skip(NO_POSTGRES)
    yield from postgres_schema_url()


def postgres_schema_url():
    """A fresh schema, as a URL whose connections use it (``options=-csearch_path=...``); dropped after."""
    schema = "t_" + uuid.uuid4().hex[:12]
    admin = make_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


# ------------------------------------------------------------------------------ the server


class Server:
    """``python -m dinhdanh serve --db URL --port P`` in a subprocess, its output in a file."""

    def __init__(self, db: str, home: Path, log_name: str = "serve.log"):
        self.db = db
        self.home = home
        self.log_path = home / log_name
        self.env = {k: v for k, v in os.environ.items() if k not in ("DINHDANH_DATABASE_URL", "DINHDANH_OIDC_ISSUER")}
        self.env["DINHDANH_HOME"] = str(home)
        self.env["PYTHONIOENCODING"] = "utf-8"
        self.proc: subprocess.Popen | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> Server:
        self.port = free_port()
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "dinhdanh", "serve", "--db", self.db,
                                      "--port", str(self.port)],
                                     env=self.env, cwd=self.home, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"dinhdanh serve exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"dinhdanh serve did not start:\n{self.log_tail()}")
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flush, no commit of anything still open."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def log_errors(self) -> list[str]:
        """The error lines of the server's log (exceptions' last lines)."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return []
        return [line for line in text.splitlines()
                if "Error" in line or "error" in line.split(":")[0] or "locked" in line or "QueuePool" in line]

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# ------------------------------------------------------------------------------ the register


@dataclass
class Register:
    """A migrated, loaded register and everyone's credentials for it."""

    db: str
    engine: sa.Engine
    officer_token: str
    partner: dict
    rp: dict
    people: list[dict]  # pid, full_name, date_of_birth (ISO), commune_code
    citizens: list[str] = field(default_factory=list)  # PIDs with an active e-ID account

    @property
    def officer(self) -> dict:
        return {"Authorization": f"Bearer {self.officer_token}"}


def load_register(db: str, tmp_path: Path, *, population: int = POPULATION, citizens: int = 4,
                  file: Path | None = None) -> Register:
    """A synthetic population (``population`` people, seed 1), a national officer, an approved
    partner allowed to verify names and dates of birth, a relying party allowed ``dinhdanh.me``,
    and ``citizens`` adults with level-1 e-ID accounts. ``file``: a population file to import instead."""
    from dinhdanh.eid import auth
    from dinhdanh.exchange import partners
    from dinhdanh.officers.service import add_officer
    from dinhdanh.population import synthetic
    from dinhdanh.population.importer import import_population
    from dinhdanh.registry.tables import persons
    from dinhdanh.store.vault import for_database
    from tests.oidc_support import add_client, add_partner

    engine = make_engine(db)
    upgrade(engine)
    if file is None:
        file = tmp_path / f"population-{population}.parquet"
        synthetic.write(synthetic.generate(population, 1), file)
    report = import_population(engine, file)
    assert report.loaded > 0.9 * population, report
    with engine.begin() as conn:
        _, officer_token = add_officer(conn, "Cán bộ thử tải", "national", None, roles=["registrar"])
    partner = add_partner(engine, name="Ngân hàng thử tải", kind="bank", operations=("verify",),
                          fields=("full_name", "date_of_birth"), rate=partners.MAX_RATE)
    rp = add_client(engine, scopes=RP_SCOPES)
    adult = dt.date.today() - dt.timedelta(days=365 * 20)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(persons.c.pid, persons.c.full_name, persons.c.date_of_birth,
                                      persons.c.commune_code)
                            .where(persons.c.status == "alive", persons.c.date_of_birth < adult,
                                   persons.c.commune_code.is_not(None))
                            .order_by(persons.c.person_id)).all()
    people = [{"pid": r.pid, "full_name": r.full_name, "date_of_birth": r.date_of_birth.isoformat(),
               "commune_code": r.commune_code} for r in rows]
    assert len(people) >= 200, len(people)
    register = Register(db, engine, officer_token, partner, rp, people)
    vault = for_database(db)
    with engine.begin() as conn:
        for person in people[:citizens]:
            auth.enroll(conn, vault, person["pid"], level=1, passcode=PASSCODE, actor="test")
            register.citizens.append(person["pid"])
    return register


def far_commune(person: dict) -> str:
    return FAR_COMMUNES[1] if person["commune_code"] == FAR_COMMUNES[0] else FAR_COMMUNES[0]


def partner_token(base: str, partner: dict) -> str:
    r = httpx.post(base + "/token", data={"grant_type": "client_credentials", "scope": "dinhdanh.verify"},
                   auth=(partner["client_id"], partner["client_secret"]), timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


def citizen_token(base: str, rp: dict, pid: str) -> str:
    """A citizen's login through the provider's pages (passcode, consent), then the code for tokens."""
    with httpx.Client(base_url=base, follow_redirects=False, timeout=TIMEOUT) as client:
        browser = Browser(client, stop_at=(rp["redirect_uris"][0],))
        verifier, challenge = pkce()
        location = browser.get(authorize_url(rp, challenge=challenge, scope=RP_SCOPES))
        if location is None:
            location = browser.login(pid, PASSCODE)
        assert location is not None, browser.page.text[:2000]
        code = query_of(location)["code"]
        r = client.post("/token", data={"grant_type": "authorization_code", "code": code,
                                        "redirect_uri": rp["redirect_uris"][0], "code_verifier": verifier},
                        auth=(rp["client_id"], rp["client_secret"]))
        assert r.status_code == 200, r.text
        return r.json()["access_token"]


def temporary_residence(person: dict, address: str) -> dict:
    until = (dt.date.today() + dt.timedelta(days=300)).isoformat()
    return {"pid": person["pid"], "commune_code": far_commune(person), "address": address, "until": until}


# ------------------------------------------------------------------------------ the load


@dataclass
class Outcome:
    kind: str
    status: int | None  # None: no answer (timeout, connection error)
    seconds: float
    error: str | None = None


@dataclass
class Acknowledged:
    event_id: int
    pid: str
    address: str


class Mix:
    """The requests of the mix, each checked for the answer it must get."""

    WEIGHTS = {"officer_read": 25, "officer_search": 10, "officer_history": 5, "verify": 30, "event": 15,
               "me_access_log": 10, "me": 5}

    def __init__(self, base: str, register: Register, verify_token: str, citizen_tokens: dict[str, str]):
        self.base = base
        self.register = register
        self.verify_headers = {"Authorization": f"Bearer {verify_token}"}
        self.citizen_headers = [{"Authorization": f"Bearer {t}"} for t in citizen_tokens.values()]
        self.lock = threading.Lock()
        self.acknowledged: list[Acknowledged] = []

    def events_people(self, worker: int, workers: int) -> list[dict]:
        """The people whose events worker ``worker`` records: nobody else's (events on one person
        are sequential; the test is about the server, not about two clerks racing on one record)."""
        everyone = self.register.people[len(self.register.citizens):]
        return everyone[worker::workers]

    def one(self, client: httpx.Client, kind: str, rng: random.Random, mine: list[dict], serial: str) -> Outcome:
        people = self.register.people
        person = rng.choice(people)
        expected = {200}
        started = time.perf_counter()
        try:
            if kind == "officer_read":
                r = client.get(f"/api/v1/citizens/{person['pid']}", headers=self.register.officer)
            elif kind == "officer_history":
                r = client.get(f"/api/v1/citizens/{person['pid']}/history", headers=self.register.officer)
            elif kind == "officer_search":
                words = person["full_name"].split()
                r = client.get("/api/v1/citizens", headers=self.register.officer,
                               params={"name": " ".join(words[:2]), "birth_year": person["date_of_birth"][:4]})
            elif kind == "verify":
                r = client.post("/api/v1/verify", headers=self.verify_headers,
                                json={"pid": person["pid"], "full_name": person["full_name"],
                                      "date_of_birth": person["date_of_birth"]})
            elif kind == "event":
                person = rng.choice(mine)
                address = f"Số {serial} đường Lê Lợi"
                r = client.post("/api/v1/events/temporary-residence", headers=self.register.officer,
                                json=temporary_residence(person, address))
                expected = {201}
                if r.status_code == 201:
                    body = r.json()
                    with self.lock:
                        self.acknowledged.append(Acknowledged(body["event_id"], person["pid"], address))
            elif kind == "me_access_log":
                r = client.get("/api/v1/me/access-log", headers=rng.choice(self.citizen_headers),
                               params={"limit": 20})
            elif kind == "me":
                r = client.get("/api/v1/me", headers=rng.choice(self.citizen_headers))
            else:  # pragma: no cover
                raise AssertionError(kind)
        except httpx.HTTPError as exc:
            return Outcome(kind, None, time.perf_counter() - started, f"{type(exc).__name__}: {exc}")
        elapsed = time.perf_counter() - started
        if r.status_code not in expected:
            return Outcome(kind, r.status_code, elapsed, r.text[:300])
        if kind == "officer_read" and r.json()["pid"] != person["pid"]:
            return Outcome(kind, r.status_code, elapsed, "another person's record")
        if kind == "verify" and r.json().get("match") is not True:
            return Outcome(kind, r.status_code, elapsed, f"no match for the register's own data: {r.text[:200]}")
        return Outcome(kind, r.status_code, elapsed)

    def run(self, clients: int, seconds: float, seed: int = 1, tag: str = "") -> list[Outcome]:
        """``clients`` threads, each with its own connection, for ``seconds``; ``tag`` keeps the
        addresses of one run apart from another's."""
        kinds, weights = zip(*self.WEIGHTS.items(), strict=True)
        deadline = time.monotonic() + seconds

        def worker(w: int) -> list[Outcome]:
            rng = random.Random(seed * 1000 + w)
            mine = self.events_people(w, clients)
            out = []
            with httpx.Client(base_url=self.base, timeout=TIMEOUT) as client:
                n = 0
                while time.monotonic() < deadline:
                    n += 1
                    out.append(self.one(client, rng.choices(kinds, weights)[0], rng, mine, f"{tag}{w}-{n}"))
            return out

        with concurrent.futures.ThreadPoolExecutor(clients) as pool:
            results = list(pool.map(worker, range(clients)))
        return [o for r in results for o in r]


def describe(outcomes: list[Outcome]) -> str:
    by_kind: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for o in outcomes:
        by_kind[o.kind][o.status if o.status is not None else "no answer"] += 1
    lines = [f"{kind}: {dict(counts)}" for kind, counts in sorted(by_kind.items())]
    latencies = sorted(o.seconds for o in outcomes)
    if latencies:
        p = lambda q: latencies[min(len(latencies) - 1, int(q * (len(latencies) - 1)))] * 1000  # noqa: E731
        lines.append(f"{len(outcomes)} requests, p50 {p(0.5):.1f} ms, p99 {p(0.99):.1f} ms, max {latencies[-1] * 1000:.0f} ms")
    return "\n".join(lines)


def check_acknowledged_visible(base: str, register: Register, acknowledged: list[Acknowledged]) -> list[str]:
    """Every acknowledged event in its person's history (by event_id, with its address), event_ids
    unique, and each person's record showing the last address acknowledged for them."""
    problems = []
    ids = [a.event_id for a in acknowledged]
    dupes = [i for i, n in collections.Counter(ids).items() if n > 1]
    if dupes:
        problems.append(f"event_ids acknowledged twice: {dupes[:10]}")
    per_person: dict[str, list[Acknowledged]] = collections.defaultdict(list)
    for a in acknowledged:
        per_person[a.pid].append(a)
    with httpx.Client(base_url=base, timeout=TIMEOUT) as client:
        for pid, acks in per_person.items():
            try:
                r = client.get(f"/api/v1/citizens/{pid}/history", headers=register.officer)
                record = client.get(f"/api/v1/citizens/{pid}", headers=register.officer)
            except httpx.HTTPError as exc:
                problems.append(f"the server did not answer the read-back ({type(exc).__name__}): "
                                f"{sum(len(a) for a in per_person.values())} acknowledged events unchecked")
                break
            if r.status_code != 200:
                problems.append(f"history of {pid}: {r.status_code} {r.text[:200]}")
                continue
            history = {e["event_id"]: e for e in r.json() if e["event_id"] is not None}
            for a in acks:
                entry = history.get(a.event_id)
                if entry is None:
                    problems.append(f"event {a.event_id} ({pid}) acknowledged but not in the history")
                    continue
                new = {c["field"]: c["new"] for c in entry["changes"]} if entry.get("changes") else {}
                if entry["kind"] != "temporary-residence" or (
                        new and a.address not in {str(v) for v in new.values()}):
                    problems.append(f"event {a.event_id} ({pid}) is another event: {entry}")
            if record.status_code != 200:
                problems.append(f"record of {pid}: {record.status_code} {record.text[:200]}")
                continue
            record = record.json()
            last = max(acks, key=lambda a: a.event_id)
            temp = record.get("temporary_residence") or {}
            if temp.get("address") != last.address:
                problems.append(f"{pid}: the record shows {temp.get('address')!r}, the last acknowledged "
                                f"event {last.event_id} set {last.address!r}")
    return problems


# ------------------------------------------------------------------------------ the test


@pytest.mark.slow
def test_mixed_load_answers_everything_and_loses_no_acknowledged_event(db_url, tmp_path):
    register = load_register(db_url, tmp_path)
    server = Server(db_url, tmp_path)
    try:
        server.start()
        base = server.url
        tokens = {pid: citizen_token(base, register.rp, pid) for pid in register.citizens}
        mix = Mix(base, register, partner_token(base, register.partner), tokens)
        # one of each, one at a time first: a failure here is the test's set-up, not the load
        rng = random.Random(0)
        with httpx.Client(base_url=base, timeout=TIMEOUT) as client:
            for kind in Mix.WEIGHTS:
                single = mix.one(client, kind, rng, mix.events_people(0, CLIENTS), f"warm-{kind}")
                assert single.error is None, (kind, single)
        outcomes = mix.run(CLIENTS, SECONDS)
        summary = describe(outcomes)
        print(f"\nmixed load on {db_url.split(':')[0]}, {CLIENTS} clients, {SECONDS:.0f} s:\n{summary}")
        failed = [o for o in outcomes if o.error is not None]
        no_answer = [o for o in failed if o.status is None]
        server_errors = [o for o in failed if o.status is not None and o.status >= 500]
        lost = check_acknowledged_visible(base, register, mix.acknowledged)
        report = (f"{summary}\n{len(no_answer)} without an answer (timeouts, connection errors), "
                  f"{len(server_errors)} 5xx, {len(failed)} unexpected answers in all; "
                  f"first: {[(o.kind, o.status, o.error) for o in failed[:5]]}\n"
                  f"acknowledged events: {len(mix.acknowledged)}, problems: {lost[:10]}\n"
                  f"server log errors: {sorted(set(server.log_errors()))[:10]}")
        assert not no_answer, report
        assert not server_errors, report
        assert len(outcomes) > 100, report
        assert sum(o.kind == "event" for o in outcomes if o.error is None) > 10, report
        assert not failed, report
        assert not lost, report
    finally:
        server.stop()
        register.engine.dispose()
