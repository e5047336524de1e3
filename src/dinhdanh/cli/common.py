"""What every command shares: the --db option, JSON output and error exits."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any, NoReturn

import typer

from dinhdanh.registry.errors import InvalidInput, RegistryError

DbOption = Annotated[str | None, typer.Option(
    "--db", help="Database URL (default: DINHDANH_DATABASE_URL, else a SQLite file under ./var)",
    show_default=False)]


def emit(data: Any) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def fail(message: str, code: int = 2) -> NoReturn:
    """One line on stderr naming the problem; exit 2 for bad input, 1 for a refusal."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def fail_registry(exc: RegistryError) -> NoReturn:
    where = f" ({exc.field})" if exc.field else ""
    fail(f"{exc.message}{where}", 2 if isinstance(exc, InvalidInput) else 1)


def engine_for(db: str | None, upgrade: bool = False, *, serving: bool = False):
    """The command's engine. A one-shot command's transactions may write (``WRITE``): on SQLite
    they begin with the write lock (``BEGIN IMMEDIATE``), waiting for a server's writers, instead
    of reading first and being refused the upgrade at once ("database is locked") whenever a server
    committed in between. A long-running process (``serving``: the server, the deliverer, the
    scheduler, the matcher) gets the plain engine: its units say what they do."""
    from dinhdanh.store.engine import WRITE, make_engine, upgrade as apply

    engine = make_engine(db)
    if upgrade:
        apply(engine)
    return engine if serving else engine.execution_options(**{WRITE: True})


def actor_label() -> str:
    import getpass

    try:
        return f"cli:{getpass.getuser()}"[:60]
    except Exception:  # no user name in some containers
        return "cli"


def stdin_text() -> str:
    return sys.stdin.read()
