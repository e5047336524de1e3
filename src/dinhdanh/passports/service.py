"""The passport register's service: issue, revoke, read, verify, and the dossier approval's effect.

Rules of an issue (Luật Xuất cảnh, nhập cảnh của công dân Việt Nam 2019, as amended in 2023):

- the holder is a living Vietnamese citizen of the register (else ``NotFound`` / ``RuleViolation``
  on ``pid``); a chip only from 14 (Điều 6 khoản 2; ``RuleViolation`` on ``chip``);
- ``kind`` is the form's case (``first``, ``expired``, ``lost``, ``damaged``, ``data_changed``): a
  first passport for a person who never had one here; the others follow a passport the register
  holds or, for one issued before the register, whose number is given (``previous_number``);
  ``expired`` only when the current passport has expired or has less than 6 months left;
- one valid passport per person at a time: ``lost`` invalidates the passport reported lost
  ("hủy giá trị", status ``invalidated``); ``expired``, ``damaged`` and ``data_changed`` revoke the
  current one as ``replaced``; then the new one is ``issued``. Both steps are conditional updates and
  a partial unique index keeps a concurrent second issue from leaving two valid passports
  (``Conflict``);
- validity 10 years from 14, 5 years under 14 (Điều 7 khoản 2: :mod:`.production`).

Every step is a register event of the person (kind ``passport.<step>``, field ``passport``), as for
cards (``cards.lifecycle._document_event``), so the person's history shows it, and an outbox message
(``passport.issued`` / ``passport.revoked``) in the same transaction.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from dinhdanh.cards import pki
from dinhdanh.passports import numbers, production
from dinhdanh.passports.tables import REVOCATION_REASONS, passports
from dinhdanh.passports.verification import chip_files as _numbered, verify_chip
from dinhdanh.registry.events import Actor, document_event
from dinhdanh.registry.errors import Conflict, Forbidden, InvalidInput, NotFound, RuleViolation
from dinhdanh.registry.records import find_person
from dinhdanh.registry.tables import persons
from dinhdanh.store.base import utcnow, vietnam_date
from dinhdanh.store.outbox import enqueue
from dinhdanh.store.vault import Vault

__all__ = ["KINDS", "issue_passport", "passport_of", "revoke", "verify_chip", "verify_passport",
           "dossier_effect", "passport_view", "current_passport", "chip_files", "effective_status"]

KINDS = ("first", "expired", "lost", "damaged", "data_changed")
LEGAL_BASIS = "Luật Xuất cảnh, nhập cảnh của công dân Việt Nam 2019"
RENEWAL_MONTHS = 6  # "hộ chiếu hết hạn hoặc còn dưới 6 tháng"
CITIZENSHIP = "VNM"


# ------------------------------------------------------------------------------ views


def effective_status(passport, today: dt.date) -> str:
    """issued / revoked / invalidated, or ``expired`` for an issued passport past its expiry date."""
    if passport.status == "issued" and passport.expiry_date < today:
        return "expired"
    return passport.status


def passport_view(passport, today: dt.date | None = None) -> dict:
    today = today or vietnam_date()
    return {"passport_id": passport.passport_id, "number": passport.number, "type": passport.type,
            "status": effective_status(passport, today), "kind": passport.kind,
            "issue_date": passport.issue_date.isoformat(), "expiry_date": passport.expiry_date.isoformat(),
            "chip": passport.chip, "mrz": passport.mrz.split("\n"), "printed": passport.printed,
            "previous_number": passport.previous_number, "dossier_code": passport.dossier_code,
            "issued_at": passport.issued_at.isoformat(),
            "revoked_at": passport.revoked_at.isoformat() if passport.revoked_at else None,
            "revocation_reason": passport.revocation_reason}


def _brief(passport, status: str | None = None) -> dict:
    return {"passport_id": passport.passport_id, "number": passport.number, "status": status or passport.status,
            "chip": passport.chip, "issue_date": passport.issue_date.isoformat(),
            "expiry_date": passport.expiry_date.isoformat()}


def chip_files(passport, vault: Vault) -> dict[str, bytes]:
    """The chip's files as a reader gets them (DG2 opened from the vault); ``{}`` without a chip."""
    if not passport.chip:
        return {}
    return {"EF.COM": passport.ef_com, "DG1": passport.dg1, "DG2": vault.open(passport.dg2, "dg2"),
            "DG14": passport.dg14, "DG15": passport.dg15, "EF.SOD": passport.sod}


# ------------------------------------------------------------------------------ register steps


def _document_event(conn, person_id: int, actor: Actor, step: str, old: dict | None, new: dict | None,
                    reason: str | None, now: dt.datetime) -> None:
    """The passport step as a register event of the person: the record's history shows it."""
    document_event(conn, person_id, actor, f"passport.{step}", "passport", old, new, reason=reason,
                   legal_basis=LEGAL_BASIS, now=now)


def current_passport(conn, person_id: int, *, lock: bool = False):
    """The person's issued passport (expired or not), or None; locked for the caller's update."""
    query = sa.select(passports).where(passports.c.person_id == person_id, passports.c.status == "issued")
    if lock:
        query = query.with_for_update()
    return conn.execute(query).first()


def _end(conn, actor: Actor, passport, reason: str, now: dt.datetime, note: str | None = None) -> None:
    """Revoke (or, when lost, invalidate) ``passport``: only if it is still issued."""
    status = "invalidated" if reason == "lost" else "revoked"
    done = conn.execute(passports.update().where(passports.c.passport_id == passport.passport_id,
                                                 passports.c.status == "issued")
                        .values(status=status, revoked_at=now, revocation_reason=reason))
    if done.rowcount != 1:
        raise Conflict(f"Passport {passport.number} is no longer issued: it changed meanwhile.",
                       code="passport_changed", field="number")
    _document_event(conn, passport.person_id, actor, status, _brief(passport), _brief(passport, status),
                    note or reason, now)
    enqueue(conn, "passport.revoked", passport.person_id,
            {"number": passport.number, "status": status, "reason": reason})


def _plus_months(day: dt.date, months: int) -> dt.date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    for last in (31, 30, 29, 28):
        try:
            return dt.date(year, month, min(day.day, last))
        except ValueError:
            continue
    raise AssertionError("unreachable")


def _living_citizen(conn, actor: Actor, pid: str):
    if not isinstance(pid, str):
        raise InvalidInput("The personal ID number is not text.", field="pid")
    row = find_person(conn, pid, actor.area)
    if row.status != "alive":
        raise RuleViolation(f"The person is recorded as {row.status}: no passport can be issued.",
                            code=f"person_{row.status}", field="pid")
    if row.nationality != CITIZENSHIP:
        raise RuleViolation("An ordinary passport is issued to Vietnamese citizens only.",
                            code="not_a_citizen", field="pid")
    return row


def _check_previous(conn, row, kind: str, current, previous_number: str | None) -> None:
    """The form's ``previous_passport`` and ``kind`` against the passports the register holds."""
    ever = conn.execute(sa.select(passports.c.passport_id)
                        .where(passports.c.person_id == row.person_id).limit(1)).first() is not None
    if previous_number is not None:
        if kind == "first":
            raise RuleViolation("A first passport follows no earlier one: leave the previous passport out, "
                                "or choose the case of the earlier passport.", code="first_with_previous",
                                field="previous_passport")
        previous = conn.execute(sa.select(passports).where(passports.c.number == previous_number)).first()
        if previous is not None and previous.person_id != row.person_id:
            raise InvalidInput(f"Passport {previous_number} is not a passport of this person.",
                               field="previous_passport")
        if previous is None and ever:
            raise RuleViolation(f"The register holds this person's passports and {previous_number} is not "
                                "one of them.", code="previous_passport_unknown", field="previous_passport")
        if previous is not None and current is not None and previous.passport_id != current.passport_id:
            raise RuleViolation(f"Passport {previous_number} is not the person's current passport "
                                f"({current.number}).", code="previous_not_current", field="previous_passport")
    if kind == "first" and ever:
        raise RuleViolation("The person already had a passport: choose the case of the new one (expired, lost, "
                            "damaged, data changed).", code="not_first_passport", field="kind")
    if kind != "first" and not ever and previous_number is None:
        raise RuleViolation("The register holds no passport of this person: apply for a first passport, or give "
                            "the number of the previous one.", code="no_previous_passport", field="kind")


def issue_passport(conn: sa.Connection, vault: Vault, actor: Actor, pid: str, *, kind: str, chip: bool,
                   previous_number: str | None = None, dossier_code: str | None = None,
                   now: dt.datetime | None = None, photo: bytes | None = None,
                   place_of_birth: str | None = None) -> dict:
    """Issue an ordinary passport to ``pid`` (the rules in the module's docstring); its view."""
    if kind not in KINDS:
        raise InvalidInput(f"Unknown passport case {kind!r}; one of {', '.join(KINDS)}.", field="kind")
    if not isinstance(chip, bool):
        raise InvalidInput("chip must be true or false.", field="chip")
    if previous_number is not None and not numbers.is_valid(previous_number):
        raise InvalidInput(f"{previous_number!r} is not a passport number (a letter and 7 or 8 digits).",
                           field="previous_passport")
    now = now or utcnow()
    if now.tzinfo is None:
        raise InvalidInput("The time must carry its zone.", field="now")
    issue_date = vietnam_date(now)
    row = _living_citizen(conn, actor, pid)
    if chip and not production.chip_allowed(row.date_of_birth, issue_date):
        raise RuleViolation("A passport with a chip is issued from the age of 14; a child under 14 gets one "
                            "without a chip.", code="chip_under_14", field="chip")
    current = current_passport(conn, row.person_id, lock=True)
    _check_previous(conn, row, kind, current, previous_number)
    if kind == "expired" and current is not None \
            and current.expiry_date >= _plus_months(issue_date, RENEWAL_MONTHS):
        raise RuleViolation(f"Passport {current.number} is valid until {current.expiry_date:%d/%m/%Y}, more than "
                            f"{RENEWAL_MONTHS} months from now; a lost or damaged one is replaced instead.",
                            code="passport_still_valid", field="kind")
    note = f"Hồ sơ {dossier_code}" if dossier_code else None
    if current is not None:
        _end(conn, actor, current, "lost" if kind == "lost" else "replaced", now,
             note=f"{'lost' if kind == 'lost' else 'replaced'} ({kind})" + (f", {note}" if note else ""))
    number = numbers.allocate(conn)
    signer = pki.document_signer(conn, vault, now) if chip else None
    made = production.produce(
        row, number=number, issue_date=issue_date, chip=chip,
        sign=(lambda data: signer.sign(conn, data, purpose="sign_sod", reference=f"passport:{number}"))
        if signer else None,
        signer_certificate=signer.certificate if signer else None,
        signature_algorithm=signer.signature_algorithm if signer else None,
        hash_algorithm=signer.hash_algorithm if signer else "sha256", photo=photo, signed_at=now,
        place_of_birth=place_of_birth)
    files = made.files or {}
    values = dict(
        person_id=row.person_id, number=number, type=production.DOCUMENT_CODE, status="issued", kind=kind,
        issue_date=made.issue_date, expiry_date=made.expiry_date, chip=chip, mrz="\n".join(made.mrz),
        printed=made.printed, previous_number=previous_number or (current.number if current else None),
        dossier_code=dossier_code, issued_at=now, issued_by=actor.label)
    if chip:
        values.update(ef_com=files["EF.COM"], dg1=files["DG1"], dg2=vault.seal(files["DG2"], "dg2"),
                      dg14=files["DG14"], dg15=files["DG15"], sod=files["EF.SOD"], sod_digest=made.sod_digest,
                      chip_key=vault.seal(made.chip_key, "chip-key"), signer_id=signer.key_id)
    try:
        passport_id = conn.execute(passports.insert().values(**values)
                                   .returning(passports.c.passport_id)).scalar_one()
    except sa.exc.IntegrityError as exc:
        # the partial unique index: another issue for this person committed meanwhile
        if "one_issued" in str(exc.orig) or "passports.person_id" in str(exc.orig):
            raise Conflict("Another passport was issued to this person meanwhile.", code="passport_changed",
                           field="pid") from None
        raise Conflict("The passport collided with another one being issued; try again.",
                       code="passport_changed", field="number") from None
    issued = conn.execute(sa.select(passports).where(passports.c.passport_id == passport_id)).one()
    _document_event(conn, row.person_id, actor, "issued", _brief(current) if current else None, _brief(issued),
                    note or kind, now)
    enqueue(conn, "passport.issued", row.person_id,
            {"pid": row.pid, "number": number, "expiry_date": issued.expiry_date.isoformat(), "chip": chip})
    return passport_view(issued, issue_date)


def _by_number(conn, actor: Actor, number: str):
    if not isinstance(number, str) or not numbers.is_valid(number):
        raise InvalidInput(f"{number!r} is not a passport number (a letter and 7 or 8 digits).", field="number")
    passport = conn.execute(sa.select(passports).where(passports.c.number == number)).first()
    if passport is not None:
        holder = conn.execute(sa.select(persons).where(persons.c.person_id == passport.person_id)).one()
        if actor.area.covers(holder):
            return passport
    raise NotFound(f"No passport {number}.", field="number")


def revoke(conn: sa.Connection, actor: Actor, number: str, reason: str, *, now: dt.datetime | None = None) -> dict:
    """Revoke the issued passport ``number``; ``lost`` invalidates it (it can never be used again)."""
    if reason not in REVOCATION_REASONS:
        raise InvalidInput(f"Unknown revocation reason {reason!r}; one of {', '.join(REVOCATION_REASONS)}.",
                           field="reason")
    passport = _by_number(conn, actor, number)
    if passport.status != "issued":
        raise Conflict(f"Passport {number} is {passport.status}, not issued.", code="not_issued", field="number")
    now = now or utcnow()
    _end(conn, actor, passport, reason, now)
    return passport_view(conn.execute(sa.select(passports)
                                      .where(passports.c.passport_id == passport.passport_id)).one())


def passport_of(conn: sa.Connection, actor: Actor, pid: str) -> dict:
    """The person's passports, oldest first, and the current one (None when none is issued)."""
    row = find_person(conn, pid, actor.area)
    today = vietnam_date()
    rows = conn.execute(sa.select(passports).where(passports.c.person_id == row.person_id)
                        .order_by(passports.c.passport_id)).all()
    current = next((p for p in rows if p.status == "issued"), None)
    return {"pid": row.pid, "current": passport_view(current, today) if current else None,
            "passports": [passport_view(p, today) for p in rows]}


def verify_passport(conn: sa.Connection, files: Mapping, *, at: dt.datetime | None = None,
                    challenge: bytes | None = None, response: bytes | None = None) -> dict:
    """``verify_chip`` against the register's trust store, and the register's word on the passport:
    ``register.passport`` is ``current`` / ``expired`` / ``revoked`` / ``invalidated`` /
    ``unknown`` (looked up by the SOD only when the chip is authentic; a forged one learns nothing)."""
    from dinhdanh.cards.verification import trust_store_for

    numbered = _numbered(files)
    report = verify_chip(numbered, trust_store_for(conn), at=at, challenge=challenge, response=response)
    register: dict[str, Any] = {"passport": "not_checked", "number": None, "reason": None}
    if report["signature_valid"] and report["chain"]["status"] == "trusted":
        digest = hashlib.sha256(numbered[-1]).hexdigest()
        found = conn.execute(sa.select(passports).where(passports.c.sod_digest == digest)).first()
        if found is None:
            register = {"passport": "unknown", "number": None, "reason": "no passport issued here has this EF.SOD"}
        else:
            status = effective_status(found, vietnam_date(at))
            register = {"passport": "current" if status == "issued" else status, "number": found.number,
                        "reason": found.revocation_reason}
            if status != "issued":
                report["failures"].append({"check": "register", "reason": f"the passport is {status}"})
                report["verdict"] = "invalid"
    report["register"] = register
    return report


# ------------------------------------------------------------------------------ the dossier's effect

# the register's field -> the form's (passport-issue.json), to name the form's field in a refusal
_FORM_FIELDS = {"pid": "applicant.pid", "kind": "kind", "chip": "chip", "previous_passport": "previous_passport",
                "number": "previous_passport"}


def dossier_effect(conn: sa.Connection, dossier, data: Mapping[str, Any], actor: Actor, ctx) -> dict:
    """Cấp hộ chiếu phổ thông ở trong nước (1.001456): the approval issues the passport to the
    applicant, with a chip when the form asks for one, in the approval's unit of work (``ctx.vault``,
    ``ctx.now``). A refusal of the passport register refuses the approval (``RegisterRefused``)."""
    from dinhdanh.dossiers.effects import RegisterRefused  # dossiers call this area: no import cycle at load

    pid = conn.execute(sa.select(persons.c.pid).where(persons.c.person_id == dossier.person_id)).scalar_one()
    try:
        issued = issue_passport(conn, ctx.vault, actor, pid, kind=data["kind"], chip=bool(data.get("chip", False)),
                                previous_number=data.get("previous_passport"), dossier_code=dossier.code,
                                now=ctx.now, place_of_birth=data.get("place_of_birth"))
    except (RuleViolation, InvalidInput, NotFound, Forbidden, Conflict) as exc:
        raise RegisterRefused(f"The passport register refuses the issue: {exc.message}", code=exc.code,
                              field=_FORM_FIELDS.get(exc.field or "", exc.field or "kind")) from exc
    return {"event": "passport_issued", "pid": pid, "passport_number": issued["number"],
            "issue_date": issued["issue_date"], "expiry_date": issued["expiry_date"], "chip": issued["chip"]}


def after_life_event(conn: sa.Connection, actor: Actor, kind: str, result) -> None:
    """Hook of ``registry.events.AFTER_EVENT`` (wired by ``passports.hooks``): a death revokes the
    person's passport in the death's own unit of work (a dead person's passport loses its validity
    under the Law on Exit and Entry 2019)."""
    if kind != "death":
        return
    person_id = conn.execute(sa.select(persons.c.person_id).where(persons.c.pid == result.pid)).scalar()
    passport = current_passport(conn, person_id) if person_id is not None else None
    if passport is not None:
        _end(conn, actor, passport, "death", utcnow())
