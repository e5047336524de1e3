"""``dinhdanh audit``: the access log as a transparency log: integrate, save a signed head, verify."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from dinhdanh.cli.common import DbOption, emit, engine_for, fail

audit_app = typer.Typer(help="The access log (every read of a person's data), an RFC 9162 transparency log.",
                        no_args_is_help=True)


def _parts(db: str | None):
    from dinhdanh.store.unit_of_work import UnitOfWork
    from dinhdanh.store.vault import for_database

    engine = engine_for(db, upgrade=True)
    return UnitOfWork(engine), for_database(engine.url.render_as_string(hide_password=False))


@audit_app.command("verify")
def verify(
    head: Annotated[list[Path] | None, typer.Option(
        "--head", help="A signed head saved earlier (`audit head --out`); the log must still give its root; "
                       "repeatable")] = None,
    db: DbOption = None,
) -> None:
    """Recompute the tree from the entries; check it against the newest signed head and any saved head.
    Prints {tree_size, pending, valid, first_bad, head, saved}. Exit 0 valid, 1 not."""
    from dinhdanh.audit import checks, heads

    saved = []
    for path in head or []:
        try:
            saved.append((str(path), checks.read_saved(path)))
        except (OSError, UnicodeError, ValueError, heads.HeadError) as exc:
            fail(f"--head {path}: not a saved tree head ({type(exc).__name__})")
    uow, _ = _parts(db)
    report = checks.verify_log(uow, saved)
    emit(report.as_dict())
    if not report.valid:
        raise typer.Exit(1)


@audit_app.command("head")
def save_head(
    out: Annotated[Path | None, typer.Option(help="Write the signed head to this file (else print it)")] = None,
    db: DbOption = None,
) -> None:
    """The log's current signed tree head, as JSON: what auditors keep outside the database."""
    from dinhdanh.audit import proofs, sequencer

    uow, vault = _parts(db)
    sequencer.integrate_all(uow, vault)  # what was written before this moment is in the head
    text = json.dumps(proofs.current_head(uow, vault).as_dict(), indent=2) + "\n"
    if out is None:
        print(text, end="")
        return
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        fail(f"--out {out}: cannot write it ({type(exc).__name__})")
    emit({"head": str(out)})


@audit_app.command("sequence")
def sequence(db: DbOption = None) -> None:
    """Integrate every waiting entry into the tree now (``serve`` does it continuously)."""
    from dinhdanh.audit import proofs, sequencer

    uow, vault = _parts(db)
    done = sequencer.integrate_all(uow, vault)
    emit({"integrated": done, "tree_size": proofs.current_head(uow, vault).tree_size})
