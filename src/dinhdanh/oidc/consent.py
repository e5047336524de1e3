"""What a person allowed each relying party to receive: remembered for 180 days, revocable.

A remembered consent covers a request when every claim and permission asked for was granted and
the consent has neither expired nor been revoked; anything new is asked again. Revoking a consent
also revokes the tokens the relying party holds for the person.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from dinhdanh.oidc import tokens
from dinhdanh.oidc.tables import oidc_clients, oidc_consents
from dinhdanh.registry.errors import NotFound
from dinhdanh.store.base import utcnow

REMEMBER = dt.timedelta(days=180)


def covers(conn: sa.Connection, account_id: int, client_id: str, wanted: set[str],
           now: dt.datetime | None = None) -> bool:
    now = now or utcnow()
    row = conn.execute(sa.select(oidc_consents).where(oidc_consents.c.account_id == account_id,
                                                      oidc_consents.c.client_id == client_id)).first()
    if row is None or row.revoked_at is not None or row.expires_at <= now:
        return False
    return wanted <= set(row.claims)


def grant(conn: sa.Connection, account_id: int, client_id: str, scope: str, granted: set[str],
          now: dt.datetime | None = None) -> None:
    """Remember a consent (replacing the previous one for this relying party)."""
    now = now or utcnow()
    values = {"scope": scope, "claims": sorted(granted), "granted_at": now, "expires_at": now + REMEMBER,
              "revoked_at": None}
    done = conn.execute(oidc_consents.update().where(oidc_consents.c.account_id == account_id,
                                                     oidc_consents.c.client_id == client_id).values(**values))
    if done.rowcount == 0:
        conn.execute(oidc_consents.insert().values(account_id=account_id, client_id=client_id, **values))


def list_consents(conn: sa.Connection, account_id: int, now: dt.datetime | None = None) -> list[dict]:
    now = now or utcnow()
    rows = conn.execute(
        sa.select(oidc_consents, oidc_clients.c.name)
        .join(oidc_clients, oidc_clients.c.client_id == oidc_consents.c.client_id)
        .where(oidc_consents.c.account_id == account_id, oidc_consents.c.revoked_at.is_(None),
               oidc_consents.c.expires_at > now)
        .order_by(oidc_consents.c.granted_at.desc())).all()
    return [{"client_id": r.client_id, "client_name": r.name, "scope": r.scope, "claims": list(r.claims),
             "granted_at": r.granted_at.isoformat(), "expires_at": r.expires_at.isoformat()} for r in rows]


def revoke(conn: sa.Connection, account_id: int, client_id: str, now: dt.datetime | None = None) -> None:
    """Withdraw a consent; the relying party's tokens for this person stop working."""
    now = now or utcnow()
    done = conn.execute(oidc_consents.update().where(
        oidc_consents.c.account_id == account_id, oidc_consents.c.client_id == client_id,
        oidc_consents.c.revoked_at.is_(None), oidc_consents.c.expires_at > now).values(revoked_at=now))
    if done.rowcount == 0:
        raise NotFound("You have no consent in force for this service.", code="consent_not_found",
                       field="client_id")
    tokens.revoke_account_tokens(conn, account_id, "consent_revoked", client_id=client_id)
