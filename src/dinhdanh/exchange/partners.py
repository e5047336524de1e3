"""The partner registry: ministries, state enterprises, localities, banks and telcos that check
people's data against the register (domain s.7).

A partner is one OAuth client of the OpenID provider (client-credentials grant, scope
``dinhdanh.verify``) plus a policy: the operations it may use (``verify``, ``kyc``, ``batch``,
``subscribe``), the register fields it may check, its purpose codes (the first is its default),
its agreement (reference, legal basis, expiry date), its information-security level and a rate
limit per minute. It is registered ``pending``; ``approve`` (with the agreement) approves its
client and makes it ``active``; ``suspend`` stops it (its client stays registered: an operator may
also ``dinhdanh client suspend`` it to revoke the tokens it holds).
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from dinhdanh.audit.service import PARTNER_PURPOSES
from dinhdanh.exchange.tables import PARTNER_KINDS, partners
from dinhdanh.oidc import clients
from dinhdanh.registry.errors import Forbidden, InvalidInput, NotFound
from dinhdanh.store.base import utcnow

OPERATIONS = ("verify", "kyc", "batch", "subscribe")
FIELDS = ("full_name", "date_of_birth", "sex", "phone", "address", "status", "card")
SCOPE = "dinhdanh.verify"
DEFAULT_RATE = 600
MAX_RATE = 1_000_000
DEFAULT_PURPOSE = {"telco": "subscriber_standardisation", "bank": "customer_verification",
                   "locality": "public_service", "ministry": "public_service",
                   "state_enterprise": "identity_verification"}


def _subset(values, allowed: tuple[str, ...], field: str, *, required: bool = True) -> list[str]:
    if isinstance(values, str):
        values = values.split(",")
    chosen = list(dict.fromkeys(v.strip() for v in (values or []) if v and v.strip()))
    unknown = [v for v in chosen if v not in allowed]
    if unknown:
        raise InvalidInput(f"Unknown {field}: {', '.join(unknown)}; known: {', '.join(allowed)}.", field=field)
    if required and not chosen:
        raise InvalidInput(f"Give at least one of: {', '.join(allowed)}.", field=field)
    return chosen


def view(row) -> dict:
    return {"partner_id": row.partner_id, "name": row.name, "kind": row.kind, "client_id": row.client_id,
            "operations": list(row.operations), "fields": list(row.fields), "purposes": list(row.purposes),
            "agreement": row.agreement, "legal_basis": row.legal_basis,
            "agreement_expires": row.agreement_expires.isoformat() if row.agreement_expires else None,
            "security_level": row.security_level, "state": row.state, "rate_per_minute": row.rate_per_minute,
            "area_code": row.area_code, "quota_per_day": row.quota_per_day,
            "kyc_consent_required": row.kyc_consent_required,
            "created_at": row.created_at.isoformat(), "approved_at":
                row.approved_at.isoformat() if row.approved_at else None, "approved_by": row.approved_by}


def load(conn: sa.Connection, client_id) -> sa.Row | None:
    if not isinstance(client_id, str) or not client_id or len(client_id) > 64:
        return None
    return conn.execute(_BY_CLIENT, {"client_id": client_id}).first()


_BY_CLIENT = sa.select(partners).where(partners.c.client_id == sa.bindparam("client_id"))


def _row(conn: sa.Connection, client_id: str) -> sa.Row:
    row = load(conn, client_id)
    if row is None:
        raise NotFound("No partner with this client id.", field="client_id")
    return row


def add_partner(conn: sa.Connection, *, name: str, kind: str, operations, fields, purposes=None,
                rate_per_minute: int = DEFAULT_RATE, actor: str = "system", auth_method: str = "client_secret_basic",
                jwks: dict | None = None) -> dict:
    """Register a partner (``pending``) and its OAuth client; the client secret is shown this once."""
    if kind not in PARTNER_KINDS:
        raise InvalidInput(f"The kind must be one of {', '.join(PARTNER_KINDS)}.", field="kind")
    ops = _subset(operations, OPERATIONS, "operations")
    allowed_fields = _subset(fields, FIELDS, "fields")
    codes = _subset(purposes, tuple(PARTNER_PURPOSES), "purposes", required=False) or [DEFAULT_PURPOSE[kind]]
    if not isinstance(rate_per_minute, int) or isinstance(rate_per_minute, bool) \
            or not 1 <= rate_per_minute <= MAX_RATE:
        raise InvalidInput(f"The rate limit must be 1 to {MAX_RATE} requests per minute.", field="rate")
    made = clients.register_client(conn, name=name, redirect_uris=[], scopes=SCOPE, auth_method=auth_method,
                                   jwks=jwks, grant_types=["client_credentials"], actor=actor)
    now = utcnow()
    partner_id = conn.execute(partners.insert().returning(partners.c.partner_id).values(
        name=made["name"], kind=kind, client_id=made["client_id"], operations=ops, fields=allowed_fields,
        purposes=codes, state="pending", rate_per_minute=rate_per_minute, created_at=now, created_by=actor,
        updated_at=now)).scalar_one()
    return {**view(_row(conn, made["client_id"])), "partner_id": partner_id, "client_secret": made["client_secret"],
            "token_endpoint_auth_method": auth_method, "scope": SCOPE}


def approve_partner(conn: sa.Connection, client_id: str, *, agreement: str, legal_basis: str,
                    expires: dt.date, security_level: int, actor: str, today: dt.date | None = None) -> dict:
    """Approve a partner against its signed agreement: its client is approved, the partner active."""
    row = _row(conn, client_id)
    legal_basis = (legal_basis or "").strip()
    if not legal_basis or len(legal_basis) > 500:
        raise InvalidInput("State the legal basis (1 to 500 characters).", field="legal_basis")
    if not isinstance(expires, dt.date) or expires <= (today or utcnow().date()):
        raise InvalidInput("The agreement's expiry date must be in the future.", field="expires")
    purpose = "; ".join(f"{c}: {PARTNER_PURPOSES[c]}" for c in row.purposes)
    clients.approve_client(conn, client_id, agreement=agreement, purpose=purpose,
                           security_level=security_level, actor=actor)
    now = utcnow()
    conn.execute(partners.update().where(partners.c.client_id == client_id).values(
        agreement=agreement.strip(), legal_basis=legal_basis, agreement_expires=expires,
        security_level=security_level, state="active", approved_at=now, approved_by=actor, updated_at=now))
    return view(_row(conn, client_id))


def suspend_partner(conn: sa.Connection, client_id: str, *, actor: str) -> dict:
    """Stop a partner: every exchange operation is refused until it is approved again."""
    _row(conn, client_id)
    conn.execute(partners.update().where(partners.c.client_id == client_id)
                 .values(state="suspended", updated_at=utcnow()))
    return view(_row(conn, client_id))


def list_partners(conn: sa.Connection) -> list[dict]:
    return [view(r) for r in conn.execute(sa.select(partners).order_by(partners.c.partner_id))]


def active_partner(conn: sa.Connection, client_id: str, operation: str, today: dt.date | None = None) -> sa.Row:
    """The partner behind ``client_id`` if it may use ``operation`` now; ``Forbidden`` otherwise
    (no partner, not active, agreement expired, client not approved, operation not in its policy)."""
    row = load(conn, client_id)
    if row is None:
        raise Forbidden(f"Client {client_id!r} is not a registered partner.", code="not_a_partner", field="partner")
    if row.state != "active":
        raise Forbidden(f"Partner {client_id!r} is not active ({row.state}).", code="partner_inactive",
                        field="partner")
    if row.agreement_expires is None or row.agreement_expires < (today or utcnow().date()):
        raise Forbidden(f"The agreement of partner {client_id!r} has expired.", code="agreement_expired",
                        field="partner")
    client = clients.load_client(conn, client_id)
    if client is None or not client.approved:
        raise Forbidden(f"The client of partner {client_id!r} is not approved.", code="partner_inactive",
                        field="partner")
    if operation not in row.operations:
        raise Forbidden(f"Partner {client_id!r} may not use the operation {operation!r}.",
                        code="operation_not_allowed", field="operation")
    return row


__all__ = ["OPERATIONS", "FIELDS", "add_partner", "approve_partner", "suspend_partner", "list_partners",
           "active_partner", "load", "view"]
