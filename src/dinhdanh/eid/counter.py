"""What happens in person: level 2 at a police office, foreigners, and organisations.

Level 2 (Decree 69/2024): the officer checks the card (its number, and the chip's verification
verdict from the reader), captures the face and the fingerprints, records whether they match and
the person's consent; the account is raised to level 2, or created at level 2 (pending, with an
activation code sent to the person's phone). Biometrics are sealed by the vault (purposes
``eid-face`` / ``eid-fingerprint``).

Foreigners are not in the register: an officer records them (``add_foreigner``) from the passport
and residence card, then enrols them at the counter. Organisations are registered by their legal
representative, from the representative's active level-2 account.
"""

from __future__ import annotations

import datetime as dt
import secrets

import sqlalchemy as sa

from dinhdanh.eid import accounts, auth, factors, faces, passcodes, registration
from dinhdanh.eid.tables import eid_accounts, eid_biometrics, eid_level2_checks, foreigners, organisations
from dinhdanh.ids import names
from dinhdanh.ids.exceptions import ValidationError
from dinhdanh.ids.lds import dg2
from dinhdanh.registry.area import NATIONAL, Area
from dinhdanh.registry.errors import Conflict, InvalidInput, NotFound, RuleViolation
from dinhdanh.registry.records import find_person
from dinhdanh.store.base import utcnow
from dinhdanh.store.vault import Vault

_DEFAULT = object()


def _seal_biometrics(conn, vault: Vault, account_id: int, actor: str, now: dt.datetime, **captured: bytes | None):
    for kind, raw in captured.items():
        if raw:
            conn.execute(eid_biometrics.insert().values(account_id=account_id, kind=kind,
                                                        sealed=vault.seal(raw, f"eid-{kind}"),
                                                        captured_at=now, captured_by=actor))


def enrol_level2(conn: sa.Connection, vault: Vault, pid: str, *, actor: str, card_number: str, chip_verdict: str,
                 face_image: bytes, fingerprint: bytes, face_match: str, fingerprint_match: str, consent: bool,
                 msisdn: str | None = None, email: str | None = None, area: Area = NATIONAL,
                 matcher=_DEFAULT, now: dt.datetime | None = None) -> tuple[dict, int]:
    """Record the in-person check and raise (or open) the account at level 2; (result, person_id).

    The account gets a new TOTP secret (``totp_uri`` in the result, shown this once, replacing any
    earlier one): a level-2 account always has a second factor registered in person or with the
    activation code, never one added with the passcode alone."""
    if not faces.is_jpeg(face_image):
        raise InvalidInput("The face image must be a JPEG (at most 2 MB).", code="face_unreadable", field="face_image")
    now = now or utcnow()
    today = accounts.vn_today(now)
    person = find_person(conn, pid, area)
    accounts.check_alive(person)
    accounts.check_citizen_age(person.date_of_birth, 2, today, by_guardian=False)
    card = accounts.check_current_card(conn, person.person_id, today)
    if card_number != card.card_number:
        raise RuleViolation("The card shown is not the person's current card.", code="card_mismatch",
                            field="card_number")
    if chip_verdict != "valid":
        raise RuleViolation("The chip was not verified as genuine.", code="chip_not_verified", field="chip_verdict")
    if not consent:
        raise RuleViolation("The person's consent is required.", code="consent_required", field="consent")
    if face_match != "match":
        raise RuleViolation("The face does not match.", code="face_mismatch", field="face_match")
    if fingerprint_match != "match":
        raise RuleViolation("The fingerprints do not match.", code="fingerprint_mismatch", field="fingerprint_match")
    matcher = faces.default_matcher() if matcher is _DEFAULT else matcher
    machine = None
    if matcher is not None:
        from dinhdanh.cards import chip

        machine = matcher.compare(face_image, dg2.decode(chip.chip_files(card, vault)["DG2"]).image).outcome
        if machine != "match":
            raise RuleViolation("The face matcher does not find the card's face.", code="face_mismatch",
                                field="face_image")
    existing = accounts.account_of_person(conn, person.person_id)
    if existing is not None and existing.state == "locked":
        raise Conflict("The account is locked; it must be unlocked first.", code="account_locked", field="pid")
    if existing is not None and existing.state == "active" and existing.level == 2:
        raise Conflict("The account is already at level 2.", code="account_exists", field="pid")
    detail = {"channel": "counter", "card_number": card.card_number, "chip": chip_verdict,
              "face": face_match, "fingerprint": fingerprint_match, "machine_face": machine}
    out: dict = {}
    msisdn = msisdn or (existing.msisdn if existing is not None else None) or person.phone
    if existing is None or existing.state in ("pending", "revoked"):
        if existing is None:
            account_id = accounts.create_account(conn, kind="citizen", level=2, state="pending", source="officer",
                                                 actor=actor, reason="level 2 in person", person_id=person.person_id,
                                                 msisdn=msisdn, email=email or person.email, detail=detail, now=now)
        else:
            account_id = existing.account_id
            accounts.set_state(conn, existing, "pending", kind="level_2", source="officer", actor=actor,
                               reason="level 2 in person", detail=detail, now=now, level=2, msisdn=msisdn,
                               email=email or existing.email, passcode_hash=None)
        if msisdn is None and not (email or person.email):
            raise RuleViolation("Give a mobile number or an e-mail address for the activation code.",
                                code="contact_required", field="msisdn")
        # level 2 always has a second factor: a new TOTP secret, registered here and shown this once
        # (before the activation code is sent, so the code is the newest message on the phone)
        out["totp_uri"] = factors.set_totp(conn, account_id, source="officer", actor=actor, now=now)
        out["registration"] = registration.start_counter_registration(
            conn, account_id=account_id, person_id=person.person_id, foreigner_id=None, kind="citizen", level=2,
            msisdn=msisdn, email=email or person.email, actor=actor, now=now)
    else:
        account_id = existing.account_id
        accounts.set_state(conn, existing, "active", kind="level_2", source="officer", actor=actor,
                           reason="level 2 in person", detail=detail, now=now, level=2)
        out["totp_uri"] = factors.set_totp(conn, account_id, source="officer", actor=actor, now=now)
    conn.execute(eid_level2_checks.insert().values(
        account_id=account_id, at=now, officer=actor, document_number=card.card_number, chip_verdict=chip_verdict,
        face_match=face_match, fingerprint_match=fingerprint_match, consent=consent))
    _seal_biometrics(conn, vault, account_id, actor, now, face=face_image, fingerprint=fingerprint)
    account = accounts.get_account(conn, account_id)
    out.update(account_id=account_id, kind="citizen", pid=person.pid, level=account.level, state=account.state)
    return out, person.person_id


# ---------------------------------------------------------------------------------- foreigners


def _foreigner_view(row) -> dict:
    return {"number": row.number, "full_name": row.full_name, "date_of_birth": row.date_of_birth.isoformat(),
            "sex": row.sex, "nationality": row.nationality, "passport_number": row.passport_number,
            "passport_expiry": row.passport_expiry.isoformat(),
            "residence_card_number": row.residence_card_number,
            "residence_card_expiry": row.residence_card_expiry.isoformat() if row.residence_card_expiry else None}


def add_foreigner(conn: sa.Connection, *, number: str, full_name: str, date_of_birth: dt.date, sex: str,
                  nationality: str, passport_number: str, passport_expiry: dt.date,
                  residence_card_number: str | None = None, residence_card_expiry: dt.date | None = None,
                  phone: str | None = None, email: str | None = None, address: str | None = None,
                  actor: str) -> dict:
    try:
        full_name = names.validate(full_name)
    except ValidationError as exc:
        raise InvalidInput(str(exc), field="full_name") from None
    if sex not in ("male", "female"):
        raise InvalidInput("The sex is male or female.", field="sex")
    if date_of_birth > accounts.vn_today():
        raise InvalidInput("The date of birth is in the future.", field="date_of_birth")
    if conn.execute(sa.select(foreigners.c.foreigner_id).where(foreigners.c.number == number)).first():
        raise Conflict("A foreigner with this number is already recorded.", code="foreigner_exists", field="number")
    conn.execute(foreigners.insert().values(
        number=number, full_name=full_name, date_of_birth=date_of_birth, sex=sex, nationality=nationality,
        passport_number=passport_number, passport_expiry=passport_expiry,
        residence_card_number=residence_card_number, residence_card_expiry=residence_card_expiry, phone=phone,
        email=email, address=address, created_at=utcnow()))
    return _foreigner_view(_foreigner(conn, number))


def _foreigner(conn, number: str):
    row = conn.execute(sa.select(foreigners).where(foreigners.c.number == number)).first()
    if row is None:
        raise NotFound("No foreigner with this number.", code="not_found", field="number")
    return row


def renew_foreigner_documents(conn: sa.Connection, number: str, *, passport_number: str | None = None,
                              passport_expiry: dt.date | None = None, residence_card_number: str | None = None,
                              residence_card_expiry: dt.date | None = None) -> dict:
    """New passport or residence card data (``locks.sweep`` then lifts the expiry locks)."""
    row = _foreigner(conn, number)
    values = {k: v for k, v in {"passport_number": passport_number, "passport_expiry": passport_expiry,
                                "residence_card_number": residence_card_number,
                                "residence_card_expiry": residence_card_expiry}.items() if v is not None}
    if values:
        conn.execute(foreigners.update().where(foreigners.c.foreigner_id == row.foreigner_id).values(**values))
    return _foreigner_view(_foreigner(conn, number))


def enroll_foreigner(conn: sa.Connection, vault: Vault, number: str, *, level: int, passcode: str, actor: str,
                     face: bytes | None = None, fingerprint: bytes | None = None,
                     now: dt.datetime | None = None) -> dict:
    """A foreigner's ACTIVE account at the counter (6+, valid passport and residence card)."""
    if level not in (1, 2) or isinstance(level, bool):
        raise InvalidInput("The level is 1 or 2.", field="level")
    auth.check_passcode(passcode)
    now = now or utcnow()
    row = _foreigner(conn, number)
    passcodes.check_strength(passcode, born=row.date_of_birth, username=row.number)
    accounts.check_foreigner(row, level, accounts.vn_today(now))
    if level == 2 and not fingerprint:
        raise InvalidInput("Level 2 needs the fingerprints captured at the counter.", field="fingerprint")
    existing = conn.execute(sa.select(eid_accounts).where(eid_accounts.c.foreigner_id == row.foreigner_id)).first()
    accounts.refuse_existing(existing, level)
    passcode_hash = auth.hash_passcode(passcode)
    if existing is None:
        account_id = accounts.create_account(conn, kind="foreigner", level=level, state="active", source="officer",
                                             actor=actor, reason="enrolled at the counter",
                                             foreigner_id=row.foreigner_id, msisdn=row.phone, email=row.email,
                                             now=now)
        conn.execute(eid_accounts.update().where(eid_accounts.c.account_id == account_id)
                     .values(passcode_hash=passcode_hash))
    else:
        account_id = existing.account_id
        accounts.set_state(conn, existing, "active", kind=f"level_{max(level, existing.level or 0)}",
                           source="officer", actor=actor, reason="enrolled at the counter", now=now,
                           level=max(level, existing.level or 0), passcode_hash=passcode_hash,
                           activated_at=existing.activated_at or now)
    _seal_biometrics(conn, vault, account_id, actor, now, face=face, fingerprint=fingerprint)
    account = accounts.get_account(conn, account_id)
    out = {"account_id": account_id, "kind": "foreigner", "username": row.number, "level": account.level,
           "state": account.state}
    if account.level == 2:  # a level-2 account always has a second factor, shown this once
        out["totp_uri"] = factors.set_totp(conn, account_id, source="officer", actor=actor, now=now)
    return out


# ------------------------------------------------------------------------------- organisations


def register_organisation(conn: sa.Connection, representative_account_id: int, *, name: str,
                          founding_date: dt.date, address: str, passcode: str, email: str | None = None,
                          now: dt.datetime | None = None) -> dict:
    """An organisation's account (no level), opened by its legal representative's level-2 account."""
    auth.check_passcode(passcode)
    passcodes.check_strength(passcode, born=founding_date)
    now = now or utcnow()
    rep = accounts.get_account(conn, representative_account_id)
    if rep.kind != "citizen" or rep.state != "active" or rep.level != 2:
        raise RuleViolation("An organisation is registered by its legal representative's level-2 account.",
                            code="representative_not_level2", field="account")
    if founding_date > accounts.vn_today(now):
        raise InvalidInput("The founding date is in the future.", field="founding_date")
    for _ in range(20):
        code = f"TC{secrets.randbelow(10**10):010d}"
        if conn.execute(sa.select(organisations.c.organisation_id).where(organisations.c.code == code)).first() is None:
            break
    organisation_id = conn.execute(organisations.insert().values(
        code=code, name=name, founding_date=founding_date, address=address, representative_id=rep.person_id,
        status="active", created_at=now).returning(organisations.c.organisation_id)).scalar_one()
    account_id = accounts.create_account(conn, kind="organisation", level=None, state="active", source="owner",
                                         actor=f"account:{representative_account_id}",
                                         reason="registered by the legal representative",
                                         organisation_id=organisation_id, msisdn=rep.msisdn,
                                         msisdn_verified=bool(rep.msisdn_verified), email=email, now=now)
    conn.execute(eid_accounts.update().where(eid_accounts.c.account_id == account_id)
                 .values(passcode_hash=auth.hash_passcode(passcode)))
    return {"account_id": account_id, "kind": "organisation", "code": code, "username": code, "level": None,
            "state": "active", "name": name}
