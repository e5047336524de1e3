"""``dinhdanh audit``: the access log's hash chain, and anchors of its head kept outside the database."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from dinhdanh.cli.common import DbOption, emit, engine_for, fail

audit_app = typer.Typer(help="The access log (every read of a person's data), hash-chained.", no_args_is_help=True)


@audit_app.command("verify")
def verify(
    anchor: Annotated[list[Path] | None, typer.Option(
        "--anchor", help="An anchor file (from `audit anchor`) the chain must still hold; repeatable")] = None,
    db: DbOption = None,
) -> None:
    """Walk the access log's hash chain; print {entries, valid, first_broken[, anchors]}. Exit 0 valid, 1 broken."""
    from dinhdanh.audit.anchor import check_anchor
    from dinhdanh.audit.chain import verify as walk

    tokens = []
    for path in anchor or []:
        try:
            tokens.append((str(path), path.read_text(encoding="utf-8")))
        except (OSError, UnicodeError) as exc:
            fail(f"--anchor {path}: cannot read it ({type(exc).__name__})")
    engine = engine_for(db, upgrade=True)
    verdict = walk(engine)
    report = verdict.as_dict()
    valid = verdict.valid
    if tokens:
        with engine.connect() as conn:
            checks = [{"file": name, **check_anchor(conn, text).as_dict()} for name, text in tokens]
        report["anchors"] = checks
        valid = valid and all(c["valid"] for c in checks)
        report["valid"] = valid
    emit(report)
    if not valid:
        raise typer.Exit(1)


@audit_app.command("anchor")
def anchor(
    out: Annotated[Path | None, typer.Option(help="Write the anchor to this file (else print it)")] = None,
    db: DbOption = None,
) -> None:
    """Sign the chain's head (ES256, the provider's key) as a compact JWS to keep outside the database."""
    from dinhdanh.audit.anchor import sign_head
    from dinhdanh.store.vault import for_database

    engine = engine_for(db, upgrade=True)
    issuer = os.environ.get("DINHDANH_OIDC_ISSUER") or "urn:dinhdanh"
    with engine.begin() as conn:
        token = sign_head(conn, for_database(engine.url.render_as_string(hide_password=False)), issuer)
    if out is None:
        print(token)
        return
    try:
        out.write_text(token + "\n", encoding="utf-8")
    except OSError as exc:
        fail(f"--out {out}: cannot write it ({type(exc).__name__})")
    emit({"anchor": str(out)})
