"""Payments through VNPAY, the merchant's side: the IPN (server to server, what settles a payment)
and the browser's return (shown, never trusted). With ``DINHDANH_PAYMENTS_LOCAL_GATEWAY=1`` the
app also plays the gateway (``fees.local_gateway``) under ``/_gateway/vnpay/``.

The IPN answers VNPAY's protocol, not this API's error shape: always 200 with
``{"RspCode", "Message"}`` (00 confirmed, 01 order not found, 02 already confirmed, 04 invalid
amount, 97 invalid signature, 99 unknown error), as the gateway expects.
"""

from __future__ import annotations

import html

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from dinhdanh import config
from dinhdanh.fees import payments, vnpay
from dinhdanh.fees.gateway import PaymentsNotConfigured, configured_merchant
from dinhdanh.fees.local_gateway import LocalGateway
from dinhdanh.fees.vnpay import Merchant
from dinhdanh.web import errors
from dinhdanh.web.api.cards import vault_of
from dinhdanh.web.deps import Conn, ReadConn

router = APIRouter(prefix="/api/v1/payments", tags=["payments"])
IPN_PATH = "/api/v1/payments/vnpay/ipn"

errors.add_messages(payments.VI)


class NotConfigured(Exception):
    pass


def merchant_of(request: Request) -> Merchant:
    """The merchant's terminal, read from configuration once per app (``fees.gateway``)."""
    from dinhdanh.web.oidc import issuer_of

    state = request.app.state
    merchant = getattr(state, "vnpay_merchant", None)
    if merchant is None:
        try:
            merchant = configured_merchant(vault_of(request), issuer_of(request))
        except PaymentsNotConfigured:
            raise NotConfigured() from None
        state.vnpay_merchant = merchant
    return merchant


def ipn_url_of(request: Request) -> str:
    """Where the local gateway sends IPNs: configured, else this server (its issuer, never the Host header)."""
    from dinhdanh.web.oidc import issuer_of

    return config.vnpay_ipn_url() or issuer_of(request) + IPN_PATH


def _query(request: Request) -> dict[str, str] | None:
    items = request.query_params.multi_items()
    params = dict(items)
    return params if len(params) == len(items) else None  # a repeated parameter: not the gateway's


@router.get("/vnpay/ipn", summary="VNPAY's IPN: the signed result of a payment, server to server")
def vnpay_ipn(request: Request, conn: Conn) -> dict:
    params = _query(request)
    if params is None:
        return vnpay.ipn_answer("97")
    return payments.handle_ipn(conn, merchant_of(request), params)


@router.get("/vnpay/return", summary="The payer's return from VNPAY: the result shown (the IPN is what counts)",
            response_class=HTMLResponse,
            responses={400: {"description": "Not signed by the gateway", "content": {"text/html": {}}}})
def vnpay_return(request: Request, conn: ReadConn) -> Response:
    english = errors._english(request) or request.query_params.get("lang") == "en"
    params = _query(request)
    view = payments.handle_return(merchant_of(request), params or {}) if params is not None else \
        payments.ReturnView(False, None, None, None, None)
    stored = payments.payment_by_txn_ref(conn, view.txn_ref) if view.authentic and view.txn_ref else None
    answer = {"authentic": view.authentic, "txn_ref": view.txn_ref, "gateway_result": view.outcome,
              "response_code": view.response_code, "message": view.message(english),
              "status": stored["status"] if stored else None, "amount_vnd": stored["amount_vnd"] if stored else None}
    if request.query_params.get("format") == "json" or "application/json" in request.headers.get("accept", ""):
        return JSONResponse(answer)
    return HTMLResponse(_return_page(answer, english), status_code=200 if view.authentic else 400)


STATUS_WORDS = {
    "pending": ("đang chờ xác nhận của cổng thanh toán", "waiting for the gateway's confirmation"),
    "paid": ("đã thanh toán", "paid"), "failed": ("không thành công", "failed"),
    "cancelled": ("đã hủy", "cancelled"), "refunded": ("đã hoàn tiền", "refunded"),
    "expired": ("đã hết hạn", "expired"),
}


def _return_page(answer: dict, english: bool) -> str:
    title = "Payment result" if english else "Kết quả thanh toán"
    rows = [answer["message"]]
    if answer["status"]:
        vi, en = STATUS_WORDS[answer["status"]]
        rows.append(f"{'Recorded status' if english else 'Trạng thái đã ghi nhận'}: {en if english else vi}")
        rows.append(f"{'Amount' if english else 'Số tiền'}: {answer['amount_vnd']:,} ₫".replace(",", "."))
    body = "".join(f"<p>{html.escape(r)}</p>" for r in rows)
    return (f'<!doctype html><html lang="{"en" if english else "vi"}"><head><meta charset="utf-8">'
            f"<title>{title}</title></head><body><h1>{title}</h1>{body}</body></html>")


def install(app: FastAPI) -> None:
    """The merchant's routes when a terminal is configured (or the local gateway is on: demo, tests);
    none otherwise, so nothing answers for a gateway this server does not use."""
    local = config.payments_local_gateway()
    if not local and not (config.vnpay_tmn_code() and config.vnpay_hash_secret()):
        return
    app.include_router(router)

    @app.exception_handler(NotConfigured)
    async def not_configured(request: Request, exc: NotConfigured):
        return errors.error_body(503, "payments_not_configured", errors.message_for(
            request, "payments_not_configured", None, "No payment gateway is configured."))

    if local:
        gateway = LocalGateway(merchant_of, ipn_url_of)
        app.state.local_gateway = gateway
        app.include_router(gateway.router())
