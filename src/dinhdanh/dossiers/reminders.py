"""Reminders to citizens, sent by one daily job of the durable scheduler (issue 12).

``dossiers.reminders`` (key ``daily``) runs at 08:00 in Việt Nam on each working day, and once it
has run schedules itself for the next working day, in the same unit of work that marks it done: a
day's reminders go out once, and a crash before the commit sends none of them and leaves the job to
be run again. It reminds:

- a citizen whose supplement is due on the next working day (after that day the dossier is refused
  automatically: ``service.refuse_unsupplied``);
- a citizen whose dossier still owes its fee three days after filing (an unpaid dossier is not
  received).

Each reminder is an outbox message ``dossier.reminder`` (the dossier's code, what is due, when: no
personal data) and, when the register holds the applicant's mobile number, an SMS through
``notify`` (sealed at rest like every message). ``ensure_scheduled`` arms the job where a scheduler
starts; arming it again is harmless (the next 08:00 of a working day after now, never today's once
past).
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from dinhdanh.calendar import working_days as calendar
from dinhdanh.calendar.clock import VIETNAM, utcnow, vietnam_date
from dinhdanh.dossiers.tables import dossiers
from dinhdanh.dossiers.workflow import SUBMITTED, SUPPLEMENT
from dinhdanh.fees.tables import payments
from dinhdanh.registry.tables import persons
from dinhdanh.store.outbox import enqueue

REMINDERS = "dossiers.reminders"
KEY = "daily"
AT = dt.time(8, 0)
TOPIC = "dossier.reminder"
UNPAID_AFTER = 3  # days after filing


def next_run(now: dt.datetime) -> dt.datetime:
    """08:00 in Việt Nam on the first working day whose 08:00 is after ``now``."""
    day = vietnam_date(now)
    while True:
        at = dt.datetime.combine(day, AT, tzinfo=VIETNAM)
        if at > now and calendar.is_working_day(day):
            return at.astimezone(dt.UTC)
        day += dt.timedelta(days=1)


def ensure_scheduled(conn: sa.Connection, now: dt.datetime | None = None) -> None:
    from dinhdanh.scheduler import jobs

    jobs.schedule(conn, REMINDERS, KEY, next_run(now or utcnow()))


def _ddmmyyyy(day: dt.date) -> str:
    return day.strftime("%d/%m/%Y")


def send_due(conn: sa.Connection, now: dt.datetime | None = None) -> dict[str, int]:
    """Today's reminders (see the module's docstring); how many of each kind went out."""
    from dinhdanh.notify.service import send_sms

    now = now or utcnow()
    today = vietnam_date(now)
    tomorrow = calendar.next_working_day(today)
    cols = (dossiers.c.code, dossiers.c.person_id, dossiers.c.fee_amount, dossiers.c.supplement_due, persons.c.phone)
    base = sa.select(*cols).select_from(dossiers.join(persons, persons.c.person_id == dossiers.c.person_id))
    supplements = conn.execute(base.where(dossiers.c.status == SUPPLEMENT, dossiers.c.supplement_due == tomorrow)
                               .order_by(dossiers.c.dossier_id)).all()
    filed_on = today - dt.timedelta(days=UNPAID_AFTER)
    start = dt.datetime.combine(filed_on, dt.time(0), tzinfo=VIETNAM).astimezone(dt.UTC)
    paid = sa.exists().where(payments.c.reference == dossiers.c.code, payments.c.status == "paid")
    unpaid = conn.execute(base.where(dossiers.c.status == SUBMITTED, dossiers.c.fee_amount > 0, ~paid,
                                     dossiers.c.created_at >= start, dossiers.c.created_at < start + dt.timedelta(days=1))
                          .order_by(dossiers.c.dossier_id)).all()
    for row in supplements:
        enqueue(conn, TOPIC, row.person_id, {"dossier": row.code, "due": "supplement",
                                              "date": row.supplement_due.isoformat(), "at": now.isoformat()})
        if row.phone:
            send_sms(conn, row.phone, f"Ho so {row.code}: han bo sung giay to la {_ddmmyyyy(row.supplement_due)}. "
                                      "Qua han, ho so se bi tu choi giai quyet.", person_id=row.person_id)
    for row in unpaid:
        enqueue(conn, TOPIC, row.person_id, {"dossier": row.code, "due": "fee", "amount": row.fee_amount,
                                              "at": now.isoformat()})
        if row.phone:
            send_sms(conn, row.phone, f"Ho so {row.code} chua duoc tiep nhan vi chua nop phi, le phi "
                                      f"{row.fee_amount:,} dong.".replace(",", "."), person_id=row.person_id)
    return {"supplement": len(supplements), "fee": len(unpaid)}


def handler(conn: sa.Connection, key: str, payload: dict) -> None:
    """The job: today's reminders, then the next working day's run (pending again after ``done``)."""
    now = utcnow()
    send_due(conn, now)
    ensure_scheduled(conn, now)
