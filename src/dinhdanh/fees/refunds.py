"""Refunds of refused dossiers' fees, run by the durable scheduler (issue 12).

A refused dossier's fee follows its service's rule (the catalogue's ``fee.refund.on_refusal``:
``full`` gives it back, ``none`` keeps it). When the rule gives it back and a payment of the
dossier is paid, the refusal schedules ``fees.refund`` (key: the dossier's code) in its own unit of
work, so a refusal that commits always has its refund to come and a refusal rolled back has none.

The job asks the gateway outside any transaction (``payments.refund``: VNPAY's refund, then
``paid`` -> ``refunded``); while the gateway is away or refuses, the job fails and the scheduler
retries it with backoff, and after its last attempt it stays ``failed`` in ``dinhdanh scheduler
list`` for an operator. A payment already refunded (a retry after a crash, or a second job) is done.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from dinhdanh.fees import payments
from dinhdanh.fees.gateway import GatewayClient
from dinhdanh.fees.tables import payments as payment_rows
from dinhdanh.scheduler import jobs
from dinhdanh.scheduler.jobs import Handler
from dinhdanh.store.unit_of_work import UnitOfWork

REFUND = "fees.refund"
ACTOR = "system:refund"


def refund_due(conn: sa.Connection, reference: str) -> int | None:
    """The paid payment of ``reference`` (a dossier's code), if any."""
    return conn.execute(sa.select(payment_rows.c.payment_id).where(
        payment_rows.c.reference == reference, payment_rows.c.status == "paid")).scalar()


def schedule_refund(conn: sa.Connection, reference: str, reason: str, now: dt.datetime) -> bool:
    """In the refusal's unit: schedule the refund of ``reference``'s paid fee (False: nothing paid)."""
    if refund_due(conn, reference) is None:
        return False
    jobs.schedule(conn, REFUND, reference, now, {"reason": reason[:500]})
    return True


def handlers(client: GatewayClient) -> dict[str, Handler]:
    """The job kinds of the fees area and their handlers, with the gateway client to call."""

    @jobs.outside_unit
    def refund(uow: UnitOfWork, key: str, payload: dict) -> None:
        with uow.read() as conn:
            payment_id = refund_due(conn, key)
        if payment_id is None:  # refunded already, or never paid: nothing to give back
            return
        reason = payload.get("reason") if isinstance(payload, dict) else None
        payments.refund(uow, client, payment_id, reason or f"Hồ sơ {key} bị từ chối", actor=ACTOR)

    return {REFUND: refund}
