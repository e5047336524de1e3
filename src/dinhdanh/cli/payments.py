"""``dinhdanh payments``: the payments of a reference, reconciliation with the gateway, refunds."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer

from dinhdanh.cli.common import DbOption, actor_label, emit, engine_for, fail, fail_registry
from dinhdanh.registry.errors import RegistryError

payments_app = typer.Typer(help="Fees paid through the payment gateway (VNPAY).", no_args_is_help=True)


def _parts(db: str | None):
    from dinhdanh.fees.gateway import PaymentsNotConfigured, VnpayClient, configured_merchant
    from dinhdanh.store.unit_of_work import UnitOfWork
    from dinhdanh.store.vault import for_database

    engine = engine_for(db, upgrade=True)
    try:
        merchant = configured_merchant(for_database(engine.url.render_as_string(hide_password=False)))
    except PaymentsNotConfigured as exc:
        fail(str(exc))
    return UnitOfWork(engine), VnpayClient(merchant)


@payments_app.command("show")
def show(reference: Annotated[str, typer.Argument(help="The payable reference (a dossier's code)")],
         db: DbOption = None) -> None:
    """Every attempt to pay REFERENCE, with its events (times on Việt Nam's clock)."""
    from dinhdanh.fees import payments
    from dinhdanh.store.unit_of_work import UnitOfWork

    try:
        with UnitOfWork(engine_for(db, upgrade=True)).read() as conn:
            emit({"reference": reference, "paid": payments.is_paid(conn, reference),
                  "payments": payments.payments_of(conn, reference)})
    except RegistryError as exc:
        fail_registry(exc)


@payments_app.command("reconcile")
def reconcile(
    day: Annotated[str | None, typer.Option(help="Only payments started on this day (YYYY-MM-DD, Việt Nam)")] = None,
    older_than: Annotated[int, typer.Option(min=0, max=10_080, help="Minutes a payment has been pending")] = 15,
    db: DbOption = None,
) -> None:
    """Ask the gateway (querydr) about pending payments and settle them. Prints the counts."""
    from dinhdanh.fees import payments

    when = None
    if day is not None:
        try:
            when = dt.date.fromisoformat(day)
        except ValueError:
            fail(f"--day {day!r}: not a date (YYYY-MM-DD)")
    uow, client = _parts(db)
    emit(payments.reconcile(uow, client, when, older_than=dt.timedelta(minutes=older_than),
                            actor=actor_label()))


@payments_app.command("start")
def start(
    reference: Annotated[str, typer.Argument(help="The payable reference (a dossier's code)")],
    amount: Annotated[int, typer.Option("--amount", min=1, help="VND, from the service's fee schedule")],
    return_url: Annotated[str, typer.Option(help="Where the gateway sends the payer back")],
    ip: Annotated[str, typer.Option(help="The payer's IP address")] = "127.0.0.1",
    db: DbOption = None,
) -> None:
    """Start paying REFERENCE: prints the gateway URL to open (demos and support)."""
    from dinhdanh.fees import payments

    uow, client = _parts(db)
    try:
        with uow.begin() as conn:
            started = payments.start_payment(conn, client.merchant, reference, amount, return_url=return_url,
                                             ip_addr=ip, actor=actor_label())
    except RegistryError as exc:
        fail_registry(exc)
    emit(started.as_dict())


@payments_app.command("refund")
def refund(
    payment_id: Annotated[int, typer.Argument(min=1)],
    reason: Annotated[str, typer.Option(help="Why (the refusal and the service's refund rule)")],
    db: DbOption = None,
) -> None:
    """Refund a paid payment through the gateway (the whole amount)."""
    from dinhdanh.fees import payments

    uow, client = _parts(db)
    try:
        emit(payments.refund(uow, client, payment_id, reason, actor=actor_label()))
    except RegistryError as exc:
        fail_registry(exc)
