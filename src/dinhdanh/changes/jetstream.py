"""Publishing partner-relevant outbox events to NATS JetStream (when ``DINHDANH_NATS_URL`` is set).

Each event of a partner kind (``service.KINDS``) after the publisher's own cursor (``nats``) goes to
the stream ``DINHDANH_CHANGES`` (created if missing, subjects ``dinhdanh.changes.>``) on the subject
``dinhdanh.changes.<topic>``, with the header ``Nats-Msg-Id`` = the outbox seq, in seq order; the
cursor moves after the server's ack. A publisher killed between the ack and the cursor update
publishes that event again on restart, and JetStream drops it as a duplicate (within the stream's
duplicate window, 2 minutes by default). Gaps in the seqs are handled as by the router
(``routing.Gaps``). The stream carries the same JSON body as the webhooks; consumers on the bus are
internal systems authorised for those kinds, not partners (partners get webhooks and the feed).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os

import sqlalchemy as sa

from dinhdanh.changes.routing import (
    Gaps,
    cursor_of,
    ensure_cursor,
    event_data,
    move_cursor,
)
from dinhdanh.changes.service import KINDS, event_body
from dinhdanh.registry.tables import persons
from dinhdanh.store.outbox import outbox
from dinhdanh.store.unit_of_work import UnitOfWork

log = logging.getLogger("dinhdanh.changes")
ENV = "DINHDANH_NATS_URL"
STREAM = "DINHDANH_CHANGES"
CURSOR = "nats"
BATCH = 500


def nats_url() -> str | None:
    return os.environ.get(ENV) or None


PREFIX = "dinhdanh.changes"


def subject_of(topic: str, prefix: str = PREFIX) -> str:
    return f"{prefix}.{topic}"


async def ensure_stream(js, stream: str = STREAM, prefix: str = PREFIX) -> None:
    from nats.js.errors import NotFoundError

    try:
        await js.stream_info(stream)
    except NotFoundError:
        await js.add_stream(name=stream, subjects=[f"{prefix}.>"])


def _pending(engine: sa.Engine, gaps: Gaps, batch: int, prefix: str) -> tuple[list[tuple[int, str, bytes]], int]:
    """The next messages to publish (seq, subject, body) and the seq the cursor may move to."""
    with UnitOfWork(engine).read() as conn:
        cursor = cursor_of(conn, CURSOR)
        horizon = gaps.horizon(conn)
        rows = conn.execute(sa.select(outbox).where(outbox.c.seq > cursor).order_by(outbox.c.seq)
                            .limit(batch)).all()
        ready = gaps.passable(rows, cursor, conn, horizon)
        wanted = [r for r in ready if r.topic in KINDS]
        ids = {r.person_id for r in wanted if r.person_id is not None}
        pids = dict(conn.execute(sa.select(persons.c.person_id, persons.c.pid)
                                 .where(persons.c.person_id.in_(ids))).all()) if ids else {}
    messages = [(r.seq, subject_of(r.topic, prefix),
                 json.dumps(event_body(r.topic, r.created_at, event_data(r, pids.get(r.person_id))),
                            ensure_ascii=False, separators=(",", ":")).encode()) for r in wanted]
    return messages, (ready[-1].seq if ready else cursor)


async def publish_pending(engine: sa.Engine, url: str, gaps: Gaps | None = None, *, batch: int = BATCH,
                          stream: str = STREAM, prefix: str = PREFIX) -> dict:
    """Publish everything after the cursor (until a gap holds the rest back); counts."""
    import nats

    gaps = gaps or Gaps()
    ensure_cursor(engine, CURSOR)
    nc = await nats.connect(url, connect_timeout=5, max_reconnect_attempts=2)
    counts = {"published": 0, "duplicates": 0}
    try:
        js = nc.jetstream()
        await ensure_stream(js, stream, prefix)
        while True:
            with UnitOfWork(engine).read() as conn:
                before = cursor_of(conn, CURSOR)
            messages, upto = _pending(engine, gaps, batch, prefix)
            for seq, subject, body in messages:
                ack = await js.publish(subject, body, stream=stream, headers={"Nats-Msg-Id": str(seq)})
                counts["duplicates" if ack.duplicate else "published"] += 1
                with UnitOfWork(engine).begin() as conn:
                    move_cursor(conn, CURSOR, seq)
            if upto > before:
                with UnitOfWork(engine).begin() as conn:
                    move_cursor(conn, CURSOR, upto)  # past the events of other kinds
            else:
                return counts
    finally:
        await nc.close()


def publish(engine: sa.Engine, url: str, gaps: Gaps | None = None, **kw) -> dict:
    return asyncio.run(publish_pending(engine, url, gaps, **kw))
