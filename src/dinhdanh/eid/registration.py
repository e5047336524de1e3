"""Level-1 registration in the app, the officer's review, and activation.

``register`` (the typed path: older app versions, and guardians) checks, within the request: the
person in the register (alive, the data given agree: name compared with ``names.match_key``, date of
birth, sex), the age rules, a valid chip card, the mobile number against the subscriber data the
platform holds (``mobile_subscriptions``: the SIM must be registered to the same PID, name and date
of birth, and active), and the face against the card's photo with the ``FaceMatcher``. Every check
runs whatever failed before it, and every refusal about the person is one generic answer
(``registration_refused``, no field): a caller who types a PID learns nothing of the register from
how it is refused (issue 11: a date of birth was recovered in 195 anonymous requests). Only input
that says nothing of the register (a non-JPEG image) is named. Each check of a person in the register
writes an access-log entry (``eid_registration_check``, outcome match or mismatch), so the person
sees it; a PID nobody holds writes none. The attempts are limited (``attempts``). The path with the
chip card itself is ``chip_registration``; both record, approve and send the code through
``record_registration``. With no face matcher installed the registration waits for an officer
(``pending_review``): it never passes unchecked.

An approved registration has a ``pending`` account and an activation code (6 digits, 15 minutes,
5 attempts) sent by SMS (and e-mail) through the outbox; ``activate`` sets the passcode (refused as
``weak_passcode`` by the rules of ``passcodes``), and optionally registers the first second factors,
the device key and TOTP (the activation code stands for the holder here; later changes need a
level-2 session or the counter, see ``factors``). A level-2 account activated without any factor is
given a TOTP secret (``totp_uri``): level 2 never rests on the passcode alone.

The code is at rest nowhere in clear: the outbox message is sealed (``notify.service``), and the
registration keeps a keyed hash of it (HMAC-SHA-256 under the database vault's key for
``eid-activation-code``, ``Vault.mac``), so a copy of the table cannot be reversed by hashing the
million possible codes. Each check of a code first takes one of the five attempts with a single
conditional UPDATE (``code_attempts < 5``), so concurrent guesses never get more than five checks.
"""

from __future__ import annotations

import datetime as dt
import hmac
import random
import secrets
from types import SimpleNamespace

import sqlalchemy as sa

from dinhdanh.audit.service import record_access
from dinhdanh.cards import chip
from dinhdanh.cards.lifecycle import current_card, effective_status
from dinhdanh.eid import accounts, auth, factors, faces
from dinhdanh.eid.tables import eid_registrations, mobile_subscriptions
from dinhdanh.ids import names
from dinhdanh.ids.lds import dg2
from dinhdanh.notify.service import send_email, send_sms
from dinhdanh.officers.permissions import SeparationOfDuties
from dinhdanh.registry.area import NATIONAL, Area
from dinhdanh.registry.errors import Conflict, InvalidInput, NotFound, RegistryError, RuleViolation
from dinhdanh.registry.records import find_person
from dinhdanh.registry.tables import persons
from dinhdanh.store.base import utcnow
from dinhdanh.store.vault import Vault

CODE_LIFETIME = dt.timedelta(minutes=15)
CODE_ATTEMPTS = 5
_DEFAULT = object()

# Vietnamese mobile prefixes by carrier (2024), for the demo's subscriber data.
CARRIERS = {
    "Viettel": ("086", "096", "097", "098", "032", "033", "034", "035", "036", "037", "038", "039"),
    "VinaPhone": ("088", "091", "094", "081", "082", "083", "084", "085"),
    "MobiFone": ("089", "090", "093", "070", "076", "077", "078", "079"),
    "Vietnamobile": ("092", "056", "058"),
    "Gmobile": ("099", "059"),
}
_CARRIER_OF = {prefix: name for name, prefixes in CARRIERS.items() for prefix in prefixes}


GENERIC_REFUSAL = ("The details do not match our records, or the registration cannot be made online; go to the "
                   "police counter or register with your chip card.")
CHIP_REFUSAL = ("The chip card could not be verified as yours (the chip, its answer to the challenge, the card in "
                "the register or the face); read the card again, or go to the police counter.")


class RegistrationRefused(RegistryError):
    """A registration refused. ``problems`` is what the caller is told (code, field, message each);
    ``reasons`` the checks that failed, as (code, detail), for the tests and never sent: the typed
    path tells every refusal about the person as one problem (``refused``), the chip path every failed
    proof as another (``chip_refused``); a holder's rule refused after a proven chip is named."""

    def __init__(self, problems: list[dict], *, status: int = 409, reasons: list[tuple] | None = None):
        first = problems[0]
        super().__init__("; ".join(p["message"] for p in problems), code=first["code"], field=first["field"])
        self.problems = problems
        self.status = status
        self.reasons = list(reasons) if reasons is not None else [(p["code"], p["field"]) for p in problems]


def _problem(code: str, field: str | None, message: str) -> dict:
    return {"code": code, "field": field, "message": message}


def refused(reasons: list[tuple]) -> RegistrationRefused:
    """The typed path's one answer (422, no field), whatever failed."""
    return RegistrationRefused([_problem("registration_refused", None, GENERIC_REFUSAL)], status=422, reasons=reasons)


def chip_refused(reasons: list[tuple]) -> RegistrationRefused:
    """The chip path's one answer to a proof that failed (422, no field), whichever check it was."""
    return RegistrationRefused([_problem("chip_not_verified", None, CHIP_REFUSAL)], status=422, reasons=reasons)


# ------------------------------------------------------------------------ subscriber data


def carrier_of(msisdn: str) -> str:
    return _CARRIER_OF.get(msisdn[:3], "other")


def seed_subscriptions_from_register(conn: sa.Connection, *, limit: int | None = None, mismatch_rate: float = 0.0,
                                     seed: int = 6) -> int:
    """Subscriber data as the telcos would hand it over: one active subscription per phone number in
    the register, in its holder's name. ``mismatch_rate`` of them get another name (the 2023
    campaign found 15% unstandardised). Numbers already present are left alone; returns rows written."""
    rng = random.Random(seed)
    query = (sa.select(persons.c.pid, persons.c.full_name, persons.c.date_of_birth, persons.c.phone)
             .where(persons.c.phone.is_not(None), persons.c.status == "alive").order_by(persons.c.person_id))
    if limit is not None:
        query = query.limit(limit)
    have = set(conn.execute(sa.select(mobile_subscriptions.c.msisdn)).scalars())
    rows, now = [], utcnow()
    for pid, name, born, phone in conn.execute(query):
        if phone in have:
            continue
        have.add(phone)
        if mismatch_rate and rng.random() < mismatch_rate:
            name = "Nguyễn Văn Khác"
        rows.append({"msisdn": phone, "carrier": carrier_of(phone), "pid": pid, "full_name": name,
                     "date_of_birth": born, "status": "active", "updated_at": now})
    for start in range(0, len(rows), 10_000):
        conn.execute(mobile_subscriptions.insert(), rows[start:start + 10_000])
    return len(rows)


def msisdn_owned(conn: sa.Connection, msisdn: str, person) -> bool:
    """The SIM is active and standardised to this person (PID, name and date of birth agree)."""
    sub = conn.execute(sa.select(mobile_subscriptions).where(mobile_subscriptions.c.msisdn == msisdn)).first()
    return (sub is not None and sub.status == "active" and sub.pid == person.pid
            and sub.full_name is not None and names.match_key(sub.full_name) == names.match_key(person.full_name)
            and sub.date_of_birth == person.date_of_birth)


# ------------------------------------------------------------------------------ registration


CODE_PURPOSE = "eid-activation-code"


def _code_hash(vault: Vault, registration_id: int, code: str) -> str:
    """The keyed hash of an activation code (64 hex digits, as the column holds).

    Codes hashed by earlier versions (bare SHA-256 of the same text) are not accepted: no forged or
    replayed hash opens them, they can only fail and expire (15 minutes after they were sent); the
    holder asks for a new code. No migration is needed."""
    return vault.mac(f"{registration_id}:{code}".encode(), CODE_PURPOSE).hex()


def _send_code(conn, registration_id: int, msisdn: str | None, email: str | None, person_id: int | None,
               now: dt.datetime) -> dt.datetime:
    code = f"{secrets.randbelow(10**6):06d}"
    expires = now + CODE_LIFETIME
    vault = auth.database_vault(conn)  # the same vault ``activate`` checks the code with
    conn.execute(eid_registrations.update().where(eid_registrations.c.registration_id == registration_id)
                 .values(code_hash=_code_hash(vault, registration_id, code), code_expires_at=expires,
                         code_attempts=0))
    text = (f"VNeID: ma kich hoat tai khoan dinh danh dien tu cua ban la {code} "
            f"(ho so {registration_id}), hieu luc 15 phut. Khong cung cap ma nay cho bat ky ai.")
    if msisdn:
        send_sms(conn, msisdn, text, person_id=person_id)
    if email:
        send_email(conn, email, "Mã kích hoạt tài khoản định danh điện tử",
                   f"Mã kích hoạt tài khoản định danh điện tử của bạn là {code} (hồ sơ {registration_id}), "
                   "có hiệu lực trong 15 phút.", person_id=person_id)
    return expires


def _registration_view(row, **extra) -> dict:
    out = {"registration_id": row.registration_id, "status": row.status, "level": row.level, "kind": row.kind,
           "channel": row.channel, "created_at": row.created_at.isoformat(),
           "code_sent_to": accounts.mask_msisdn(row.msisdn) if row.status == "approved" else None,
           "code_expires_at": row.code_expires_at.isoformat() if row.code_expires_at and row.status == "approved"
           else None}
    out.update(extra)
    return out


def _approve(conn, registration, *, actor: str, source: str, reason: str, now: dt.datetime) -> None:
    """Give an approved registration its pending account (or re-use one) and send the code."""
    account = accounts.account_of_person(conn, registration.person_id) if registration.person_id else None
    if account is None:
        account_id = accounts.create_account(
            conn, kind=registration.kind, level=registration.level, state="pending", source=source, actor=actor,
            reason=reason, person_id=registration.person_id, foreigner_id=registration.foreigner_id,
            guardian_account_id=registration.guardian_account_id, msisdn=registration.msisdn,
            email=registration.email, detail={"registration_id": registration.registration_id}, now=now)
    elif account.state in ("active", "locked"):  # held since the registration was checked (at a counter, say)
        raise Conflict("The person already holds an e-ID account.",
                       code="account_exists" if account.state == "active" else "account_locked", field="pid")
    else:
        account_id = account.account_id
        kind = "re_registered" if account.state == "revoked" else "registered_again"
        accounts.set_state(conn, account, "pending", kind=kind, source=source, actor=actor, reason=reason,
                           detail={"registration_id": registration.registration_id}, now=now,
                           level=max(registration.level, account.level or 0) if account.state != "revoked"
                           else registration.level, msisdn=registration.msisdn, email=registration.email,
                           guardian_account_id=registration.guardian_account_id)
    # an earlier code for the same account stops working
    conn.execute(eid_registrations.update().where(eid_registrations.c.account_id == account_id,
                                                  eid_registrations.c.status == "approved")
                 .values(code_hash=None))
    conn.execute(eid_registrations.update().where(eid_registrations.c.registration_id == registration.registration_id)
                 .values(status="approved", account_id=account_id, decided_at=now, decided_by=actor,
                         decision_reason=reason))
    _send_code(conn, registration.registration_id, registration.msisdn, registration.email, registration.person_id,
               now)


def card_portrait(card, vault: Vault) -> bytes:
    """The photo in the card's DG2 (what a face is compared with, and what a reviewer sees)."""
    return dg2.decode(chip.chip_files(card, vault)["DG2"]).image


def face_check(matcher, image: bytes, reference: bytes | None) -> dict:
    """The captured face against the card's photo: the outcome kept in the registration's checks."""
    if reference is None:
        return {"outcome": "no_reference", "matcher": None}
    if matcher is None:
        return {"outcome": "not_checked", "matcher": None}
    result = matcher.compare(image, reference)
    return {"outcome": result.outcome, "matcher": matcher.name, "distance": result.distance}


# ------------------------------------------------------------------- checks, audit, recording

AUDIT_ACTOR = "anonymous:registration"
AUDIT_ACTION = "eid_registration_check"
AUDIT_FIELDS = ("full_name", "date_of_birth", "sex", "card", "phone")


def audit_check(conn: sa.Connection, person_id: int, outcome: str, *, purpose: str,
                actor: str = AUDIT_ACTOR) -> None:
    """The access-log entry of a registration's check of a person: ``match`` when the registration
    went through, ``mismatch`` when it was refused (the person sees no more than that)."""
    record_access(conn, actor, [person_id], AUDIT_ACTION, purpose, fields=AUDIT_FIELDS, outcome=outcome)


def holder_problems(conn: sa.Connection, person, *, msisdn: str, guardian, today: dt.date) -> list[dict]:
    """What refuses a level-1 account to ``person`` (every rule checked): the age, a valid card
    (a child a guardian registers may have none), the mobile number, an account already held."""
    problems = []
    try:
        accounts.check_citizen_age(person.date_of_birth, 1, today, by_guardian=guardian is not None)
    except RuleViolation as exc:
        problems.append(_problem(exc.code, exc.field or "pid", exc.message))
    try:
        accounts.check_current_card(conn, person.person_id, today)
    except RuleViolation as exc:
        if guardian is None:
            problems.append(_problem(exc.code, "pid", exc.message))
    if guardian is None and not msisdn_owned(conn, msisdn, person):
        problems.append(_problem("msisdn_not_owned", "msisdn",
                                 "The mobile number is not an active subscription registered to this person."))
    existing = accounts.account_of_person(conn, person.person_id)
    if existing is not None and existing.state in ("active", "locked"):
        problems.append(_problem("account_exists" if existing.state == "active" else "account_locked", "pid",
                                 "The person already holds an e-ID account."))
    return problems


def record_registration(conn: sa.Connection, vault: Vault, *, channel: str, person_id: int, msisdn: str | None,
                        email: str | None, checks: dict, face_image: bytes, approve: bool, guardian=None,
                        now: dt.datetime) -> dict:
    """Record a registration whose checks passed: approved (a pending account, the code sent) when the
    face matched, else waiting for an officer's review with the captured face sealed for them."""
    registration_id = conn.execute(eid_registrations.insert().values(
        channel=channel, kind="citizen", level=1, person_id=person_id,
        guardian_account_id=guardian.account_id if guardian else None,
        msisdn=guardian.msisdn if guardian else msisdn, email=email, status="pending_review", checks=checks,
        face=vault.seal(face_image, "eid-face"), created_at=now,
    ).returning(eid_registrations.c.registration_id)).scalar_one()
    registration = _get(conn, registration_id)
    if approve:
        _approve(conn, registration, actor="system", source="app", reason="checks passed in the app", now=now)
        registration = _get(conn, registration_id)
    return _registration_view(registration)


# Compared with when no one holds the PID: an unknown PID takes the same steps as a mismatch.
_NOBODY = SimpleNamespace(person_id=0, pid="", full_name="", date_of_birth=dt.date(1900, 1, 1), sex="",
                          status="alive", father_id=None, mother_id=None, representative_id=None)


def _typed_checks(conn, *, pid: str, full_name: str, date_of_birth: dt.date, sex: str, msisdn: str,
                  guardian_account_id: int | None, today: dt.date):
    """(the person or None, the reasons to refuse, the guardian's account): every check runs, on a
    stand-in when no one holds the PID, whatever failed before it."""
    try:
        person = find_person(conn, pid)
    except NotFound:
        person = None
    held = person if person is not None else _NOBODY
    reasons: list[tuple] = []
    if held.status != "alive":
        reasons.append((f"person_{held.status}", "pid"))
    for field, given, kept in (("full_name", names.match_key(full_name), names.match_key(held.full_name)),
                               ("date_of_birth", date_of_birth, held.date_of_birth), ("sex", sex, held.sex)):
        if given != kept:
            reasons.append(("register_mismatch", field))
    guardian = None
    if guardian_account_id is not None:
        try:
            guardian = accounts.guardian_of(conn, held, guardian_account_id)
        except RuleViolation as exc:
            reasons.append((exc.code, exc.field or "pid"))
    reasons += [(p["code"], p["field"]) for p in holder_problems(conn, held, msisdn=msisdn, guardian=guardian,
                                                                  today=today)]
    if person is None:
        reasons = [("not_in_register", "pid")]
    return person, reasons, guardian


def register(conn: sa.Connection, vault: Vault, *, pid: str, full_name: str, date_of_birth: dt.date, sex: str,
             msisdn: str, email: str | None, face_image: bytes, matcher=_DEFAULT,
             guardian_account_id: int | None = None, now: dt.datetime | None = None) -> dict:
    """A level-1 registration from the app with typed data (or from a guardian's account for a child).

    Returns the registration (``approved`` with the code sent, or ``pending_review``); raises
    ``InvalidInput`` for a face image that is not a JPEG, and ``refused`` (one generic answer, the
    failed checks in ``reasons`` only) for anything about the person. Every check of a person in the
    register is written to the access log, refusals included: commit even when it raises.
    """
    now = now or utcnow()
    today = accounts.vn_today(now)
    matcher = faces.default_matcher() if matcher is _DEFAULT else matcher
    if not faces.is_jpeg(face_image):
        raise InvalidInput("The face image must be a JPEG (at most 2 MB).", code="face_unreadable",
                           field="face_image")
    person, reasons, guardian = _typed_checks(
        conn, pid=pid, full_name=full_name, date_of_birth=date_of_birth, sex=sex, msisdn=msisdn,
        guardian_account_id=guardian_account_id, today=today)
    actor = AUDIT_ACTOR if guardian_account_id is None else f"guardian:{guardian_account_id}"
    try:
        if reasons:
            # the matcher is the slow step: it runs on a refusal too (the captured face against itself),
            # so the time taken does not tell right typed data with a wrong face from wrong data
            face_check(matcher, face_image, face_image)
            raise refused(reasons)
        card = current_card(conn, person.person_id)
        if card is not None and effective_status(card, today) != "issued":
            card = None  # a child a guardian registers may have no valid card: an officer compares
        face = face_check(matcher, face_image, card_portrait(card, vault) if card is not None else None)
        if face["outcome"] in ("no_match", "no_face"):
            raise refused([("face_mismatch" if face["outcome"] == "no_match" else "face_unreadable",
                            "face_image")])
        checks = {"register": "agrees", "alive": True, "card": "valid" if card is not None else "none",
                  "msisdn": "owned" if guardian is None else "guardian", "face": face}
        out = record_registration(conn, vault, channel="guardian" if guardian else "app",
                                  person_id=person.person_id, msisdn=msisdn, email=email, checks=checks,
                                  face_image=face_image, approve=face["outcome"] == "match", guardian=guardian,
                                  now=now)
    except RegistrationRefused:
        if person is not None:
            audit_check(conn, person.person_id, "mismatch", purpose="identity_verification", actor=actor)
        raise
    audit_check(conn, person.person_id, "match", purpose="identity_verification", actor=actor)
    return out


def _get(conn, registration_id: int):
    row = conn.execute(sa.select(eid_registrations)
                       .where(eid_registrations.c.registration_id == registration_id)).first()
    if row is None:
        raise NotFound("No such registration.", code="registration_not_found", field="registration_id")
    return row


def _visible(conn, registration_id: int, area: Area):
    """The registration if its person is in ``area``; one outside it is answered as unknown (a
    foreigner's has no place in the register: national officers only)."""
    row = _get(conn, registration_id)
    if area.national:
        return row
    person = (conn.execute(sa.select(persons).where(persons.c.person_id == row.person_id)).first()
              if row.person_id is not None else None)
    if person is None or not area.covers(person):
        raise NotFound("No such registration.", code="registration_not_found", field="registration_id")
    return row


def filed_by(row) -> str | None:
    """The officer who filed a registration at the counter (``checks``: ``filed_by``, or ``counter``
    for the in-person channel), None for one the person made in the app."""
    checks = row.checks or {}
    return checks.get("filed_by") or (checks.get("counter") if row.channel == "counter" else None)


def review(conn: sa.Connection, registration_id: int, *, approve: bool, reason: str, actor: str,
           area: Area = NATIONAL, now: dt.datetime | None = None) -> dict:
    """An officer approves (the face is the person's) or refuses a registration waiting for review.

    Only registrations of persons in the officer's ``area`` (others: 404 as unknown); the officer
    who filed one at the counter cannot approve it (403 ``separation_of_duties``). The decision is
    claimed with a conditional UPDATE, so two officers deciding at once get one decision."""
    now = now or utcnow()
    row = _visible(conn, registration_id, area)
    if row.status != "pending_review":
        raise Conflict(f"The registration is {row.status}, not waiting for a review.", code="not_pending_review",
                       field="registration_id")
    if approve and filed_by(row) == actor:
        raise SeparationOfDuties("The officer who filed the registration cannot approve it.",
                                 field="registration_id")
    claimed = conn.execute(eid_registrations.update().where(eid_registrations.c.registration_id == registration_id,
                                                            eid_registrations.c.status == "pending_review")
                           .values(status="pending_review"))
    if claimed.rowcount != 1:  # decided meanwhile by another officer
        raise Conflict("The registration is no longer waiting for a review.", code="not_pending_review",
                       field="registration_id")
    if approve:
        person = conn.execute(sa.select(persons).where(persons.c.person_id == row.person_id)).one()
        accounts.check_alive(person)
        _approve(conn, row, actor=actor, source="officer", reason=reason, now=now)  # (refuses an account held)
    else:
        conn.execute(eid_registrations.update().where(eid_registrations.c.registration_id == registration_id)
                     .values(status="refused", decided_at=now, decided_by=actor, decision_reason=reason))
        if row.msisdn:
            send_sms(conn, row.msisdn, f"VNeID: ho so dang ky tai khoan dinh danh dien tu {registration_id} "
                                       "khong duoc chap nhan. Vui long lien he co quan Cong an.",
                     person_id=row.person_id)
    return _registration_view(_get(conn, registration_id))


def registration_detail(conn: sa.Connection, vault: Vault, registration_id: int,
                        area: Area = NATIONAL) -> tuple[dict, int | None]:
    """What the reviewing officer sees: the checks, the captured face and the card's photo (base64);
    only for a person in the officer's ``area`` (others: 404 as unknown)."""
    import base64

    from dinhdanh.cards.lifecycle import current_card

    row = _visible(conn, registration_id, area)
    person = conn.execute(sa.select(persons).where(persons.c.person_id == row.person_id)).first()
    captured = vault.open(row.face, "eid-face") if row.face is not None else None
    card = current_card(conn, row.person_id) if row.person_id else None
    reference = dg2.decode(chip.chip_files(card, vault)["DG2"]).image if card is not None else None
    view = _registration_view(row, checks=row.checks, pid=person.pid if person else None,
                              full_name=person.full_name if person else None,
                              date_of_birth=person.date_of_birth.isoformat() if person else None,
                              face_image=base64.b64encode(captured).decode() if captured else None,
                              card_photo=base64.b64encode(reference).decode() if reference else None,
                              decided_by=row.decided_by, decision_reason=row.decision_reason)
    return view, row.person_id


def list_registrations(conn: sa.Connection, *, status: str | None = "pending_review", limit: int = 100,
                       area: Area = NATIONAL) -> list[dict]:
    """Registrations (by default those waiting for review) of persons in ``area``, oldest first."""
    query = sa.select(eid_registrations).order_by(eid_registrations.c.registration_id).limit(limit)
    if not area.national:  # by the person's residence in the register; foreigners' have none
        query = query.join(persons, persons.c.person_id == eid_registrations.c.person_id).where(area.clause(persons))
    if status:
        query = query.where(eid_registrations.c.status == status)
    return [_registration_view(r) for r in conn.execute(query)]


# ------------------------------------------------------------------------------ activation


class ActivationRefused(RegistryError):
    """A wrong or spent activation code; the attempt is counted (the caller must commit)."""

    code = "invalid_code"


def start_counter_registration(conn: sa.Connection, *, account_id: int, person_id: int | None,
                               foreigner_id: int | None, kind: str, level: int, msisdn: str | None,
                               email: str | None, actor: str, now: dt.datetime) -> dict:
    """An approved registration for an account an officer opened (level 2 in person): code sent."""
    conn.execute(eid_registrations.update().where(eid_registrations.c.account_id == account_id,
                                                  eid_registrations.c.status == "approved").values(code_hash=None))
    registration_id = conn.execute(eid_registrations.insert().values(
        channel="counter", kind=kind, level=level, person_id=person_id, foreigner_id=foreigner_id,
        account_id=account_id, msisdn=msisdn, email=email, status="approved", checks={"counter": actor},
        created_at=now, decided_at=now, decided_by=actor, decision_reason="in person",
    ).returning(eid_registrations.c.registration_id)).scalar_one()
    _send_code(conn, registration_id, msisdn, email, person_id, now)
    return _registration_view(_get(conn, registration_id))


def activate(conn: sa.Connection, *, code: str, passcode: str, registration_id: int | None = None,
             pid: str | None = None, device_key: dict | None = None, totp: bool = False,
             now: dt.datetime | None = None) -> dict:
    """Check the code, set the passcode, and make the account active (with its device key, TOTP).

    Nothing about the person or the account is told before the code is found right: the passcode's
    strength rules (which know the date of birth and the PID) apply only after it. By PID every
    refusal is one answer (``invalid_code``), so the route tells no one whether a PID exists or has
    an activation pending; by registration id (the number given to the registrant) the answers say
    what to do (expired, attempts spent) but nothing about the person."""
    now = now or utcnow()
    auth.check_passcode(passcode)
    if device_key is not None:
        auth._device_key(device_key)  # refuse a bad key before anything is written
    if registration_id is None and pid is None:
        raise InvalidInput("Give the registration id or the PID.", field="registration_id")
    if registration_id is not None:
        return _activate(conn, _get(conn, registration_id), code=code, passcode=passcode, device_key=device_key,
                         totp=totp, now=now)
    try:
        person = find_person(conn, pid)
        row = conn.execute(sa.select(eid_registrations).where(eid_registrations.c.person_id == person.person_id,
                                                              eid_registrations.c.status == "approved")
                           .order_by(eid_registrations.c.registration_id.desc())).first()
        if row is None:
            raise NotFound("No registration awaits activation for this PID.", code="registration_not_found",
                           field="pid")
        return _activate(conn, row, code=code, passcode=passcode, device_key=device_key, totp=totp, now=now)
    except (NotFound, Conflict, RuleViolation, ActivationRefused) as exc:
        if getattr(exc, "code", None) == "weak_passcode":  # the code was right: the owner is asking
            raise
        # an unknown PID, no registration, a spent or wrong code: one answer (an attempt spent is kept)
        raise ActivationRefused("No activation with this PID and code: the code may be wrong, expired or "
                                "used up; register again for a new one.", field="code") from None


def _activate(conn: sa.Connection, row, *, code: str, passcode: str, device_key: dict | None, totp: bool,
              now: dt.datetime) -> dict:
    if row.status != "approved" or row.code_hash is None:
        raise Conflict(f"The registration is {row.status}, not awaiting activation.", code="not_awaiting_activation",
                       field="registration_id")
    if row.code_attempts >= CODE_ATTEMPTS:
        raise RuleViolation("Too many wrong codes: register again for a new one.", code="code_attempts_exceeded",
                            field="code")
    if row.code_expires_at is None or row.code_expires_at <= now:
        raise RuleViolation("The activation code has expired: register again for a new one.", code="code_expired",
                            field="code")
    # Take one attempt before checking, in one conditional UPDATE: concurrent requests (PostgreSQL
    # re-checks the WHERE after the row lock; SQLite has one writer) never check more than five codes.
    used = conn.execute(eid_registrations.update()
                        .where(eid_registrations.c.registration_id == row.registration_id,
                               eid_registrations.c.status == "approved",
                               eid_registrations.c.code_hash == row.code_hash,
                               eid_registrations.c.code_attempts < CODE_ATTEMPTS)
                        .values(code_attempts=eid_registrations.c.code_attempts + 1)
                        .returning(eid_registrations.c.code_attempts)).scalar_one_or_none()
    if used is None:  # changed meanwhile: the attempts spent, the code replaced or used
        now_row = _get(conn, row.registration_id)
        if now_row.status != "approved" or now_row.code_hash != row.code_hash:
            raise Conflict(f"The registration is {now_row.status}, not awaiting activation with this code.",
                           code="not_awaiting_activation", field="registration_id")
        raise RuleViolation("Too many wrong codes: register again for a new one.", code="code_attempts_exceeded",
                            field="code")
    if not isinstance(code, str) or not hmac.compare_digest(
            _code_hash(auth.database_vault(conn), row.registration_id, code), row.code_hash):
        left = CODE_ATTEMPTS - used
        raise ActivationRefused(f"The activation code is wrong ({left} attempts left).", field="code")
    account = accounts.get_account(conn, row.account_id)
    if account.state != "pending":  # an activation code never resets an active account's passcode
        raise Conflict(f"The account is {account.state}.", code="account_locked" if account.state == "locked"
                       else "not_awaiting_activation", field="registration_id")
    auth.check_new_passcode(conn, account, passcode)  # only now: the rules know the date of birth and the PID
    done = conn.execute(eid_registrations.update().where(eid_registrations.c.registration_id == row.registration_id,
                                                         eid_registrations.c.status == "approved")
                        .values(status="activated", code_hash=None))
    if done.rowcount != 1:  # activated by a concurrent request with the same code
        raise Conflict("The registration is not awaiting activation.", code="not_awaiting_activation",
                       field="registration_id")
    accounts.set_state(conn, account, "active", kind="activated", source="owner", actor="owner",
                       reason="activation code confirmed", detail={"registration_id": row.registration_id}, now=now,
                       passcode_hash=auth.hash_passcode(passcode), failed_attempts=0, lockouts=0, locked_until=None,
                       msisdn_verified=bool(row.msisdn), activated_at=account.activated_at or now)
    out = {"account_id": account.account_id, "state": "active", "level": account.level, "kind": account.kind,
           "username": accounts.username_of(conn, account)}
    if device_key is not None:
        out["device_thumbprint"] = auth.register_device(conn, account.account_id, device_key, now=now)
    if account.level == 2 and device_key is None and account.totp_secret is None \
            and not factors.has_factor(conn, account):
        totp = True  # a level-2 account always has a second factor (an older counter enrolment had none)
    if totp:
        out["totp_uri"] = factors.set_totp(conn, account.account_id, source="owner", actor="owner", now=now)
    return out

