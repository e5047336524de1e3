"""``dinhdanh backup`` and ``dinhdanh restore``: the embedded (SQLite) register copied while it is
served, and put back (``store.backup``). PostgreSQL is backed up by the server's tools: see
docs/operations.md."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dinhdanh.cli.common import DbOption, emit, fail_registry
from dinhdanh.registry.errors import RegistryError

ForceOption = Annotated[bool, typer.Option("--force", help="Replace an existing file")]


def backup(
    out: Annotated[Path, typer.Option("--out", help="The copy to write (0600; its key file beside it, "
                                                    "FILE.master-key)", show_default=False)],
    db: DbOption = None,
    force: ForceOption = False,
) -> None:
    """Copy the SQLite register while it is served (SQLite's online backup: one consistent instant)."""
    from dinhdanh.store import backup as store

    try:
        report = store.backup(db, out, force=force)
    except RegistryError as exc:
        fail_registry(exc)
    emit(report.as_dict())


def restore(
    source: Annotated[Path, typer.Option("--from", help="A copy made by dinhdanh backup", show_default=False)],
    db: DbOption = None,
    force: ForceOption = False,
) -> None:
    """Put a backup back as the SQLite register (stop the server first); checked before it replaces anything."""
    from dinhdanh.store import backup as store

    try:
        report = store.restore(source, db, force=force)
    except RegistryError as exc:
        fail_registry(exc)
    emit(report.as_dict())
