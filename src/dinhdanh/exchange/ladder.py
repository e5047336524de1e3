"""The telcos' mismatch ladder (Decree 163/2024 on telecommunications; domain s.7).

A subscription (telco, msisdn) whose batch row did not match the register (outcome ``mismatch``,
``not_found`` or ``invalid``) enters the ladder on the day it is detected: the subscriber must be
notified within 5 days (``notify_by``); we send the notice at once, an SMS through the outbox in
the same transaction (wording in Vietnamese, no register data in it). Then, counted in days:

    notified --15--> one_way_locked --15--> two_way_locked --30--> terminated

Re-verification clears it at any stage before termination: a later batch from the same telco in
which that msisdn's rows all match, or ``POST /api/v1/verify`` by the telco with ``phone`` (the
subscription), ``full_name`` and ``date_of_birth`` all answered ``match``. A cleared or terminated
subscription detected again starts over. Every transition is a row of
``subscriber_ladder_history`` (state, the day it took effect, cause).

``record_batch`` ingests a finished match job set-wise: DuckDB reads the result file and compares
it with the telco's ladder rows; only the changes go to the database, in transactions of
``chunk`` subscriptions. Each changed row keeps the job that changed it (``last_job``), so a
re-ingest of the same job changes nothing. ``advance`` moves every due subscription with one
INSERT ... SELECT and one UPDATE per step, catching up several steps when days were missed (each
step's history row carries the day it was due).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import sqlalchemy as sa

from dinhdanh.exchange.tables import match_jobs, partners, subscriber_ladder, subscriber_ladder_history
from dinhdanh.ids import phone
from dinhdanh.notify.service import send_sms
from dinhdanh.registry.errors import InvalidInput, NotFound
from dinhdanh.store.base import utcnow, vietnam_date
from dinhdanh.store.unit_of_work import UnitOfWork

__all__ = [
    "ACTIVE",
    "NOTIFY_DAYS",
    "STEPS",
    "advance",
    "list_subscriptions",
    "next_step",
    "record_batch",
    "reverified",
    "reverifies",
    "show",
]

NOTIFY_DAYS = 5
# (from state, to state, days after the previous step that the next one falls due; None: last step)
STEPS = (("notified", "one_way_locked", 15), ("one_way_locked", "two_way_locked", 15),
         ("two_way_locked", "terminated", 30))
GAP = {"notified": 15, "one_way_locked": 15, "two_way_locked": 30}
NEXT = {"notified": "one_way_locked", "one_way_locked": "two_way_locked", "two_way_locked": "terminated"}
ACTIVE = ("notified", "one_way_locked", "two_way_locked")
PROBLEM_OUTCOMES = ("mismatch", "not_found", "invalid")


# ``ids.phone.compact`` in DuckDB, for the batch's result file.
_MSISDN_SQL = """CASE WHEN ltrim(trim(coalesce(msisdn, '')), '+') LIKE '84%'
         AND (starts_with(trim(msisdn), '+84') OR length(regexp_replace(msisdn, '[^0-9]', '', 'g')) = 11)
    THEN '0' || substr(regexp_replace(msisdn, '[^0-9]', '', 'g'), 3)
    ELSE regexp_replace(coalesce(msisdn, ''), '[^0-9]', '', 'g') END"""


def notice_text(telco_name: str, msisdn: str, lock_on: dt.date) -> str:
    """The SMS: which number, what to do, by when; nothing from the register."""
    return (f"Thông tin thuê bao {msisdn} chưa khớp với Cơ sở dữ liệu quốc gia về dân cư. "
            f"Quý khách vui lòng đến điểm giao dịch của {telco_name} mang theo thẻ căn cước để xác thực lại "
            f"trước ngày {lock_on:%d/%m/%Y}; sau ngày này thuê bao bị khóa một chiều.")


def _plus_days(conn: sa.Connection, column, days: int):
    if conn.dialect.name == "sqlite":
        return sa.func.date(column, f"+{int(days)} days")
    return column + sa.literal_column(str(int(days)))


def _telco(conn: sa.Connection, client_id: str) -> sa.Row | None:
    row = conn.execute(sa.select(partners.c.kind, partners.c.name).where(partners.c.client_id == client_id)).first()
    return row if row is not None and row.kind == "telco" else None


# ------------------------------------------------------------------------------------ ingest


def _result_sets(path: Path, ladder: pa.Table, job_id: int) -> tuple[list, list, list] | None:
    """(new, restart, clear) from the result file against the telco's ladder rows; None without msisdn."""
    import duckdb

    con = duckdb.connect()
    try:
        quoted = str(path).replace("'", "''")
        reader = (f"read_parquet('{quoted}')" if path.suffix.lower() == ".parquet"
                  else f"read_csv('{quoted}', header = true, all_varchar = true)")
        cols = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {reader}").fetchall()]
        if "msisdn" not in cols:
            return None
        con.register("ladder", ladder)
        con.execute(f"""CREATE TEMP TABLE seen AS
            SELECT m AS msisdn, bool_and(outcome = 'match') AS ok,
                   min(outcome) FILTER (WHERE outcome <> 'match') AS outcome,
                   min(coalesce(reason, '')) FILTER (WHERE outcome <> 'match') AS reason
            FROM (SELECT {_MSISDN_SQL} AS m, outcome, reason FROM {reader}) r
            WHERE m <> '' AND length(m) <= 20
            GROUP BY m""")
        new = con.execute("""SELECT s.msisdn, s.outcome, s.reason FROM seen s
            WHERE NOT s.ok AND NOT EXISTS (SELECT 1 FROM ladder l WHERE l.msisdn = s.msisdn)
            ORDER BY s.msisdn""").fetchall()
        restart = con.execute("""SELECT s.msisdn, s.outcome, s.reason FROM seen s JOIN ladder l USING (msisdn)
            WHERE NOT s.ok AND l.state IN ('cleared', 'terminated') AND coalesce(l.last_job, -1) <> ?
            ORDER BY s.msisdn""", [job_id]).fetchall()
        clear = con.execute("""SELECT s.msisdn FROM seen s JOIN ladder l USING (msisdn)
            WHERE s.ok AND l.state IN ('notified', 'one_way_locked', 'two_way_locked')
              AND coalesce(l.last_job, -1) <> ? ORDER BY s.msisdn""", [job_id]).fetchall()
        return new, restart, [r[0] for r in clear]
    finally:
        con.close()


def _ladder_rows(conn: sa.Connection, partner: str) -> pa.Table:
    rows = conn.execute(sa.select(subscriber_ladder.c.msisdn, subscriber_ladder.c.state, subscriber_ladder.c.last_job)
                        .where(subscriber_ladder.c.partner == partner)).all()
    cols = list(zip(*rows)) if rows else [(), (), ()]
    return pa.table({"msisdn": pa.array(cols[0], pa.string()), "state": pa.array(cols[1], pa.string()),
                     "last_job": pa.array(cols[2], pa.int64())})


def _history_for_job(conn: sa.Connection, partner: str, job_id: int, state: str, on: dt.date, cause: str) -> None:
    """One history row per subscription this job moved to ``state`` that has none for this cause yet."""
    sl, h = subscriber_ladder, subscriber_ladder_history
    already = sa.select(h.c.history_id).where(h.c.ladder_id == sl.c.ladder_id, h.c.cause == cause).exists()
    conn.execute(h.insert().from_select(
        ["ladder_id", "state", "effective_on", "cause", "recorded_at"],
        sa.select(sl.c.ladder_id, sa.literal(state), sa.literal(on, sa.Date), sa.literal(cause),
                  sa.literal(utcnow(), h.c.recorded_at.type))
        .where(sl.c.partner == partner, sl.c.last_job == job_id, sl.c.state == state, ~already)))


def record_batch(engine: sa.Engine, job_id: int, *, today: dt.date | None = None, chunk: int = 10_000) -> dict:
    """Feed the ladder from a finished match job of a telco; a no-op for any other partner.

    Returns counts ``{"detected", "restarted", "cleared"}`` (or ``{"skipped": why}``). Safe to run
    again: a subscription already changed by this job is left alone.
    """
    today = today or vietnam_date()
    with UnitOfWork(engine).read() as conn:
        job = conn.execute(sa.select(match_jobs).where(match_jobs.c.job_id == job_id)).first()
        if job is None:
            raise NotFound(f"No match job {job_id}.", field="job_id")
        if job.status != "done":
            raise InvalidInput(f"Match job {job_id} is not finished ({job.status}).", field="job_id")
        telco = _telco(conn, job.partner)
        if telco is None:
            return {"skipped": "not a telco"}
        ladder = _ladder_rows(conn, job.partner)
    path = Path(job.output_path)
    if not path.is_file():
        raise InvalidInput(f"The result file of match job {job_id} is gone.", field="job_id")
    sets = _result_sets(path, ladder, job_id)
    if sets is None:
        return {"skipped": "no msisdn column"}
    new, restart, clear = sets
    detected_cause, cleared_cause = f"detected in match job {job_id}", f"matched in match job {job_id}"
    lock_on = today + dt.timedelta(days=GAP["notified"])
    sl = subscriber_ladder
    fresh = {"state": "notified", "detected_on": today, "notify_by": today + dt.timedelta(days=NOTIFY_DAYS),
             "notified_on": today, "due_on": lock_on, "changed_on": today, "last_job": job_id}
    for i in range(0, max(len(new), len(restart), len(clear)), chunk):
        part_new, part_restart, part_clear = new[i:i + chunk], restart[i:i + chunk], clear[i:i + chunk]
        with UnitOfWork(engine).begin() as conn:
            now = utcnow()
            if part_new:
                conn.execute(sl.insert(), [dict(fresh, partner=job.partner, msisdn=m, outcome=o, reason=(r or None)
                                                and r[:200], updated_at=now) for m, o, r in part_new])
            if part_restart:
                conn.execute(sl.update().where(sl.c.partner == job.partner, sl.c.msisdn == sa.bindparam("m"))
                             .values(**fresh, outcome=sa.bindparam("o"), reason=sa.bindparam("r"), updated_at=now),
                             [{"m": m, "o": o, "r": (r or None) and r[:200]} for m, o, r in part_restart])
            if part_new or part_restart:
                _history_for_job(conn, job.partner, job_id, "notified", today, detected_cause)
                for m, _, _ in (*part_new, *part_restart):
                    send_sms(conn, m, notice_text(telco.name, m, lock_on))
            if part_clear:
                conn.execute(sl.update().where(sl.c.partner == job.partner, sl.c.msisdn == sa.bindparam("m"),
                                               sa.or_(*(sl.c.state == s for s in ACTIVE)))
                             .values(state="cleared", due_on=None, changed_on=today, last_job=job_id, updated_at=now),
                             [{"m": m} for m in part_clear])
                _history_for_job(conn, job.partner, job_id, "cleared", today, cleared_cause)
    return {"detected": len(new), "restarted": len(restart), "cleared": len(clear)}


# ------------------------------------------------------------------------------------ advance


def advance(conn: sa.Connection, today: dt.date | None = None) -> dict[str, int]:
    """Move every subscription whose next step is due on or before ``today``; counts per new state.

    Each step is one INSERT ... SELECT (history, dated the day the step fell due) and one UPDATE;
    passes repeat while something moved, so a ladder left alone for months catches up exactly.
    """
    today = today or vietnam_date()
    sl, h = subscriber_ladder, subscriber_ladder_history
    moved = {to: 0 for _, to, _ in STEPS}
    while True:
        pass_moved = 0
        for state, to, _ in reversed(STEPS):  # later steps first: one step per subscription per pass
            due = sa.and_(sl.c.state == state, sl.c.due_on <= today)
            gap = GAP.get(to)
            step = sl.update().where(due).values(
                state=to, changed_on=sl.c.due_on,
                due_on=_plus_days(conn, sl.c.due_on, gap) if gap else None, updated_at=utcnow())
            recorded = sa.literal(utcnow(), h.c.recorded_at.type)
            columns = ["ladder_id", "state", "effective_on", "cause", "recorded_at"]
            if conn.dialect.name == "postgresql":
                # one statement: the history is written from the rows the UPDATE moved (a
                # subscription re-verified between a SELECT and the UPDATE would get a step in
                # its history that never happened); SQLite's writer lock serialises the two below
                moved_rows = step.returning(sl.c.ladder_id, sl.c.changed_on).cte("moved")
                written = h.insert().from_select(columns, sa.select(
                    moved_rows.c.ladder_id, sa.literal(to), moved_rows.c.changed_on, sa.literal("deadline passed"),
                    recorded)).returning(h.c.ladder_id).cte("written")
                n = conn.execute(sa.select(sa.func.count()).select_from(written)).scalar_one()  # (no rowcount
                # for a statement with RETURNING in it)
            else:
                conn.execute(h.insert().from_select(columns, sa.select(
                    sl.c.ladder_id, sa.literal(to), sl.c.due_on, sa.literal("deadline passed"), recorded).where(due)))
                n = conn.execute(step).rowcount
            moved[to] += n
            pass_moved += n
        if not pass_moved:
            return moved


# ------------------------------------------------------------------------------------ re-verification


def reverifies(results: dict[str, str]) -> bool:
    """Whether a telco's verify answer re-verifies the subscription named by ``phone``: its name and
    date of birth (and any other field sent, but the phone itself, which names the subscription and
    need not be the phone on the register) all ``match``."""
    return ("full_name" in results and "date_of_birth" in results
            and all(r == "match" for f, r in results.items() if f != "phone"))


def reverified(conn: sa.Connection, partner: str, msisdn: str, cause: str, today: dt.date | None = None) -> bool:
    """Clear the telco's subscription ``msisdn`` if it is on the ladder; True when it was."""
    today = today or vietnam_date()
    sl = subscriber_ladder
    number = phone.compact(msisdn)
    row = conn.execute(sa.select(sl.c.ladder_id).where(sl.c.partner == partner, sl.c.msisdn == number,
                                                       sl.c.state.in_(ACTIVE))).first()
    if row is None:
        return False
    cleared = conn.execute(sl.update().where(sl.c.ladder_id == row.ladder_id, sl.c.state.in_(ACTIVE))
                           .values(state="cleared", due_on=None, changed_on=today, updated_at=utcnow())).rowcount
    if cleared != 1:  # ended meanwhile (the last step passed): not revived
        return False
    conn.execute(subscriber_ladder_history.insert().values(ladder_id=row.ladder_id, state="cleared",
                                                           effective_on=today, cause=cause[:120],
                                                           recorded_at=utcnow()))
    return True


# ------------------------------------------------------------------------------------ reading


def next_step(state: str, due_on: dt.date | None) -> dict | None:
    to = NEXT.get(state)
    return {"state": to, "on": due_on.isoformat()} if to and due_on else None


def _view(row: sa.Row, history: list[sa.Row] | None = None) -> dict:
    out = {"msisdn": row.msisdn, "state": row.state, "outcome": row.outcome, "reason": row.reason,
           "detected_on": row.detected_on.isoformat(), "notify_by": row.notify_by.isoformat(),
           "notified_on": row.notified_on.isoformat(), "changed_on": row.changed_on.isoformat(),
           "next": next_step(row.state, row.due_on)}
    if history is not None:
        out["history"] = [{"state": h.state, "on": h.effective_on.isoformat(), "cause": h.cause} for h in history]
    return out


def show(conn: sa.Connection, partner: str, msisdn: str) -> dict:
    """A subscription's state, dates, next step and history; ``NotFound`` when it never entered the ladder."""
    sl, h = subscriber_ladder, subscriber_ladder_history
    row = conn.execute(sa.select(sl).where(sl.c.partner == partner, sl.c.msisdn == phone.compact(msisdn))).first()
    if row is None:
        raise NotFound("This subscription is not on the mismatch ladder.", field="msisdn")
    history = conn.execute(sa.select(h).where(h.c.ladder_id == row.ladder_id).order_by(h.c.history_id)).all()
    return _view(row, history)


def list_subscriptions(conn: sa.Connection, partner: str, state: str | None = None, page: int = 1,
                       size: int = 100) -> dict:
    """One page of the telco's subscriptions (by msisdn), optionally in one state, with counts per state."""
    sl = subscriber_ladder
    counts = dict(conn.execute(sa.select(sl.c.state, sa.func.count()).where(sl.c.partner == partner)
                               .group_by(sl.c.state)).all())
    query = sa.select(sl).where(sl.c.partner == partner)
    if state is not None:
        query = query.where(sl.c.state == state)
    rows = conn.execute(query.order_by(sl.c.msisdn).offset((page - 1) * size).limit(size + 1)).all()
    return {"counts": {s: int(counts.get(s, 0)) for s in (*ACTIVE, "terminated", "cleared")},
            "page": page, "items": [_view(r) for r in rows[:size]], "has_next": len(rows) > size}
