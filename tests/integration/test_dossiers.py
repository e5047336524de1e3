"""Dossiers on SQLite and PostgreSQL: filing (code, routing, fee, due date from the calendar), the
officers' actions with their signed slips, the clock paused and resumed, the fee gate, 8 officers
deciding at once, and the scheduler's automatic refusal of an unsupplied dossier."""

from __future__ import annotations

import datetime as dt
import re
import threading

import pytest
import sqlalchemy as sa

from dinhdanh.calendar import working_days as calendar
from dinhdanh.documents import results
from dinhdanh.dossiers import service, timers, workflow
from dinhdanh.dossiers.tables import dossier_events, dossiers
from dinhdanh.fees import payments, vnpay
from dinhdanh.fees.vnpay import Merchant
from dinhdanh.registry.area import Area
from dinhdanh.registry.errors import InvalidInput, NotFound, RuleViolation
from dinhdanh.registry.tables import persons
from dinhdanh.scheduler import jobs
from dinhdanh.scheduler.tables import scheduled_jobs
from dinhdanh.store.base import utcnow, vietnam_date
from dinhdanh.store.outbox import outbox
from dinhdanh.store.unit_of_work import UnitOfWork
from dinhdanh.store.vault import for_database

AN, HOA = "001085000001", "079193000006"
BASE = "https://dichvucong.example"
TEMPORARY = "1.004194"  # temporary residence registration: 3 working days, 7,000 VND online
SECRET = "TESTSECRET0123456789ABCDEFGHIJKL"
MERCHANT = Merchant("DDTEST01", SECRET, "http://gateway.test/_gateway/vnpay/paymentv2/vpcpay.html",
                    "http://gateway.test/_gateway/vnpay/merchant_webapi/api/transaction")
BEN_THANH = Area.of_code("26743")


def temporary_form(pid=AN, name="Nguyễn Văn An", born="1985-03-04", commune="26743", province="79", **extra) -> dict:
    return {"applicant": {"pid": pid, "full_name": name, "date_of_birth": born}, "registration": "individual",
            "stay_address": {"province_code": province, "commune_code": commune, "street": "12 Lê Lợi"},
            "from": "2026-12-10", "until": "2027-12-10", "basis": "rented", **extra}


FREE = {"fee_exemption_ground": "disability"}


@pytest.fixture
def register(family):
    vault = for_database(family.url.render_as_string(hide_password=False))
    return family, vault


def pid_of(engine, pid: str) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(persons.c.person_id).where(persons.c.pid == pid)).scalar_one()


def file(engine, form=None, pid=AN, **kw) -> dict:
    with UnitOfWork(engine).begin() as conn:
        return service.file(conn, pid_of(engine, pid), TEMPORARY, form or temporary_form(**FREE), **kw)


def act(register, dossier_id, action, area=BEN_THANH, **kw) -> dict:
    engine, vault = register
    with UnitOfWork(engine).begin() as conn:
        return service.act(conn, vault, dossier_id, action, actor="officer:1", area=area, base_url=BASE, **kw)


def pay(engine, code: str, amount: int) -> None:
    with UnitOfWork(engine).begin() as conn:
        started = payments.start_payment(conn, MERCHANT, code, amount, return_url=BASE + "/return",
                                         ip_addr="203.113.1.7")
    params = {"vnp_Amount": str(amount * 100), "vnp_BankCode": "NCB", "vnp_CardType": "ATM",
              "vnp_OrderInfo": "Thanh toan", "vnp_PayDate": "20261207083500", "vnp_ResponseCode": "00",
              "vnp_TmnCode": MERCHANT.tmn_code, "vnp_TransactionNo": "14422574", "vnp_TransactionStatus": "00",
              "vnp_TxnRef": started.txn_ref}
    params["vnp_SecureHash"] = vnpay.sign(params, SECRET)
    with UnitOfWork(engine).begin() as conn:
        assert payments.handle_ipn(conn, MERCHANT, params)["RspCode"] == "00"


def timers_of(engine, code: str) -> dict[str, tuple[str, dt.datetime]]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(scheduled_jobs).where(scheduled_jobs.c.key == code)).all()
    return {r.kind: (r.status, r.due_at) for r in rows}


def start_of_day_after(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=calendar.VIETNAM).astimezone(dt.UTC)


def test_filing_codes_routing_fee_and_due_date(register):
    engine, _ = register
    before = utcnow()
    filed = file(engine, temporary_form())
    assert re.fullmatch(r"G26743-\d{6}-000001", filed["code"]), filed
    assert filed["code"][7:13] == vietnam_date(before).strftime("%y%m%d")
    assert filed["status"] == "submitted" and filed["fee_amount"] == 7000
    assert filed["due_date"] == calendar.due_date(before, 3).isoformat()
    assert file(engine)["code"].endswith("-000002") and file(engine)["fee_amount"] == 0
    with engine.connect() as conn:
        row = conn.execute(sa.select(dossiers).where(dossiers.c.dossier_id == filed["dossier_id"])).one()
        notices = conn.execute(sa.select(outbox.c.payload).where(outbox.c.topic == "dossier.status_changed")).all()
    # routed by the place of the procedure (Bến Thành), not the applicant's residence (Hoàn Kiếm)
    assert (row.place_province, row.place_commune, row.agency_code) == ("79", "26743", "cong-an-xa")
    assert row.version_id == "1.004194@" + row.version_id.split("@")[1]
    assert len(notices) == 3 and set(notices[0].payload) == {"dossier", "status", "action", "at"}
    # bad input names the field; nothing is written
    for form, field in ((temporary_form(commune="99999"), "stay_address"), ({"applicant": {}}, "applicant."),
                        (temporary_form(pid=HOA), "applicant.pid")):
        with pytest.raises(InvalidInput) as refused:
            file(engine, form)
        assert refused.value.field.startswith(field), refused.value.field
    with pytest.raises(NotFound) as unknown:
        with UnitOfWork(engine).begin() as conn:
            service.file(conn, pid_of(engine, AN), "9.999999", {})
    assert unknown.value.field == "service"


def test_concurrent_filings_get_distinct_codes(register):
    engine, _ = register
    codes, failures = [], []

    def one():
        try:
            codes.append(file(engine)["code"])
        except Exception as exc:  # pragma: no cover - reported below
            failures.append(exc)

    threads = [threading.Thread(target=one) for _ in range(8)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert not failures and len(set(codes)) == 8
    assert sorted(c[-6:] for c in codes) == [f"{n:06d}" for n in range(1, 9)]


def test_the_whole_path_with_slips_pause_and_resume(register):
    engine, vault = register
    filed = file(engine)
    hoan_kiem = Area.of_code("00070")
    with pytest.raises(NotFound):  # out of the officer's area: as unknown
        act(register, filed["dossier_id"], "receive", area=hoan_kiem)
    now = utcnow()
    received = act(register, filed["dossier_id"], "receive")
    due = calendar.add_working_days(calendar.received_on(now), 3)
    assert received["status"] == "received" and received["due_date"] == due.isoformat()
    assert [d["kind"] for d in received["documents"]] == ["receipt"]
    assert timers_of(engine, filed["code"]) == {service.OVERDUE: ("pending", start_of_day_after(due))}
    with pytest.raises(InvalidInput) as no_items:
        act(register, filed["dossier_id"], "request_supplement")
    assert no_items.value.field == "items"
    asked = act(register, filed["dossier_id"], "request_supplement", items=["Hợp đồng thuê nhà có công chứng"])
    today = vietnam_date()
    assert asked["status"] == "supplement_requested" and asked["paused_since"] == today.isoformat()
    assert asked["supplement_due"] == calendar.supplement_deadline(today).isoformat()
    assert timers_of(engine, filed["code"]) == {
        service.OVERDUE: ("cancelled", start_of_day_after(due)),
        service.SUPPLEMENT_EXPIRED: ("pending", start_of_day_after(calendar.supplement_deadline(today)))}
    with pytest.raises(workflow.InvalidTransition) as wrong:
        act(register, filed["dossier_id"], "approve")
    assert wrong.value.state == "supplement_requested"
    # a supplement is checked as the filing was: the applicant is the citizen logged in, and the
    # place the dossier was routed by stays (nothing changes: still waiting for the supplement)
    someone_else = temporary_form(**FREE)["applicant"] | {"pid": HOA}
    elsewhere = temporary_form(**FREE)["stay_address"] | {"province_code": "01", "commune_code": "00070"}
    for supplied, code, field in (({"applicant": someone_else}, "applicant_mismatch", "applicant.pid"),
                                  ({"stay_address": elsewhere}, "place_changed", "stay_address")):
        with UnitOfWork(engine).begin() as conn, pytest.raises(InvalidInput) as refused:
            service.supplement(conn, filed["dossier_id"], pid_of(engine, AN), supplied)
        assert (refused.value.code, refused.value.field) == (code, field)
    street = temporary_form()["stay_address"] | {"street": "14 Lê Lợi"}  # the same commune: no move
    with UnitOfWork(engine).begin() as conn:
        back = service.supplement(conn, filed["dossier_id"], pid_of(engine, AN),
                                  {"basis": "family", "stay_address": street})
    assert back["status"] == "received" and back["data"]["basis"] == "family"
    assert back["data"]["stay_address"]["street"] == "14 Lê Lợi"
    assert back["due_date"] == calendar.due_after_supplement(due, today, calendar.received_on(utcnow())).isoformat()
    with UnitOfWork(engine).begin() as conn, pytest.raises(NotFound):  # another citizen: as unknown
        service.supplement(conn, filed["dossier_id"], pid_of(engine, HOA), {"basis": "family"})
    with pytest.raises(InvalidInput) as no_reason:
        act(register, filed["dossier_id"], "refuse", reason="  ")
    assert no_reason.value.field == "reason"
    with pytest.raises(RuleViolation) as not_late:
        act(register, filed["dossier_id"], "extend", new_due_date=today + dt.timedelta(days=30))
    assert not_late.value.code == "not_overdue"
    approved = act(register, filed["dossier_id"], "approve")
    assert approved["status"] == "approved" and approved["result_code"]
    assert [d["kind"] for d in approved["documents"]] == ["receipt", "supplement_request", "result"]
    assert {k: v[0] for k, v in timers_of(engine, filed["code"]).items()} == {
        service.OVERDUE: "cancelled", service.SUPPLEMENT_EXPIRED: "cancelled"}
    assert [(h["action"], h["to"]) for h in approved["history"]] == [
        ("file", "submitted"), ("receive", "received"), ("request_supplement", "supplement_requested"),
        ("supplement", "received"), ("approve", "approved")]
    with engine.connect() as conn:
        pdf = results.signed_document(conn, vault, approved["result_code"])
        verdict = results.verify_document(conn, vault, pdf)
    assert verdict["status"] == "genuine" and verdict["code"] == approved["result_code"]
    with UnitOfWork(engine).begin() as conn, pytest.raises(workflow.InvalidTransition):
        service.withdraw(conn, filed["dossier_id"], pid_of(engine, AN))


def test_a_dossier_that_owes_a_fee_is_received_only_once_paid(register):
    engine, _ = register
    filed = file(engine, temporary_form())
    with pytest.raises(RuleViolation) as unpaid:
        act(register, filed["dossier_id"], "receive")
    assert unpaid.value.code == "fee_unpaid"
    pay(engine, filed["code"], 7000)
    assert act(register, filed["dossier_id"], "receive")["status"] == "received"


def test_overdue_extension_with_an_apology(register):
    engine, _ = register
    filed = file(engine)
    act(register, filed["dossier_id"], "receive")
    with engine.begin() as conn:  # the deadline passed
        conn.execute(dossiers.update().where(dossiers.c.dossier_id == filed["dossier_id"])
                     .values(due_date=vietnam_date() - dt.timedelta(days=3)))
        page, _ = service.worklist(conn, BEN_THANH, overdue=True)
        assert [d["dossier_id"] for d in page["items"]] == [filed["dossier_id"]] and page["items"][0]["overdue"]
        timers.handlers(None, BASE)[service.OVERDUE](conn, filed["code"], {"dossier_id": filed["dossier_id"]})
        assert conn.execute(sa.select(dossiers.c.overdue_at)).scalar() is not None
    with pytest.raises(InvalidInput) as no_date:
        act(register, filed["dossier_id"], "extend")
    assert no_date.value.field == "new_due_date"
    for far in (vietnam_date() + dt.timedelta(days=366), dt.date.max):  # at most a year; never a 500
        with pytest.raises(InvalidInput) as too_far:
            act(register, filed["dossier_id"], "extend", new_due_date=far)
        assert (too_far.value.code, too_far.value.field) == ("new_due_date_invalid", "new_due_date")
    new = vietnam_date() + dt.timedelta(days=10)
    extended = act(register, filed["dossier_id"], "extend", new_due_date=new, reason="Cần xác minh thêm")
    assert extended["due_date"] == new.isoformat() and not extended["overdue"]
    assert [d["kind"] for d in extended["documents"]] == ["receipt", "apology"]


def test_eight_officers_deciding_at_once_make_one_decision(register):
    engine, _ = register
    filed = file(engine)
    act(register, filed["dossier_id"], "receive")  # the agency's signer exists from here on
    outcomes, start = [], threading.Barrier(8)

    def decide(i: int):
        start.wait()
        try:
            if i % 2:
                act(register, filed["dossier_id"], "approve")
            else:
                act(register, filed["dossier_id"], "refuse", reason="Không đủ điều kiện")
            outcomes.append("decided")
        except workflow.InvalidTransition as exc:
            outcomes.append(exc.state)

    threads = [threading.Thread(target=decide, args=(i,)) for i in range(8)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert outcomes.count("decided") == 1, outcomes
    with engine.connect() as conn:
        status = conn.execute(sa.select(dossiers.c.status)).scalar_one()
        decisions = conn.execute(sa.select(sa.func.count()).select_from(dossier_events)
                                 .where(dossier_events.c.action.in_(["approve", "refuse"]))).scalar_one()
    assert sorted(set(outcomes) - {"decided"}) == [status] and decisions == 1


def test_the_scheduler_refuses_an_unsupplied_dossier(register):
    engine, vault = register
    filed = file(engine)
    act(register, filed["dossier_id"], "receive")
    act(register, filed["dossier_id"], "request_supplement", items=["Giấy tờ chứng minh chỗ ở hợp pháp"])
    wired = timers.handlers(vault, BASE)
    handle = wired[service.SUPPLEMENT_EXPIRED]
    with UnitOfWork(engine).begin() as conn:  # not yet due: nothing happens
        handle(conn, filed["code"], {"dossier_id": filed["dossier_id"]})
        assert conn.execute(sa.select(dossiers.c.status)).scalar_one() == "supplement_requested"
    assert jobs.run_due(engine, wired) == 0  # its timer is for the day after the 7 working days
    with UnitOfWork(engine).begin() as conn:  # ... which have passed
        conn.execute(dossiers.update().values(supplement_due=vietnam_date() - dt.timedelta(days=1)))
        conn.execute(scheduled_jobs.update().where(scheduled_jobs.c.kind == service.SUPPLEMENT_EXPIRED)
                     .values(due_at=utcnow() - dt.timedelta(minutes=1)))
    assert jobs.run_due(engine, wired) == 1
    with UnitOfWork(engine).begin() as conn:  # run again (a retried job): still one refusal
        handle(conn, filed["code"], {})
        out = service.view(conn, filed["dossier_id"], person_id=pid_of(engine, AN))
    assert out["status"] == "refused" and out["history"][-1]["actor"] == service.SYSTEM
    assert out["history"][-1]["reason"] == service.AUTOMATIC_REFUSAL
    assert [d["kind"] for d in out["documents"]] == ["receipt", "supplement_request", "refusal"]
    assert sum(h["action"] == "refuse" for h in out["history"]) == 1
    assert timers_of(engine, filed["code"])[service.SUPPLEMENT_EXPIRED][0] == "done"


def test_the_servers_background_runs_the_scheduler(register, monkeypatch):
    """``serve`` runs the scheduler beside the API (web.background): a supplement's deadline passed
    is refused by the server's own loop, with slips pointing to the server's issuer."""
    from dinhdanh.web import background

    engine, _ = register
    monkeypatch.setattr(jobs, "loop", lambda engine, handlers, stop: jobs.run_due(engine, handlers))
    filed = file(engine)
    act(register, filed["dossier_id"], "receive")
    act(register, filed["dossier_id"], "request_supplement", items=["Giấy tờ chứng minh chỗ ở hợp pháp"])
    with UnitOfWork(engine).begin() as conn:
        conn.execute(dossiers.update().values(supplement_due=vietnam_date() - dt.timedelta(days=1)))
        conn.execute(scheduled_jobs.update().where(scheduled_jobs.c.kind == service.SUPPLEMENT_EXPIRED)
                     .values(due_at=utcnow() - dt.timedelta(minutes=1)))
    loops = background.standard_loops(BASE)
    assert "scheduler" in loops
    loops["scheduler"](engine, threading.Event())
    with engine.connect() as conn:
        out = service.view(conn, filed["dossier_id"], person_id=pid_of(engine, AN))
    assert out["status"] == "refused" and out["history"][-1]["actor"] == service.SYSTEM
    assert timers_of(engine, filed["code"])[service.SUPPLEMENT_EXPIRED][0] == "done"


def exam_form(**extra) -> dict:
    return {"applicant": {"pid": AN, "full_name": "Nguyễn Văn An", "date_of_birth": "1985-03-04"},
            "school_code": "79012", "graduation_year": 2027, "electives": ["physics", "chemistry"],
            "exam_venue_province": "79", "foreign_language_exemption": False, "priority_group": "none",
            "priority_area": "KV3", "for_admission": True, **extra}


def test_exam_registrations_are_received_by_the_province(register):
    """From 7 December 2026 the exam registration is the province's Department of Education's
    (Circular 24/2024, art. 18-19), numbered per province: the season is no longer one national
    counter row capped at 999,999 codes a day. (Routed, like every dossier whose form names no place,
    by the applicant's residence: Hà Nội.)"""
    engine, _ = register
    at = lambda day: dt.datetime.combine(day, dt.time(9), tzinfo=calendar.VIETNAM)  # noqa: E731
    with UnitOfWork(engine).begin() as conn:
        before = service.file(conn, pid_of(engine, AN), "dd.national-exam-registration", exam_form(),
                              now=at(dt.date(2026, 12, 4)))
        after = [service.file(conn, pid_of(engine, AN), "dd.national-exam-registration", exam_form(),
                              now=at(dt.date(2026, 12, 8))) for _ in range(2)]
    assert before["code"] == "G00-261204-000001"
    assert [a["code"] for a in after] == ["G01-261208-000001", "G01-261208-000002"]
    with engine.connect() as conn:
        rows = conn.execute(sa.select(dossiers.c.code, dossiers.c.agency_code, dossiers.c.agency_level,
                                      dossiers.c.version_id).order_by(dossiers.c.dossier_id)).all()
    assert [tuple(r[1:]) for r in rows] == [
        ("bo-gddt", "national", "dd.national-exam-registration@2025-01-01"),
        ("so-gddt", "province", "dd.national-exam-registration@2026-12-07"),
        ("so-gddt", "province", "dd.national-exam-registration@2026-12-07")]
