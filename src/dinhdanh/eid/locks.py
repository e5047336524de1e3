"""Locking and unlocking accounts, for every cause of Decree 69/2024 (domain.md s.6).

An account is ``locked`` while at least one ``account_locks`` row is open. Each cause is opened and
lifted on its own, so an owner's lock and a revoked card do not undo each other:

- the owner's request (``lock_by_owner`` in ``auth``), lifted by the owner or an officer;
- breach of terms and another authority's request (a ``lock_requests`` row the police approve within
  2 working days), lifted by an officer;
- causes that follow the data, locked and lifted automatically: the card revoked (hook
  ``cards.lifecycle.AFTER_REVOKE``) or expired (``sweep``), death (hook
  ``registry.events.AFTER_EVENT``, and ``sweep``), a foreigner's passport or residence card
  expired (``sweep``), an organisation dissolved. They are lifted by ``sweep`` (or on request) only
  when the cause is gone: a new valid card, a corrected record, a renewed document.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from dinhdanh.cards import lifecycle
from dinhdanh.cards.tables import cards
from dinhdanh.eid import accounts
from dinhdanh.eid.tables import LOCK_CAUSES, account_locks, eid_accounts, foreigners, lock_requests, organisations
from dinhdanh.officers.permissions import SeparationOfDuties
from dinhdanh.registry import events as registry_events
from dinhdanh.registry.area import NATIONAL, Area
from dinhdanh.registry.errors import Conflict, InvalidInput, NotFound, RuleViolation
from dinhdanh.registry.tables import persons
from dinhdanh.store.base import utcnow
from dinhdanh.store.outbox import enqueue

# Causes that follow data: only the data can lift them (or an officer once the data say so).
AUTOMATIC = frozenset({"card_revoked", "card_expired", "death", "passport_expired", "residence_card_expired",
                       "dissolution"})
REQUEST_WORKING_DAYS = 2


def add_working_days(day: dt.date, count: int) -> dt.date:
    """``count`` working days after ``day`` (Saturday and Sunday skipped; public holidays are not).

    >>> add_working_days(dt.date(2026, 11, 26), 2)   # Thursday -> Monday
    datetime.date(2026, 11, 30)
    >>> add_working_days(dt.date(2026, 11, 28), 2)   # Saturday -> Tuesday
    datetime.date(2026, 12, 1)
    """
    while count > 0:
        day += dt.timedelta(days=1)
        if day.weekday() < 5:
            count -= 1
    return day


def lock(conn: sa.Connection, account_id: int, cause: str, *, source: str, actor: str, reason: str | None,
         now: dt.datetime | None = None) -> int | None:
    """Open a lock of ``cause`` (once: an open lock of the same cause is kept); None on a revoked account."""
    if cause not in LOCK_CAUSES:
        raise InvalidInput(f"Unknown lock cause {cause!r}.", field="cause")
    now = now or utcnow()
    account = accounts.get_account(conn, account_id, for_update=True)
    if account.state == "revoked":
        return None
    same = conn.execute(sa.select(account_locks.c.lock_id).where(
        account_locks.c.account_id == account_id, account_locks.c.cause == cause,
        account_locks.c.lifted_at.is_(None))).scalar()
    if same is not None:
        return same
    lock_id = conn.execute(account_locks.insert().values(
        account_id=account_id, cause=cause, source=source, reason=reason, locked_at=now, locked_by=actor,
    ).returning(account_locks.c.lock_id)).scalar_one()
    if account.state == "locked":
        accounts.log_event(conn, account_id, "lock_added", source=source, actor=actor, reason=reason,
                           from_state="locked", to_state="locked", level=account.level,
                           detail={"cause": cause}, now=now)
    else:
        accounts.set_state(conn, account, "locked", kind="locked", source=source, actor=actor, reason=reason,
                           detail={"cause": cause}, now=now)
        if account.person_id is not None:  # partners hear of a citizen's locked e-ID (changes)
            pid = conn.execute(sa.select(persons.c.pid).where(persons.c.person_id == account.person_id)).scalar_one()
            enqueue(conn, "eid.locked", account.person_id, {"pid": pid, "cause": cause})
    return lock_id


def lift(conn: sa.Connection, account_id: int, causes: set[str] | frozenset[str], *, source: str, actor: str,
         reason: str | None, now: dt.datetime | None = None) -> list[str]:
    """Close the open locks of ``causes``; the account is active again (or pending) when none is left."""
    now = now or utcnow()
    account = accounts.get_account(conn, account_id, for_update=True)
    open_ = accounts.open_locks(conn, account_id)
    lifted = [row for row in open_ if row.cause in causes]
    if not lifted:
        return []
    conn.execute(account_locks.update().where(account_locks.c.lock_id.in_([r.lock_id for r in lifted]))
                 .values(lifted_at=now, lifted_by=actor, lift_reason=reason))
    names = sorted({r.cause for r in lifted})
    if len(lifted) == len(open_) and account.state == "locked":
        to_state = "active" if account.activated_at is not None else "pending"
        accounts.set_state(conn, account, to_state, kind="unlocked", source=source, actor=actor, reason=reason,
                           detail={"causes": names}, now=now)
    else:
        accounts.log_event(conn, account_id, "lock_lifted", source=source, actor=actor, reason=reason,
                           from_state=account.state, to_state=account.state, level=account.level,
                           detail={"causes": names}, now=now)
    return names


# ------------------------------------------------------------------------------ is the cause gone


def _card_ok(conn, person_id: int, today: dt.date) -> bool:
    card = lifecycle.current_card(conn, person_id)
    return card is not None and lifecycle.effective_status(card, today) == "issued"


def cause_gone(conn: sa.Connection, account, cause: str, today: dt.date) -> bool:
    """Whether the data no longer justify an automatic lock of ``cause``."""
    row = accounts.holder(conn, account)
    if cause in ("card_revoked", "card_expired"):
        return _card_ok(conn, account.person_id, today)
    if cause == "death":
        return row.status == "alive"
    if cause == "passport_expired":
        return row.passport_expiry >= today
    if cause == "residence_card_expired":
        return row.residence_card_expiry is not None and row.residence_card_expiry >= today
    if cause == "dissolution":
        return row.status == "active"
    return True


def unlock(conn: sa.Connection, account_id: int, *, actor: str, reason: str, causes: list[str] | None = None,
           source: str = "officer", now: dt.datetime | None = None) -> list[str]:
    """An officer (or the owner, for ``owner`` locks) lifts locks; automatic ones only when their cause is gone."""
    now = now or utcnow()
    # the row first: a lock opened by another transaction (a card revoked, a death) either committed
    # before (its cause is read below as it stands) or waits for this one and finds its cause's
    # lock lifted (it opens a new one); never lifted on a cause read before it changed
    account = accounts.get_account(conn, account_id, for_update=True)
    open_ = accounts.open_locks(conn, account_id)
    if not open_:
        raise Conflict("The account is not locked.", code="not_locked", field="account_id")
    wanted = set(causes) if causes else {r.cause for r in open_}
    unknown = wanted - set(LOCK_CAUSES)
    if unknown:
        raise InvalidInput(f"Unknown lock cause {sorted(unknown)[0]!r}.", field="causes")
    if source == "owner" and wanted - {"owner"}:
        raise RuleViolation("Only a lock the owner asked for can be lifted in the app.", code="not_owner_lock",
                            field="causes")
    today = accounts.vn_today(now)
    persisting = [c for c in sorted(wanted) if c in AUTOMATIC and not cause_gone(conn, account, c, today)]
    if persisting:
        raise RuleViolation(f"The cause of the lock is still there: {', '.join(persisting)}.",
                            code="cause_persists", field="causes")
    lifted = lift(conn, account_id, wanted, source=source, actor=actor, reason=reason, now=now)
    if not lifted:
        raise Conflict("No open lock has these causes.", code="not_locked", field="causes")
    return lifted


def revoke(conn: sa.Connection, account_id: int, *, actor: str, reason: str, now: dt.datetime | None = None) -> None:
    """Revoke the account for good (the row stays, with its history; the person may enrol again)."""
    account = accounts.get_account(conn, account_id, for_update=True)
    if account.state == "revoked":
        raise Conflict("The account is already revoked.", code="already_revoked", field="account_id")
    now = now or utcnow()
    conn.execute(account_locks.update().where(account_locks.c.account_id == account_id,
                                              account_locks.c.lifted_at.is_(None))
                 .values(lifted_at=now, lifted_by=actor, lift_reason="account revoked"))
    accounts.set_state(conn, account, "revoked", kind="revoked", source="officer", actor=actor, reason=reason,
                       now=now, passcode_hash=None)


# ------------------------------------------------------------------------ another authority


def _request_view(row, today: dt.date) -> dict:
    return {"request_id": row.request_id, "account_id": row.account_id, "authority": row.authority,
            "reason": row.reason, "requested_at": row.requested_at.isoformat(), "deadline": row.deadline.isoformat(),
            "status": row.status, "overdue": row.status == "pending" and today > row.deadline,
            "decided_at": row.decided_at.isoformat() if row.decided_at else None,
            "decided_by": row.decided_by, "decision_reason": row.decision_reason}


def request_lock(conn: sa.Connection, account_id: int, *, authority: str, reason: str, actor: str,
                 now: dt.datetime | None = None) -> dict:
    """Another authority asks for a lock: it waits for the police's decision, due in 2 working days."""
    now = now or utcnow()
    account = accounts.get_account(conn, account_id)
    if account.state == "revoked":
        raise Conflict("The account is revoked.", code="already_revoked", field="account_id")
    today = accounts.vn_today(now)
    request_id = conn.execute(lock_requests.insert().values(
        account_id=account_id, authority=authority, reason=reason, requested_at=now, requested_by=actor,
        deadline=add_working_days(today, REQUEST_WORKING_DAYS), status="pending",
    ).returning(lock_requests.c.request_id)).scalar_one()
    accounts.log_event(conn, account_id, "lock_requested", source="authority", actor=actor, reason=reason,
                       detail={"request_id": request_id, "authority": authority}, now=now)
    row = conn.execute(sa.select(lock_requests).where(lock_requests.c.request_id == request_id)).one()
    return _request_view(row, today)


def _in_area(conn, account_id: int, area: Area) -> bool:
    """Whether the account's holder lives in ``area`` (citizens by their residence in the register;
    foreigners' and organisations' accounts have no area: national officers only)."""
    if area.national:
        return True
    person = conn.execute(sa.select(persons).join(eid_accounts, eid_accounts.c.person_id == persons.c.person_id)
                          .where(eid_accounts.c.account_id == account_id)).first()
    return person is not None and area.covers(person)


def decide_lock_request(conn: sa.Connection, request_id: int, *, approve: bool, reason: str, actor: str,
                        area: Area = NATIONAL, now: dt.datetime | None = None) -> dict:
    """Approve (the account is locked, cause ``authority``) or refuse a pending request.

    A request about an account outside ``area`` is answered as unknown (404); the officer who filed
    it cannot decide it (403 ``separation_of_duties``); two decisions at once: the conditional
    UPDATE lets one through, the other gets ``already_decided``."""
    now = now or utcnow()
    row = conn.execute(sa.select(lock_requests).where(lock_requests.c.request_id == request_id)).first()
    if row is None or not _in_area(conn, row.account_id, area):
        raise NotFound("No such lock request.", code="not_found", field="request_id")
    if row.status != "pending":
        raise Conflict(f"The request was already {row.status}.", code="already_decided", field="request_id")
    if row.requested_by == actor:
        raise SeparationOfDuties("The officer who filed the lock request cannot decide it.", field="request_id")
    claimed = conn.execute(lock_requests.update().where(lock_requests.c.request_id == request_id,
                                                        lock_requests.c.status == "pending")
                           .values(status="approved" if approve else "refused", decided_at=now, decided_by=actor,
                                   decision_reason=reason))
    if claimed.rowcount != 1:  # decided meanwhile by another officer
        raise Conflict("The request was already decided.", code="already_decided", field="request_id")
    lock_id = None
    if approve:
        lock_id = lock(conn, row.account_id, "authority", source="authority", actor=actor,
                       reason=f"{row.authority}: {row.reason}", now=now)
    else:
        accounts.log_event(conn, row.account_id, "lock_request_refused", source="officer", actor=actor,
                           reason=reason, detail={"request_id": request_id}, now=now)
    if lock_id is not None:
        conn.execute(lock_requests.update().where(lock_requests.c.request_id == request_id).values(lock_id=lock_id))
    row = conn.execute(sa.select(lock_requests).where(lock_requests.c.request_id == request_id)).one()
    return _request_view(row, accounts.vn_today(now))


def list_lock_requests(conn: sa.Connection, *, overdue: bool = False, status: str | None = None,
                       now: dt.datetime | None = None, limit: int = 100, area: Area = NATIONAL) -> list[dict]:
    """Lock requests, soonest deadline first: those about accounts in ``area`` (national: all)."""
    today = accounts.vn_today(now)
    query = sa.select(lock_requests).order_by(lock_requests.c.deadline, lock_requests.c.request_id).limit(limit)
    if not area.national:
        query = (query.join(eid_accounts, eid_accounts.c.account_id == lock_requests.c.account_id)
                 .join(persons, persons.c.person_id == eid_accounts.c.person_id).where(area.clause(persons)))
    if overdue:
        query = query.where(lock_requests.c.status == "pending", lock_requests.c.deadline < today)
    elif status:
        query = query.where(lock_requests.c.status == status)
    return [_request_view(r, today) for r in conn.execute(query)]


# ----------------------------------------------------------------------------- automatic


def _lock_for(conn, person_id: int | None, cause: str, reason: str) -> None:
    if person_id is None:
        return
    account = accounts.account_of_person(conn, person_id)
    if account is not None and account.state != "revoked":
        lock(conn, account.account_id, cause, source="system", actor="system", reason=reason)


def after_revoke(conn: sa.Connection, card, reason: str) -> None:
    """Hook of ``cards.lifecycle.AFTER_REVOKE``: a revoked card locks the holder's account.

    A card "replaced" by the one handed over at the same moment locks nothing.
    """
    if reason == "replaced":
        return
    cause = "death" if reason == "death" else "card_revoked"
    _lock_for(conn, card.person_id, cause, f"card revoked ({reason})")


def after_life_event(conn: sa.Connection, actor, kind: str, result) -> None:
    """Hook of ``registry.events.AFTER_EVENT``: a death locks the account."""
    if kind != "death":
        return
    person_id = conn.execute(sa.select(persons.c.person_id).where(persons.c.pid == result.pid)).scalar()
    _lock_for(conn, person_id, "death", "death registered")


def dissolve_organisation(conn: sa.Connection, code: str, *, on: dt.date, actor: str, reason: str) -> dict:
    row = conn.execute(sa.select(organisations).where(organisations.c.code == code)).first()
    if row is None:
        raise NotFound("No organisation has this e-ID code.", code="not_found", field="code")
    if row.status == "dissolved":
        raise Conflict("The organisation is already dissolved.", code="already_dissolved", field="code")
    conn.execute(organisations.update().where(organisations.c.organisation_id == row.organisation_id)
                 .values(status="dissolved", dissolved_on=on))
    account = conn.execute(sa.select(eid_accounts).where(eid_accounts.c.organisation_id == row.organisation_id)).first()
    if account is not None:
        lock(conn, account.account_id, "dissolution", source="system", actor=actor, reason=reason)
    return {"code": code, "status": "dissolved", "dissolved_on": on.isoformat(),
            "account_id": account.account_id if account else None}


def sweep(conn: sa.Connection, *, actor: str = "system", now: dt.datetime | None = None) -> dict:
    """Lock what the data say must be locked, lift what they no longer justify. Run it daily.

    Card expiry (a citizen whose latest issued card is past its date), death (for deaths recorded
    where the hook did not run, e.g. an import), a foreigner's passport or residence card; lifts
    card, death and foreign-document locks whose cause is gone. Returns counts per action.
    ``actor``: who ran it (an officer through the API: ``officer:ID``), recorded on every change.
    """
    now = now or utcnow()
    today = accounts.vn_today(now)
    done = {"locked": {}, "lifted": {}}

    def count(action, cause):
        done[action][cause] = done[action].get(cause, 0) + 1

    live = eid_accounts.c.state.in_(("pending", "active", "locked"))
    # citizens whose issued card has expired
    expired = conn.execute(
        sa.select(eid_accounts.c.account_id).join(cards, cards.c.person_id == eid_accounts.c.person_id)
        .where(live, cards.c.status == "issued", cards.c.expiry_date.is_not(None), cards.c.expiry_date < today)
    ).scalars().all()
    for account_id in expired:
        if _opens(conn, account_id, "card_expired", now, actor):
            count("locked", "card_expired")
    dead = conn.execute(sa.select(eid_accounts.c.account_id).join(persons, persons.c.person_id == eid_accounts.c.person_id)
                        .where(live, persons.c.status == "dead")).scalars().all()
    for account_id in dead:
        if _opens(conn, account_id, "death", now, actor):
            count("locked", "death")
    for cause, column in (("passport_expired", foreigners.c.passport_expiry),
                          ("residence_card_expired", foreigners.c.residence_card_expiry)):
        ids = conn.execute(sa.select(eid_accounts.c.account_id)
                           .join(foreigners, foreigners.c.foreigner_id == eid_accounts.c.foreigner_id)
                           .where(live, sa.or_(column.is_(None), column < today))).scalars().all()
        for account_id in ids:
            if _opens(conn, account_id, cause, now, actor):
                count("locked", cause)
    # lift what is no longer justified
    pending = conn.execute(sa.select(account_locks.c.account_id, account_locks.c.cause).where(
        account_locks.c.lifted_at.is_(None), account_locks.c.cause.in_(sorted(AUTOMATIC - {"dissolution"})))).all()
    for account_id, cause in pending:
        account = accounts.get_account(conn, account_id, for_update=True)  # as in unlock
        if cause_gone(conn, account, cause, today):
            if lift(conn, account_id, {cause}, source="system", actor=actor, reason="the cause is gone", now=now):
                count("lifted", cause)
    return done


def _opens(conn, account_id: int, cause: str, now: dt.datetime, actor: str = "system") -> bool:
    already = conn.execute(sa.select(account_locks.c.lock_id).where(
        account_locks.c.account_id == account_id, account_locks.c.cause == cause,
        account_locks.c.lifted_at.is_(None))).first()
    if already is not None:
        return False
    return lock(conn, account_id, cause, source="system", actor=actor, reason=f"sweep: {cause}", now=now) is not None


if after_life_event not in registry_events.AFTER_EVENT:
    registry_events.AFTER_EVENT.append(after_life_event)
if after_revoke not in lifecycle.AFTER_REVOKE:
    lifecycle.AFTER_REVOKE.append(after_revoke)
