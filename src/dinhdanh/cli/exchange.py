"""Commands of the data exchange with partners: batch matching of subscriber files, the batch
runner, and the telcos' mismatch ladder."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer

from dinhdanh.cli.common import DbOption, actor_label, emit, engine_for, fail, fail_registry
from dinhdanh.registry.errors import RegistryError
from dinhdanh.store.unit_of_work import UnitOfWork


def match(
    file: Annotated[Path, typer.Argument(help="Subscriber file, .csv or .parquet: pid, full_name, "
                                              "date_of_birth (YYYY-MM-DD), optional msisdn and sex")],
    partner: Annotated[str, typer.Option(help="The partner's OAuth client id (approved, client_credentials, "
                                              "scope dinhdanh.verify)")],
    out: Annotated[Path, typer.Option(help="Result file, .csv or .parquet (one row per input row, in order)")],
    db: DbOption = None,
    chunk_rows: Annotated[int, typer.Option(min=1, help="Rows per chunk (the unit a re-run resumes from)")] = 1_000_000,
    cache_dir: Annotated[Path | None, typer.Option(help="Where the register snapshot is cached "
                                                         "(default DINHDANH_HOME/cache/match)")] = None,
) -> None:
    """Match a partner's subscriber file against the register (PID, name, date of birth, sex).

    Prints a JSON summary and writes it to OUT.summary.json. A re-run with the same input and
    output resumes after the last finished chunk.
    """
    from dinhdanh.exchange import ladder
    from dinhdanh.exchange.matching import match_file, write_summary_file

    try:
        engine = engine_for(db, upgrade=True, serving=True)
        summary = match_file(engine, file, out, partner, chunk_rows=chunk_rows,
                             cache_dir=cache_dir, actor=actor_label(), write_summary=False)
        summary["ladder"] = ladder.record_batch(engine, summary["job_id"])  # telcos only
        write_summary_file(out, summary)
    except RegistryError as exc:
        fail_registry(exc)
    except OSError as exc:
        fail(f"{exc.strerror or exc} ({getattr(exc, 'filename', '') or out})")
    emit(summary)


batches_app = typer.Typer(help="Batches partners upload to POST /api/v1/batches.", no_args_is_help=True)
ladder_app = typer.Typer(help="The telcos' mismatch ladder (Decree 163/2024): notify, lock, terminate.",
                         no_args_is_help=True)


@batches_app.command("run")
def batches_run(
    db: DbOption = None,
    once: Annotated[bool, typer.Option("--once", help="Run what is pending now, then exit")] = False,
    poll: Annotated[float, typer.Option(min=0.1, help="Seconds between looks for new batches")] = 2.0,
) -> None:
    """Run queued batches (and resume those a dead runner left), as the API's background loop does."""
    import threading

    from dinhdanh.exchange import batches

    engine = engine_for(db, upgrade=True, serving=True)
    if once:
        emit(batches.run_pending(engine))
        return
    stop = threading.Event()
    try:
        batches.runner_loop(engine, stop, poll)
    except KeyboardInterrupt:
        stop.set()


def _day(value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        fail(f"--today must be a date YYYY-MM-DD, not {value!r}")


@ladder_app.command("advance")
def ladder_advance(
    db: DbOption = None,
    today: Annotated[str | None, typer.Option(help="The day to advance to (YYYY-MM-DD; default today in Vietnam)")] = None,
) -> None:
    """Move every subscription whose next step is due: lock one way, two ways, terminate."""
    from dinhdanh.exchange import ladder
    from dinhdanh.store.base import vietnam_date

    day = _day(today)
    with engine_for(db, upgrade=True).begin() as conn:
        moved = ladder.advance(conn, day)
    emit({"today": (day or vietnam_date()).isoformat(), "moved": moved})


@ladder_app.command("show")
def ladder_show(
    msisdn: Annotated[str, typer.Argument(help="The subscription's number")],
    partner: Annotated[str, typer.Option(help="The telco's OAuth client id")],
    db: DbOption = None,
) -> None:
    """A subscription's state on the ladder, its dates, next step and history."""
    from dinhdanh.exchange import ladder

    try:
        with UnitOfWork(engine_for(db, upgrade=True)).read() as conn:
            emit(ladder.show(conn, partner, msisdn))
    except RegistryError as exc:
        fail_registry(exc)
