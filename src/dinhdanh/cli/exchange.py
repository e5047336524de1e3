"""Commands of the data exchange with partners: batch matching of subscriber files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dinhdanh.cli.common import DbOption, actor_label, emit, engine_for, fail, fail_registry
from dinhdanh.registry.errors import RegistryError


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
    from dinhdanh.exchange.matching import match_file

    try:
        summary = match_file(engine_for(db, upgrade=True), file, out, partner, chunk_rows=chunk_rows,
                             cache_dir=cache_dir, actor=actor_label())
    except RegistryError as exc:
        fail_registry(exc)
    except OSError as exc:
        fail(f"{exc.strerror or exc} ({getattr(exc, 'filename', '') or out})")
    emit(summary)
