"""Separation of duties in the service layer, on SQLite and PostgreSQL: whoever filed a card
application, a lock request or a counter registration cannot approve it, whatever entrypoint calls
(the rule is not only the API's); and two officers deciding the same thing at the same moment get
one decision, never two."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from dinhdanh.cards import lifecycle
from dinhdanh.cards.tables import card_applications
from dinhdanh.eid import accounts, locks, registration
from dinhdanh.eid.tables import account_locks, eid_registrations, lock_requests
from dinhdanh.officers.permissions import SeparationOfDuties
from dinhdanh.registry.area import Area
from dinhdanh.registry.errors import Conflict, NotFound
from dinhdanh.registry.events import Actor
from dinhdanh.registry.tables import persons
from dinhdanh.store.base import utcnow
from dinhdanh.store.unit_of_work import UnitOfWork
from tests.chips import AN, BINH, DUC

CLERK = Actor("officer:1")
APPROVERS = [Actor(f"officer:{n}") for n in range(2, 10)]
HANOI = Area(commune="00070")


def person_id(engine, pid: str) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(persons.c.person_id).where(persons.c.pid == pid)).scalar_one()


def at_once(engine, calls) -> list:
    """Run each call in its own writing unit of work, all released together; outcomes in order."""
    start = threading.Barrier(len(calls))

    def run(call):
        start.wait()
        try:
            with UnitOfWork(engine).begin() as conn:
                return call(conn)
        except (Conflict, SeparationOfDuties) as exc:
            return exc

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def test_the_filer_of_a_card_application_cannot_approve_it(family):
    with family.begin() as conn:
        app = lifecycle.submit_application(conn, CLERK, AN)
    with pytest.raises(SeparationOfDuties) as info:
        with family.begin() as conn:
            lifecycle.approve_application(conn, CLERK, app["application_id"])
    assert (info.value.code, info.value.field) == ("separation_of_duties", "application_id")
    with family.connect() as conn:
        assert conn.execute(sa.select(card_applications.c.status)).scalar_one() == "submitted"
    with family.begin() as conn:  # another officer approves it
        assert lifecycle.approve_application(conn, APPROVERS[0], app["application_id"])["status"] == "approved"


def test_concurrent_approvals_give_one_decision(family):
    with family.begin() as conn:
        app_id = lifecycle.submit_application(conn, CLERK, BINH)["application_id"]
    outcomes = at_once(family, [lambda conn, a=a: lifecycle.approve_application(conn, a, app_id)
                                for a in APPROVERS[:6]])
    done = [o for o in outcomes if isinstance(o, dict)]
    assert len(done) == 1 and all(isinstance(o, Conflict) and o.code == "not_submitted"
                                  for o in outcomes if o not in done), outcomes
    with family.connect() as conn:
        row = conn.execute(sa.select(card_applications)).one()
    assert (row.status, row.decided_by) == ("approved", APPROVERS[outcomes.index(done[0])].label)


def _account(engine, pid: str) -> int:
    with engine.begin() as conn:
        return accounts.create_account(conn, kind="citizen", level=1, state="active", source="officer",
                                       actor="officer:test", reason="test", person_id=person_id(engine, pid))


def test_the_filer_of_a_lock_request_cannot_decide_it_and_decisions_do_not_race(family):
    account_id = _account(family, AN)
    with family.begin() as conn:
        request = locks.request_lock(conn, account_id, authority="Cơ quan điều tra", reason="Nghi lừa đảo",
                                     actor=CLERK.label)
    for approve in (True, False):
        with pytest.raises(SeparationOfDuties):
            with family.begin() as conn:
                locks.decide_lock_request(conn, request["request_id"], approve=approve, reason="x", actor=CLERK.label)
    # outside the decider's area the request does not exist for them
    other = _account(family, DUC)
    with family.begin() as conn:
        elsewhere = locks.request_lock(conn, other, authority="Ngân hàng", reason="Mạo danh", actor=CLERK.label)
    with pytest.raises(NotFound) as info, family.begin() as conn:
        locks.decide_lock_request(conn, elsewhere["request_id"], approve=True, reason="x", actor="officer:2",
                                  area=HANOI)
    assert (info.value.code, info.value.field) == ("not_found", "request_id")
    with family.connect() as conn:
        assert [r["request_id"] for r in locks.list_lock_requests(conn, area=HANOI)] == [request["request_id"]]

    outcomes = at_once(family, [
        lambda conn, a=a, yes=(n % 2 == 0): locks.decide_lock_request(conn, request["request_id"], approve=yes,
                                                                       reason="quyết định", actor=a.label)
        for n, a in enumerate(APPROVERS[:6])])
    done = [o for o in outcomes if isinstance(o, dict)]
    assert len(done) == 1 and all(isinstance(o, Conflict) and o.code == "already_decided"
                                  for o in outcomes if o not in done), outcomes
    with family.connect() as conn:
        row = conn.execute(sa.select(lock_requests).where(lock_requests.c.request_id == request["request_id"])).one()
        opened = conn.execute(sa.select(sa.func.count()).select_from(account_locks)
                              .where(account_locks.c.account_id == account_id)).scalar_one()
    assert row.status == done[0]["status"] and row.decided_by == done[0]["decided_by"]
    assert opened == (1 if row.status == "approved" else 0)


def test_a_registration_filed_at_the_counter_is_approved_by_another_officer(family):
    with family.begin() as conn:
        registration_id = conn.execute(eid_registrations.insert().values(
            channel="counter", kind="citizen", level=1, person_id=person_id(family, BINH), msisdn="0912345002",
            status="pending_review", checks={"counter": CLERK.label}, created_at=utcnow(),
        ).returning(eid_registrations.c.registration_id)).scalar_one()
        assert registration.filed_by(conn.execute(sa.select(eid_registrations)).one()) == CLERK.label
    with pytest.raises(SeparationOfDuties) as info, family.begin() as conn:
        registration.review(conn, registration_id, approve=True, reason="Khớp", actor=CLERK.label)
    assert info.value.field == "registration_id"
    # not visible outside the person's area, as if it did not exist
    with pytest.raises(NotFound) as info, family.begin() as conn:
        registration.review(conn, registration_id, approve=True, reason="Khớp", actor="officer:2",
                            area=Area(province="79"))
    assert (info.value.code, info.value.field) == ("registration_not_found", "registration_id")
    with family.begin() as conn:
        out = registration.review(conn, registration_id, approve=True, reason="Khớp", actor="officer:2",
                                  area=HANOI)
    assert out["status"] == "approved"
