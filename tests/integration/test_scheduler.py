"""The durable scheduler (issue 12): schedule, cancel, run once, back off, and survive crashes and
concurrent workers (threads and processes) on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from dinhdanh.calendar.clock import utcnow
from dinhdanh.scheduler import jobs
from dinhdanh.scheduler.handlers import handlers as wired_handlers
from dinhdanh.scheduler.tables import scheduled_jobs
from dinhdanh.store.unit_of_work import UnitOfWork
from tests.support import schema_drift

ROOT = Path(__file__).resolve().parents[2]

# The handlers' side effect: one row per run, written inside the job's unit (no unique key, so a
# job run twice shows up twice).
effects_md = sa.MetaData()
effects = sa.Table("sched_effects", effects_md,
                   sa.Column("n", sa.Integer, primary_key=True, autoincrement=True),
                   sa.Column("job_key", sa.String(120), nullable=False),
                   sa.Column("worker", sa.String(40), nullable=False))


@pytest.fixture
def eng(engine):
    effects_md.create_all(engine)
    return engine


def record(worker: str):
    def handler(conn, key, payload):
        conn.execute(effects.insert().values(job_key=key, worker=worker))
    return handler


def _effects(engine) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(effects.c.job_key, effects.c.worker).order_by(effects.c.n))]


def _job(engine, kind: str, key: str):
    with engine.connect() as conn:
        return conn.execute(sa.select(scheduled_jobs).where(scheduled_jobs.c.kind == kind,
                                                            scheduled_jobs.c.key == key)).one()


def _statuses(engine) -> dict[str, int]:
    with engine.connect() as conn:
        return dict(conn.execute(sa.select(scheduled_jobs.c.status, sa.func.count())
                                 .group_by(scheduled_jobs.c.status)).all())


def test_the_migration_matches_the_table(engine):
    assert schema_drift(engine, "scheduled_jobs") == []


def test_schedule_is_an_upsert_and_cancel_stops_a_pending_job(eng):
    now = utcnow()
    uow = UnitOfWork(eng)
    with uow.begin() as conn:
        jobs.schedule(conn, "t.remind", "D1", now + dt.timedelta(hours=1), {"n": 1})
        jobs.schedule(conn, "t.remind", "D1", now + dt.timedelta(hours=2), {"n": 2})  # moves it
        jobs.schedule(conn, "t.remind", "D2", now + dt.timedelta(hours=1))
        jobs.cancel(conn, "t.remind", "absent")  # no error
    job = _job(eng, "t.remind", "D1")
    assert (job.status, job.attempts, job.payload) == ("pending", 0, {"n": 2})
    assert job.due_at == now + dt.timedelta(hours=2) and job.due_at.tzinfo is not None
    with uow.begin() as conn:
        jobs.cancel(conn, "t.remind", "D2")
    assert _job(eng, "t.remind", "D2").status == "cancelled"
    assert jobs.run_due(eng, {"t.remind": record("a")}, now=now + dt.timedelta(hours=3)) == 1  # D1 only
    assert _effects(eng) == [("D1", "a")]
    with uow.begin() as conn:  # done and cancelled jobs are re-armed
        jobs.schedule(conn, "t.remind", "D1", now, {"n": 3})
        jobs.schedule(conn, "t.remind", "D2", now)
    assert {_job(eng, "t.remind", k).status for k in ("D1", "D2")} == {"pending"}
    assert jobs.run_due(eng, {"t.remind": record("b")}, now=now + dt.timedelta(seconds=1)) == 2
    with uow.read() as conn:
        listed = jobs.listing(conn)
    assert [(r["kind"], r["key"], r["status"]) for r in listed] == [("t.remind", "D1", "done"), ("t.remind", "D2", "done")]
    assert listed[0]["due_at"].endswith("+07:00") and "payload" not in listed[0]
    with pytest.raises(ValueError):
        with uow.begin() as conn:
            jobs.schedule(conn, "t.remind", "D3", dt.datetime(2026, 1, 1))  # naive


def test_run_due_runs_due_jobs_once_and_leaves_future_ones_and_unwired_kinds(eng, caplog):
    now = utcnow()
    with UnitOfWork(eng).begin() as conn:
        for i in range(3):
            jobs.schedule(conn, "t.due", f"K{i}", now - dt.timedelta(minutes=i))
        jobs.schedule(conn, "t.due", "LATER", now + dt.timedelta(minutes=5))
        jobs.schedule(conn, "t.nobody", "X", now - dt.timedelta(minutes=1))
    # without the platform's public address the dossiers' timers are not wired; with it they are
    assert "dossiers.supplement_expired" not in wired_handlers(eng)
    assert {"dossiers.supplement_expired", "dossiers.overdue"} <= set(wired_handlers(eng, "https://dinhdanh.test"))
    with caplog.at_level("WARNING", logger="dinhdanh.scheduler"):
        assert jobs.run_due(eng, {"t.due": record("a")}, now=now) == 3
    assert sum("t.nobody" in m for m in caplog.messages) == 1
    assert jobs.run_due(eng, {"t.due": record("a")}, now=now) == 0  # not again
    assert sorted(k for k, _ in _effects(eng)) == ["K0", "K1", "K2"]
    assert _job(eng, "t.nobody", "X").status == "pending"
    assert _job(eng, "t.due", "LATER").status == "pending"
    assert jobs.run_due(eng, {"t.due": record("a")}, now=now + dt.timedelta(minutes=6)) == 1


def test_a_failing_handler_is_retried_with_backoff_then_failed(eng):
    now = utcnow()
    calls = []

    def failing(conn, key, payload):
        conn.execute(effects.insert().values(job_key=key, worker="x"))  # rolled back
        calls.append(key)
        raise RuntimeError("the registry said no")

    with UnitOfWork(eng).begin() as conn:
        jobs.schedule(conn, "t.fail", "F", now, {"pid": "001099000001"})
    at = now
    for attempt in range(1, jobs.MAX_ATTEMPTS + 1):
        assert jobs.run_due(eng, {"t.fail": failing}, now=at) == 0
        job = _job(eng, "t.fail", "F")
        assert job.attempts == attempt
        assert job.last_error == "RuntimeError: the registry said no"
        assert "001099000001" not in job.last_error
        if attempt < jobs.MAX_ATTEMPTS:
            assert job.status == "pending"
            wait = job.due_at - at
            assert jobs.backoff(attempt - 1) <= wait <= jobs.backoff(attempt - 1) + dt.timedelta(seconds=5)
            assert jobs.run_due(eng, {"t.fail": failing}, now=job.due_at - dt.timedelta(seconds=1)) == 0
            assert len(calls) == attempt  # not yet
            at = job.due_at
        else:
            assert job.status == "failed"
    assert jobs.backoff(0) == dt.timedelta(seconds=30) and jobs.backoff(12) == dt.timedelta(hours=1)
    assert _effects(eng) == []
    assert jobs.run_due(eng, {"t.fail": failing}, now=at + dt.timedelta(days=1)) == 0
    assert len(calls) == jobs.MAX_ATTEMPTS


def test_a_handler_may_schedule_its_own_next_round(eng):
    now = utcnow()

    def again(conn, key, payload):
        conn.execute(effects.insert().values(job_key=key, worker="r"))
        if payload["round"] < 2:
            jobs.schedule(conn, "t.round", key, now + dt.timedelta(days=1), {"round": payload["round"] + 1})

    with UnitOfWork(eng).begin() as conn:
        jobs.schedule(conn, "t.round", "R", now, {"round": 1})
    assert jobs.run_due(eng, {"t.round": again}, now=now) == 1
    job = _job(eng, "t.round", "R")
    assert (job.status, job.payload) == ("pending", {"round": 2})
    assert jobs.run_due(eng, {"t.round": again}, now=now + dt.timedelta(days=2)) == 1
    assert _job(eng, "t.round", "R").status == "done"
    assert len(_effects(eng)) == 2


def _schedule_many(engine, n: int, kind: str = "t.many") -> None:
    due = utcnow() - dt.timedelta(seconds=1)
    with UnitOfWork(engine).begin() as conn:
        for i in range(n):
            jobs.schedule(conn, kind, f"J{i:04d}", due, {"i": i})


def _assert_each_once(engine, n: int) -> None:
    keys = [k for k, _ in _effects(engine)]
    assert len(keys) == len(set(keys)), "a job ran twice"
    assert sorted(keys) == [f"J{i:04d}" for i in range(n)]
    assert _statuses(engine) == {"done": n}


def test_eight_threads_run_each_job_exactly_once(eng):
    _schedule_many(eng, 200)
    errors = []

    def work(name):
        try:
            while jobs.run_due(eng, {"t.many": record(name)}, limit=7):
                pass
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    _assert_each_once(eng, 200)
    assert len({w for _, w in _effects(eng)}) > 1  # the work was shared


WORKER = textwrap.dedent("""
    import sys, time
    import sqlalchemy as sa
    from dinhdanh.scheduler import jobs
    from dinhdanh.store.engine import make_engine
    url, schema, name, mode = sys.argv[1:5]
    kwargs = {"connect_args": {"options": f"-csearch_path={schema}"}} if schema else {}
    engine = make_engine(url, **kwargs)
    effects = sa.table("sched_effects", sa.column("job_key"), sa.column("worker"))

    def handler(conn, key, payload):
        conn.execute(effects.insert().values(job_key=key, worker=name))
        if mode == "hang":
            print("inside", flush=True)
            time.sleep(600)

    if mode == "hang":
        jobs.run_due(engine, {"t.crash": handler}, lease_seconds=3)
    else:
        print("ready", flush=True)
        sys.stdin.readline()  # start together
        while jobs.run_due(engine, {"t.many": handler}, limit=5):
            pass
    print("finished", flush=True)
""")


def _target(engine) -> tuple[str, str]:
    url = engine.url.render_as_string(hide_password=False)
    if engine.dialect.name != "postgresql":
        return url, ""
    with engine.connect() as conn:
        return url, conn.exec_driver_sql("SELECT current_schema()").scalar()


def _spawn(engine, name: str, mode: str) -> subprocess.Popen:
    url, schema = _target(engine)
    return subprocess.Popen([sys.executable, "-c", WORKER, url, schema, name, mode], cwd=ROOT,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT / "src")})


def test_worker_processes_run_each_job_exactly_once(eng):
    _schedule_many(eng, 200)
    procs = [_spawn(eng, f"p{i}", "many") for i in range(3)]
    try:
        for p in procs:
            assert p.stdout.readline().strip() == "ready"
        for p in procs:
            p.stdin.write("go\n")
            p.stdin.flush()
        for p in procs:
            out, _ = p.communicate(timeout=60)
            assert p.returncode == 0 and "finished" in out
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    _assert_each_once(eng, 200)


def test_a_killed_worker_leaves_its_job_to_the_next_once_its_lease_has_passed(eng):
    with UnitOfWork(eng).begin() as conn:
        jobs.schedule(conn, "t.crash", "C", utcnow() - dt.timedelta(seconds=1), {"x": 1})
    victim = _spawn(eng, "victim", "hang")
    try:
        assert victim.stdout.readline().strip() == "inside"
        assert _job(eng, "t.crash", "C").status == "running"
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(10)
    finally:
        if victim.poll() is None:
            victim.kill()
    # within the lease, nobody takes it
    assert jobs.run_due(eng, {"t.crash": record("heir")}) == 0
    later = utcnow() + dt.timedelta(seconds=5)
    done = 0
    for _ in range(50):  # PostgreSQL may take a moment to see the killed session gone
        done = jobs.run_due(eng, {"t.crash": record("heir")}, now=later)
        if done:
            break
        time.sleep(0.1)
    assert done == 1
    assert _effects(eng) == [("C", "heir")]  # the killed worker's write is gone
    job = _job(eng, "t.crash", "C")
    assert job.status == "done" and job.attempts == 1  # the lost attempt is counted
    assert jobs.run_due(eng, {"t.crash": record("heir")}, now=later + dt.timedelta(minutes=5)) == 0


def test_last_error_keeps_no_payload_value_nor_long_number():
    from dinhdanh.registry.errors import NotFound

    payload = {"pid": "001099000001", "name": "Nguyễn Văn An", "n": [7, None, True]}
    text = jobs.error_text(ValueError(f"no person Nguyễn Văn An ({payload['pid']}) phone 0912345678\nmore"), payload)
    assert text == "ValueError: no person *** (***) phone ***"
    assert jobs.error_text(NotFound("No person 001099000001.", field="pid"), payload) == "NotFound: not_found (pid)"
    assert len(jobs.error_text(RuntimeError("x" * 1000), {})) == 300


def test_the_cli_lists_and_runs(sqlite_engine):
    import json

    from typer.testing import CliRunner

    from dinhdanh.cli import app

    db = sqlite_engine.url.render_as_string(hide_password=False)
    with UnitOfWork(sqlite_engine).begin() as conn:
        jobs.schedule(conn, "t.cli", "K1", dt.datetime(2026, 12, 6, 1, 30, tzinfo=dt.UTC), {"pid": "001099000001"})
    runner = CliRunner()
    r = runner.invoke(app, ["scheduler", "list", "--json", "--db", db])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == [{"kind": "t.cli", "key": "K1", "due_at": "2026-12-06T08:30:00+07:00",
                                     "status": "pending", "attempts": 0}]
    r = runner.invoke(app, ["scheduler", "list", "--status", "pending", "--db", db])
    assert r.exit_code == 0 and "t.cli" in r.stdout and "001099000001" not in r.stdout
    assert runner.invoke(app, ["scheduler", "list", "--status", "lost", "--db", db]).exit_code == 2
    r = runner.invoke(app, ["scheduler", "run", "--once", "--db", db])  # no kind wired yet: left pending
    assert r.exit_code == 0 and json.loads(r.stdout) == {"completed": 0}, r.output
    assert _job(sqlite_engine, "t.cli", "K1").status == "pending"


def test_loop_stops_when_told(sqlite_engine):
    effects_md.create_all(sqlite_engine)
    with UnitOfWork(sqlite_engine).begin() as conn:
        jobs.schedule(conn, "t.loop", "L", utcnow() - dt.timedelta(seconds=1))
    stop = threading.Event()
    worker = threading.Thread(target=jobs.loop, args=(sqlite_engine, {"t.loop": record("l")}),
                              kwargs={"interval": 0.05, "stop": stop})
    worker.start()
    deadline = time.monotonic() + 10
    while not _effects(sqlite_engine) and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    worker.join(5)
    assert not worker.is_alive() and _effects(sqlite_engine) == [("L", "l")]
