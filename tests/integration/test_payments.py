"""Payments (fees.payments) on SQLite and PostgreSQL: the IPN settles once, concurrent duplicates
move it once, a wrong amount or a forged signature changes nothing; reconciliation and refunds
against the local gateway (fees.local_gateway), in process."""

from __future__ import annotations

import datetime as dt
import re
import threading
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient

from dinhdanh.fees import payments, vnpay
from dinhdanh.fees.gateway import VnpayClient
from dinhdanh.fees.local_gateway import LocalGateway
from dinhdanh.fees.tables import payment_events
from dinhdanh.fees.tables import payments as payments_table
from dinhdanh.fees.vnpay import Merchant
from dinhdanh.registry.errors import InvalidInput
from dinhdanh.store.unit_of_work import UnitOfWork
from tests.oidc_support import free_port

SECRET = "TESTSECRET0123456789ABCDEFGHIJKL"
GATEWAY = "http://gateway.test"
MERCHANT = Merchant("DDTEST01", SECRET, GATEWAY + "/_gateway/vnpay/paymentv2/vpcpay.html",
                    GATEWAY + "/_gateway/vnpay/merchant_webapi/api/transaction")
RETURN = "https://dichvucong.example/api/v1/payments/vnpay/return"


def start(engine, reference="HS-2026-000001", amount=14_000, **kw) -> payments.StartedPayment:
    with UnitOfWork(engine).begin() as conn:
        return payments.start_payment(conn, MERCHANT, reference, amount, return_url=RETURN, ip_addr="203.113.1.7",
                                      **kw)


def result(started: payments.StartedPayment, *, amount=None, code="00", status="00", secret=SECRET) -> dict:
    params = {"vnp_Amount": str((amount or started.amount_vnd) * 100), "vnp_BankCode": "NCB",
              "vnp_CardType": "ATM", "vnp_OrderInfo": "Thanh toan", "vnp_PayDate": "20260302083500",
              "vnp_ResponseCode": code, "vnp_TmnCode": MERCHANT.tmn_code, "vnp_TransactionNo": "14422574",
              "vnp_TransactionStatus": status, "vnp_TxnRef": started.txn_ref}
    params["vnp_SecureHash"] = vnpay.sign(params, secret)
    return params


def ipn(engine, params) -> dict:
    with UnitOfWork(engine).begin() as conn:
        return payments.handle_ipn(conn, MERCHANT, params)


def row(engine, txn_ref):
    with engine.connect() as conn:
        return conn.execute(sa.select(payments_table).where(payments_table.c.txn_ref == txn_ref)).one()


def events(engine, txn_ref):
    with engine.connect() as conn:
        return conn.execute(sa.select(payment_events).where(payment_events.c.txn_ref == txn_ref)
                            .order_by(payment_events.c.event_id)).all()


def test_ipn_settles_once_and_a_replay_answers_already_confirmed(engine):
    started = start(engine)
    assert started.pay_url.startswith(MERCHANT.pay_url + "?") and not started.reused
    params = result(started)
    assert ipn(engine, params) == {"RspCode": "00", "Message": "Confirm Success"}
    paid = row(engine, started.txn_ref)
    assert (paid.status, paid.gateway_txn_no, paid.bank_code) == ("paid", "14422574", "NCB")
    assert paid.pay_date == dt.datetime(2026, 3, 2, 1, 35, tzinfo=dt.UTC)
    assert '"vnp_SecureHash"' in paid.callback and SECRET not in paid.callback
    assert ipn(engine, params) == {"RspCode": "02", "Message": "Order already confirmed"}
    again = row(engine, started.txn_ref)
    assert again._mapping == paid._mapping  # nothing changed
    assert [(e.kind, e.answer, e.from_status, e.to_status) for e in events(engine, started.txn_ref)] == [
        ("created", None, None, "pending"), ("ipn", "00", "pending", "paid"), ("ipn", "02", None, None)]
    with engine.connect() as conn:
        assert payments.is_paid(conn, "HS-2026-000001")
    recorded = events(engine, started.txn_ref)
    for _ in range(5):  # the same signed URL replayed in a loop: answered, recorded once
        assert ipn(engine, params)["RspCode"] == "02"
    assert events(engine, started.txn_ref) == recorded
    other = result(started, code="24", status="02")  # a different IPN of the same payment is recorded
    assert ipn(engine, other)["RspCode"] == "02"
    assert len(events(engine, started.txn_ref)) == len(recorded) + 1


def test_a_replayed_ipn_for_an_unknown_order_or_another_amount_is_recorded_once(engine):
    started = start(engine)
    unknown = result(started) | {"vnp_TxnRef": "NOSUCHREF0001"}
    unknown["vnp_SecureHash"] = vnpay.sign({k: v for k, v in unknown.items() if k != "vnp_SecureHash"}, SECRET)
    wrong = result(started, amount=started.amount_vnd + 1000)
    for _ in range(3):
        assert ipn(engine, unknown)["RspCode"] == "01"
        assert ipn(engine, wrong)["RspCode"] == "04"
    assert [e.answer for e in events(engine, "NOSUCHREF0001")] == ["01"]
    assert [e.answer for e in events(engine, started.txn_ref) if e.kind == "ipn"] == ["04"]


def test_concurrent_duplicate_ipns_move_the_payment_once(engine):
    started = start(engine)
    params = result(started)
    barrier = threading.Barrier(8)
    answers: list[str] = []

    def deliver():
        barrier.wait()
        answers.append(ipn(engine, params)["RspCode"])

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(answers) == ["00"] + ["02"] * 7
    moves = [e for e in events(engine, started.txn_ref) if e.kind == "ipn" and e.to_status]
    assert [(e.from_status, e.to_status) for e in moves] == [("pending", "paid")]
    assert not any("late_success" in (e.detail or "") for e in events(engine, started.txn_ref))
    assert row(engine, started.txn_ref).status == "paid"


def test_wrong_amount_pays_nothing(engine):
    started = start(engine)
    assert ipn(engine, result(started, amount=1_000))["RspCode"] == "04"
    assert row(engine, started.txn_ref).status == "pending"
    assert row(engine, started.txn_ref).paid_at is None
    assert ipn(engine, result(started))["RspCode"] == "00"  # the right one still settles it


def test_forged_callbacks_change_nothing(engine):
    started = start(engine)
    before = events(engine, started.txn_ref)
    assert ipn(engine, result(started, secret="NOT-THE-SECRET-0123456789ABCDEF"))["RspCode"] == "97"
    tampered = {**result(started), "vnp_ResponseCode": "00", "vnp_Amount": "100"}
    tampered["vnp_Amount"] = str(started.amount_vnd * 100 - 100)
    assert ipn(engine, tampered)["RspCode"] == "97"
    unsigned = {k: v for k, v in result(started).items() if k != "vnp_SecureHash"}
    assert ipn(engine, unsigned)["RspCode"] == "97"
    assert row(engine, started.txn_ref).status == "pending"
    assert events(engine, started.txn_ref) == before  # not even an event: anyone can send one


def test_unknown_order_and_failed_payments(engine):
    started = start(engine)
    other = payments.StartedPayment(0, "FFFFFFFFFFFFFFFFFFFF", "", 14_000, started.expires_at, False)
    assert ipn(engine, result(other))["RspCode"] == "01"
    assert ipn(engine, result(started, code="24", status="02"))["RspCode"] == "00"
    assert row(engine, started.txn_ref).status == "cancelled"
    late = result(started)  # the gateway says paid after the attempt was cancelled: kept, not applied
    assert ipn(engine, late)["RspCode"] == "02"
    assert row(engine, started.txn_ref).status == "cancelled"
    assert '"late_success": "true"' in events(engine, started.txn_ref)[-1].detail
    # a new attempt for the same reference is allowed now
    assert start(engine).txn_ref != started.txn_ref


def test_start_rules(engine):
    first = start(engine)
    assert start(engine).txn_ref == first.txn_ref and start(engine).reused  # two tabs, one payment
    with pytest.raises(payments.PaymentPending) as pending:
        start(engine, amount=20_000)
    assert pending.value.field == "reference"
    later = first.expires_at + payments.GRACE + dt.timedelta(seconds=1)
    second = start(engine, amount=20_000, now=later)  # the old attempt expired first
    assert row(engine, first.txn_ref).status == "expired" and second.txn_ref != first.txn_ref
    assert ipn(engine, result(second))["RspCode"] == "00"
    with pytest.raises(payments.AlreadyPaid):
        start(engine, amount=20_000)
    for kw, field in (({"reference": "hồ sơ 1"}, "reference"), ({"reference": ""}, "reference"),
                      ({"amount": 0}, "amount_vnd"), ({"reference": "HS-2", "locale": "fr"}, "locale")):
        with pytest.raises(InvalidInput) as bad:
            start(engine, **kw)
        assert bad.value.field == field


# ------------------------------------------------------------------------------ against the local gateway


class Gateway:
    """The local gateway in process (TestClient); its IPNs go to a closed port (lost), so only
    reconciliation can tell the merchant."""

    def __init__(self, clock=None):
        kw = {"clock": clock} if clock else {}
        self.gateway = LocalGateway(lambda request: MERCHANT, lambda request: f"http://127.0.0.1:{free_port()}/ipn",
                                    **kw)
        app = FastAPI()
        app.include_router(self.gateway.router())
        self.http = TestClient(app, base_url=GATEWAY)
        self.client = VnpayClient(MERCHANT, self.http)

    def open(self, started) -> str:
        page = self.http.get(started.pay_url.removeprefix(GATEWAY))
        assert page.status_code == 200, page.text
        assert "Thanh toán" in page.text and "Hủy" in page.text
        return re.search(r'name="token" value="([^"]+)"', page.text).group(1)

    def decide(self, started, decision: str) -> dict:
        token = self.open(started)
        answer = self.http.post("/_gateway/vnpay/paymentv2/complete", data={"token": token, "decision": decision},
                                follow_redirects=False)
        assert answer.status_code == 303
        location = answer.headers["location"]
        assert location.startswith(RETURN + "?")
        return dict(pair.split("=", 1) for pair in urlsplit(location).query.split("&"))


def test_reconcile_settles_what_the_ipn_never_told(engine):
    gw = Gateway()
    uow = UnitOfWork(engine)
    paid = start(engine, "HS-A")
    gw.decide(paid, "pay")
    assert gw.gateway.transactions[paid.txn_ref].ipn_answers == ["--"]  # lost
    cancelled = start(engine, "HS-B")
    gw.decide(cancelled, "cancel")
    opened = start(engine, "HS-C")
    gw.open(opened)  # on the page, not decided
    never = start(engine, "HS-D")  # never went to the gateway
    assert row(engine, paid.txn_ref).status == "pending"

    soon = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=16)
    assert payments.reconcile(uow, gw.client, now=soon) == {"checked": 4, "failed": 1, "paid": 1,
                                                            "still_pending": 2}
    assert [row(engine, s.txn_ref).status for s in (paid, cancelled, opened, never)] == [
        "paid", "failed", "pending", "pending"]
    assert row(engine, paid.txn_ref).gateway_txn_no == gw.gateway.transactions[paid.txn_ref].transaction_no

    past = dt.datetime.now(dt.UTC) + payments.EXPIRY + payments.GRACE + dt.timedelta(minutes=1)
    today = dt.datetime.now(dt.UTC).astimezone(vnpay.VIETNAM).date()
    assert payments.reconcile(uow, gw.client, today, now=past) == {"checked": 2, "expired": 2}
    assert row(engine, opened.txn_ref).status == row(engine, never.txn_ref).status == "expired"
    assert payments.reconcile(uow, gw.client, today - dt.timedelta(days=1), now=past) == {"checked": 0}
    # the late IPN, if it ever comes, changes nothing
    assert ipn(engine, result(paid))["RspCode"] == "02"


def test_reconcile_refuses_answers_without_our_checksum(engine):
    gw = Gateway()
    started = start(engine)
    gw.decide(started, "pay")
    wrong = VnpayClient(Merchant(MERCHANT.tmn_code, "ANOTHER-SECRET-0123456789ABCDEF", MERCHANT.pay_url,
                                 MERCHANT.api_url), gw.http)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=16)
    assert payments.reconcile(UnitOfWork(engine), wrong, now=later) == {"checked": 1, "unanswered": 1}
    assert row(engine, started.txn_ref).status == "pending"
    assert payments.reconcile(UnitOfWork(engine), gw.client, now=later)["paid"] == 1


def test_refund_through_the_gateway(engine):
    gw = Gateway()
    uow = UnitOfWork(engine)
    started = start(engine)
    gw.decide(started, "pay")
    payments.reconcile(uow, gw.client, now=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=16))
    with pytest.raises(InvalidInput) as bad:
        payments.refund(uow, gw.client, started.payment_id, " ", actor="test")
    assert bad.value.field == "reason"
    done = payments.refund(uow, gw.client, started.payment_id, "Hồ sơ bị từ chối; lệ phí được hoàn", actor="test")
    assert done == {"payment_id": started.payment_id, "status": "refunded", "gateway_code": "00"}
    refunded = row(engine, started.txn_ref)
    assert refunded.status == "refunded" and refunded.refund_reason.startswith("Hồ sơ bị từ chối")
    assert gw.gateway.transactions[started.txn_ref].refunded
    with pytest.raises(payments.NotPaid):
        payments.refund(uow, gw.client, started.payment_id, "again", actor="test")
    with engine.connect() as conn:
        assert not payments.is_paid(conn, "HS-2026-000001")
    pending = start(engine, "HS-X")
    with pytest.raises(payments.NotPaid):
        payments.refund(uow, gw.client, pending.payment_id, "not paid", actor="test")


def test_refund_the_gateway_refuses_keeps_it_paid(engine):
    gw = Gateway()
    uow = UnitOfWork(engine)
    started = start(engine)
    assert ipn(engine, result(started))["RspCode"] == "00"  # paid, but the gateway never saw it
    with pytest.raises(payments.RefundRefused):
        payments.refund(uow, gw.client, started.payment_id, "Hồ sơ bị từ chối", actor="test")
    assert row(engine, started.txn_ref).status == "paid"
    assert events(engine, started.txn_ref)[-1].answer == "91"


def test_local_gateway_refuses_a_forged_or_replayed_pay_request():
    gw = Gateway()
    url = vnpay.payment_url(MERCHANT, txn_ref="ABC123", amount_vnd=14_000, order_info="Thanh toan",
                            return_url=RETURN, ip_addr="127.0.0.1", created=dt.datetime.now(dt.UTC),
                            expires=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=15))
    path = url.removeprefix(GATEWAY)
    forged = gw.http.get(path.replace("vnp_Amount=1400000", "vnp_Amount=100"))
    assert forged.status_code == 400 and "Sai chữ ký" in forged.text
    expired = vnpay.payment_url(MERCHANT, txn_ref="ABC124", amount_vnd=14_000, order_info="Thanh toan",
                                return_url=RETURN, ip_addr="127.0.0.1",
                                created=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1),
                                expires=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1))
    assert "mã lỗi 11" in gw.http.get(expired.removeprefix(GATEWAY)).text
    assert gw.http.get(path).status_code == 200
    fake = payments.StartedPayment(0, "ABC123", url, 14_000, dt.datetime.now(dt.UTC), False)
    gw.decide(fake, "pay")
    assert "mã lỗi 01" in gw.http.get(path).text  # a transaction reference is paid once
