"""A refused dossier's paid fee follows its service's refund rule, on SQLite and PostgreSQL: the
refusal schedules the refund in its own unit of work; the durable scheduler asks the gateway (the
local gateway speaking VNPAY's protocol) outside any transaction, retries while the gateway is away,
and a repeated job gives nothing twice."""

from __future__ import annotations

import dataclasses
import datetime as dt
from urllib.parse import unquote_plus

import sqlalchemy as sa

from dinhdanh.dossiers import catalogue
from dinhdanh.fees import payments, refunds
from dinhdanh.fees.gateway import GatewayError
from dinhdanh.fees.tables import payments as payment_rows
from dinhdanh.scheduler import jobs
from dinhdanh.scheduler.tables import scheduled_jobs
from dinhdanh.store.unit_of_work import UnitOfWork
from tests.integration.test_dossiers import AN, BEN_THANH, MERCHANT, act, file, temporary_form
from tests.integration.test_dossiers import register  # noqa: F401  (the fixture)
from tests.integration.test_payments import RETURN, Gateway


def paid_dossier(register, gw: Gateway) -> dict:
    engine, _ = register
    filed = file(engine, temporary_form())
    assert filed["fee_amount"] > 0
    with UnitOfWork(engine).begin() as conn:
        started = payments.start_payment(conn, MERCHANT, filed["code"], filed["fee_amount"], return_url=RETURN,
                                         ip_addr="203.113.1.7")
    # the gateway's signed result (as the return URL carries it); its IPN is delivered here
    signed = {k: unquote_plus(v) for k, v in gw.decide(started, "pay").items()}
    with UnitOfWork(engine).begin() as conn:
        assert payments.handle_ipn(conn, MERCHANT, signed)["RspCode"] == "00"
    act(register, filed["dossier_id"], "receive")
    return filed | {"txn_ref": started.txn_ref}


def job(engine, code: str):
    with engine.connect() as conn:
        return conn.execute(sa.select(scheduled_jobs).where(scheduled_jobs.c.kind == refunds.REFUND,
                                                            scheduled_jobs.c.key == code)).first()


def status(engine, txn_ref: str) -> str:
    with engine.connect() as conn:
        return conn.execute(sa.select(payment_rows.c.status).where(payment_rows.c.txn_ref == txn_ref)).scalar_one()


class Down:
    """A gateway that does not answer."""

    def refund(self, **kw):
        raise GatewayError("the gateway did not answer (ConnectError)")


def test_a_refused_paid_dossier_is_refunded_by_the_scheduler(register):
    engine, _ = register
    gw = Gateway()
    filed = paid_dossier(register, gw)
    assert job(engine, filed["code"]) is None
    act(register, filed["dossier_id"], "refuse", reason="Chỗ ở không hợp pháp")
    scheduled = job(engine, filed["code"])
    assert scheduled.status == "pending" and "Chỗ ở không hợp pháp" in scheduled.payload["reason"]
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)

    # the gateway away: the job fails, is retried later, and the payment stays paid
    assert jobs.run_due(engine, refunds.handlers(Down()), now=later) == 0
    failed = job(engine, filed["code"])
    assert (failed.status, failed.attempts) == ("pending", 1) and failed.due_at > later
    assert "GatewayUnavailable" in failed.last_error and status(engine, filed["txn_ref"]) == "paid"

    assert jobs.run_due(engine, refunds.handlers(gw.client), now=failed.due_at + dt.timedelta(seconds=1)) == 1
    assert job(engine, filed["code"]).status == "done"
    assert status(engine, filed["txn_ref"]) == "refunded" and gw.gateway.transactions[filed["txn_ref"]].refunded
    # the same job again (a crash between the gateway's refund and "done"): nothing is given twice
    with UnitOfWork(engine).begin() as conn:
        jobs.schedule(conn, refunds.REFUND, filed["code"], later, {"reason": "again"})
    assert jobs.run_due(engine, refunds.handlers(Down()), now=failed.due_at + dt.timedelta(seconds=2)) == 1
    assert status(engine, filed["txn_ref"]) == "refunded"


def test_a_service_that_keeps_its_fee_schedules_no_refund_and_an_unpaid_one_has_none(register, monkeypatch):
    engine, _ = register
    gw = Gateway()
    kept = paid_dossier(register, gw)
    real = catalogue.version

    def keeping(version_id):
        version = real(version_id)
        return dataclasses.replace(version, fee=dataclasses.replace(version.fee, refund_on_refusal="none"))

    monkeypatch.setattr(catalogue, "version", keeping)
    act(register, kept["dossier_id"], "refuse", reason="Hồ sơ giả mạo")
    assert job(engine, kept["code"]) is None and status(engine, kept["txn_ref"]) == "paid"
    monkeypatch.setattr(catalogue, "version", real)
    unpaid = file(engine, temporary_form())
    act(register, unpaid["dossier_id"], "refuse", reason="Không đủ điều kiện")  # refused before any payment
    assert job(engine, unpaid["code"]) is None


def test_the_catalogue_states_each_services_refund_rule():
    listed = {v.code: v.fee.refund_on_refusal for v in catalogue.services() if v.fee is not None}
    assert listed and set(listed.values()) <= {"full", "none"}
    assert catalogue.fee_summary(catalogue.service("1.004194", dt.date(2026, 12, 7)),
                                 dt.date(2026, 12, 7))["refund_on_refusal"] == "full"
