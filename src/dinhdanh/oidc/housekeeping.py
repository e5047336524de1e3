"""Deleting what has expired (codes, pending and pushed requests, tokens, sessions, assertion ids),
a day after expiry, and the DPoP proofs out of their window. Run by ``dinhdanh oidc purge`` (e.g. from cron).

A national provider writes millions of token rows a day, so the purge goes in batches: each batch
(``BATCH`` rows of one table, found in key order from where the last one ended) is a unit of work
of its own, committed before the next. SQLite's writer is held for one batch at a time, so the
token endpoint goes on meanwhile; a purge stopped midway keeps what it deleted, and the next run
finds what is left. Tokens and codes go before sessions: a session is deleted only when nothing
refers to it any more (indexed, ``oidc.tables``).
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from dinhdanh.oidc import dpop
from dinhdanh.oidc.tables import (oidc_assertions, oidc_codes, oidc_dpop_proofs, oidc_requests, oidc_sessions,
                                  oidc_tokens)
from dinhdanh.store.base import utcnow

GRACE = dt.timedelta(days=1)
BATCH = 5_000  # rows deleted in one unit of work


def purge_expired(db, now: dt.datetime | None = None, *, batch: int = BATCH) -> dict[str, int]:
    """Delete what has expired, in batches; ``db`` is what units of work begin on (a
    ``UnitOfWork``, or an engine). Returns the rows deleted, by kind."""
    now = now or utcnow()
    cutoff = now - GRACE
    unused = sa.and_(~sa.exists().where(oidc_tokens.c.session_id == oidc_sessions.c.session_id),
                     ~sa.exists().where(oidc_codes.c.session_id == oidc_sessions.c.session_id))
    kinds = (
        ("codes", oidc_codes, oidc_codes.c.expires_at < cutoff),
        ("requests", oidc_requests, oidc_requests.c.expires_at < cutoff),
        ("tokens", oidc_tokens, oidc_tokens.c.expires_at < cutoff),
        ("dpop_proofs", oidc_dpop_proofs, dpop.forgotten(now)),
        ("assertions", oidc_assertions, oidc_assertions.c.expires_at < cutoff),
        ("sessions", oidc_sessions,
         sa.and_(sa.or_(oidc_sessions.c.expires_at < cutoff, oidc_sessions.c.ended_at < cutoff), unused)),
    )
    return {name: _purge(db, table, condition, batch) for name, table, condition in kinds}


def _purge(db, table: sa.Table, condition, batch: int) -> int:
    """Delete ``table``'s rows meeting ``condition``, ``batch`` at a time in key order, each batch
    committed: the keys of the next ``batch`` rows are found after the last key deleted, and the
    rows of that key range meeting the condition are deleted (the condition is checked again)."""
    key = list(table.primary_key.columns)

    def of(row):  # the key, or a row of keys, as one value to compare (a key of two columns: a row value)
        return sa.tuple_(*row) if len(key) > 1 else row[0]

    deleted, last = 0, None
    while True:
        with db.begin() as conn:
            found = sa.select(*key).where(condition)
            if last is not None:
                found = found.where(of(key) > of(last))
            keys = conn.execute(found.order_by(*key).limit(batch)).all()
            if not keys:
                return deleted
            last = keys[-1]
            deleted += conn.execute(table.delete().where(condition, of(key) >= of(keys[0]),
                                                         of(key) <= of(last))).rowcount
        if len(keys) < batch:
            return deleted
