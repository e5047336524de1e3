"""Deleting what has expired (codes, pending and pushed requests, tokens, sessions, assertion ids),
a day after expiry, and the DPoP proofs out of their window. Run by ``dinhdanh oidc purge`` (e.g. from cron)."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from dinhdanh.oidc import dpop
from dinhdanh.oidc.tables import oidc_assertions, oidc_codes, oidc_requests, oidc_sessions, oidc_tokens
from dinhdanh.store.base import utcnow

GRACE = dt.timedelta(days=1)


def purge_expired(conn: sa.Connection, now: dt.datetime | None = None) -> dict[str, int]:
    cutoff = (now or utcnow()) - GRACE
    done = {}
    for name, table in (("codes", oidc_codes), ("requests", oidc_requests), ("tokens", oidc_tokens)):
        done[name] = conn.execute(table.delete().where(table.c.expires_at < cutoff)).rowcount
    done["dpop_proofs"] = dpop.purge(conn, now or utcnow())
    done["assertions"] = conn.execute(oidc_assertions.delete().where(oidc_assertions.c.expires_at < cutoff)).rowcount
    unused = sa.and_(~sa.exists().where(oidc_tokens.c.session_id == oidc_sessions.c.session_id),
                     ~sa.exists().where(oidc_codes.c.session_id == oidc_sessions.c.session_id))
    done["sessions"] = conn.execute(oidc_sessions.delete().where(
        sa.or_(oidc_sessions.c.expires_at < cutoff, oidc_sessions.c.ended_at < cutoff), unused)).rowcount
    return done
