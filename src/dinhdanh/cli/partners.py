"""``dinhdanh partner``: the partner registry of the data exchange (add, approve, suspend, list)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer

from dinhdanh.cli.common import DbOption, actor_label, emit, engine_for, fail, fail_registry
from dinhdanh.registry.errors import RegistryError

partner_app = typer.Typer(help="Partners of the data exchange: register, approve, suspend, list.",
                          no_args_is_help=True)


@partner_app.command("add")
def partner_add(
    name: Annotated[str, typer.Option(help="The partner's name")],
    kind: Annotated[str, typer.Option(help="ministry, state_enterprise, locality, bank or telco")],
    operations: Annotated[str, typer.Option(help="Comma-separated: verify, kyc, batch, subscribe")],
    fields: Annotated[str, typer.Option(
        help="Comma-separated fields it may check: full_name, date_of_birth, sex, phone, address, status, card")],
    purposes: Annotated[str | None, typer.Option(
        help="Comma-separated purpose codes, the first the default [default: by kind]")] = None,
    rate: Annotated[int, typer.Option(help="Rate limit, requests per minute")] = 600,
    db: DbOption = None,
) -> None:
    """Register a partner (pending) and its OAuth client; prints client_id and client_secret (shown once)."""
    from dinhdanh.exchange.partners import add_partner

    engine = engine_for(db, upgrade=True)
    try:
        with engine.begin() as conn:
            made = add_partner(conn, name=name, kind=kind, operations=operations, fields=fields, purposes=purposes,
                               rate_per_minute=rate, actor=actor_label())
    except RegistryError as exc:
        fail_registry(exc)
    emit(made)
    typer.echo("the partner can do nothing until approved: dinhdanh partner approve "
               f"{made['client_id']} --agreement REF --legal-basis TEXT --expires YYYY-MM-DD --security-level 3",
               err=True)


@partner_app.command("approve")
def partner_approve(
    client_id: Annotated[str, typer.Argument(help="The partner's client id")],
    agreement: Annotated[str, typer.Option(help="Reference of the signed agreement")],
    legal_basis: Annotated[str, typer.Option(help="The legal basis of the exchange")],
    expires: Annotated[str, typer.Option(help="The agreement's expiry date, YYYY-MM-DD")],
    security_level: Annotated[int, typer.Option(help="Attested information-security level (3 or above)")],
    db: DbOption = None,
) -> None:
    """Approve a partner against its agreement: its client is approved and the partner active."""
    from dinhdanh.exchange.partners import approve_partner

    try:
        until = dt.date.fromisoformat(expires)
    except ValueError:
        fail(f"--expires: not a date (YYYY-MM-DD): {expires}")
    engine = engine_for(db, upgrade=True)
    try:
        with engine.begin() as conn:
            emit(approve_partner(conn, client_id, agreement=agreement, legal_basis=legal_basis, expires=until,
                                 security_level=security_level, actor=actor_label()))
    except RegistryError as exc:
        fail_registry(exc)


@partner_app.command("suspend")
def partner_suspend(client_id: Annotated[str, typer.Argument()], db: DbOption = None) -> None:
    """Stop a partner: every exchange operation is refused (approve it again to resume)."""
    from dinhdanh.exchange.partners import suspend_partner

    engine = engine_for(db, upgrade=True)
    try:
        with engine.begin() as conn:
            emit(suspend_partner(conn, client_id, actor=actor_label()))
    except RegistryError as exc:
        fail_registry(exc)


@partner_app.command("list")
def partner_list(db: DbOption = None) -> None:
    """Every partner with its policy and state."""
    from dinhdanh.exchange.partners import list_partners

    engine = engine_for(db, upgrade=True)
    with engine.connect() as conn:
        emit(list_partners(conn))
