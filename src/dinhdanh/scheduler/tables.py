"""Tables of the scheduler: one row per timer, ``(kind, key)`` unique."""

from __future__ import annotations

import sqlalchemy as sa

from dinhdanh.store.base import Id, UTCDateTime, metadata, one_of

STATUSES = ("pending", "running", "done", "failed", "cancelled")

# One row per timer. ``status`` moves by conditional UPDATEs only (jobs.py); a running job holds a
# lease (``lease_until``, ``worker``) and is taken again once the lease has passed. ``last_error``
# is the exception's type and a short message, never a payload value nor personal data.
scheduled_jobs = sa.Table(
    "scheduled_jobs", metadata,
    sa.Column("job_id", Id, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(60), nullable=False),
    sa.Column("key", sa.String(120), nullable=False),
    sa.Column("due_at", UTCDateTime, nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("status", sa.String(10), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("lease_until", UTCDateTime),
    sa.Column("worker", sa.String(120)),
    sa.Column("last_error", sa.String(300)),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.CheckConstraint(one_of("status", *STATUSES), name="status"),
    sa.CheckConstraint("attempts >= 0", name="attempts"),
    sa.UniqueConstraint("kind", "key"),
    sa.Index("ix_scheduled_jobs_status_due_at", "status", "due_at"),
)
