"""Events that leave the platform, written in the same transaction as the change they report.

A deliverer (signed webhooks, NATS) reads them in ``seq`` order afterwards, so nothing is lost
when the process dies between the change and the delivery.
"""

import sqlalchemy as sa

from dinhdanh.store.base import Id, UTCDateTime, metadata, utcnow

outbox = sa.Table(
    "outbox", metadata,
    sa.Column("seq", Id, primary_key=True, autoincrement=True),
    sa.Column("topic", sa.String(40), nullable=False),  # "person.died", "person.moved", ...
    sa.Column("person_id", Id),  # ordering key: events of one person stay in order
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)


def enqueue(conn: sa.Connection, topic: str, person_id: int | None, payload: dict) -> None:
    conn.execute(_INSERT, {"topic": topic, "person_id": person_id, "payload": payload, "created_at": utcnow()})


_INSERT = outbox.insert()  # built once: every change that leaves the platform writes one row
