"""``dinhdanh scheduler``: run the durable timers (deadlines, automatic refusals, reminders), list them."""

from __future__ import annotations

import signal
import threading
from typing import Annotated

import typer

from dinhdanh.cli.common import DbOption, emit, engine_for, fail

scheduler_app = typer.Typer(help="The durable scheduler: timers kept in the database.", no_args_is_help=True)

STATUSES = ("pending", "running", "done", "failed", "cancelled")


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop


@scheduler_app.command("run")
def run(once: Annotated[bool, typer.Option("--once", help="Run what is due now, then exit "
                                                          "(else: loop until stopped)")] = False,
        interval: Annotated[float, typer.Option("--interval", min=0.1, max=3600,
                                                help="Seconds between rounds when nothing is due")] = 5.0,
        base_url: Annotated[str | None, typer.Option("--base-url", help="The platform's public address, which "
                                                     "slips' QR codes point to (default: DINHDANH_OIDC_ISSUER)")]
        = None,
        db: DbOption = None) -> None:
    """Run the due jobs with every area's handlers."""
    from dinhdanh.scheduler import jobs
    from dinhdanh.scheduler.handlers import arm, handlers

    engine = engine_for(db, upgrade=True, serving=True)
    wired = handlers(engine, base_url)
    arm(engine, wired)
    if once:
        emit({"completed": jobs.run_due(engine, wired)})
    else:
        jobs.loop(engine, wired, interval=interval, stop=_stop_on_signals())


@scheduler_app.command("list")
def list_jobs(status: Annotated[str | None, typer.Option("--status", help="|".join(STATUSES))] = None,
              as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table")] = False,
              db: DbOption = None) -> None:
    """The jobs, soonest first (kind, key, due time on Việt Nam's clock, status, attempts; no payload)."""
    from dinhdanh.scheduler import jobs
    from dinhdanh.store.unit_of_work import UnitOfWork

    if status is not None and status not in STATUSES:
        fail(f"--status {status!r}: one of {', '.join(STATUSES)}")
    with UnitOfWork(engine_for(db, upgrade=True)).read() as conn:
        rows = jobs.listing(conn, status)
    if as_json:
        emit(rows)
        return
    for r in rows:
        typer.echo(f"{r['due_at']}  {r['status']:<9}  {r['attempts']:>2}  {r['kind']}  {r['key']}")
