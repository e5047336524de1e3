"""``dinhdanh audit``: the access log's hash chain."""

from __future__ import annotations

import typer

from dinhdanh.cli.common import DbOption, emit, engine_for

audit_app = typer.Typer(help="The access log (every read of a person's data), hash-chained.", no_args_is_help=True)


@audit_app.command("verify")
def verify(db: DbOption = None) -> None:
    """Walk the access log's hash chain; print {entries, valid, first_broken}. Exit 0 valid, 1 broken."""
    from dinhdanh.audit.chain import verify as walk

    verdict = walk(engine_for(db))
    emit(verdict.as_dict())
    if not verdict.valid:
        raise typer.Exit(1)
