"""Change notifications on SQLite and PostgreSQL: routing (kinds, areas, follows with expiry, no
duplicates, a crash that loses nothing, seq gaps, the access log), signed webhooks against a real
receiver (back-off, dead letters, order per person), and the helpers the e2e tests share."""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import sqlalchemy as sa
from standardwebhooks import Webhook, WebhookVerificationError

from dinhdanh.store.unit_of_work import UnitOfWork
from dinhdanh.changes import service
from dinhdanh.exchange.tables import partners
from dinhdanh.registry import commands as cmd
from dinhdanh.registry import events as ev
from dinhdanh.store.vault import for_database
from tests.oidc_support import add_partner, free_port

CLERK = ev.Actor("officer:1")
# The receivers here (and in the e2e tests that import them) listen on http://127.0.0.1: webhooks
# to loopback are the operator's choice (config.webhooks_allow_http_loopback), made for these tests.
# A test about the switch being off removes it with monkeypatch.delenv.
os.environ.setdefault("DINHDANH_WEBHOOKS_ALLOW_HTTP_LOOPBACK", "1")


def subscriber(engine: sa.Engine, *, name: str = "Đối tác thử nghiệm", kind: str = "bank", area_code: str | None = None,
               operations=("subscribe",)):
    """An active partner allowed ``subscribe`` (and its row, for the service functions)."""
    made = add_partner(engine, name=name, kind=kind, operations=operations, fields=("full_name",))
    with engine.begin() as conn:
        if area_code is not None:
            conn.execute(partners.update().where(partners.c.client_id == made["client_id"]).values(area_code=area_code))
        row = conn.execute(sa.select(partners).where(partners.c.client_id == made["client_id"])).one()
    return made, row


def vault_of(engine: sa.Engine):
    return for_database(engine.url.render_as_string(hide_password=False))


def subscribe(engine: sa.Engine, partner, kinds, scope: str = "follows", **kw) -> dict:
    with engine.begin() as conn:
        return service.create_subscription(conn, vault_of(engine), partner, kinds=list(kinds), scope=scope, **kw)


def follow(engine: sa.Engine, partner, pids, days: int = 30) -> dict:
    with engine.begin() as conn:
        return service.follow(conn, partner, list(pids), days)


def record(engine: sa.Engine, kind: str, **fields):
    command = cmd.EVENT_KINDS[kind].model_validate(fields)
    with UnitOfWork(engine).begin() as conn:  # as the app writes: BEGIN IMMEDIATE
        return ev.record_event(conn, CLERK, kind, command)


class Receiver:
    """A webhook endpoint: ``mode`` "ok" (204), "fail" (503) or down (``stop``: connection refused).
    It verifies each request with ``Webhook(secret).verify`` (400 when it does not verify) and
    records ``(webhook-id, event)`` of every verified one, duplicates included."""

    def __init__(self, secret: str | None = None, port: int | None = None, delay: float = 0.0):
        self.secret = secret
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/hooks/dinhdanh"
        self.delay = delay
        self.mode = "ok"
        self.got: list[tuple[str, dict]] = []
        self.bad = 0
        self.truncated = 0
        self.lock = threading.Lock()
        self.server = None

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("content-length", 0))
                body = self.rfile.read(length)
                if len(body) < length:  # the sender died mid-request (a test kills it): not a bad signature
                    with receiver.lock:
                        receiver.truncated += 1
                    return
                if receiver.delay:
                    time.sleep(receiver.delay)
                try:
                    event = Webhook(receiver.secret).verify(body, dict(self.headers))
                except WebhookVerificationError:
                    with receiver.lock:
                        receiver.bad += 1
                    self.send_response(400)
                    self.end_headers()
                    return
                if receiver.mode != "ok":
                    self.send_response(503)
                    self.end_headers()
                    return
                with receiver.lock:
                    receiver.got.append((self.headers["webhook-id"], event))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def events(self) -> list[dict]:
        with self.lock:
            return [e for _, e in self.got]

    def first_arrivals(self) -> list[tuple[str, dict]]:
        """What arrived, each webhook-id once (the first time), in arrival order."""
        seen, out = set(), []
        with self.lock:
            for msg_id, event in self.got:
                if msg_id not in seen:
                    seen.add(msg_id)
                    out.append((msg_id, event))
        return out


def body_json(raw: bytes) -> dict:
    return json.loads(raw)


# ------------------------------------------------------------------------------------ tests

import datetime as dt

import pytest

from dinhdanh.audit.tables import access_log
from dinhdanh.changes import routing, webhooks
from dinhdanh.changes.tables import change_cursors, change_deliveries, follows
from dinhdanh.changes.tables import subscriptions as subscriptions_table
from dinhdanh.registry.errors import InvalidInput, NotFound
from dinhdanh.registry.tables import persons
from dinhdanh.store.base import utcnow
from dinhdanh.store.outbox import enqueue, outbox

AN, BINH, CHAU, DUNG, DUC, HOA, GIANG = ("001085000001", "001187000002", "001212000003", "001215000004",
                                         "079090000005", "079193000006", "079095000007")


def routed(engine, client_id: str) -> list[tuple[str, str]]:
    """(topic, pid) of the rows routed to a partner, in seq order."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(change_deliveries.c.topic, change_deliveries.c.data)
                            .where(change_deliveries.c.client_id == client_id)
                            .order_by(change_deliveries.c.seq)).all()
    return [(r.topic, r.data["pid"]) for r in rows]


def person_id(engine, pid: str) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(persons.c.person_id).where(persons.c.pid == pid)).scalar_one()


def test_routing_follows_kinds_areas_and_expiry(family):
    hanoi, hanoi_row = subscriber(family, name="UBND Hà Nội", kind="locality", area_code="01")
    bank, bank_row = subscriber(family, name="Ngân hàng")
    hcm, hcm_row = subscriber(family, name="Phường Bến Thành", kind="locality", area_code="79")
    subscribe(family, hanoi_row, ["person.died", "person.moved"], scope="area")  # defaults to its area 01
    subscribe(family, bank_row, ["person.died", "person.renamed", "eid.locked"])
    subscribe(family, hcm_row, ["person.died"], scope="area", area_code="26743")
    answer = follow(family, bank_row, [AN, DUC, HOA, "001099999999", "12ab"])
    # an unknown PID is answered like a known one (the follow list is no oracle), and followed by nobody
    assert [i["status"] for i in answer["items"]] == ["following", "following", "following", "following", "invalid"]
    with family.begin() as conn:  # the bank's follow of Hoa expired yesterday
        conn.execute(follows.update().where(follows.c.person_id == person_id(family, HOA))
                     .values(expires_at=utcnow() - dt.timedelta(days=1)))
        enqueue(conn, "notify.sms", person_id(family, AN), {"to": "0912345678", "text": "x"})  # not for partners
    record(family, "death", pid=AN, date_of_death="2024-05-01")
    record(family, "name-change", pid=DUC, full_name="Lê Văn Đông", reason="Quyết định 12/QĐ")
    record(family, "death", pid=HOA, date_of_death="2024-06-01")
    record(family, "temporary-residence", pid=GIANG, commune_code="00070", address="1 Tràng Tiền",
           until=(dt.date.today() + dt.timedelta(days=200)).isoformat())
    record(family, "death", pid=CHAU, date_of_death="2024-07-01")
    done = routing.route_all(family)
    assert done["events"] >= 6 and not done["waiting"]
    assert routed(family, hanoi["client_id"]) == [("person.died", AN), ("person.moved", GIANG),
                                                  ("person.died", CHAU)]
    assert routed(family, bank["client_id"]) == [("person.died", AN), ("person.renamed", DUC)]
    assert routed(family, hcm["client_id"]) == [("person.died", HOA)]
    # routing again finds nothing new: no duplicates
    assert routing.route_all(family)["deliveries"] == 0
    with family.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(change_deliveries)).scalar_one() == 6
        log = conn.execute(sa.select(access_log.c.actor, access_log.c.person_id, access_log.c.action,
                                     access_log.c.purpose, access_log.c.fields, access_log.c.outcome)
                           .where(access_log.c.action == "notify").order_by(access_log.c.access_id)).all()
        pull_only = conn.execute(sa.select(change_deliveries.c.status).distinct()).scalars().all()
    assert pull_only == ["feed"]  # no webhook URL: pull only
    assert len(log) == 6
    died = [r for r in log if r.actor == f"partner:{bank['client_id']}" and r.person_id == person_id(family, AN)]
    assert len(died) == 1 and died[0].purpose == "customer_verification" and died[0].outcome == "ok"
    assert json.loads(died[0].fields) == ["date_of_death", "event_id", "pid", "seq"]


def test_a_suspended_partner_or_a_disabled_subscription_gets_nothing(family):
    bank, bank_row = subscriber(family)
    other, other_row = subscriber(family, name="Ngân hàng khác")
    subscribe(family, bank_row, ["person.died"])
    sub = subscribe(family, other_row, ["person.died"])
    follow(family, bank_row, [AN])
    follow(family, other_row, [AN])
    with family.begin() as conn:
        conn.execute(partners.update().where(partners.c.client_id == bank["client_id"]).values(state="suspended"))
        service.disable_subscription(conn, other_row, sub["subscription_id"])
    record(family, "death", pid=AN, date_of_death="2024-05-01")
    routing.route_all(family)
    assert routed(family, bank["client_id"]) == [] and routed(family, other["client_id"]) == []


def test_subscription_rules(family):
    _, hanoi_row = subscriber(family, kind="locality", area_code="01")
    _, national = subscriber(family, name="Bộ Y tế", kind="ministry")
    for kw, field in [({"kinds": []}, "kinds"), ({"kinds": ["person.born"]}, "kinds"),
                      ({"kinds": ["person.died"], "scope": "everyone"}, "scope"),
                      ({"kinds": ["person.died"], "scope": "area", "area_code": "79"}, "area_code"),
                      ({"kinds": ["person.died"], "scope": "area", "area_code": "26743"}, "area_code"),
                      ({"kinds": ["person.died"], "scope": "area", "area_code": "99"}, "area_code"),
                      ({"kinds": ["person.died"], "area_code": "01"}, "area_code"),
                      ({"kinds": ["person.died"], "webhook_url": "http://example.com/hook"}, "webhook_url"),
                      ({"kinds": ["person.died"], "webhook_url": "ftp://127.0.0.1/x"}, "webhook_url"),
                      ({"kinds": ["person.died"], "webhook_url": "https://user:pw@example.com/x"}, "webhook_url"),
                      ({"kinds": ["person.died"], "webhook_url": "https://exa mple.com/x"}, "webhook_url")]:
        kw.setdefault("scope", "follows")
        with pytest.raises(InvalidInput) as caught, family.begin() as conn:
            service.create_subscription(conn, vault_of(family), hanoi_row, **kw)
        assert caught.value.field == field, kw
    inside = subscribe(family, hanoi_row, ["person.died"], scope="area", area_code="00070")
    assert inside["area_code"] == "00070" and "webhook_secret" not in inside
    anywhere = subscribe(family, national, ["card.revoked"], scope="area", area_code="79",
                         webhook_url="https://hooks.example.vn/dinhdanh")
    assert anywhere["webhook_secret"].startswith("whsec_")
    assert len(base64.b64decode(anywhere["webhook_secret"][6:])) == 32
    whole = subscribe(family, national, ["card.revoked"], scope="area")
    assert whole["area_code"] is None  # a national partner: the whole country
    with family.connect() as conn:
        with pytest.raises(NotFound):
            service.get_subscription(conn, hanoi_row, anywhere["subscription_id"])  # not its own
        sealed = conn.execute(sa.select(subscriptions_table.c.secret_sealed).where(
            subscriptions_table.c.subscription_id == anywhere["subscription_id"])).scalar_one()
    assert anywhere["webhook_secret"].encode() not in sealed
    assert service.open_secret(vault_of(family), sealed) == anywhere["webhook_secret"]
    with pytest.raises(InvalidInput), family.begin() as conn:
        service.follow(conn, hanoi_row, [AN], 367)


def test_a_crash_while_routing_loses_nothing_and_duplicates_nothing(family, monkeypatch):
    bank, bank_row = subscriber(family)
    subscribe(family, bank_row, ["person.died", "person.renamed"])
    follow(family, bank_row, [AN, DUC])
    record(family, "name-change", pid=DUC, full_name="Lê Văn Đông", reason="Quyết định 12/QĐ")
    record(family, "death", pid=AN, date_of_death="2024-05-01")
    calls = []

    def crash(conn, actor, person_ids, *a, **kw):
        calls.append(actor)
        if len(calls) == 2:
            raise RuntimeError("the process died")
        return real(conn, actor, person_ids, *a, **kw)

    real = routing.record_access
    monkeypatch.setattr(routing, "record_access", crash)
    with pytest.raises(RuntimeError):
        routing.route_all(family)
    with family.connect() as conn:  # the whole batch rolled back, the cursor did not move
        assert conn.execute(sa.select(sa.func.count()).select_from(change_deliveries)).scalar_one() == 0
        assert conn.execute(sa.select(change_cursors.c.last_seq).where(change_cursors.c.name == "router")
                            ).scalar_one() == 0
    monkeypatch.setattr(routing, "record_access", real)
    routing.route_all(family)
    routing.route_all(family)
    assert routed(family, bank["client_id"]) == [("person.renamed", DUC), ("person.died", AN)]
    with family.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(access_log)
                            .where(access_log.c.action == "notify")).scalar_one() == 2


class FakeClock:
    def __init__(self, start: float = 0.0):
        self.now = start

    def __call__(self) -> float:
        return self.now


def test_gaps_wait_for_a_late_commit_then_for_the_grace():
    class Row:
        def __init__(self, seq):
            self.seq = seq

    clock = FakeClock()
    gaps = routing.Gaps(grace=10, clock=clock)
    rows = [Row(1), Row(2), Row(4), Row(5)]
    assert [r.seq for r in gaps.passable(rows, 0)] == [1, 2]
    clock.now = 5
    assert [r.seq for r in gaps.passable(rows[2:], 2)] == []
    assert [r.seq for r in gaps.passable([Row(3), *rows[2:]], 2)] == [3, 4, 5]  # the late one committed
    assert gaps.seen == {}
    assert [r.seq for r in gaps.passable([Row(8)], 5)] == []
    clock.now = 14.9
    assert [r.seq for r in gaps.passable([Row(8)], 5)] == []  # first seen at 5
    clock.now = 15
    assert [r.seq for r in gaps.passable([Row(8), Row(9)], 5)] == [8, 9]  # rolled back: skipped
    assert gaps.seen == {}


def test_the_router_waits_for_a_seq_committed_late(family):
    if family.dialect.name == "postgresql":
        pytest.skip("PostgreSQL waits for the transaction holding a seq, not for a time: "
                    "test_a_long_transaction_holding_a_seq_is_waited_for_past_any_grace")
    _, bank_row = subscriber(family)
    subscribe(family, bank_row, ["person.renamed"])
    follow(family, bank_row, [AN])
    an = person_id(family, AN)
    with family.connect() as conn:
        base = conn.execute(sa.select(sa.func.coalesce(sa.func.max(outbox.c.seq), 0))).scalar_one()

    def put(seq):
        with family.begin() as conn:
            conn.execute(outbox.insert().values(seq=seq, topic="person.renamed", person_id=an,
                                                payload={"event_id": seq, "pid": AN}, created_at=utcnow()))

    clock = FakeClock()
    gaps = routing.Gaps(grace=10, clock=clock)
    for seq in (base + 1, base + 2, base + 4):
        put(seq)
    first = routing.route_all(family, gaps)
    assert first["events"] == 2 and first["waiting"]
    put(base + 3)  # the transaction holding seq 3 commits after 4
    routing.route_all(family, gaps)
    with family.connect() as conn:
        seqs = conn.execute(sa.select(change_deliveries.c.seq).order_by(change_deliveries.c.seq)).scalars().all()
    assert seqs == [base + 1, base + 2, base + 3, base + 4]
    put(base + 6)  # seq 5 is never committed
    assert routing.route_all(family, gaps)["events"] == 0
    clock.now = 11
    assert routing.route_all(family, gaps)["events"] == 1


@pytest.mark.postgres
def test_a_long_transaction_holding_a_seq_is_waited_for_past_any_grace(family):
    """PostgreSQL: seq N+1 is taken by a transaction still running while N+2 commits; the router
    waits for it as long as it runs (the clock far past the grace changes nothing), then routes
    both in order. A seq whose transaction rolled back is passed once that transaction has ended."""
    if family.dialect.name != "postgresql":
        pytest.skip("out-of-order commits of seqs are a PostgreSQL matter (SQLite has one writer)")
    _, bank_row = subscriber(family)
    subscribe(family, bank_row, ["person.renamed"])
    follow(family, bank_row, [AN])
    an = person_id(family, AN)

    def event(conn, n):
        enqueue(conn, "person.renamed", an, {"event_id": n, "pid": AN})

    routing.route_all(family)  # whatever FAMILY's import left
    clock = FakeClock()
    gaps = routing.Gaps(grace=10, clock=clock)
    slow = family.connect()
    held = slow.begin()
    slow.execute(sa.text("SELECT pg_current_xact_id()"))  # it has written before (as every event has)
    event(slow, 1)
    with family.begin() as conn:
        event(conn, 2)
    try:
        for now in (0, 100, 10_000):
            clock.now = now
            assert routing.route_all(family, gaps)["events"] == 0  # held back by the running one
        held.commit()
    finally:
        slow.close()
    assert routing.route_all(family, gaps)["events"] == 2
    assert [d for _, d in routed(family, bank_row.client_id)][-2:] == [AN, AN]
    with family.connect() as conn:
        got = conn.execute(sa.select(change_deliveries.c.data).order_by(change_deliveries.c.seq)).scalars().all()
    assert [d["event_id"] for d in got][-2:] == [1, 2]
    # rolled back: passed as soon as its transaction is over, without waiting for the grace
    slow = family.connect()
    held = slow.begin()
    slow.execute(sa.text("SELECT pg_current_xact_id()"))
    event(slow, 3)
    with family.begin() as conn:
        event(conn, 4)
    assert routing.route_all(family, gaps)["events"] == 0
    held.rollback()
    slow.close()
    # passed once every transaction running at the mark has ended: this one at once, but the snapshot's
    # xmin is the whole server's, so another database's transaction (a test beside this one) may hold
    # the gap a little longer; never past the grace's clock, which stands still here
    deadline = time.monotonic() + 30
    while True:
        routing.route_all(family, gaps)
        with family.connect() as conn:
            got = conn.execute(sa.select(change_deliveries.c.data).order_by(change_deliveries.c.seq)).scalars().all()
        if [d["event_id"] for d in got][-1:] == [4] or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert [d["event_id"] for d in got][-3:] == [1, 2, 4]


@pytest.mark.postgres
def test_a_seq_whose_transaction_commits_just_after_the_rows_were_read_is_not_skipped(family):
    """PostgreSQL: a reader (read only, so without a transaction id of its own, as the JetStream
    publisher) reads the rows while seq N+1's transaction runs; that transaction commits before the
    gap is looked at. Judged by a snapshot taken then, no transaction older than the gap was running
    and N+1 was skipped though committed; judged by the oldest running before the rows were read,
    it is waited for, and handled at the next read."""
    if family.dialect.name != "postgresql":
        pytest.skip("out-of-order commits of seqs are a PostgreSQL matter (SQLite has one writer)")
    an = person_id(family, AN)
    with family.connect() as conn:
        cursor = conn.execute(sa.select(sa.func.coalesce(sa.func.max(outbox.c.seq), 0))).scalar_one()
    slow = family.connect()
    held = slow.begin()
    slow.execute(sa.text("SELECT pg_current_xact_id()"))  # it has written before (as every event has)
    enqueue(slow, "person.renamed", an, {"event_id": 1, "pid": AN})
    with family.begin() as conn:
        enqueue(conn, "person.renamed", an, {"event_id": 2, "pid": AN})
    gaps = routing.Gaps()
    try:
        with UnitOfWork(family).read() as conn:
            horizon = gaps.horizon(conn)
            rows = conn.execute(sa.select(outbox).where(outbox.c.seq > cursor).order_by(outbox.c.seq)).all()
            assert [r.payload["event_id"] for r in rows] == [2]
            held.commit()  # between the rows and the look at the gap
            assert gaps.passable(rows, cursor, conn, horizon) == []
    finally:
        slow.close()
    with UnitOfWork(family).read() as conn:
        horizon = gaps.horizon(conn)
        rows = conn.execute(sa.select(outbox).where(outbox.c.seq > cursor).order_by(outbox.c.seq)).all()
        assert [r.payload["event_id"] for r in gaps.passable(rows, cursor, conn, horizon)] == [1, 2]


@pytest.mark.postgres
def test_two_routers_at_once_route_each_event_once(engine, tmp_path):
    if engine.dialect.name != "postgresql":
        pytest.skip("concurrent routers are a PostgreSQL deployment (SQLite has one writer)")
    from dinhdanh.population.importer import import_population
    from tests.support import FAMILY, write_people

    import_population(engine, write_people(tmp_path / "family.csv", FAMILY))
    _, bank_row = subscriber(engine)
    subscribe(engine, bank_row, ["person.renamed"])
    follow(engine, bank_row, [AN, DUC])
    ids = [person_id(engine, AN), person_id(engine, DUC)]
    with engine.begin() as conn:
        for i in range(300):
            enqueue(conn, "person.renamed", ids[i % 2], {"event_id": i, "pid": (AN, DUC)[i % 2]})
    errors = []

    def run():
        try:
            routing.route_all(engine, batch=20)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with engine.connect() as conn:
        seqs = conn.execute(sa.select(change_deliveries.c.seq).order_by(change_deliveries.c.seq)).scalars().all()
    assert len(seqs) == 300 == len(set(seqs))


def test_eid_lock_writes_an_outbox_event_without_personal_data(engine, tmp_path):
    from tests.oidc_support import load_people

    people = load_people(engine, tmp_path)
    bank, bank_row = subscriber(engine)
    subscribe(engine, bank_row, ["eid.locked"])
    follow(engine, bank_row, [BINH])
    from dinhdanh.eid import locks

    with engine.begin() as conn:
        locks.lock(conn, people.accounts[BINH], "breach", source="officer", actor="officer:1", reason="vi phạm")
        locks.lock(conn, people.accounts[BINH], "authority", source="officer", actor="officer:1", reason="yêu cầu")
    with engine.connect() as conn:
        rows = conn.execute(sa.select(outbox.c.topic, outbox.c.payload).where(outbox.c.topic == "eid.locked")).all()
    assert [dict(r.payload) for r in rows] == [{"pid": BINH, "cause": "breach"}]  # once: when it became locked
    routing.route_all(engine)
    assert routed(engine, bank["client_id"]) == [("eid.locked", BINH)]


# ------------------------------------------------------------------------------------ webhooks


class Clock:
    def __init__(self):
        self.now = utcnow()

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


def delivery(engine, client_id: str):
    with engine.connect() as conn:
        return conn.execute(sa.select(change_deliveries).where(change_deliveries.c.client_id == client_id)
                            .order_by(change_deliveries.c.seq)).all()


def test_a_death_reaches_a_webhook_that_was_down_for_a_while(family):
    bank, bank_row = subscriber(family)
    receiver = Receiver()
    sub = subscribe(family, bank_row, ["person.died"], webhook_url=receiver.url)
    receiver.secret = sub["webhook_secret"]
    follow(family, bank_row, [AN])
    record(family, "death", pid=AN, date_of_death="2024-05-01")
    routing.route_all(family)
    clock = Clock()
    deliverer = webhooks.Deliverer(family, vault_of(family), clock=clock, rand=lambda: 0.5, timeout=2)
    try:
        assert deliverer.run() == {"delivered": 0, "retry": 1, "dead": 0}  # nobody listens: refused
        row = delivery(family, bank["client_id"])[0]
        assert (row.status, row.attempts, row.last_error) == ("pending", 1, "ConnectError")
        assert row.next_attempt_at == clock.now + dt.timedelta(seconds=5)
        assert deliverer.run() == {"delivered": 0, "retry": 0, "dead": 0}  # not due yet
        receiver.mode = "fail"
        receiver.start()
        waits = []
        for _ in range(3):  # 503, 503, 503: 5 s, 30 s, 2 min, 10 min apart
            before = delivery(family, bank["client_id"])[0].next_attempt_at
            clock.now = before
            assert deliverer.run()["retry"] == 1
            waits.append((delivery(family, bank["client_id"])[0].next_attempt_at - clock.now).total_seconds())
        assert waits == [30, 120, 600]
        assert delivery(family, bank["client_id"])[0].last_error == "HTTP 503"
        receiver.mode = "ok"
        clock.advance(600)
        assert deliverer.run() == {"delivered": 1, "retry": 0, "dead": 0}
    finally:
        deliverer.close()
        receiver.stop()
    (msg_id, event), = receiver.got
    seq = delivery(family, bank["client_id"])[0].seq
    assert msg_id == f"msg_{bank['client_id']}_{seq}"
    assert event["type"] == "person.died"
    assert event["data"] == {"seq": seq, "pid": AN, "event_id": event["data"]["event_id"], "date_of_death": "2024-05-01"}
    assert dt.datetime.fromisoformat(event["timestamp"]) <= utcnow()
    row = delivery(family, bank["client_id"])[0]
    assert (row.status, row.attempts) == ("delivered", 5) and row.delivered_at is not None


def test_order_per_person_dead_letters_and_retry(family):
    bank, bank_row = subscriber(family)
    receiver = Receiver().start()
    sub = subscribe(family, bank_row, ["person.renamed", "person.died"], webhook_url=receiver.url)
    receiver.secret = sub["webhook_secret"]
    follow(family, bank_row, [HOA, DUC])
    record(family, "name-change", pid=HOA, full_name="Phạm Thị Hồng", reason="Quyết định 7/QĐ")
    record(family, "death", pid=HOA, date_of_death="2024-06-01")
    record(family, "death", pid=DUC, date_of_death="2024-06-02")
    routing.route_all(family)
    clock = Clock()
    deliverer = webhooks.Deliverer(family, vault_of(family), clock=clock, rand=lambda: 0.0, max_attempts=2, timeout=2)
    try:
        receiver.mode = "fail"
        assert deliverer.run() == {"delivered": 0, "retry": 2, "dead": 0}  # Hoa's rename and Đức's death
        _, hoa_died, _ = delivery(family, bank["client_id"])
        assert hoa_died.attempts == 0  # waits behind Hoa's earlier event
        clock.advance(5)
        # both go dead; Hoa's death, no longer behind a pending event, is tried (and fails) at once
        assert deliverer.run() == {"delivered": 0, "retry": 1, "dead": 2}
        with family.connect() as conn:
            dead = service.partner_dead_letters(conn, bank_row, sub["subscription_id"])
            listed = service.dead_letters(conn, client_id=bank["client_id"])
        assert [d["type"] for d in dead] == ["person.renamed", "person.died"] and dead == listed
        assert all(d["last_error"] == "HTTP 503" and d["attempts"] == 2 for d in dead)
        receiver.mode = "ok"
        clock.advance(5)
        assert deliverer.run() == {"delivered": 1, "retry": 0, "dead": 0}  # a dead letter blocks nothing
        with family.begin() as conn:
            assert service.partner_requeue(conn, bank_row, sub["subscription_id"]) == {"requeued": 2}
        assert deliverer.run() == {"delivered": 2, "retry": 0, "dead": 0}
    finally:
        deliverer.close()
        receiver.stop()
    order = [(e["type"], e["data"]["pid"]) for e in receiver.events()]
    assert order == [("person.died", HOA), ("person.renamed", HOA), ("person.died", DUC)]
    assert receiver.bad == 0
    assert {r.status for r in delivery(family, bank["client_id"])} == {"delivered"}


def test_a_tampered_signature_does_not_verify():
    secret = service.new_secret()
    body = b'{"type":"person.died","timestamp":"2026-01-01T00:00:00Z","data":{"seq":1}}'
    headers = webhooks.signed_request(secret, "client", 1, body, utcnow())
    assert Webhook(secret).verify(body, headers)["data"] == {"seq": 1}
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body.replace(b"1}", b"2}"), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(service.new_secret()).verify(body, headers)
    assert headers["webhook-id"] == "msg_client_1" and headers["webhook-signature"].startswith("v1,")
    assert [webhooks.backoff(n, lambda: 0.5).total_seconds() for n in (1, 2, 3, 4, 5, 6, 7, 8, 20)] == \
        [5, 30, 120, 600, 3600, 10800, 21600, 21600, 21600]
    assert webhooks.backoff(1, lambda: 0.0).total_seconds() == 4 and webhooks.backoff(1, lambda: 1.0).total_seconds() == 6


def test_concurrent_follows_of_the_same_pids_all_succeed_once_each(family):
    """Eight clients follow the same PIDs at once (one a person, one nobody's): every call commits
    (INSERT ... ON CONFLICT, not read-then-insert), and each PID is followed once."""
    _, bank = subscriber(family, name="Ngân hàng đồng thời")
    errors, barrier = [], threading.Barrier(8)

    def one(days):
        barrier.wait()
        try:
            with UnitOfWork(family).begin() as conn:
                service.follow(conn, bank, [AN, "001099999999"], days)
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(repr(exc))

    threads = [threading.Thread(target=one, args=(10 + i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    with family.begin() as conn:
        rows = conn.execute(sa.select(follows.c.pid, follows.c.person_id).where(follows.c.client_id == bank.client_id)
                            .order_by(follows.c.pid)).all()
    assert [(r.pid, r.person_id is not None) for r in rows] == [(AN, True), ("001099999999", False)]
