"""A fee paid through VNPAY's protocol over HTTP, on a live server that also plays the gateway
(``DINHDANH_PAYMENTS_LOCAL_GATEWAY=1``): the payer's browser goes to the gateway's page, pays,
the gateway sends the IPN server to server and the browser back; the payment is paid. A forged
callback is refused with 97, the same IPN replayed answers 02."""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from dinhdanh.fees import payments, vnpay
from dinhdanh.fees.gateway import configured_merchant, local_hash_secret
from dinhdanh.fees.tables import payments as payments_table
from dinhdanh.store.unit_of_work import UnitOfWork
from dinhdanh.store.vault import for_database
from tests.oidc_support import LiveServer

RETURN_PATH = "/api/v1/payments/vnpay/return"
IPN_PATH = "/api/v1/payments/vnpay/ipn"


@pytest.fixture
def live(engine, monkeypatch):
    monkeypatch.setenv("DINHDANH_PAYMENTS_LOCAL_GATEWAY", "1")
    for name in ("DINHDANH_VNPAY_TMN_CODE", "DINHDANH_VNPAY_HASH_SECRET", "DINHDANH_VNPAY_URL",
                 "DINHDANH_VNPAY_API_URL", "DINHDANH_VNPAY_IPN_URL", "DINHDANH_OIDC_ISSUER"):
        monkeypatch.delenv(name, raising=False)
    with LiveServer(engine) as server:
        yield server


def merchant_for(engine, live):
    """The terminal as the server sees it: the local gateway's, its secret derived from the vault."""
    return configured_merchant(for_database(engine.url.render_as_string(hide_password=False)), live.url)


def start(engine, live, reference="HS-2026-000042", amount=14_000):
    with UnitOfWork(engine).begin() as conn:  # what receiving a dossier that owes a fee does
        return payments.start_payment(conn, merchant_for(engine, live), reference, amount,
                                      return_url=live.url + RETURN_PATH, ip_addr="127.0.0.1",
                                      order_info="Lệ phí cấp đổi thẻ Căn cước")


def status(engine, txn_ref):
    with engine.connect() as conn:
        return conn.execute(sa.select(payments_table.c.status).where(payments_table.c.txn_ref == txn_ref)).scalar_one()


def pay(http: httpx.Client, started, decision="pay") -> str:
    page = http.get(started.pay_url)
    assert page.status_code == 200 and "Thanh toán trực tuyến" in page.text
    assert "14.000 ₫" in page.text and "Le phi cap doi the Can cuoc" in page.text
    token = re.search(r'name="token" value="([^"]+)"', page.text).group(1)
    answer = http.post("/_gateway/vnpay/paymentv2/complete", data={"token": token, "decision": decision})
    assert answer.status_code == 303
    return answer.headers["location"]


def test_a_fee_paid_through_the_gateway_protocol(live, engine):
    started = start(engine, live)
    merchant = merchant_for(engine, live)
    assert merchant.tmn_code == "DDLOCAL1"
    assert merchant.hash_secret == local_hash_secret(for_database(engine.url.render_as_string(hide_password=False)))
    assert started.pay_url.startswith(live.url + "/_gateway/vnpay/paymentv2/vpcpay.html?vnp_Amount=1400000&")
    with httpx.Client(base_url=live.url, follow_redirects=False) as http:
        location = pay(http, started)
        # the IPN came server to server before the browser was sent back: the payment is paid
        assert status(engine, started.txn_ref) == "paid"
        assert live.app.state.local_gateway.transactions[started.txn_ref].ipn_answers == ["00"]
        assert location.startswith(live.url + RETURN_PATH + "?")
        params = dict(parse_qsl(urlsplit(location).query, keep_blank_values=True))
        assert vnpay.is_authentic(params, merchant.hash_secret)
        back = http.get(location)
        assert back.status_code == 200
        assert "Giao dịch thành công" in back.text and "Trạng thái đã ghi nhận: đã thanh toán" in back.text
        shown = http.get(location, headers={"Accept": "application/json"}).json()
        assert shown == {"authentic": True, "txn_ref": started.txn_ref, "gateway_result": "paid",
                         "response_code": "00", "message": "Giao dịch thành công", "status": "paid",
                         "amount_vnd": 14_000}

        # the same IPN replayed: already confirmed, nothing changes
        replay = http.get(IPN_PATH, params=params)
        assert replay.status_code == 200
        assert replay.json() == {"RspCode": "02", "Message": "Order already confirmed"}
        # a forged callback (the amount changed, the old hash kept; or signed with another secret)
        forged = {**params, "vnp_Amount": "100"}
        assert http.get(IPN_PATH, params=forged).json() == {"RspCode": "97", "Message": "Invalid signature"}
        resigned = {**params, "vnp_TxnRef": started.txn_ref}
        resigned["vnp_SecureHash"] = vnpay.sign(resigned, "A-GUESSED-SECRET-0123456789ABCDEF")
        assert http.get(IPN_PATH, params=resigned).json()["RspCode"] == "97"
        repeated = http.get(IPN_PATH + "?" + urlsplit(location).query + "&vnp_Amount=100")
        assert repeated.json()["RspCode"] == "97"  # a parameter given twice is not the gateway's
        # a forged return is shown as such, and says nothing of the payment
        fake_back = http.get(RETURN_PATH, params=forged, headers={"Accept": "application/json"}).json()
        assert fake_back["authentic"] is False and fake_back["status"] is None
        assert http.get(RETURN_PATH, params=forged).status_code == 400
        assert status(engine, started.txn_ref) == "paid"


def test_a_cancelled_payment_and_a_new_attempt(live, engine):
    started = start(engine, live, reference="HS-2026-000043")
    with httpx.Client(base_url=live.url, follow_redirects=False) as http:
        location = pay(http, started, decision="cancel")
        assert status(engine, started.txn_ref) == "cancelled"
        back = http.get(location, headers={"Accept-Language": "en"})
        assert "The customer cancelled the payment" in back.text and "Recorded status: cancelled" in back.text
        second = start(engine, live, reference="HS-2026-000043")
        assert second.txn_ref != started.txn_ref
        pay(http, second)
        assert status(engine, second.txn_ref) == "paid"
        # a transaction reference is paid once at the gateway too
        assert "mã lỗi 01" in http.get(second.pay_url).text


def test_the_local_gateway_is_off_unless_asked(engine, monkeypatch):
    monkeypatch.delenv("DINHDANH_PAYMENTS_LOCAL_GATEWAY", raising=False)
    monkeypatch.delenv("DINHDANH_VNPAY_TMN_CODE", raising=False)
    monkeypatch.delenv("DINHDANH_VNPAY_HASH_SECRET", raising=False)
    with LiveServer(engine) as server, httpx.Client(base_url=server.url, timeout=30) as http:
        assert http.get("/_gateway/vnpay/paymentv2/vpcpay.html").status_code == 404
        assert http.get(IPN_PATH, params={"vnp_TxnRef": "X"}).status_code == 404  # no terminal, no merchant routes
    monkeypatch.setenv("DINHDANH_VNPAY_TMN_CODE", "ABCD1234")
    monkeypatch.setenv("DINHDANH_VNPAY_HASH_SECRET", "0123456789ABCDEF0123456789ABCDEF")
    with LiveServer(engine) as server, httpx.Client(base_url=server.url, timeout=30) as http:  # a real terminal: VNPAY's own
        assert http.get("/_gateway/vnpay/paymentv2/vpcpay.html").status_code == 404
        assert http.get(IPN_PATH, params={"vnp_TxnRef": "X"}).json()["RspCode"] == "97"
        merchant = server.app.state.vnpay_merchant
        assert merchant.pay_url == vnpay.SANDBOX_PAY_URL and merchant.tmn_code == "ABCD1234"


def test_payments_cli(sqlite_engine, monkeypatch):
    from dinhdanh.cli import app

    engine = sqlite_engine
    monkeypatch.setenv("DINHDANH_PAYMENTS_LOCAL_GATEWAY", "1")
    db = engine.url.render_as_string(hide_password=False)
    runner = CliRunner()
    with LiveServer(engine) as live:
        monkeypatch.setenv("DINHDANH_VNPAY_URL", live.url + "/_gateway/vnpay/paymentv2/vpcpay.html")
        monkeypatch.setenv("DINHDANH_VNPAY_API_URL", live.url + "/_gateway/vnpay/merchant_webapi/api/transaction")
        out = runner.invoke(app, ["payments", "start", "HS-9", "--amount", "50000",
                                  "--return-url", live.url + RETURN_PATH, "--db", db])
        assert out.exit_code == 0, out.output
        started = json.loads(out.stdout)
        with httpx.Client(base_url=live.url, follow_redirects=False) as http:
            http.get(started["pay_url"])  # opened, never decided
        out = runner.invoke(app, ["payments", "reconcile", "--older-than", "0", "--db", db])
        assert out.exit_code == 0, out.output
        assert json.loads(out.stdout) == {"checked": 1, "still_pending": 1}
        out = runner.invoke(app, ["payments", "show", "HS-9", "--db", db])
        shown = json.loads(out.stdout)
        assert shown["paid"] is False and shown["payments"][0]["status"] == "pending"
        assert [e["kind"] for e in shown["payments"][0]["events"]] == ["created", "querydr"]
        assert shown["payments"][0]["created_at"].endswith("+07:00")
    out = runner.invoke(app, ["payments", "reconcile", "--day", "2026-13-01", "--db", db])
    assert out.exit_code == 2 and "--day" in out.output
    out = runner.invoke(app, ["payments", "show", "hồ sơ", "--db", db])
    assert out.exit_code == 2 and "reference" in out.output
