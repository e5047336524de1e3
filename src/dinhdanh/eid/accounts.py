"""Accounts: who may hold one at which level (Decree 69/2024), their states and history.

An account belongs to one citizen (a ``persons`` row), one foreigner (``foreigners``) or one
organisation (``organisations``). Its state is ``pending`` (approved, not yet activated),
``active``, ``locked`` (while at least one ``account_locks`` row is open: see ``locks``) or
``revoked``. Every change is an ``account_events`` row with its reason, source and actor, written
in the same transaction as the change.
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

import sqlalchemy as sa

from dinhdanh.cards.lifecycle import current_card, effective_status
from dinhdanh.cards.validity import age_on
from dinhdanh.eid.tables import (account_events, account_locks, eid_accounts, foreigners, organisations)
from dinhdanh.registry.errors import Conflict, InvalidInput, NotFound, RuleViolation
from dinhdanh.registry.records import find_person
from dinhdanh.registry.tables import persons
from dinhdanh.store.base import utcnow, vietnam_date

LEVEL2_MIN_AGE = 6  # under 6: level 1 only, registered by a guardian's level-2 account
ADULT_AGE = 14  # 14 and over: both levels, on their own; 6-13: on request
FOREIGNER_MIN_AGE = 6


# ages and expiry dates are Vietnamese dates
vn_today = vietnam_date


def new_subject() -> str:
    return secrets.token_hex(16)


def log_event(conn: sa.Connection, account_id: int, kind: str, *, source: str, actor: str,
              reason: str | None = None, from_state: str | None = None, to_state: str | None = None,
              level: int | None = None, detail: dict | None = None, now: dt.datetime | None = None) -> None:
    conn.execute(account_events.insert().values(
        account_id=account_id, at=now or utcnow(), kind=kind, from_state=from_state, to_state=to_state,
        level=level, reason=reason, source=source, actor=actor, detail=detail))


def get_account(conn: sa.Connection, account_id: int, *, for_update: bool = False):
    query = sa.select(eid_accounts).where(eid_accounts.c.account_id == account_id)
    if for_update and conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = conn.execute(query).first()
    if row is None:
        raise NotFound("No such e-ID account.", code="account_not_found", field="account_id")
    return row


def account_of_person(conn: sa.Connection, person_id: int):
    return conn.execute(sa.select(eid_accounts).where(eid_accounts.c.person_id == person_id)).first()


def account_by_pid(conn: sa.Connection, pid: str):
    """The citizen's account by current or former PID; ``NotFound`` when none."""
    person = find_person(conn, pid)
    account = account_of_person(conn, person.person_id)
    if account is None:
        raise NotFound("This person has no e-ID account.", code="account_not_found", field="pid")
    return account


def create_account(conn: sa.Connection, *, kind: str, level: int | None, state: str, source: str, actor: str,
                   reason: str, person_id: int | None = None, foreigner_id: int | None = None,
                   organisation_id: int | None = None, guardian_account_id: int | None = None,
                   msisdn: str | None = None, msisdn_verified: bool = False, email: str | None = None,
                   detail: dict | None = None, now: dt.datetime | None = None) -> int:
    now = now or utcnow()
    account_id = conn.execute(eid_accounts.insert().values(
        subject=new_subject(), kind=kind, level=level, state=state, person_id=person_id,
        foreigner_id=foreigner_id, organisation_id=organisation_id, guardian_account_id=guardian_account_id,
        msisdn=msisdn, msisdn_verified=msisdn_verified, email=email, created_at=now, updated_at=now,
        activated_at=now if state == "active" else None,
    ).returning(eid_accounts.c.account_id)).scalar_one()
    log_event(conn, account_id, "created", source=source, actor=actor, reason=reason, to_state=state,
              level=level, detail=detail, now=now)
    return account_id


def set_state(conn: sa.Connection, account, to_state: str, *, kind: str, source: str, actor: str,
              reason: str | None = None, detail: dict | None = None, now: dt.datetime | None = None,
              **values: Any) -> None:
    """Move the account to ``to_state`` (and set ``values``), logging the change; only from the state
    the caller read (``account.state``): an account another transaction moved since (locked, say,
    by a card revoked meanwhile) is a ``Conflict``, never overwritten."""
    now = now or utcnow()
    moved = conn.execute(eid_accounts.update().where(eid_accounts.c.account_id == account.account_id,
                                                     eid_accounts.c.state == account.state)
                         .values(state=to_state, updated_at=now, **values)).rowcount
    if moved != 1:
        raise Conflict("The e-ID account changed meanwhile; try again.", code="account_changed", field="account_id")
    log_event(conn, account.account_id, kind, source=source, actor=actor, reason=reason,
              from_state=account.state, to_state=to_state, level=values.get("level", account.level),
              detail=detail, now=now)


def open_locks(conn: sa.Connection, account_id: int) -> list:
    return conn.execute(sa.select(account_locks).where(account_locks.c.account_id == account_id,
                                                       account_locks.c.lifted_at.is_(None))
                        .order_by(account_locks.c.lock_id)).all()


# ---------------------------------------------------------------------------- who may hold what


def check_citizen_age(born: dt.date, level: int, today: dt.date, *, by_guardian: bool) -> None:
    """Decree 69/2024: 14+ both levels; 6-13 on request; under 6 level 1 only, through a guardian."""
    age = age_on(born, today)
    if age < LEVEL2_MIN_AGE:
        if level != 1:
            raise RuleViolation("A child under 6 can only hold a level-1 account.", code="level2_under_6",
                                field="level")
        if not by_guardian:
            raise RuleViolation("A child under 6 is registered by a guardian with a level-2 account.",
                                code="guardian_required", field="pid")


def check_current_card(conn: sa.Connection, person_id: int, today: dt.date):
    """The person's card, issued, not revoked, not expired; ``RuleViolation(no_valid_card)`` otherwise."""
    card = current_card(conn, person_id)
    if card is None or effective_status(card, today) != "issued":
        raise RuleViolation("The person holds no valid chip ID card (issued, not revoked, not expired).",
                            code="no_valid_card", field="pid")
    return card


def check_alive(row) -> None:
    if row.status != "alive":
        raise RuleViolation(f"The person is recorded as {row.status}.", code=f"person_{row.status}", field="pid")


def guardian_of(conn: sa.Connection, child, guardian_account_id: int):
    """The guardian's account, when it is an active level-2 citizen account of the child's parent or
    legal representative."""
    guardian = get_account(conn, guardian_account_id)
    if guardian.kind != "citizen" or guardian.state != "active" or guardian.level != 2:
        raise RuleViolation("Only a guardian's active level-2 account can register a child.",
                            code="guardian_not_level2", field="guardian")
    if guardian.person_id not in (child.father_id, child.mother_id, child.representative_id):
        raise RuleViolation("The account holder is not the child's parent or legal representative.",
                            code="not_guardian", field="pid")
    return guardian


def check_foreigner(row, level: int, today: dt.date) -> None:
    if age_on(row.date_of_birth, today) < FOREIGNER_MIN_AGE:
        raise RuleViolation("A foreigner must be 6 or older to hold an e-ID account.", code="too_young",
                            field="date_of_birth")
    if row.residence_card_number is None or row.residence_card_expiry is None \
            or row.residence_card_expiry < today:
        raise RuleViolation("A foreigner needs a valid residence card.", code="residence_card_expired",
                            field="residence_card_expiry")
    if row.passport_expiry < today:
        raise RuleViolation("The foreigner's passport has expired.", code="passport_expired",
                            field="passport_expiry")
    if level not in (1, 2):
        raise InvalidInput("The level is 1 or 2.", field="level")


def refuse_existing(account, level: int) -> None:
    if account is None:
        return
    if account.state == "revoked":
        return
    if account.state == "active" and (account.level or 0) >= level:
        raise Conflict("The person already holds an active e-ID account at this level.", code="account_exists",
                       field="pid")
    if account.state == "locked":
        raise Conflict("The person's e-ID account is locked; it must be unlocked first.",
                       code="account_locked", field="pid")


# ------------------------------------------------------------------------------------ viewing


def holder(conn: sa.Connection, account) -> Any:
    """The row the account belongs to: a person, a foreigner or an organisation."""
    if account.kind == "citizen":
        return conn.execute(sa.select(persons).where(persons.c.person_id == account.person_id)).one()
    if account.kind == "foreigner":
        return conn.execute(sa.select(foreigners).where(foreigners.c.foreigner_id == account.foreigner_id)).one()
    return conn.execute(sa.select(organisations)
                        .where(organisations.c.organisation_id == account.organisation_id)).one()


def username_of(conn: sa.Connection, account, row=None) -> str:
    row = row if row is not None else holder(conn, account)
    if account.kind == "citizen":
        return row.pid
    if account.kind == "foreigner":
        return row.number
    return row.code


def mask_msisdn(msisdn: str | None) -> str | None:
    return None if not msisdn else msisdn[:3] + "*" * (len(msisdn) - 6) + msisdn[-3:]


def history(conn: sa.Connection, account_id: int, limit: int = 100) -> list[dict]:
    rows = conn.execute(sa.select(account_events).where(account_events.c.account_id == account_id)
                        .order_by(account_events.c.event_id.desc()).limit(limit)).all()
    return [{"at": r.at.isoformat(), "kind": r.kind, "from_state": r.from_state, "to_state": r.to_state,
             "level": r.level, "reason": r.reason, "source": r.source, "actor": r.actor} for r in rows]
