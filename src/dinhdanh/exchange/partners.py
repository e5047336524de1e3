"""The partner registry: ministries, state enterprises, localities, banks and telcos that check
people's data against the register (domain s.7).

A partner is one OAuth client of the OpenID provider (client-credentials grant, scope
``dinhdanh.verify``) plus a policy: the operations it may use (``verify``, ``kyc``, ``batch``,
``subscribe``), the register fields it may check, its purpose codes (the first is its default),
its agreement (reference, legal basis, expiry date), its information-security level, a rate
limit per minute, a daily quota (requests a Vietnam day over all operations; none: no quota), its
area (a 2025 province or commune code; none: national), whether e-KYC needs the citizen's
consent, and whether its access tokens must be DPoP-bound (``dpop_required``: RFC 9449, kept as its
client's ``dpop_bound_access_tokens``, which the provider's token endpoint enforces; the partner
routes then refuse any token of it without a proof). ``update_policy`` changes any of these; every change is kept in ``partner_events``. It
is registered ``pending``; ``approve`` (with the agreement) approves its client and makes it
``active``; ``suspend`` stops it (its client stays registered: an operator may also ``dinhdanh
client suspend`` it to revoke the tokens it holds).
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from dinhdanh import places
from dinhdanh.audit.service import PARTNER_PURPOSES
from dinhdanh.exchange.tables import PARTNER_KINDS, partner_events, partners
from dinhdanh.oidc import clients
from dinhdanh.oidc.tables import oidc_clients
from dinhdanh.registry.area import Area
from dinhdanh.registry.errors import Forbidden, InvalidInput, NotFound
from dinhdanh.store.base import utcnow

OPERATIONS = ("verify", "kyc", "batch", "subscribe")
# The register fields a policy names: what ``verify`` may check and ``kyc`` may disclose.
# ``address`` is the permanent residence; ``hometown`` the place of origin (quê quán);
# ``card`` the current ID card (its state for verify; number and dates for KYC).
FIELDS = ("full_name", "date_of_birth", "sex", "phone", "address", "status", "card",
          "nationality", "hometown", "current_address")
SCOPE = "dinhdanh.verify"
DEFAULT_RATE = 600
MAX_RATE = 1_000_000
MAX_QUOTA = 100_000_000
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


def _rate(value) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_RATE:
        raise InvalidInput(f"The rate limit must be 1 to {MAX_RATE} requests per minute.", field="rate")
    return value


def _quota(value) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_QUOTA:
        raise InvalidInput(f"The daily quota must be 1 to {MAX_QUOTA} requests, or none.", field="quota")
    return value


def _dpop(value) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput("dpop_required is true or false.", field="dpop_required")
    return value


def check_area_code(value, field: str = "area") -> str | None:
    """A 2025 province (2 digits) or commune (5 digits) code; None / "" / "national": national."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "national")):
        return None
    code = value.strip() if isinstance(value, str) else value
    if isinstance(code, str) and ((len(code) == 2 and code in places.PROVINCES)
                                  or (len(code) == 5 and code in places.COMMUNES)):
        return code
    raise InvalidInput("The area must be a 2025 province code (2 digits, e.g. 79), a commune code "
                       "(5 digits, e.g. 00070) or national.", field=field)


def area_of(row) -> Area:
    """The part of the country a partner serves (``registry.area``)."""
    return Area.of_code(row.area_code)


def _event(conn: sa.Connection, partner_id: int, kind: str, actor: str, changes: dict) -> None:
    conn.execute(partner_events.insert().values(partner_id=partner_id, kind=kind, at=utcnow(), actor=actor,
                                                changes=changes))


def view(row) -> dict:
    return {"partner_id": row.partner_id, "name": row.name, "kind": row.kind, "client_id": row.client_id,
            "operations": list(row.operations), "fields": list(row.fields), "purposes": list(row.purposes),
            "agreement": row.agreement, "legal_basis": row.legal_basis,
            "agreement_expires": row.agreement_expires.isoformat() if row.agreement_expires else None,
            "security_level": row.security_level, "state": row.state, "rate_per_minute": row.rate_per_minute,
            "area_code": row.area_code, "quota_per_day": row.quota_per_day,
            "kyc_consent_required": row.kyc_consent_required, "dpop_required": bool(row.dpop_required),
            "created_at": row.created_at.isoformat(), "approved_at":
                row.approved_at.isoformat() if row.approved_at else None, "approved_by": row.approved_by}


def load(conn: sa.Connection, client_id) -> sa.Row | None:
    if not isinstance(client_id, str) or not client_id or len(client_id) > 64:
        return None
    return conn.execute(_BY_CLIENT, {"client_id": client_id}).first()


# the policy's ``dpop_required`` is kept on the partner's OAuth client, where the token endpoint reads it
_WITH_CLIENT = partners.outerjoin(oidc_clients, oidc_clients.c.client_id == partners.c.client_id)
_DPOP = oidc_clients.c.dpop_bound_access_tokens.label("dpop_required")
_BY_CLIENT = (sa.select(partners, _DPOP).select_from(_WITH_CLIENT)
              .where(partners.c.client_id == sa.bindparam("client_id")))
# the partner and the status of its OAuth client, in one query (every partner request reads them)
_ACTIVE = (sa.select(partners, oidc_clients.c.status.label("client_status"), _DPOP).select_from(_WITH_CLIENT)
           .where(partners.c.client_id == sa.bindparam("client_id")))


def _row(conn: sa.Connection, client_id: str) -> sa.Row:
    row = load(conn, client_id)
    if row is None:
        raise NotFound("No partner with this client id.", field="client_id")
    return row


def add_partner(conn: sa.Connection, *, name: str, kind: str, operations, fields, purposes=None,
                rate_per_minute: int = DEFAULT_RATE, actor: str = "system", auth_method: str = "client_secret_basic",
                jwks: dict | None = None, quota_per_day: int | None = None, area_code: str | None = None,
                kyc_consent_required: bool = True, dpop_required: bool = False) -> dict:
    """Register a partner (``pending``) and its OAuth client; the client secret is shown this once."""
    if kind not in PARTNER_KINDS:
        raise InvalidInput(f"The kind must be one of {', '.join(PARTNER_KINDS)}.", field="kind")
    ops = _subset(operations, OPERATIONS, "operations")
    allowed_fields = _subset(fields, FIELDS, "fields")
    codes = _subset(purposes, tuple(PARTNER_PURPOSES), "purposes", required=False) or [DEFAULT_PURPOSE[kind]]
    _rate(rate_per_minute)
    quota = _quota(quota_per_day)
    area = check_area_code(area_code)
    if not isinstance(kyc_consent_required, bool):
        raise InvalidInput("kyc_consent_required is true or false.", field="kyc_consent")
    _dpop(dpop_required)
    made = clients.register_client(conn, name=name, redirect_uris=[], scopes=SCOPE, auth_method=auth_method,
                                   jwks=jwks, grant_types=["client_credentials"], actor=actor)
    if dpop_required:
        clients.require_dpop(conn, made["client_id"], True)
    now = utcnow()
    partner_id = conn.execute(partners.insert().returning(partners.c.partner_id).values(
        name=made["name"], kind=kind, client_id=made["client_id"], operations=ops, fields=allowed_fields,
        purposes=codes, state="pending", rate_per_minute=rate_per_minute, quota_per_day=quota, area_code=area,
        kyc_consent_required=kyc_consent_required, created_at=now, created_by=actor,
        updated_at=now)).scalar_one()
    added = view(_row(conn, made["client_id"]))
    _event(conn, partner_id, "added", actor, {k: {"old": None, "new": added[k]} for k in POLICY})
    return {**added, "partner_id": partner_id, "client_secret": made["client_secret"],
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
    _event(conn, row.partner_id, "approved", actor, {
        "state": {"old": row.state, "new": "active"}, "agreement": {"old": row.agreement, "new": agreement.strip()},
        "agreement_expires": {"old": row.agreement_expires.isoformat() if row.agreement_expires else None,
                              "new": expires.isoformat()}})
    return view(_row(conn, client_id))


def suspend_partner(conn: sa.Connection, client_id: str, *, actor: str) -> dict:
    """Stop a partner: every exchange operation is refused until it is approved again."""
    row = _row(conn, client_id)
    conn.execute(partners.update().where(partners.c.client_id == client_id)
                 .values(state="suspended", updated_at=utcnow()))
    _event(conn, row.partner_id, "suspended", actor, {"state": {"old": row.state, "new": "suspended"}})
    return view(_row(conn, client_id))


# The policy: what ``update_policy`` may change (and ``partner_events`` records).
POLICY = ("operations", "fields", "purposes", "rate_per_minute", "quota_per_day", "area_code",
          "kyc_consent_required", "dpop_required")
_UNCHANGED = object()


def update_policy(conn: sa.Connection, client_id: str, *, operations=_UNCHANGED, fields=_UNCHANGED,
                  purposes=_UNCHANGED, rate_per_minute=_UNCHANGED, quota_per_day=_UNCHANGED,
                  area_code=_UNCHANGED, kyc_consent_required=_UNCHANGED, dpop_required=_UNCHANGED,
                  actor: str) -> dict:
    """Change a partner's policy: only what is given changes (``quota_per_day=None`` removes the
    quota, ``area_code=None`` makes it national), each value checked as in ``add_partner``; the
    change (who, when, old and new values) is recorded in ``partner_events``. The new policy
    applies from the partner's next request."""
    row = _row(conn, client_id)
    new: dict = {}
    if operations is not _UNCHANGED:
        new["operations"] = _subset(operations, OPERATIONS, "operations")
    if fields is not _UNCHANGED:
        new["fields"] = _subset(fields, FIELDS, "fields")
    if purposes is not _UNCHANGED:
        new["purposes"] = _subset(purposes, tuple(PARTNER_PURPOSES), "purposes")
    if rate_per_minute is not _UNCHANGED:
        new["rate_per_minute"] = _rate(rate_per_minute)
    if quota_per_day is not _UNCHANGED:
        new["quota_per_day"] = _quota(quota_per_day)
    if area_code is not _UNCHANGED:
        new["area_code"] = check_area_code(area_code)
    if kyc_consent_required is not _UNCHANGED:
        if not isinstance(kyc_consent_required, bool):
            raise InvalidInput("kyc_consent_required is true or false.", field="kyc_consent")
        new["kyc_consent_required"] = kyc_consent_required
    if dpop_required is not _UNCHANGED:
        new["dpop_required"] = _dpop(dpop_required)
    if not new:
        raise InvalidInput(f"Give at least one policy change: {', '.join(POLICY)}.", field="policy")
    old = view(row)
    changed = {k: {"old": old[k], "new": v} for k, v in new.items() if old[k] != v}
    if changed:
        if "dpop_required" in changed:  # on the client: the token endpoint enforces it
            clients.require_dpop(conn, client_id, new["dpop_required"])
        conn.execute(partners.update().where(partners.c.client_id == client_id)
                     .values(**{k: new[k] for k in changed if k != "dpop_required"}, updated_at=utcnow()))
        _event(conn, row.partner_id, "policy", actor, changed)
    return view(_row(conn, client_id))


def partner_history(conn: sa.Connection, client_id: str) -> list[dict]:
    """Every recorded change of the partner, oldest first."""
    row = _row(conn, client_id)
    rows = conn.execute(sa.select(partner_events).where(partner_events.c.partner_id == row.partner_id)
                        .order_by(partner_events.c.event_id)).all()
    return [{"at": r.at.isoformat(), "kind": r.kind, "actor": r.actor, "changes": r.changes} for r in rows]


def show_partner(conn: sa.Connection, client_id: str) -> dict:
    """One partner's policy and state, with its history."""
    return {**view(_row(conn, client_id)), "history": partner_history(conn, client_id)}


def list_partners(conn: sa.Connection) -> list[dict]:
    return [view(r) for r in conn.execute(sa.select(partners, _DPOP).select_from(_WITH_CLIENT)
                                          .order_by(partners.c.partner_id))]


def active_partner(conn: sa.Connection, client_id: str, operation: str, today: dt.date | None = None) -> sa.Row:
    """The partner behind ``client_id`` if it may use ``operation`` now; ``Forbidden`` otherwise
    (no partner, not active, agreement expired, client not approved, operation not in its policy)."""
    found = isinstance(client_id, str) and 0 < len(client_id) <= 64
    row = conn.execute(_ACTIVE, {"client_id": client_id}).first() if found else None
    if row is None:
        raise Forbidden(f"Client {client_id!r} is not a registered partner.", code="not_a_partner", field="partner")
    if row.state != "active":
        raise Forbidden(f"Partner {client_id!r} is not active ({row.state}).", code="partner_inactive",
                        field="partner")
    if row.agreement_expires is None or row.agreement_expires < (today or utcnow().date()):
        raise Forbidden(f"The agreement of partner {client_id!r} has expired.", code="agreement_expired",
                        field="partner")
    if row.client_status != "approved":
        raise Forbidden(f"The client of partner {client_id!r} is not approved.", code="partner_inactive",
                        field="partner")
    if operation not in row.operations:
        raise Forbidden(f"Partner {client_id!r} may not use the operation {operation!r}.",
                        code="operation_not_allowed", field="operation")
    return row


__all__ = ["OPERATIONS", "FIELDS", "POLICY", "add_partner", "approve_partner", "suspend_partner", "list_partners",
           "active_partner", "update_policy", "partner_history", "show_partner", "area_of", "load", "view"]
