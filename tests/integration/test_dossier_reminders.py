"""The dossiers' daily reminders on SQLite and PostgreSQL: a supplement due on the next working day
and a fee still unpaid three days after filing are reminded once (an outbox message, and an SMS
when the register has the applicant's number); the job runs at 08:00 on working days and re-arms
itself for the next one in the unit that marks it done."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from dinhdanh.calendar import working_days as calendar
from dinhdanh.calendar.clock import VIETNAM
from dinhdanh.dossiers import reminders, timers
from dinhdanh.dossiers.tables import dossiers
from dinhdanh.notify.service import SMS
from dinhdanh.registry.tables import persons
from dinhdanh.scheduler import jobs
from dinhdanh.scheduler.handlers import arm
from dinhdanh.scheduler.tables import scheduled_jobs
from dinhdanh.store.base import utcnow, vietnam_date
from dinhdanh.store.outbox import outbox
from dinhdanh.store.unit_of_work import UnitOfWork
from tests.integration.test_dossiers import AN, BASE, FREE, act, file, pay, temporary_form
from tests.integration.test_dossiers import register  # noqa: F401  (the fixture)


def test_the_next_run_is_eight_in_the_morning_of_a_working_day():
    friday_evening = dt.datetime(2026, 12, 4, 18, 0, tzinfo=VIETNAM)
    assert reminders.next_run(friday_evening) == dt.datetime(2026, 12, 7, 8, 0, tzinfo=VIETNAM)
    early = dt.datetime(2026, 12, 7, 7, 59, tzinfo=VIETNAM)
    assert reminders.next_run(early) == dt.datetime(2026, 12, 7, 8, 0, tzinfo=VIETNAM)
    before_holidays = dt.datetime(2026, 4, 29, 9, 0, tzinfo=VIETNAM)  # 30/4 and 1/5, then the weekend
    expected = calendar.next_working_day(dt.date(2026, 4, 29))
    assert reminders.next_run(before_holidays) == dt.datetime.combine(expected, reminders.AT, tzinfo=VIETNAM)


def messages(engine, topic: str) -> list:
    with engine.connect() as conn:
        return conn.execute(sa.select(outbox.c.person_id, outbox.c.payload).where(outbox.c.topic == topic)
                            .order_by(outbox.c.seq)).all()


def test_a_supplement_due_tomorrow_and_an_unpaid_fee_are_reminded_once(register):
    engine, _ = register
    with engine.begin() as conn:
        conn.execute(persons.update().where(persons.c.pid == AN).values(phone="0912345678"))
    awaited = file(engine, temporary_form(**FREE))
    act(register, awaited["dossier_id"], "receive")
    act(register, awaited["dossier_id"], "request_supplement", items=["Hợp đồng thuê nhà"])
    unpaid = file(engine, temporary_form())
    recent = file(engine, temporary_form())  # filed today: not yet
    settled = file(engine, temporary_form())  # paid three days after filing: nothing to remind
    pay(engine, settled["code"], settled["fee_amount"])
    today = vietnam_date()
    with engine.begin() as conn:
        conn.execute(dossiers.update().where(dossiers.c.dossier_id == awaited["dossier_id"])
                     .values(supplement_due=calendar.next_working_day(today)))
        three_days = dt.datetime.combine(today - dt.timedelta(days=3), dt.time(10), tzinfo=VIETNAM)
        conn.execute(dossiers.update().where(dossiers.c.dossier_id.in_([unpaid["dossier_id"], settled["dossier_id"]]))
                     .values(created_at=three_days.astimezone(dt.UTC)))
    with UnitOfWork(engine).begin() as conn:
        assert reminders.send_due(conn) == {"supplement": 1, "fee": 1}
    sent = messages(engine, reminders.TOPIC)
    assert {(m.payload["dossier"], m.payload["due"]) for m in sent} == {(awaited["code"], "supplement"),
                                                                      (unpaid["code"], "fee")}
    assert {recent["code"], settled["code"]}.isdisjoint(m.payload["dossier"] for m in sent)
    assert len(messages(engine, SMS)) == 2  # sealed: the outbox holds no text in clear
    assert all("Ho so" not in str(m.payload) for m in messages(engine, SMS))


def test_the_daily_job_runs_and_re_arms_itself(register):
    engine, vault = register
    wired = timers.handlers(vault, BASE)
    arm(engine, wired)
    arm(engine, wired)  # twice: one job
    with engine.connect() as conn:
        job = conn.execute(sa.select(scheduled_jobs).where(scheduled_jobs.c.kind == reminders.REMINDERS)).one()
    assert job.status == "pending" and job.due_at > utcnow()
    later = job.due_at + dt.timedelta(minutes=1)
    assert jobs.run_due(engine, wired, now=later) == 1
    with engine.connect() as conn:
        again = conn.execute(sa.select(scheduled_jobs).where(scheduled_jobs.c.kind == reminders.REMINDERS)).one()
    assert again.status == "pending" and again.due_at > utcnow()
