"""``dinhdanh partner``: the partner registry of the data exchange (add, approve, suspend, policy,
show, list)."""

from __future__ import annotations

import datetime as dt
from enum import Enum
from typing import Annotated

import typer

from dinhdanh.cli.common import DbOption, actor_label, emit, engine_for, fail, fail_registry
from dinhdanh.registry.errors import RegistryError
from dinhdanh.store.unit_of_work import UnitOfWork

FIELDS_HELP = ("Comma-separated fields: full_name, date_of_birth, sex, phone, address (permanent), status, card, "
               "nationality, hometown, current_address")


def _quota(value: str | None) -> int | None:
    """``--quota N|none``: requests a day (Vietnam time) over all operations, or no quota."""
    if value is None or value.strip().lower() == "none":
        return None
    try:
        return int(value)
    except ValueError:
        fail(f"--quota: a whole number of requests a day, or none (not {value!r})")


partner_app = typer.Typer(help="Partners of the data exchange: register, approve, suspend, policy, show, list.",
                          no_args_is_help=True)


@partner_app.command("add")
def partner_add(
    name: Annotated[str, typer.Option(help="The partner's name")],
    kind: Annotated[str, typer.Option(help="ministry, state_enterprise, locality, bank or telco")],
    operations: Annotated[str, typer.Option(help="Comma-separated: verify, kyc, batch, subscribe")],
    fields: Annotated[str, typer.Option(help=FIELDS_HELP)],
    purposes: Annotated[str | None, typer.Option(
        help="Comma-separated purpose codes, the first the default [default: by kind]")] = None,
    rate: Annotated[int, typer.Option(help="Rate limit, requests per minute")] = 600,
    quota: Annotated[str | None, typer.Option(help="Daily quota (Vietnam day, all operations): N or none")] = None,
    area: Annotated[str | None, typer.Option(help="2025 province (2 digits) or commune (5 digits) code, "
                                                  "or national")] = None,
    db: DbOption = None,
) -> None:
    """Register a partner (pending) and its OAuth client; prints client_id and client_secret (shown once)."""
    from dinhdanh.exchange.partners import add_partner

    per_day = _quota(quota)
    engine = engine_for(db, upgrade=True)
    try:
        with engine.begin() as conn:
            made = add_partner(conn, name=name, kind=kind, operations=operations, fields=fields, purposes=purposes,
                               rate_per_minute=rate, quota_per_day=per_day, area_code=area,
                               actor=actor_label())
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


class KycConsent(str, Enum):
    required = "required"
    not_required = "not-required"


@partner_app.command("policy")
def partner_policy(
    client_id: Annotated[str, typer.Argument(help="The partner's client id")],
    operations: Annotated[str | None, typer.Option(help="Comma-separated: verify, kyc, batch, subscribe")] = None,
    fields: Annotated[str | None, typer.Option(help=FIELDS_HELP)] = None,
    purposes: Annotated[str | None, typer.Option(help="Comma-separated purpose codes, the first the default")] = None,
    rate: Annotated[int | None, typer.Option(help="Rate limit, requests per minute")] = None,
    quota: Annotated[str | None, typer.Option(help="Daily quota (Vietnam day, all operations): N or none")] = None,
    area: Annotated[str | None, typer.Option(help="2025 province or commune code, or national")] = None,
    kyc_consent: Annotated[KycConsent | None, typer.Option(
        help="Whether e-KYC needs the citizen's consent (not-required only under a law)")] = None,
    dpop: Annotated[bool | None, typer.Option(
        "--dpop/--no-dpop", help="Whether its access tokens must be DPoP-bound (RFC 9449): no bearer token "
                                 "is issued to it or accepted from it")] = None,
    db: DbOption = None,
) -> None:
    """Change a partner's policy (only the options given); the change is recorded; prints the partner."""
    from dinhdanh.exchange.partners import update_policy

    changes: dict = {}
    if operations is not None:
        changes["operations"] = operations
    if fields is not None:
        changes["fields"] = fields
    if purposes is not None:
        changes["purposes"] = purposes
    if rate is not None:
        changes["rate_per_minute"] = rate
    if quota is not None:
        changes["quota_per_day"] = _quota(quota)
    if area is not None:
        changes["area_code"] = area  # "national" included: checked by the registry
    if kyc_consent is not None:
        changes["kyc_consent_required"] = kyc_consent is KycConsent.required
    if dpop is not None:
        changes["dpop_required"] = dpop
    if not changes:
        fail("give at least one of --operations, --fields, --purposes, --rate, --quota, --area, --kyc-consent, "
             "--dpop/--no-dpop")
    engine = engine_for(db, upgrade=True)
    try:
        with engine.begin() as conn:
            emit(update_policy(conn, client_id, **changes, actor=actor_label()))
    except RegistryError as exc:
        fail_registry(exc)


@partner_app.command("show")
def partner_show(client_id: Annotated[str, typer.Argument(help="The partner's client id")],
                 db: DbOption = None) -> None:
    """One partner: its policy, state and the history of its changes."""
    from dinhdanh.exchange.partners import show_partner

    engine = engine_for(db, upgrade=True)
    try:
        with UnitOfWork(engine).read() as conn:
            emit(show_partner(conn, client_id))
    except RegistryError as exc:
        fail_registry(exc)


@partner_app.command("list")
def partner_list(db: DbOption = None) -> None:
    """Every partner with its policy and state."""
    from dinhdanh.exchange.partners import list_partners

    engine = engine_for(db, upgrade=True)
    with UnitOfWork(engine).read() as conn:
        emit(list_partners(conn))
