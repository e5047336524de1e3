"""Routing the outbox to partners: for each event after the router's cursor, in ``seq`` order, a
feed/delivery row for every active subscription that wants its kind and covers its person, and an
access-log entry for each partner it is disclosed to, with the cursor moved in the same transaction.

Crash safety: rows, log entries and the cursor commit together, so a crash re-routes nothing twice
and loses nothing. Several routers (PostgreSQL) take turns: each locks the cursor row
(``FOR UPDATE``) for its batch.

Sequence gaps: on PostgreSQL a transaction may take seq 5 and commit after another one took and
committed seq 6. A router that moved its cursor past 6 would never see 5. So the router stops at a
gap in the visible seqs and waits: when the missing seq shows up it goes on. On PostgreSQL it waits
exactly as long as a transaction that may hold the seq is still running: when it first sees the gap
it notes the snapshot's ``xmax`` (every transaction that had an ID then has one below it), and passes
the gap once the oldest running transaction (``xmin``) is past that mark: the holder has ended, and
as its seq is still missing, it rolled back (sequences are not transactional). This holds because an
outbox row is never its transaction's first write (it reports a change written just before), so the
holder had its transaction ID before it took its seq. However long a transaction runs, its events
are not skipped. On SQLite (one writer, so seqs commit in order) a gap can only be a rollback, and
is passed after ``grace`` seconds. The gaps seen are kept in memory.

Areas: a partner whose policy has an area (``partners.area_of``) hears only of the persons of that
area, whatever the subscription (its follow list, or an area, which lies inside its own). The
person's residence is taken as it was at the event, not at routing: just before it and just after
it (the current row, with the residence changes of later events undone, then those of this event).
An event is routed when the person was in the partner's area (and in the subscription's area, for
an area subscription) before it or after it. So a partner learns that a person of its area left
(the ``person.moved`` event that took them out), but not where to: when the person is outside the
partner's area after the event, the new address codes are left out of what it receives. The
events that follow the move are not routed to it any more.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable

import sqlalchemy as sa

from dinhdanh.audit.service import record_access
from dinhdanh.changes.service import KINDS
from dinhdanh.changes.tables import (
    change_cursors,
    change_deliveries,
    follows,
    subscriptions,
)
from dinhdanh.exchange.tables import partners
from dinhdanh.registry.area import Area
from dinhdanh.registry.tables import changes, events, persons
from dinhdanh.store.base import utcnow
from dinhdanh.store.outbox import outbox
from dinhdanh.store.unit_of_work import UnitOfWork

log = logging.getLogger("dinhdanh.changes")
ROUTER = "router"
GRACE = 10.0  # seconds a gap in the outbox's seqs is waited for
BATCH = 500


def ensure_cursor(engine_or_conn, name: str) -> None:
    def _insert(conn):
        if conn.execute(sa.select(change_cursors.c.name).where(change_cursors.c.name == name)).first() is None:
            try:
                with conn.begin_nested():
                    conn.execute(change_cursors.insert().values(name=name, last_seq=0, updated_at=utcnow()))
            except sa.exc.IntegrityError:
                pass  # another process made it

    if isinstance(engine_or_conn, sa.Engine):
        with UnitOfWork(engine_or_conn).begin() as conn:  # (SQLite: the write lock first, not a read upgraded)
            _insert(conn)
    else:
        _insert(engine_or_conn)


def cursor_of(conn: sa.Connection, name: str, *, lock: bool = False) -> int:
    q = sa.select(change_cursors.c.last_seq).where(change_cursors.c.name == name)
    if lock:
        q = q.with_for_update()
    return int(conn.execute(q).scalar_one())


def move_cursor(conn: sa.Connection, name: str, seq: int) -> None:
    conn.execute(change_cursors.update().where(change_cursors.c.name == name)
                 .values(last_seq=seq, updated_at=utcnow()))


_SNAPSHOT = sa.text("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint, "
                    "pg_snapshot_xmax(pg_current_snapshot())::text::bigint")


class Gaps:
    """Which seqs an outbox reader may pass: contiguous ones, and a gap once the transaction that
    may hold it has ended (PostgreSQL, with ``conn``) or ``grace`` has passed (SQLite)."""

    def __init__(self, grace: float = GRACE, clock: Callable[[], float] = time.monotonic):
        self.grace = grace
        self.clock = clock
        self.seen: dict[int, float] = {}  # first missing seq -> when the gap was first seen
        self.marks: dict[int, int] = {}  # first missing seq -> the snapshot's xmax then (PostgreSQL)

    @staticmethod
    def horizon(conn: sa.Connection) -> int | None:
        """PostgreSQL: the oldest transaction still running now (the snapshot's xmin), to be taken
        BEFORE the rows are read and given to ``passable``; None on SQLite."""
        if conn.dialect.name != "postgresql":
            return None
        return int(conn.execute(_SNAPSHOT).one()[0])

    def _ended(self, conn: sa.Connection, seq: int, horizon: int) -> bool:
        # the mark: every transaction that may hold ``seq`` began before it (it was missing from
        # rows just read); the gap ends when the oldest running before the rows were read is
        # younger than the mark. A snapshot taken after the rows could not tell: the holder may
        # have committed in between, and its row, not in the rows, would have been skipped
        if seq not in self.marks:
            self.marks[seq] = int(conn.execute(_SNAPSHOT).one()[1])
        return horizon >= self.marks[seq]

    def passable(self, rows: list, cursor: int, conn: sa.Connection | None = None,
                 horizon: int | None = None) -> list:
        """The prefix of ``rows`` (seq order, all > cursor) that may be handled now; on PostgreSQL
        with ``horizon``, taken before the rows were read (``Gaps.horizon``)."""
        out, expected = [], cursor + 1
        now = self.clock()
        by_transaction = conn is not None and conn.dialect.name == "postgresql"
        if by_transaction and horizon is None:
            raise ValueError("on PostgreSQL, passable needs the horizon taken before the rows were read")
        for row in rows:
            if row.seq != expected:
                if by_transaction:
                    if not self._ended(conn, expected, horizon):
                        break
                else:
                    first = self.seen.setdefault(expected, now)
                    if now - first < self.grace:
                        break
                log.warning("outbox seqs %d..%d never committed: skipped", expected, row.seq - 1)
                self.seen.pop(expected, None)
                self.marks.pop(expected, None)
            out.append(row)
            expected = row.seq + 1
        for seq in [s for s in self.seen if s < expected]:
            self.seen.pop(seq, None)  # filled in
        for seq in [s for s in self.marks if s < expected]:
            self.marks.pop(seq, None)
        return out


def event_data(row, pid: str | None) -> dict:
    """What a partner receives of an outbox event: its seq, the person's PID, the event's fields."""
    data = {"seq": row.seq, "pid": pid}
    data.update({k: v for k, v in dict(row.payload).items() if k != "pid"})
    if "pid" in row.payload:
        data["pid"] = row.payload["pid"]
    return data


def _targets(conn: sa.Connection, today: dt.date) -> list:
    """Active subscriptions of partners allowed ``subscribe`` now, with the partner's purposes and area."""
    rows = conn.execute(
        sa.select(subscriptions, partners.c.purposes, partners.c.operations,
                  partners.c.area_code.label("partner_area"))
        .join(partners, partners.c.client_id == subscriptions.c.client_id)
        .where(subscriptions.c.state == "active", partners.c.state == "active",
               partners.c.agreement_expires >= today)
        .order_by(subscriptions.c.subscription_id)).all()
    return [r for r in rows if "subscribe" in r.operations]


RESIDENCE = ("province_code", "commune_code", "temp_province_code", "temp_commune_code")
# what a person.moved event says of the new address: left out for a partner the person left
NEW_ADDRESS = ("commune_code", "temporary_commune_code", "province_code", "temporary_province_code",
               "address", "temp_address")


class Residence:
    """Where a person lived, as ``Area.covers`` reads it."""

    __slots__ = RESIDENCE

    def __init__(self, values: dict):
        for f in RESIDENCE:
            setattr(self, f, values.get(f))


def residences(conn: sa.Connection, row, person) -> tuple[Residence, Residence]:
    """The person's residence just before and just after the outbox event ``row``: the current
    row with the residence changes of the events recorded after it undone (newest first), then
    those of the event itself (``payload.event_id``) too."""
    event_id = row.payload.get("event_id") if isinstance(row.payload, dict) else None
    later = events.c.recorded_at > row.created_at
    own = changes.c.event_id == event_id if isinstance(event_id, int) else sa.false()
    undo = conn.execute(
        sa.select(changes.c.field, changes.c.old_value, events.c.recorded_at)
        .join(events, events.c.event_id == changes.c.event_id)
        .where(changes.c.person_id == row.person_id, changes.c.field.in_(RESIDENCE), sa.or_(later, own))
        .order_by(changes.c.change_id.desc())).all()
    state = {f: getattr(person, f) for f in RESIDENCE}
    for change in undo:
        if change.recorded_at > row.created_at:
            state[change.field] = change.old_value
    after = Residence(state)
    for change in undo:
        if not change.recorded_at > row.created_at:
            state[change.field] = change.old_value
    return Residence(state), after


def _route_one(conn: sa.Connection, row, targets: list, now: dt.datetime) -> int:
    wanted = [t for t in targets if row.topic in t.kinds]
    if not wanted or row.person_id is None:
        return 0
    person = conn.execute(sa.select(persons).where(persons.c.person_id == row.person_id)).first()
    if person is None:
        return 0
    followers = set(conn.execute(sa.select(follows.c.client_id).where(
        follows.c.person_id == row.person_id, follows.c.expires_at > row.created_at)).scalars())
    data = event_data(row, person.pid)
    limited = any(t.partner_area is not None or (t.scope == "area" and t.area_code is not None) for t in wanted)
    before, after = residences(conn, row, person) if limited else (person, person)
    told: dict[str, tuple[str, dict]] = {}
    count = 0
    for t in wanted:
        own = Area.of_code(t.partner_area)
        scope = Area.of_code(t.area_code) if t.scope == "area" else own
        if t.scope == "follows" and t.client_id not in followers:
            continue
        if not any(own.covers(r) and scope.covers(r) for r in (before, after)):
            continue
        sent = data if own.covers(after) else {k: v for k, v in data.items() if k not in NEW_ADDRESS}
        conn.execute(change_deliveries.insert().values(
            client_id=t.client_id, subscription_id=t.subscription_id, seq=row.seq, topic=row.topic,
            person_id=row.person_id, occurred_at=row.created_at, data=sent,
            status="pending" if t.webhook_url else "feed", attempts=0,
            next_attempt_at=now if t.webhook_url else None, created_at=now))
        told.setdefault(t.client_id, (t.purposes[0], sent))
        count += 1
    for client_id, (purpose, sent) in told.items():
        record_access(conn, f"partner:{client_id}", [row.person_id], "notify", purpose,
                      fields=sorted(sent), outcome="ok")
    return count


def route_batch(engine: sa.Engine, gaps: Gaps, *, batch: int = BATCH, now: dt.datetime | None = None) -> dict:
    """Route the next batch of outbox events; ``{"events": handled, "deliveries": rows written,
    "waiting": whether a gap holds the rest back}``."""
    ensure_cursor(engine, ROUTER)
    with UnitOfWork(engine).begin() as conn:
        cursor = cursor_of(conn, ROUTER, lock=True)
        horizon = gaps.horizon(conn)
        rows = conn.execute(sa.select(outbox).where(outbox.c.seq > cursor)
                            .order_by(outbox.c.seq).limit(batch)).all()
        ready = gaps.passable(rows, cursor, conn, horizon)
        now = now or utcnow()
        targets = _targets(conn, now.date())
        written = sum(_route_one(conn, row, targets, now) for row in ready if row.topic in KINDS)
        if ready:
            move_cursor(conn, ROUTER, ready[-1].seq)
    return {"events": len(ready), "deliveries": written, "waiting": len(ready) < len(rows)}


def route_all(engine: sa.Engine, gaps: Gaps | None = None, *, batch: int = BATCH, now: dt.datetime | None = None) -> dict:
    """Route until the outbox is done (or a gap holds the rest back)."""
    gaps = gaps or Gaps()
    total = {"events": 0, "deliveries": 0, "waiting": False}
    while True:
        done = route_batch(engine, gaps, batch=batch, now=now)
        total["events"] += done["events"]
        total["deliveries"] += done["deliveries"]
        total["waiting"] = done["waiting"]
        if done["events"] < batch:
            return total

