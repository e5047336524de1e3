"""A stand-in for VNPAY that speaks its protocol (``fees.vnpay``), for the demo and the tests.
Never on by default: the app mounts it under ``/_gateway/vnpay/`` only when
``DINHDANH_PAYMENTS_LOCAL_GATEWAY=1`` (``config.payments_local_gateway``).

- ``GET  paymentv2/vpcpay.html?...`` checks the merchant's pay request as VNPAY does (signature,
  version, command, terminal, currency, amount, expiry, a transaction reference not used before)
  and shows a page with "Thanh toán" and "Hủy".
- ``POST paymentv2/complete`` (the page's form): makes the signed result, sends it to the
  merchant's IPN URL server-to-server (GET, as VNPAY does; one attempt, VNPAY retries, we leave
  that to ``payments.reconcile``) and redirects the browser to ``vnp_ReturnUrl`` with the same
  signed parameters.
- ``POST merchant_webapi/api/transaction`` answers ``querydr`` and ``refund`` with their checksums.

Its transactions are kept in memory (one process, like the demo's server): it plays the bank, not
the register.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import logging
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from dinhdanh.calendar.clock import utcnow
from dinhdanh.fees import vnpay
from dinhdanh.fees.vnpay import Merchant, VnpayError

log = logging.getLogger("dinhdanh.fees.local_gateway")
PREFIX = "/_gateway/vnpay"
REQUIRED = ("vnp_Version", "vnp_Command", "vnp_TmnCode", "vnp_Amount", "vnp_CurrCode", "vnp_TxnRef",
            "vnp_OrderInfo", "vnp_OrderType", "vnp_Locale", "vnp_ReturnUrl", "vnp_IpAddr", "vnp_CreateDate",
            "vnp_ExpireDate")


@dataclass
class Transaction:
    """A transaction as the gateway keeps it."""

    txn_ref: str
    amount_vnd: int
    order_info: str
    create_date: str
    return_url: str
    status: str = "01"  # vnp_TransactionStatus: 01 not completed, 00 paid, 02 failed
    transaction_no: str = "0"
    bank_code: str = ""
    pay_date: str = ""
    refunded: bool = False
    ipn_answers: list[str] = field(default_factory=list)  # RspCode of each IPN sent


class LocalGateway:
    """VNPAY in small for one merchant terminal (``merchant_of`` gives it, with the shared secret)."""

    def __init__(self, merchant_of: Callable[[Request], Merchant], ipn_url_of: Callable[[Request], str], *,
                 http: httpx.Client | None = None, clock: Callable[[], dt.datetime] = utcnow):
        self.merchant_of = merchant_of
        self.ipn_url_of = ipn_url_of
        self.http = http or httpx.Client(timeout=10.0)
        self.clock = clock
        self.transactions: dict[str, Transaction] = {}
        self._pages: dict[str, str] = {}  # a page's token -> the transaction it offers to pay
        self._request_ids: set[str] = set()
        self._lock = threading.Lock()

    # -------------------------------------------------------------------------- pay

    def open_payment(self, merchant: Merchant, params: dict[str, str]) -> tuple[str, Transaction]:
        """Check a pay request; the page token and the transaction. ``VnpayError`` names what is wrong."""
        if not vnpay.is_authentic(params, merchant.hash_secret):
            raise VnpayError("Sai chữ ký (mã lỗi 70): yêu cầu không do đơn vị chấp nhận thanh toán ký.",
                             "vnp_SecureHash")
        for name in REQUIRED:
            if not params.get(name):
                raise VnpayError(f"Thiếu tham số {name} (mã lỗi 03).", name)
        if params["vnp_Version"] != vnpay.VERSION or params["vnp_Command"] != "pay":
            raise VnpayError("Phiên bản hoặc lệnh không được hỗ trợ (mã lỗi 03).", "vnp_Version")
        if params["vnp_TmnCode"] != merchant.tmn_code:
            raise VnpayError("Mã website không hợp lệ (mã lỗi 02).", "vnp_TmnCode")
        if params["vnp_CurrCode"] != "VND":
            raise VnpayError("Đơn vị tiền tệ không được hỗ trợ (mã lỗi 03).", "vnp_CurrCode")
        amount = vnpay.amount_of(params["vnp_Amount"])
        if amount < 1:
            raise VnpayError("Số tiền không hợp lệ (mã lỗi 03).", "vnp_Amount")
        vnpay.parse_gmt7(params["vnp_CreateDate"], "vnp_CreateDate")
        if vnpay.parse_gmt7(params["vnp_ExpireDate"], "vnp_ExpireDate") <= self.clock():
            raise VnpayError("Giao dịch đã quá thời gian chờ thanh toán (mã lỗi 11).", "vnp_ExpireDate")
        with self._lock:
            txn = self.transactions.get(params["vnp_TxnRef"])
            if txn is None:
                txn = self.transactions[params["vnp_TxnRef"]] = Transaction(
                    params["vnp_TxnRef"], amount, params["vnp_OrderInfo"], params["vnp_CreateDate"],
                    params["vnp_ReturnUrl"])
            elif txn.status != "01" or txn.amount_vnd != amount:
                raise VnpayError("Giao dịch đã tồn tại (mã lỗi 01).", "vnp_TxnRef")
            token = secrets.token_urlsafe(24)
            self._pages[token] = txn.txn_ref
        return token, txn

    def complete(self, merchant: Merchant, token: str, pay: bool) -> tuple[Transaction, dict[str, str]]:
        """The payer's choice on the page: the signed result (``vnp_SecureHash`` included)."""
        now = self.clock()
        with self._lock:
            ref = self._pages.pop(token, None)
            txn = self.transactions.get(ref) if ref else None
            if txn is None or txn.status != "01":
                raise VnpayError("Phiên thanh toán không còn hiệu lực.", "token")
            txn.pay_date = vnpay.gmt7(now)
            if pay:
                txn.status, txn.bank_code = "00", "NCB"
                txn.transaction_no = str(secrets.randbelow(90_000_000) + 10_000_000)
            else:
                txn.status, txn.bank_code = "02", "VNPAY"
        result = {
            "vnp_Amount": vnpay.amount_field(txn.amount_vnd), "vnp_BankCode": txn.bank_code,
            "vnp_OrderInfo": txn.order_info, "vnp_PayDate": txn.pay_date,
            "vnp_ResponseCode": "00" if pay else "24", "vnp_TmnCode": merchant.tmn_code,
            "vnp_TransactionNo": txn.transaction_no, "vnp_TransactionStatus": txn.status, "vnp_TxnRef": txn.txn_ref,
        }
        if pay:
            result.update(vnp_BankTranNo=f"VNP{txn.transaction_no}", vnp_CardType="ATM")
        result["vnp_SecureHash"] = vnpay.sign(result, merchant.hash_secret)
        return txn, result

    def send_ipn(self, txn: Transaction, url: str, result: dict[str, str]) -> str | None:
        """The result to the merchant's IPN URL (GET); the merchant's RspCode, None if it did not answer."""
        try:
            response = self.http.get(url, params=result)
            code = str(response.json().get("RspCode")) if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError, AttributeError) as exc:
            log.warning("the IPN was not delivered (%s)", type(exc).__name__)
            code = None
        txn.ipn_answers.append(code or "--")
        return code

    # -------------------------------------------------------------------------- querydr, refund

    def _answer(self, merchant: Merchant, command: str, code: str, txn: Transaction | None, ref: str,
                transaction_type: str = "01", status: str | None = None) -> dict[str, object]:
        body: dict[str, object] = {
            "vnp_ResponseId": secrets.token_hex(16), "vnp_Command": command, "vnp_ResponseCode": code,
            "vnp_Message": vnpay.describe(vnpay.QUERYDR_CODES if command == "querydr" else vnpay.REFUND_CODES, code,
                                          english=True),
            "vnp_TmnCode": merchant.tmn_code, "vnp_TxnRef": ref,
            "vnp_Amount": vnpay.amount_field(txn.amount_vnd) if txn else "",
            "vnp_OrderInfo": txn.order_info if txn else "", "vnp_BankCode": txn.bank_code if txn else "",
            "vnp_PayDate": txn.pay_date if txn else "", "vnp_TransactionNo": txn.transaction_no if txn else "",
            "vnp_TransactionType": transaction_type,
            "vnp_TransactionStatus": status if status is not None else (txn.status if txn else ""),
        }
        if command == "querydr":
            body.update(vnp_PromotionCode="", vnp_PromotionAmount="")
        return vnpay.with_checksum(body, vnpay.CHECKSUM_FIELDS[(command, "response")], merchant.hash_secret)

    def transaction_api(self, merchant: Merchant, body: object) -> dict[str, object]:
        """An answer of ``merchant_webapi/api/transaction`` to ``body`` (querydr or refund)."""
        if not isinstance(body, dict) or body.get("vnp_Command") not in ("querydr", "refund"):
            return self._answer(merchant, "querydr", "03", None, "")
        command = body["vnp_Command"]
        ref = str(body.get("vnp_TxnRef") or "")
        if not vnpay.pipe_authentic(body, vnpay.CHECKSUM_FIELDS[(command, "request")], merchant.hash_secret):
            return self._answer(merchant, command, "97", None, ref)
        if body.get("vnp_TmnCode") != merchant.tmn_code:
            return self._answer(merchant, command, "02", None, ref)
        request_id = str(body.get("vnp_RequestId") or "")
        if not request_id or body.get("vnp_Version") != vnpay.VERSION:
            return self._answer(merchant, command, "03", None, ref)
        with self._lock:
            if request_id in self._request_ids:
                return self._answer(merchant, command, "94" if command == "querydr" else "03", None, ref)
            self._request_ids.add(request_id)
            txn = self.transactions.get(ref)
            if txn is None:
                return self._answer(merchant, command, "91", None, ref)
            if command == "querydr":
                return self._answer(merchant, command, "00", txn, ref)
            kind = str(body.get("vnp_TransactionType") or "")
            try:
                amount = vnpay.amount_of(body.get("vnp_Amount"))
            except VnpayError:
                return self._answer(merchant, command, "03", txn, ref, kind)
            if kind not in (vnpay.FULL_REFUND, vnpay.PARTIAL_REFUND) or amount > txn.amount_vnd or (
                    kind == vnpay.FULL_REFUND and amount != txn.amount_vnd) or not body.get("vnp_CreateBy"):
                return self._answer(merchant, command, "03", txn, ref, kind)
            if txn.status != "00":
                return self._answer(merchant, command, "95", txn, ref, kind)
            if txn.refunded:
                return self._answer(merchant, command, "94", txn, ref, kind)
            txn.refunded = True
            return self._answer(merchant, command, "00", txn, ref, kind, status="05")  # VNPAY processes it

    # -------------------------------------------------------------------------- HTTP

    def router(self) -> APIRouter:
        router = APIRouter(prefix=PREFIX, include_in_schema=False)

        @router.get("/paymentv2/vpcpay.html")
        def pay_page(request: Request) -> Response:
            items = request.query_params.multi_items()
            params = dict(items)
            try:
                if len(params) != len(items):
                    raise VnpayError("Tham số bị lặp (mã lỗi 03).", "query")
                token, txn = self.open_payment(self.merchant_of(request), params)
            except VnpayError as exc:
                return HTMLResponse(_page("Không thực hiện được giao dịch", f"<p>{html.escape(str(exc))}</p>"),
                                    status_code=400)
            english = params.get("vnp_Locale") == "en"
            return HTMLResponse(_pay_page(token, txn, english))

        @router.post("/paymentv2/complete")
        async def complete(request: Request) -> Response:
            body = await request.body()
            try:
                form = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=10))
            except (UnicodeDecodeError, ValueError):
                form = {}
            merchant, ipn_url = self.merchant_of(request), self.ipn_url_of(request)
            try:
                txn, result = self.complete(merchant, form.get("token", ""), form.get("decision") == "pay")
            except VnpayError as exc:
                return HTMLResponse(_page("Không thực hiện được giao dịch", f"<p>{html.escape(str(exc))}</p>"),
                                    status_code=400)
            await run_in_threadpool(self.send_ipn, txn, ipn_url, result)  # server to server, before the browser
            separator = "&" if "?" in txn.return_url else "?"
            return RedirectResponse(txn.return_url + separator + vnpay.signed_query(result, merchant.hash_secret),
                                    status_code=303)

        @router.post("/merchant_webapi/api/transaction")
        async def transaction(request: Request) -> Response:
            try:
                body = json.loads(await request.body())
            except (ValueError, UnicodeDecodeError):
                body = None
            return JSONResponse(self.transaction_api(self.merchant_of(request), body))

        return router


def _page(title: str, body: str) -> str:
    return (f'<!doctype html><html lang="vi"><head><meta charset="utf-8"><title>{html.escape(title)}</title></head>'
            f'<body><h1>{html.escape(title)}</h1>{body}'
            '<p><small>Cổng thanh toán thử nghiệm (giao thức VNPAY 2.1.0), không phải VNPAY.</small></p></body></html>')


def _pay_page(token: str, txn: Transaction, english: bool) -> str:
    amount = f"{txn.amount_vnd:,}".replace(",", ".")
    pay, cancel = ("Pay", "Cancel") if english else ("Thanh toán", "Hủy")
    body = (f"<dl><dt>{'Order' if english else 'Nội dung'}</dt><dd>{html.escape(txn.order_info)}</dd>"
            f"<dt>{'Amount' if english else 'Số tiền'}</dt><dd>{amount} ₫</dd>"
            f"<dt>{'Transaction' if english else 'Mã giao dịch'}</dt><dd>{html.escape(txn.txn_ref)}</dd></dl>"
            f'<form method="post" action="{PREFIX}/paymentv2/complete">'
            f'<input type="hidden" name="token" value="{html.escape(token)}">'
            f'<button type="submit" name="decision" value="pay">{pay}</button> '
            f'<button type="submit" name="decision" value="cancel">{cancel}</button></form>')
    return _page("Payment" if english else "Thanh toán trực tuyến", body)
