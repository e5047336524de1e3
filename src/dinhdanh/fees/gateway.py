"""The payment gateway as the merchant sees it: which terminal (``configured_merchant``) and the
client of its transaction API (``VnpayClient``: querydr and refund, checksums both ways).

``GatewayClient`` is the interface ``payments.reconcile`` and ``payments.refund`` use; a second
gateway would be a second implementation of it and of the pay redirect.
"""

from __future__ import annotations

import logging
import secrets
from typing import Protocol

import httpx

from dinhdanh import config
from dinhdanh.calendar.clock import utcnow
from dinhdanh.fees import vnpay
from dinhdanh.fees.vnpay import Merchant
from dinhdanh.store.vault import Vault

log = logging.getLogger("dinhdanh.fees")

LOCAL_TMN_CODE = "DDLOCAL1"
LOCAL_PAY_PATH = "/_gateway/vnpay/paymentv2/vpcpay.html"
LOCAL_API_PATH = "/_gateway/vnpay/merchant_webapi/api/transaction"
DEFAULT_BASE_URL = "http://127.0.0.1:8000"


class GatewayError(Exception):
    """The gateway did not answer, or not in its protocol (not JSON, no valid checksum)."""


class PaymentsNotConfigured(Exception):
    """No terminal code and hash secret are configured, and the local gateway is off."""


def local_hash_secret(vault: Vault) -> str:
    """The local gateway's hash secret when none is configured: derived from the database's master
    key, so the server and the CLI of one database agree without it being written anywhere."""
    return vault.mac(b"vnpay local gateway hash secret", "fees.local_gateway").hex().upper()[:32]


def configured_merchant(vault: Vault | None, base_url: str | None = None) -> Merchant:
    """The merchant's terminal from ``config`` (``DINHDANH_VNPAY_*``). With the local gateway on,
    what is not configured defaults to the local gateway at ``base_url`` (this server), with the
    terminal ``DDLOCAL1`` and a secret derived from the vault."""
    tmn, secret = config.vnpay_tmn_code(), config.vnpay_hash_secret()
    pay_url, api_url = config.vnpay_url(), config.vnpay_api_url()
    if config.payments_local_gateway():
        base = (base_url or config.oidc_issuer() or DEFAULT_BASE_URL).rstrip("/")
        if secret is None:
            if vault is None:
                raise PaymentsNotConfigured("the local gateway's secret is derived from the vault: none given")
            secret = local_hash_secret(vault)
        return Merchant(tmn or LOCAL_TMN_CODE, secret, pay_url or base + LOCAL_PAY_PATH,
                        api_url or base + LOCAL_API_PATH)
    if not tmn or not secret:
        raise PaymentsNotConfigured("set DINHDANH_VNPAY_TMN_CODE and DINHDANH_VNPAY_HASH_SECRET (or turn on the "
                                    "local gateway for a demo: DINHDANH_PAYMENTS_LOCAL_GATEWAY=1)")
    return Merchant(tmn, secret, pay_url or vnpay.SANDBOX_PAY_URL, api_url or vnpay.SANDBOX_API_URL)


class GatewayClient(Protocol):
    merchant: Merchant

    def querydr(self, *, txn_ref: str, transaction_date: str, order_info: str,
                transaction_no: str | None = None) -> dict: ...

    def refund(self, *, txn_ref: str, amount_vnd: int, transaction_no: str | None, transaction_date: str,
               created_by: str, order_info: str) -> dict: ...


class VnpayClient:
    """VNPAY's transaction API over HTTP (POST JSON). Every answer returned has a valid checksum;
    anything else raises ``GatewayError`` and settles nothing."""

    def __init__(self, merchant: Merchant, http: httpx.Client | None = None, *, timeout: float = 10.0,
                 server_ip: str = "127.0.0.1"):
        self.merchant = merchant
        self.http = http or httpx.Client(timeout=timeout)
        self.server_ip = server_ip  # vnp_IpAddr of the server asking

    def _call(self, body: dict, command: str) -> dict:
        try:
            response = self.http.post(self.merchant.api_url, json=body)
        except httpx.HTTPError as exc:
            raise GatewayError(f"the gateway did not answer ({type(exc).__name__})") from None
        if response.status_code != 200:
            raise GatewayError(f"the gateway answered HTTP {response.status_code}")
        try:
            answer = response.json()
        except ValueError:
            raise GatewayError("the gateway's answer is not JSON") from None
        if not isinstance(answer, dict):
            raise GatewayError("the gateway's answer is not a JSON object")
        fields = vnpay.CHECKSUM_FIELDS[(command, "response")]
        if not vnpay.pipe_authentic(answer, fields, self.merchant.hash_secret):
            log.warning("a %s answer without a valid checksum (code %s)", command,
                        str(answer.get("vnp_ResponseCode"))[:2])
            raise GatewayError(f"the gateway's {command} answer has no valid checksum")
        if answer.get("vnp_TxnRef") not in (None, "", body["vnp_TxnRef"]):
            raise GatewayError(f"the gateway's {command} answer is about another transaction")
        return answer

    def querydr(self, *, txn_ref: str, transaction_date: str, order_info: str,
                transaction_no: str | None = None) -> dict:
        body = vnpay.querydr_request(self.merchant, request_id=secrets.token_hex(16), txn_ref=txn_ref,
                                     transaction_date=transaction_date, order_info=order_info,
                                     ip_addr=self.server_ip, created=utcnow(), transaction_no=transaction_no)
        return self._call(body, "querydr")

    def refund(self, *, txn_ref: str, amount_vnd: int, transaction_no: str | None, transaction_date: str,
               created_by: str, order_info: str) -> dict:
        body = vnpay.refund_request(self.merchant, request_id=secrets.token_hex(16), txn_ref=txn_ref,
                                    amount_vnd=amount_vnd, transaction_no=transaction_no,
                                    transaction_date=transaction_date, created_by=created_by, created=utcnow(),
                                    ip_addr=self.server_ip, order_info=order_info)
        return self._call(body, "refund")
