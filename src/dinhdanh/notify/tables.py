"""Which outbox notifications were delivered, and how (the outbox itself is ``store.outbox``)."""

from __future__ import annotations

import sqlalchemy as sa

import dinhdanh.store.outbox  # noqa: F401  (the table referred to)
from dinhdanh.store.base import Id, UTCDateTime, metadata

notification_deliveries = sa.Table(
    "notification_deliveries", metadata,
    sa.Column("seq", Id, sa.ForeignKey("outbox.seq"), primary_key=True),
    sa.Column("channel", sa.String(10), nullable=False),  # sms / email
    sa.Column("delivered_at", UTCDateTime, nullable=False),
    sa.Column("outcome", sa.String(10), nullable=False),  # sent / failed
    sa.Column("attempts", sa.SmallInteger, nullable=False, server_default="1"),
)
