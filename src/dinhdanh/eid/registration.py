"""Level-1 registration in the app, the officer's review, and activation.

``register`` checks, within the request: the person in the register (alive, the data given agree:
name compared with ``names.match_key``, date of birth, sex), the age rules, a valid chip card,
the mobile number against the subscriber data the platform holds (``mobile_subscriptions``: the
SIM must be registered to the same PID, name and date of birth, and active), and the face against
the card's photo with the ``FaceMatcher``. Every failed check is named (``RegistrationRefused``).
With no face matcher installed the registration waits for an officer (``pending_review``): it
never passes unchecked.

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

import sqlalchemy as sa

from dinhdanh.cards import chip
from dinhdanh.eid import accounts, auth, factors, faces
from dinhdanh.eid.tables import eid_registrations, mobile_subscriptions
from dinhdanh.ids import names
from dinhdanh.ids.lds import dg2
from dinhdanh.notify.service import send_email, send_sms
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


class RegistrationRefused(RegistryError):
    """A registration refused on one or more checks; ``problems`` names each (code, field, message)."""

    def __init__(self, problems: list[dict]):
        first = problems[0]
        super().__init__("; ".join(p["message"] for p in problems), code=first["code"], field=first["field"])
        self.problems = problems
        # 422 when what was given disagrees with the register, 409 when a rule refuses it
        self.status = 422 if first["code"] in ("register_mismatch", "not_in_register", "face_unreadable") else 409


def _problem(code: str, field: str, message: str) -> dict:
    return {"code": code, "field": field, "message": message}


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


def _face_check(conn, vault: Vault, card, image: bytes, matcher) -> dict:
    if card is None:
        return {"outcome": "no_reference", "matcher": None}
    if matcher is None:
        return {"outcome": "not_checked", "matcher": None}
    reference = dg2.decode(chip.chip_files(card, vault)["DG2"]).image
    result = matcher.compare(image, reference)
    return {"outcome": result.outcome, "matcher": matcher.name, "distance": result.distance}


def register(conn: sa.Connection, vault: Vault, *, pid: str, full_name: str, date_of_birth: dt.date, sex: str,
             msisdn: str, email: str | None, face_image: bytes, matcher=_DEFAULT,
             guardian_account_id: int | None = None, now: dt.datetime | None = None) -> dict:
    """A level-1 registration from the app (or from a guardian's account for a child).

    Returns the registration (``approved`` with the code sent, or ``pending_review``); raises
    ``RegistrationRefused`` naming every failed check.
    """
    now = now or utcnow()
    today = accounts.vn_today(now)
    matcher = faces.default_matcher() if matcher is _DEFAULT else matcher
    if not faces.is_jpeg(face_image):
        raise InvalidInput("The face image must be a JPEG (at most 2 MB).", code="face_unreadable",
                           field="face_image")
    try:
        person = find_person(conn, pid)
    except NotFound:
        raise RegistrationRefused([_problem("not_in_register", "pid", "No person with this PID in the register.")]) \
            from None
    problems = []
    if person.status != "alive":
        problems.append(_problem(f"person_{person.status}", "pid", f"The person is recorded as {person.status}."))
    for field, given, held in (("full_name", names.match_key(full_name), names.match_key(person.full_name)),
                               ("date_of_birth", date_of_birth, person.date_of_birth), ("sex", sex, person.sex)):
        if given != held:
            problems.append(_problem("register_mismatch", field, f"The {field.replace('_', ' ')} differs from the "
                                                                 "register."))
    if problems:
        raise RegistrationRefused(problems)
    guardian = None
    if guardian_account_id is not None:
        try:
            guardian = accounts.guardian_of(conn, person, guardian_account_id)
        except RuleViolation as exc:
            raise RegistrationRefused([_problem(exc.code, exc.field or "pid", exc.message)]) from None
    try:
        accounts.check_citizen_age(person.date_of_birth, 1, today, by_guardian=guardian is not None)
    except RuleViolation as exc:
        problems.append(_problem(exc.code, exc.field or "pid", exc.message))
    card = None
    try:
        card = accounts.check_current_card(conn, person.person_id, today)
    except RuleViolation as exc:
        if guardian is None:  # a child registered by a guardian may have no card yet
            problems.append(_problem(exc.code, "pid", exc.message))
    if guardian is None and not msisdn_owned(conn, msisdn, person):
        problems.append(_problem("msisdn_not_owned", "msisdn",
                                 "The mobile number is not an active subscription registered to this person."))
    existing = accounts.account_of_person(conn, person.person_id)
    if existing is not None and existing.state in ("active", "locked"):
        problems.append(_problem("account_exists" if existing.state == "active" else "account_locked", "pid",
                                 "The person already holds an e-ID account."))
    if problems:
        raise RegistrationRefused(problems)
    face = _face_check(conn, vault, card, face_image, matcher)
    if face["outcome"] in ("no_match", "no_face"):
        code = "face_mismatch" if face["outcome"] == "no_match" else "face_unreadable"
        raise RegistrationRefused([_problem(code, "face_image", "The face does not match the card's photo."
                                            if code == "face_mismatch" else "No face found in the image.")])
    checks = {"register": "agrees", "alive": True, "card": "valid" if card is not None else "none",
              "msisdn": "owned" if guardian is None else "guardian", "face": face}
    status = "approved" if face["outcome"] == "match" else "pending_review"
    registration_id = conn.execute(eid_registrations.insert().values(
        channel="guardian" if guardian else "app", kind="citizen", level=1, person_id=person.person_id,
        guardian_account_id=guardian.account_id if guardian else None,
        msisdn=guardian.msisdn if guardian else msisdn, email=email, status="pending_review", checks=checks,
        face=vault.seal(face_image, "eid-face"), created_at=now,
    ).returning(eid_registrations.c.registration_id)).scalar_one()
    registration = _get(conn, registration_id)
    if status == "approved":
        _approve(conn, registration, actor="system", source="app", reason="checks passed in the app", now=now)
        registration = _get(conn, registration_id)
    return _registration_view(registration)


def _get(conn, registration_id: int):
    row = conn.execute(sa.select(eid_registrations)
                       .where(eid_registrations.c.registration_id == registration_id)).first()
    if row is None:
        raise NotFound("No such registration.", code="registration_not_found", field="registration_id")
    return row


def review(conn: sa.Connection, registration_id: int, *, approve: bool, reason: str, actor: str,
           now: dt.datetime | None = None) -> dict:
    """An officer approves (the face is the person's) or refuses a registration waiting for review."""
    now = now or utcnow()
    row = _get(conn, registration_id)
    if row.status != "pending_review":
        raise Conflict(f"The registration is {row.status}, not waiting for a review.", code="not_pending_review",
                       field="registration_id")
    if approve:
        person = conn.execute(sa.select(persons).where(persons.c.person_id == row.person_id)).one()
        accounts.check_alive(person)
        existing = accounts.account_of_person(conn, person.person_id)
        if existing is not None and existing.state in ("active", "locked"):
            raise Conflict("The person already holds an e-ID account.", code="account_exists", field="pid")
        _approve(conn, row, actor=actor, source="officer", reason=reason, now=now)
    else:
        conn.execute(eid_registrations.update().where(eid_registrations.c.registration_id == registration_id)
                     .values(status="refused", decided_at=now, decided_by=actor, decision_reason=reason))
        if row.msisdn:
            send_sms(conn, row.msisdn, f"VNeID: ho so dang ky tai khoan dinh danh dien tu {registration_id} "
                                       "khong duoc chap nhan. Vui long lien he co quan Cong an.",
                     person_id=row.person_id)
    return _registration_view(_get(conn, registration_id))


def registration_detail(conn: sa.Connection, vault: Vault, registration_id: int) -> tuple[dict, int | None]:
    """What the reviewing officer sees: the checks, the captured face and the card's photo (base64)."""
    import base64

    from dinhdanh.cards.lifecycle import current_card

    row = _get(conn, registration_id)
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


def list_registrations(conn: sa.Connection, *, status: str | None = "pending_review", limit: int = 100) -> list[dict]:
    query = sa.select(eid_registrations).order_by(eid_registrations.c.registration_id).limit(limit)
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
    """Check the code, set the passcode, and make the account active (with its device key, TOTP)."""
    now = now or utcnow()
    auth.check_passcode(passcode)
    if device_key is not None:
        auth._device_key(device_key)  # refuse a bad key before anything is written
    if registration_id is not None:
        row = _get(conn, registration_id)
    elif pid is not None:
        person = find_person(conn, pid)
        row = conn.execute(sa.select(eid_registrations).where(eid_registrations.c.person_id == person.person_id,
                                                              eid_registrations.c.status == "approved")
                           .order_by(eid_registrations.c.registration_id.desc())).first()
        if row is None:
            raise NotFound("No registration awaits activation for this PID.", code="registration_not_found",
                           field="pid")
    else:
        raise InvalidInput("Give the registration id or the PID.", field="registration_id")
    if row.account_id is not None:  # a weak passcode is refused before an attempt is spent
        auth.check_new_passcode(conn, accounts.get_account(conn, row.account_id), passcode)
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

