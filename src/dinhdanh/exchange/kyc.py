"""e-KYC: a partner receives a person's register data, signed, within its policy and with the
person's consent (domain s.7).

``disclose`` answers ``GET /api/v1/citizens/{pid}/kyc``: the fields asked (default: every field
of the partner's policy), each with its value, its source (``population_register`` or
``card_register``) and the time it last changed (the newest ``changes`` row of its columns, else
when the record was created), in a compact JWS (ES256, the OpenID provider's signing key, ``kid``
in the header, ``typ`` ``kyc+jwt``) that the partner keeps as proof of what it received and
anyone verifies with the provider's ``/jwks``.

Consent: a partner whose policy requires it (``kyc_consent_required``, the default) gets data only
when the person's e-ID account holds an unexpired, unrevoked consent to the partner's client
(``oidc_consents``) covering every field asked. Consent is given through the self-service API
(``grant_consent``: the KYC field names are stored in the consent's claims list) or through the
login provider when the partner's client also has the code flow (an OpenID claim released at
login counts for the matching field: ``CLAIM_OF``). Withdrawing it (``DELETE /me/consents``)
stops the next request.

Existence: for a partner that needs consent, an unknown PID (or one outside the partner's area)
gets the same ``consent_required`` refusal as a real person without consent, so the partner learns
nothing of who is in the register before the person agrees; only a partner answering under a
law without consent gets the plain 404. Every call about a known person is written to the access
log (action ``kyc``, the fields, outcome ``ok`` or ``refused``) in the request's transaction.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass

import sqlalchemy as sa

from dinhdanh.audit import service as audit
from dinhdanh.cards import lifecycle
from dinhdanh.cards.tables import cards
from dinhdanh.eid.tables import eid_accounts
from dinhdanh.exchange import partners
from dinhdanh.oidc import consent, keys
from dinhdanh.oidc.tables import oidc_consents
from dinhdanh.registry.errors import InvalidInput, NotFound
from dinhdanh.registry.records import find_person, place
from dinhdanh.registry.tables import changes, events
from dinhdanh.store.base import utcnow
from dinhdanh.store.vault import Vault

TYP = "kyc+jwt"
POPULATION, CARDS = "population_register", "card_register"
# The register columns behind each KYC field: its "last update" is the newest change of any of them.
COLUMNS: dict[str, tuple[str, ...]] = {
    "full_name": ("full_name",), "date_of_birth": ("date_of_birth",), "sex": ("sex",),
    "nationality": ("nationality",), "hometown": ("hometown",),
    "address": ("province_code", "commune_code", "address"), "current_address": ("current_address",),
    "phone": ("phone",), "status": ("status", "date_of_death", "date_missing"),
}
KYC_FIELDS = (*COLUMNS, "card")
assert set(KYC_FIELDS) == set(partners.FIELDS), "every policy field is disclosable"
# The OpenID claim that, released to the same client at login, is consent for a KYC field.
CLAIM_OF = {"full_name": "name", "date_of_birth": "birthdate", "sex": "gender", "phone": "phone_number",
            "address": "address"}


@dataclass(frozen=True)
class Refusal:
    """A refusal that is answered (403) with its access-log entry committed."""

    code: str
    message: str
    field: str | None


def parse_fields(value: str | None) -> list[str] | None:
    """``a,b`` -> ``["a", "b"]`` (order kept, duplicates dropped); None/empty: the whole policy."""
    if value is None or not value.strip():
        return None
    asked = list(dict.fromkeys(f.strip() for f in value.split(",") if f.strip()))
    unknown = [f for f in asked if f not in KYC_FIELDS]
    if unknown:
        raise InvalidInput(f"Unknown field(s): {', '.join(unknown)}; known: {', '.join(KYC_FIELDS)}.",
                           field="fields")
    return asked


def consent_covers(conn: sa.Connection, person_id: int, client_id: str, asked, now: dt.datetime | None = None) -> bool:
    """Whether the person's e-ID account holds a consent in force to ``client_id`` for every field."""
    now = now or utcnow()
    row = conn.execute(sa.select(oidc_consents.c.claims, oidc_consents.c.revoked_at, oidc_consents.c.expires_at)
                       .join(eid_accounts, eid_accounts.c.account_id == oidc_consents.c.account_id)
                       .where(eid_accounts.c.person_id == person_id, oidc_consents.c.client_id == client_id)).first()
    if row is None or row.revoked_at is not None or row.expires_at <= now:
        return False
    granted = set(row.claims or ())
    return all(f in granted or CLAIM_OF.get(f) in granted for f in asked)


def grant_consent(conn: sa.Connection, account_id: int, client_id, fields, now: dt.datetime | None = None) -> dict:
    """The citizen allows the partner ``client_id`` (active, with ``kyc``) to receive ``fields``
    by e-KYC: added to the consent in force for that client (or a new one), for 180 days."""
    asked = partners._subset(fields, KYC_FIELDS, "fields")
    partner = partners.active_partner(conn, client_id, "kyc")  # Forbidden -> 403, naming why
    outside = [f for f in asked if f not in partner.fields]
    if outside:
        raise InvalidInput(f"This partner may not receive: {', '.join(outside)} (its policy: "
                           f"{', '.join(partner.fields)}).", field="fields")
    now = now or utcnow()
    held = conn.execute(sa.select(oidc_consents).where(oidc_consents.c.account_id == account_id,
                                                       oidc_consents.c.client_id == partner.client_id)).first()
    in_force = held is not None and held.revoked_at is None and held.expires_at > now
    granted = (set(held.claims) if in_force else set()) | set(asked)
    consent.grant(conn, account_id, partner.client_id, held.scope if in_force else "", granted, now)
    return next(c for c in consent.list_consents(conn, account_id, now) if c["client_id"] == partner.client_id)


def _last_changes(conn: sa.Connection, person_id: int, columns: set[str]) -> dict[str, dt.datetime]:
    rows = conn.execute(sa.select(changes.c.field, sa.func.max(events.c.recorded_at))
                        .join(events, events.c.event_id == changes.c.event_id)
                        .where(changes.c.person_id == person_id, changes.c.field.in_(sorted(columns)))
                        .group_by(changes.c.field)).all()
    return {field: at for field, at in rows}


def _iso(value) -> str | None:
    return value.isoformat() if value is not None else None


def _card(conn: sa.Connection, person) -> tuple[dict | None, dt.datetime]:
    card = lifecycle.current_card(conn, person.person_id)
    if card is None:
        latest = conn.execute(sa.select(cards.c.produced_at, cards.c.issued_at, cards.c.revoked_at)
                              .where(cards.c.person_id == person.person_id)
                              .order_by(cards.c.card_id.desc()).limit(1)).first()
        at = (latest.revoked_at or latest.issued_at or latest.produced_at) if latest else person.created_at
        return None, at
    state = "expired" if lifecycle.effective_status(card) == "expired" else "current"
    return ({"number": card.card_number, "issue_date": _iso(card.issue_date),
             "expiry_date": _iso(card.expiry_date), "state": state}, card.issued_at or card.produced_at)


def _value(person, field: str):
    if field == "address":
        return place(person.province_code, person.commune_code, person.address)
    return _iso(getattr(person, field)) if field == "date_of_birth" else getattr(person, field)


def fields_of(conn: sa.Connection, person, asked) -> dict:
    """Each asked field: value, source, and when it last changed (ISO, UTC)."""
    wanted = {c for f in asked if f in COLUMNS for c in COLUMNS[f]}
    last = _last_changes(conn, person.person_id, wanted) if wanted else {}
    out = {}
    for f in asked:
        if f == "card":
            value, at = _card(conn, person)
            out[f] = {"value": value, "source": CARDS, "updated_at": at.isoformat()}
            continue
        times = [last[c] for c in COLUMNS[f] if c in last]
        at = max(times) if times else person.created_at
        out[f] = {"value": _value(person, f), "source": POPULATION, "updated_at": at.isoformat()}
    return out


def disclose(conn: sa.Connection, vault: Vault, partner, pid: str, *, purpose: str | None,
             fields: list[str] | None, issuer: str, now: dt.datetime | None = None) -> dict | Refusal:
    """The signed KYC answer for ``pid`` to ``partner`` (an active partner with ``kyc``), or the
    ``Refusal`` to answer with (already written to the access log for a known person)."""
    actor = f"partner:{partner.client_id}"
    policy = [f for f in KYC_FIELDS if f in partner.fields]
    asked = fields if fields is not None else policy
    try:
        person = find_person(conn, pid, partners.area_of(partner))
    except NotFound:
        person = None
    purpose = purpose or partner.purposes[0]

    def refuse(code: str, message: str, field: str | None) -> Refusal:
        if person is not None:
            audit.record_access(conn, actor, [person.person_id], "kyc", purpose, fields=asked, outcome="refused")
        return Refusal(code, message, field)

    if purpose not in partner.purposes:
        return refuse("purpose_not_allowed", f"The purpose {purpose!r} is not among this partner's purposes "
                      f"({', '.join(partner.purposes)}).", "purpose")
    outside = [f for f in asked if f not in policy]
    if outside:
        return refuse("field_not_allowed", f"This partner may not receive the field(s): {', '.join(outside)}.",
                      outside[0])
    if person is None and not partner.kyc_consent_required:
        raise NotFound("No person with this personal ID number.", field="pid")
    if person is None or (partner.kyc_consent_required
                          and not consent_covers(conn, person.person_id, partner.client_id, asked, now)):
        return refuse("consent_required", "The citizen has not consented to this partner receiving the fields "
                      f"asked ({', '.join(asked)}); they can consent in the e-ID app or the self-service API.",
                      "consent")
    now = now or utcnow()
    claims = {"iss": issuer, "aud": partner.client_id, "iat": int(now.timestamp()), "jti": secrets.token_urlsafe(16),
              "purpose": purpose, "sub": person.pid, "fields": fields_of(conn, person, asked)}
    token = keys.sign_json(conn, vault, claims, TYP)
    audit.record_access(conn, actor, [person.person_id], "kyc", purpose, fields=asked, outcome="ok")
    return {"jws": token, "claims": claims}
