"""The NATS JetStream publisher against a real server (``DINHDANH_TEST_NATS_URL``; skipped when
unset): events are published in seq order with ``Nats-Msg-Id`` = seq, read back with a consumer,
and a publisher that crashed after the ack but before moving its cursor publishes again without
a duplicate in the stream."""

from __future__ import annotations

import asyncio
import json
import os
import uuid

import pytest
import sqlalchemy as sa

from dinhdanh.changes import jetstream
from dinhdanh.changes.routing import move_cursor
from dinhdanh.store.outbox import enqueue
from tests.integration.test_changes import AN, DUC, person_id, record

NATS_URL = os.environ.get("DINHDANH_TEST_NATS_URL")
pytestmark = pytest.mark.skipif(not NATS_URL, reason="DINHDANH_TEST_NATS_URL is not set: NATS tests skipped")


async def read_stream(stream: str, prefix: str) -> list:
    import nats

    nc = await nats.connect(NATS_URL)
    try:
        js = nc.jetstream()
        sub = await js.pull_subscribe(f"{prefix}.>", durable=None, stream=stream)
        out = []
        while True:
            try:
                msgs = await sub.fetch(100, timeout=1)
            except TimeoutError:
                return out
            for m in msgs:
                out.append((m.subject, m.headers.get("Nats-Msg-Id"), json.loads(m.data)))
                await m.ack()
    finally:
        await nc.close()


async def drop_stream(stream: str) -> None:
    import nats

    nc = await nats.connect(NATS_URL)
    try:
        await nc.jetstream().delete_stream(stream)
    finally:
        await nc.close()


def test_publish_in_order_and_dedupe_after_a_crash(family):
    stream, prefix = f"T_{uuid.uuid4().hex[:10].upper()}", f"t{uuid.uuid4().hex[:10]}.changes"
    an, duc = person_id(family, AN), person_id(family, DUC)
    with family.begin() as conn:
        enqueue(conn, "person.renamed", an, {"event_id": 1, "pid": AN})
        enqueue(conn, "notify.sms", an, {"to": "0912345678", "text": "x"})  # citizens' SMS: not published
        enqueue(conn, "person.born", duc, {"event_id": 2, "pid": DUC})  # not a partner kind
    record(family, "death", pid=DUC, date_of_death="2024-05-01")
    try:
        first = jetstream.publish(family, NATS_URL, stream=stream, prefix=prefix)
        assert first == {"published": 2, "duplicates": 0}
        with family.begin() as conn:  # a crash between the ack and the cursor: the cursor is behind
            move_cursor(conn, jetstream.CURSOR, 0)
        again = jetstream.publish(family, NATS_URL, stream=stream, prefix=prefix)
        assert again == {"published": 0, "duplicates": 2}  # JetStream drops them by Nats-Msg-Id
        record(family, "name-change", pid=AN, full_name="Nguyễn Văn Ân", reason="Quyết định 3/QĐ")
        assert jetstream.publish(family, NATS_URL, stream=stream, prefix=prefix)["published"] == 1
        got = asyncio.run(read_stream(stream, prefix))
    finally:
        asyncio.run(drop_stream(stream))
    assert [(s.rsplit(".", 2)[-2:], e["data"]["pid"]) for s, _, e in got] == [
        (["person", "renamed"], AN), (["person", "died"], DUC), (["person", "renamed"], AN)]
    seqs = [int(mid) for _, mid, _ in got]
    assert seqs == sorted(seqs) and [e["data"]["seq"] for _, _, e in got] == seqs
    assert got[1][2]["type"] == "person.died" and got[1][2]["data"]["date_of_death"] == "2024-05-01"
    with family.connect() as conn:
        assert conn.execute(sa.text("SELECT last_seq FROM change_cursors WHERE name = 'nats'")).scalar_one() >= seqs[-1]


def test_nats_down_the_events_wait_in_the_outbox_and_catch_up(family):
    """NATS unreachable: the publisher fails, the cursor stays where it was (nothing counted as sent,
    nothing lost: the events are still in the outbox); with NATS back, they are published in order."""
    from dinhdanh.changes.routing import cursor_of

    stream, prefix = f"T_{uuid.uuid4().hex[:10].upper()}", f"t{uuid.uuid4().hex[:10]}.changes"
    record(family, "death", pid=DUC, date_of_death="2024-05-01")
    record(family, "name-change", pid=AN, full_name="Nguyễn Văn Ân", reason="Quyết định 3/QĐ")
    with pytest.raises(Exception):  # nothing listens on port 1
        jetstream.publish(family, "nats://127.0.0.1:1", stream=stream, prefix=prefix)
    with family.connect() as conn:
        assert cursor_of(conn, jetstream.CURSOR) == 0
    try:
        assert jetstream.publish(family, NATS_URL, stream=stream, prefix=prefix)["published"] == 2
        got = asyncio.run(read_stream(stream, prefix))
    finally:
        asyncio.run(drop_stream(stream))
    assert [e["type"] for _, _, e in got] == ["person.died", "person.renamed"]
