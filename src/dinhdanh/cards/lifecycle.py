"""The life of a card: application -> approval -> production -> issued -> revoked or expired.

Applications are for a first card, a renewal (at 14, 25, 40, 60) or a re-issue (lost, damaged,
changed data). The officer who files an application cannot approve it (separation of duties;
only the operator's ``issue_card``, the whole path at once for demos and tests, passes by it).
Handing over a new card revokes the one before it ("replaced"); reporting a card
lost revokes it at once; a death or a change of the printed identity revokes it in the same
transaction as the life event. Every step is also a register event of the person (kind
``card.<step>``, field ``id_card``), so the record's history shows the document's history.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import sqlalchemy as sa

from dinhdanh.cards import pki, production
from dinhdanh.cards.tables import APPLICATION_KINDS, REVOCATION_REASONS, card_applications, cards
from dinhdanh.cards.validity import is_expired
from dinhdanh.officers.permissions import SeparationOfDuties
from dinhdanh.registry import events as registry_events
from dinhdanh.registry.events import Actor, EventResult
from dinhdanh.registry.errors import Conflict, InvalidInput, NotFound, RuleViolation
from dinhdanh.registry.records import find_person
from dinhdanh.registry.tables import persons
from dinhdanh.store.base import utcnow, vietnam_date
from dinhdanh.store.outbox import enqueue
from dinhdanh.store.vault import Vault

__all__ = ["submit_application", "approve_application", "reject_application", "produce_card",
           "hand_over", "revoke_card", "issue_card", "cards_of", "card_view", "current_card",
           "effective_status", "application_view"]

OPEN = ("submitted", "approved", "produced")
RENEWAL_WINDOW = dt.timedelta(days=730)
# A change of these fields makes the printed card wrong: it is revoked ("data_changed").
PRINTED_FIELDS = frozenset({"pid", "full_name", "date_of_birth", "sex", "nationality", "hometown"})
# the 2023 model also prints the place of birth registration (cards.model), drawn from the place of birth
PRINTED_FIELDS_2023 = PRINTED_FIELDS | {"place_of_birth"}


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def effective_status(card, today: dt.date | None = None) -> str:
    """produced / issued / revoked / expired (an issued card past its expiry date)."""
    if card.status == "issued" and is_expired(card.expiry_date, today or _today()):
        return "expired"
    return card.status


def card_view(card, today: dt.date | None = None) -> dict:
    return {
        "card_id": card.card_id, "card_number": card.card_number,
        "status": effective_status(card, today), "issue_date": card.issue_date.isoformat(),
        "expiry_date": card.expiry_date.isoformat() if card.expiry_date else None,
        "printed": card.printed, "mrz": card.mrz.split("\n"), "qr": card.qr,
        "produced_at": card.produced_at.isoformat(),
        "issued_at": card.issued_at.isoformat() if card.issued_at else None,
        "revoked_at": card.revoked_at.isoformat() if card.revoked_at else None,
        "revocation_reason": card.revocation_reason, "application_id": card.application_id,
    }


def application_view(app) -> dict:
    return {"application_id": app.application_id, "kind": app.kind, "status": app.status,
            "reason": app.reason, "submitted_at": app.submitted_at.isoformat(),
            "decided_at": app.decided_at.isoformat() if app.decided_at else None,
            "card_id": app.card_id}


def _document_event(conn, person_id: int, actor: Actor, step: str, old: dict | None, new: dict | None,
                    reason: str | None = None) -> None:
    """The card step as a register event of the person: the record's history shows it."""
    registry_events.document_event(conn, person_id, actor, f"card.{step}", "id_card", old, new, reason=reason,
                                   legal_basis="Luật Căn cước 2023")


def _brief(card, status: str | None = None) -> dict:
    return {"card_id": card.card_id, "card_number": card.card_number, "status": status or card.status,
            "issue_date": card.issue_date.isoformat(),
            "expiry_date": card.expiry_date.isoformat() if card.expiry_date else None}


def current_card(conn, person_id: int):
    """The person's issued card (expired or not), newest first."""
    return conn.execute(sa.select(cards).where(cards.c.person_id == person_id, cards.c.status == "issued")
                        .order_by(cards.c.card_id.desc())).first()


def _locked_person(conn, person_id: int):
    """The person's row, locked until the unit ends (PostgreSQL; SQLite's writer serialises units
    already): every step of a person's cards takes it first, so two steps at once (two applications,
    two productions of one, two hand-overs, two revocations) run one after the other, and the second
    reads what the first committed."""
    return conn.execute(sa.select(persons).where(persons.c.person_id == person_id).with_for_update()).one()


def _application(conn, application_id: int, actor: Actor, *, lock: bool = False):
    """The application and its person (out of the actor's area: as unknown); ``lock``: the person's
    row taken first (``_locked_person``) and the application read again under it."""
    app = conn.execute(sa.select(card_applications)
                       .where(card_applications.c.application_id == application_id)).first()
    if app is None:
        raise NotFound(f"No card application {application_id}.", field="application_id")
    person = (_locked_person(conn, app.person_id) if lock
              else conn.execute(sa.select(persons).where(persons.c.person_id == app.person_id)).one())
    if not actor.area.covers(person):
        raise NotFound(f"No card application {application_id}.", field="application_id")
    if lock:
        app = conn.execute(sa.select(card_applications)
                           .where(card_applications.c.application_id == application_id)).one()
    return app, person


def submit_application(conn, actor: Actor, pid: str, kind: str | None = None,
                       reason: str | None = None) -> dict:
    """Open an application; ``kind`` is worked out when not given (first card, renewal, changed data)."""
    row = _locked_person(conn, find_person(conn, pid, actor.area).person_id)
    if row.status != "alive":
        raise RuleViolation(f"The person is recorded as {row.status}: no card can be issued.",
                            code=f"person_{row.status}", field="pid")
    if conn.execute(sa.select(card_applications.c.application_id).where(
            card_applications.c.person_id == row.person_id, card_applications.c.status.in_(OPEN))).first():
        raise Conflict("The person already has a card application in progress.", code="application_open")
    current = current_card(conn, row.person_id)
    ever = conn.execute(sa.select(cards.c.card_id).where(cards.c.person_id == row.person_id).limit(1)).first()
    kind = kind or _default_kind(conn, row, current, ever)
    if kind not in APPLICATION_KINDS:
        raise InvalidInput(f"Unknown application kind {kind!r}; one of {', '.join(APPLICATION_KINDS)}.",
                           field="kind")
    if kind == "renewal" and current is not None and current.expiry_date is not None \
            and current.expiry_date > _today() + RENEWAL_WINDOW:
        raise RuleViolation(f"The card is valid until {current.expiry_date.isoformat()}; renewal opens "
                            "two years before. A lost or damaged card is re-issued instead.",
                            code="card_still_valid", field="kind")
    if kind == "renewal" and current is not None and current.expiry_date is None:
        raise RuleViolation("The card does not expire; a lost or damaged card is re-issued instead.",
                            code="card_still_valid", field="kind")
    if kind == "first" and ever is not None:
        raise RuleViolation("The person already had a card: apply for a renewal or a re-issue.",
                            code="not_first_card", field="kind")
    if kind != "first" and ever is None:
        raise RuleViolation("The person never had a card: apply for a first card.", code="no_card_yet",
                            field="kind")
    if kind in ("reissue_lost", "reissue_damaged") and current is None \
            and _latest_revocation(conn, row.person_id) != kind.removeprefix("reissue_"):
        raise RuleViolation("There is no issued card to re-issue.", code="no_current_card", field="kind")
    now = utcnow()
    application_id = conn.execute(card_applications.insert().values(
        person_id=row.person_id, kind=kind, status="submitted", reason=reason, submitted_at=now,
        submitted_by=actor.label,
    ).returning(card_applications.c.application_id)).scalar_one()
    if kind == "reissue_lost" and current is not None:
        _revoke(conn, actor, current, "lost")
    _document_event(conn, row.person_id, actor, "applied", None,
                    {"application_id": application_id, "kind": kind, "status": "submitted"}, reason)
    app = conn.execute(sa.select(card_applications)
                       .where(card_applications.c.application_id == application_id)).one()
    return application_view(app)


def _latest_revocation(conn, person_id: int) -> str | None:
    """Why the person's latest card was revoked (None if it was not)."""
    latest = conn.execute(sa.select(cards.c.status, cards.c.revocation_reason)
                          .where(cards.c.person_id == person_id)
                          .order_by(cards.c.card_id.desc()).limit(1)).first()
    return latest.revocation_reason if latest is not None and latest.status == "revoked" else None


def _default_kind(conn, row, current, ever) -> str:
    if ever is None:
        return "first"
    if current is None:
        reason = _latest_revocation(conn, row.person_id)
        if reason in ("data_changed", "lost", "damaged"):
            return {"data_changed": "reissue_changed", "lost": "reissue_lost", "damaged": "reissue_damaged"}[reason]
        return "renewal"  # every earlier card expired or was replaced
    if _outdated(current.printed or {}, row):
        return "reissue_changed"
    return "renewal"


def _outdated(printed: dict, row) -> list[str]:
    """The printed identity fields that no longer agree with the record."""
    now = {"pid": row.pid, "full_name": row.full_name, "date_of_birth": production.ddmmyyyy(row.date_of_birth),
           "sex": "Nam" if row.sex == "male" else "Nữ"}
    return [field for field, value in now.items() if printed.get(field) != value]


def approve_application(conn, actor: Actor, application_id: int) -> dict:
    """Approve a submitted application: not by the one who filed it (``SeparationOfDuties``)."""
    return _approve(conn, actor, application_id, separate=True)


def _approve(conn, actor: Actor, application_id: int, *, separate: bool) -> dict:
    app, _ = _application(conn, application_id, actor)
    if app.status != "submitted":
        raise Conflict(f"The application is {app.status}, not awaiting a decision.", code="not_submitted")
    if separate and app.submitted_by == actor.label:
        raise SeparationOfDuties("The officer who filed the application cannot approve it.", field="application_id")
    # one decision: a concurrent approval or rejection finds the status changed
    done = conn.execute(card_applications.update().where(card_applications.c.application_id == application_id,
                                                         card_applications.c.status == "submitted")
                        .values(status="approved", decided_at=utcnow(), decided_by=actor.label))
    if done.rowcount != 1:
        raise Conflict("The application is no longer awaiting a decision.", code="not_submitted")
    _document_event(conn, app.person_id, actor, "approved", None,
                    {"application_id": application_id, "status": "approved"})
    return application_view(_application(conn, application_id, actor)[0])


def reject_application(conn, actor: Actor, application_id: int, reason: str) -> dict:
    app, _ = _application(conn, application_id, actor)
    if app.status != "submitted":
        raise Conflict(f"The application is {app.status}, not awaiting a decision.", code="not_submitted")
    done = conn.execute(card_applications.update().where(card_applications.c.application_id == application_id,
                                                         card_applications.c.status == "submitted")
                        .values(status="rejected", decided_at=utcnow(), decided_by=actor.label, reason=reason))
    if done.rowcount != 1:
        raise Conflict("The application is no longer awaiting a decision.", code="not_submitted")
    _document_event(conn, app.person_id, actor, "rejected", None,
                    {"application_id": application_id, "status": "rejected"}, reason)
    return application_view(_application(conn, application_id, actor)[0])


def _relative_name(conn, person_id: int | None) -> str | None:
    if person_id is None:
        return None
    return conn.execute(sa.select(persons.c.full_name).where(persons.c.person_id == person_id)).scalar()


def produce_card(conn, vault: Vault, actor: Actor, application_id: int, *, now: dt.datetime | None = None,
                 photo: bytes | None = None) -> dict:
    """Make the card of an approved application: printed data, MRZ, QR and the signed chip."""
    app, row = _application(conn, application_id, actor, lock=True)
    if app.status != "approved":
        raise Conflict(f"The application is {app.status}; only an approved one goes to production.",
                       code="not_approved")
    if row.status != "alive":
        raise RuleViolation(f"The person is recorded as {row.status}.", code=f"person_{row.status}", field="pid")
    now = now or utcnow()
    signer = pki.document_signer(conn, vault, now)
    reference = f"application:{application_id}"
    made = production.produce(
        row, issue_date=vietnam_date(now), signed_at=now, father=_relative_name(conn, row.father_id),
        mother=_relative_name(conn, row.mother_id), spouse=_relative_name(conn, row.spouse_id),
        sign=lambda data: signer.sign(conn, data, purpose="sign_sod", reference=reference),
        signer_certificate=signer.certificate, signature_algorithm=signer.signature_algorithm,
        hash_algorithm=signer.hash_algorithm, photo=photo)
    files = made.files
    card_id = conn.execute(cards.insert().values(
        person_id=row.person_id, application_id=application_id, card_number=row.pid, status="produced",
        issue_date=made.issue_date, expiry_date=made.expiry_date, printed=made.printed,
        mrz="\n".join(made.mrz), qr=made.qr, ef_com=files["EF.COM"], dg1=files["DG1"],
        dg2=vault.seal(files["DG2"], "dg2"), dg13=files["DG13"], dg14=files["DG14"], dg15=files["DG15"],
        sod=files["EF.SOD"], sod_digest=made.sod_digest, chip_key=vault.seal(made.chip_key, "chip-key"),
        signer_id=signer.key_id, produced_at=now,
    ).returning(cards.c.card_id)).scalar_one()
    conn.execute(card_applications.update().where(card_applications.c.application_id == application_id)
                 .values(status="produced", card_id=card_id))
    card = conn.execute(sa.select(cards).where(cards.c.card_id == card_id)).one()
    _document_event(conn, row.person_id, actor, "produced", None, _brief(card))
    return card_view(card)


def hand_over(conn, actor: Actor, card_id: int) -> dict:
    """The citizen receives the card: it becomes the issued card; the one before is replaced."""
    card = conn.execute(sa.select(cards).where(cards.c.card_id == card_id)).first()
    if card is None:
        raise NotFound(f"No card {card_id}.", field="card_id")
    person = _locked_person(conn, card.person_id)
    if not actor.area.covers(person):
        raise NotFound(f"No card {card_id}.", field="card_id")
    card = conn.execute(sa.select(cards).where(cards.c.card_id == card_id)).one()  # again, under the lock
    if card.status != "produced":
        raise Conflict(f"The card is {card.status}; only a produced card can be handed over.",
                       code="not_produced")
    if person.status != "alive":
        raise RuleViolation(f"The holder is recorded as {person.status}: the card is not handed over.",
                            code=f"person_{person.status}", field="card_id")
    outdated = _outdated(card.printed or {}, person)
    if outdated:
        raise RuleViolation("The record changed since production (" + ", ".join(outdated) + "): the card "
                            "must be produced again.", code="card_outdated", field="card_id")
    previous = current_card(conn, card.person_id)
    if previous is not None:
        _revoke(conn, actor, previous, "replaced")
    now = utcnow()
    conn.execute(cards.update().where(cards.c.card_id == card_id).values(status="issued", issued_at=now))
    conn.execute(card_applications.update()
                 .where(card_applications.c.application_id == card.application_id).values(status="issued"))
    issued = conn.execute(sa.select(cards).where(cards.c.card_id == card_id)).one()
    _document_event(conn, card.person_id, actor, "issued", _brief(previous) if previous else None,
                    _brief(issued))
    enqueue(conn, "card.issued", card.person_id, {"pid": person.pid, "card_id": card_id,
                                                  "expiry_date": _brief(issued)["expiry_date"]})
    return card_view(issued)


# Other areas follow revocations in the same transaction (the e-ID area locks the holder's
# account): ``hook(conn, card_row, reason)``, with the card row as it was before revocation.
AFTER_REVOKE: list[Callable[[sa.Connection, sa.Row, str], None]] = []


def _revoke(conn, actor: Actor, card, reason: str) -> None:
    conn.execute(cards.update().where(cards.c.card_id == card.card_id)
                 .values(status="revoked", revoked_at=utcnow(), revocation_reason=reason))
    _document_event(conn, card.person_id, actor, "revoked", _brief(card), _brief(card, "revoked"), reason)
    enqueue(conn, "card.revoked", card.person_id, {"card_id": card.card_id, "reason": reason})
    for hook in AFTER_REVOKE:
        hook(conn, card, reason)


def revoke_card(conn, actor: Actor, pid: str, reason: str) -> dict:
    if reason not in REVOCATION_REASONS:
        raise InvalidInput(f"Unknown revocation reason {reason!r}; one of {', '.join(REVOCATION_REASONS)}.",
                           field="reason")
    row = _locked_person(conn, find_person(conn, pid, actor.area).person_id)
    card = current_card(conn, row.person_id)
    if card is None:
        raise NotFound("The person holds no issued card.", field="pid")
    _revoke(conn, actor, card, reason)
    return card_view(conn.execute(sa.select(cards).where(cards.c.card_id == card.card_id)).one())


def issue_card(conn, vault: Vault, actor: Actor, pid: str, kind: str | None = None,
               reason: str | None = None, *, now: dt.datetime | None = None) -> dict:
    """The whole path at once: application, approval, production and hand-over.

    One actor files and approves: the operator's path (``dinhdanh card issue``, demos, tests), never
    an officer's through the API, where separation of duties holds (``approve_application``)."""
    app = submit_application(conn, actor, pid, kind, reason)
    _approve(conn, actor, app["application_id"], separate=False)
    made = produce_card(conn, vault, actor, app["application_id"], now=now)
    return hand_over(conn, actor, made["card_id"])


def cards_of(conn, actor: Actor, pid: str) -> dict:
    row = find_person(conn, pid, actor.area)
    rows = conn.execute(sa.select(cards).where(cards.c.person_id == row.person_id)
                        .order_by(cards.c.card_id)).all()
    apps = conn.execute(sa.select(card_applications).where(card_applications.c.person_id == row.person_id)
                        .order_by(card_applications.c.application_id)).all()
    return {"pid": row.pid, "cards": [card_view(c) for c in rows],
            "applications": [application_view(a) for a in apps]}


def card_of(conn, actor: Actor, pid: str):
    """The person's latest card row (any status), for export."""
    row = find_person(conn, pid, actor.area)
    card = conn.execute(sa.select(cards).where(cards.c.person_id == row.person_id)
                        .order_by(cards.c.card_id.desc())).first()
    if card is None:
        raise NotFound("The person has no card.", field="pid")
    return card


def _follow_life_event(conn, actor: Actor, kind: str, result: EventResult) -> None:
    """Revoke the card of a person who died or whose printed identity changed."""
    changed = {change["field"] for change in result.changes}
    if kind != "death" and not changed & PRINTED_FIELDS_2023:
        return
    person_id = conn.execute(sa.select(persons.c.person_id).where(persons.c.pid == result.pid)).scalar()
    card = current_card(conn, person_id) if person_id is not None else None
    if card is None:
        return
    printed = PRINTED_FIELDS_2023 if (card.printed or {}).get("model") == "2023" else PRINTED_FIELDS
    if kind == "death":
        _revoke(conn, actor, card, "death")
    elif changed & printed:
        _revoke(conn, actor, card, "data_changed")


if _follow_life_event not in registry_events.AFTER_EVENT:
    registry_events.AFTER_EVENT.append(_follow_life_event)
