"""VNPAY's payment gateway protocol, version 2.1.0, as its merchant documentation describes it
(sandbox.vnpayment.vn/apis/docs: "Thanh toán PAY", "Truy vấn và hoàn tiền"). Pure: no storage,
no network; the client is ``fees.gateway``, the payments ``fees.payments``.

- **Pay** (``vnp_Command=pay``): the merchant redirects the browser to the gateway's
  ``paymentv2/vpcpay.html`` with the order in ``vnp_*`` query parameters. The amount is in VND
  times 100 (no separators); dates are ``yyyyMMddHHmmss`` on GMT+7.
- **Secure hash**: the ``vnp_*`` parameters but ``vnp_SecureHash`` and ``vnp_SecureHashType``,
  sorted by name, each ``name=value`` URL-encoded the way VNPAY's own demos do (``quote_plus``:
  a space is ``+``, UTF-8 percent-encoded), joined with ``&``; ``vnp_SecureHash`` is the
  HMAC-SHA512 of that text under the merchant's hash secret, in hex. The query string of the pay
  URL is that same text: what is signed is what is sent.
- **Result** (``vnp_ReturnUrl`` for the browser, the IPN URL server-to-server, both GET): the
  gateway signs its ``vnp_*`` result the same way. Only the IPN counts (the browser may never come
  back, or come back with anything); the merchant answers the IPN with ``{"RspCode", "Message"}``.
- **querydr / refund** (POST JSON to ``merchant_webapi/api/transaction``): the checksum is the
  HMAC-SHA512 of chosen fields joined with ``|`` in a fixed order, both ways.

>>> hash_data({"vnp_OrderInfo": "Lệ phí hồ sơ", "vnp_Amount": "1400000", "vnp_SecureHash": "x"})
'vnp_Amount=1400000&vnp_OrderInfo=L%E1%BB%87+ph%C3%AD+h%E1%BB%93+s%C6%A1'
>>> amount_field(14_000)
'1400000'
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import quote_plus, urlsplit

from dinhdanh.calendar.clock import VIETNAM

VERSION = "2.1.0"
SANDBOX_PAY_URL = "https://sandbox.vnpayment.vn/paymentv2/vpcpay.html"
SANDBOX_API_URL = "https://sandbox.vnpayment.vn/merchant_webapi/api/transaction"
NOT_HASHED = ("vnp_SecureHash", "vnp_SecureHashType")
TIME_FORMAT = "%Y%m%d%H%M%S"
MAX_AMOUNT_VND = 9_999_999_999  # vnp_Amount is Numeric[1,12] once multiplied by 100
LOCALES = ("vn", "en")

_ALNUM = re.compile(r"[A-Za-z0-9]+")
_ORDER_TYPE = re.compile(r"[A-Za-z0-9_]{1,100}")
_STAMP = re.compile(r"\d{14}")


class VnpayError(ValueError):
    """A value the protocol does not allow (ours to send, or the gateway's), naming the field."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Merchant:
    """A merchant's terminal at VNPAY: its code, the shared hash secret and the gateway's URLs."""

    tmn_code: str
    hash_secret: str = field(repr=False)
    pay_url: str = SANDBOX_PAY_URL
    api_url: str = SANDBOX_API_URL

    def __post_init__(self) -> None:
        if not (isinstance(self.tmn_code, str) and len(self.tmn_code) == 8 and _ALNUM.fullmatch(self.tmn_code)):
            raise VnpayError("vnp_TmnCode is 8 letters or digits", "vnp_TmnCode")
        if not isinstance(self.hash_secret, str) or len(self.hash_secret) < 16:
            raise VnpayError("the hash secret must have at least 16 characters", "hash_secret")


# ------------------------------------------------------------------------------ the secure hash


def hash_data(params: Mapping[str, str]) -> str:
    """The text VNPAY hashes: every ``vnp_*`` parameter but the hash itself, sorted by name,
    ``quote_plus``-encoded ``name=value`` pairs joined with ``&`` (empty values included: the
    merchant demos hash every ``vnp_`` parameter they receive)."""
    pairs = sorted((k, v) for k, v in params.items() if k.startswith("vnp_") and k not in NOT_HASHED)
    return "&".join(f"{quote_plus(k)}={quote_plus(str(v))}" for k, v in pairs)


def secure_hash(secret: str, data: str) -> str:
    """HMAC-SHA512 of ``data`` (UTF-8) under ``secret``, lowercase hex."""
    return hmac.new(secret.encode("utf-8"), data.encode("utf-8"), hashlib.sha512).hexdigest()


def sign(params: Mapping[str, str], secret: str) -> str:
    return secure_hash(secret, hash_data(params))


def is_authentic(params: Mapping[str, str], secret: str) -> bool:
    """Whether ``vnp_SecureHash`` is the hash of the other ``vnp_*`` parameters: any parameter
    added, removed or changed makes it false. Compared in constant time (hex, any case)."""
    given = params.get("vnp_SecureHash")
    if not isinstance(given, str) or len(given) != 128:
        return False
    return hmac.compare_digest(given.lower().encode("ascii", "replace"), sign(params, secret).encode("ascii"))


def signed_query(params: Mapping[str, str], secret: str) -> str:
    """``params`` as the query string the gateway and the merchant send: the hashed text itself,
    then ``vnp_SecureHash``."""
    data = hash_data(params)
    return f"{data}&vnp_SecureHash={secure_hash(secret, data)}"


# ------------------------------------------------------------------------------ pay


def gmt7(moment: dt.datetime, name: str = "moment") -> str:
    """An aware instant as VNPAY writes it: ``yyyyMMddHHmmss`` on GMT+7."""
    if not isinstance(moment, dt.datetime) or moment.tzinfo is None:
        raise VnpayError(f"{name}: an aware datetime is needed (VNPAY's times are instants on GMT+7)", name)
    return moment.astimezone(VIETNAM).strftime(TIME_FORMAT)


def parse_gmt7(text: str, name: str) -> dt.datetime:
    """``yyyyMMddHHmmss`` on GMT+7 as an aware UTC instant."""
    if not isinstance(text, str) or not _STAMP.fullmatch(text):
        raise VnpayError(f"{name} is yyyyMMddHHmmss (14 digits, GMT+7)", name)
    try:
        local = dt.datetime.strptime(text, TIME_FORMAT)
    except ValueError:
        raise VnpayError(f"{name} is not a real date and time", name) from None
    return local.replace(tzinfo=VIETNAM).astimezone(dt.UTC)


def amount_field(amount_vnd: int) -> str:
    """``vnp_Amount``: whole VND times 100 (VNPAY's way of sending no decimal point)."""
    if isinstance(amount_vnd, bool) or not isinstance(amount_vnd, int) or not 1 <= amount_vnd <= MAX_AMOUNT_VND:
        raise VnpayError(f"the amount is a whole number of VND from 1 to {MAX_AMOUNT_VND}", "amount_vnd")
    return str(amount_vnd * 100)


def amount_of(text: object, name: str = "vnp_Amount") -> int:
    """VND from a ``vnp_Amount`` (a number or its digits; a multiple of 100)."""
    raw = str(text) if isinstance(text, int) and not isinstance(text, bool) else text
    if not isinstance(raw, str) or not raw.isascii() or not raw.isdigit() or len(raw) > 12:
        raise VnpayError(f"{name} is up to 12 digits", name)
    value = int(raw)
    if value % 100:
        raise VnpayError(f"{name} is VND times 100", name)
    return value // 100


def _check_url(url: str, name: str) -> None:
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or len(url) > 255:
        raise VnpayError(f"{name} is an absolute http(s) URL of at most 255 characters", name)


def payment_params(merchant: Merchant, *, txn_ref: str, amount_vnd: int, order_info: str, return_url: str,
                   ip_addr: str, created: dt.datetime, expires: dt.datetime, locale: str = "vn",
                   order_type: str = "other", bank_code: str | None = None) -> dict[str, str]:
    """The ``vnp_*`` parameters of a pay request (no hash yet), each checked against its format."""
    if not isinstance(txn_ref, str) or not 1 <= len(txn_ref) <= 100 or not _ALNUM.fullmatch(txn_ref):
        raise VnpayError("vnp_TxnRef is 1 to 100 letters or digits", "vnp_TxnRef")
    if not isinstance(order_info, str) or not 1 <= len(order_info) <= 255 or not order_info.strip():
        raise VnpayError("vnp_OrderInfo is 1 to 255 characters", "vnp_OrderInfo")
    _check_url(return_url, "vnp_ReturnUrl")
    try:
        ipaddress.ip_address(ip_addr)
    except (ValueError, TypeError):
        raise VnpayError("vnp_IpAddr is the customer's IP address", "vnp_IpAddr") from None
    if locale not in LOCALES:
        raise VnpayError("vnp_Locale is vn or en", "vnp_Locale")
    if not isinstance(order_type, str) or not _ORDER_TYPE.fullmatch(order_type):
        raise VnpayError("vnp_OrderType is a category code (letters, digits, _)", "vnp_OrderType")
    if bank_code and not (isinstance(bank_code, str) and 3 <= len(bank_code) <= 20 and _ALNUM.fullmatch(bank_code)):
        raise VnpayError("vnp_BankCode is 3 to 20 letters or digits", "vnp_BankCode")
    create_date, expire_date = gmt7(created, "vnp_CreateDate"), gmt7(expires, "vnp_ExpireDate")
    if expires <= created:
        raise VnpayError("vnp_ExpireDate must be after vnp_CreateDate", "vnp_ExpireDate")
    params = {
        "vnp_Version": VERSION, "vnp_Command": "pay", "vnp_TmnCode": merchant.tmn_code,
        "vnp_Amount": amount_field(amount_vnd), "vnp_CurrCode": "VND", "vnp_TxnRef": txn_ref,
        "vnp_OrderInfo": order_info, "vnp_OrderType": order_type, "vnp_Locale": locale,
        "vnp_ReturnUrl": return_url, "vnp_IpAddr": ip_addr,
        "vnp_CreateDate": create_date, "vnp_ExpireDate": expire_date,
    }
    if bank_code:
        params["vnp_BankCode"] = bank_code
    return params


def payment_url(merchant: Merchant, **order) -> str:
    """The URL to send the customer's browser to (``payment_params`` plus ``vnp_SecureHash``)."""
    return f"{merchant.pay_url}?{signed_query(payment_params(merchant, **order), merchant.hash_secret)}"


# ------------------------------------------------------------------------------ the result


# vnp_ResponseCode of a payment (VNPAY's "Bảng mã lỗi"): Vietnamese, English.
RESPONSE_CODES = {
    "00": ("Giao dịch thành công", "Transaction successful"),
    "07": ("Trừ tiền thành công, giao dịch bị nghi ngờ (liên quan tới lừa đảo, giao dịch bất thường)",
           "Amount deducted; the transaction is suspected of fraud"),
    "09": ("Thẻ/Tài khoản chưa đăng ký dịch vụ InternetBanking", "Card or account not registered for internet banking"),
    "10": ("Xác thực thông tin thẻ/tài khoản không đúng quá 3 lần", "Card or account details wrong more than 3 times"),
    "11": ("Đã hết hạn chờ thanh toán", "The payment window expired"),
    "12": ("Thẻ/Tài khoản bị khóa", "Card or account locked"),
    "13": ("Nhập sai mật khẩu xác thực giao dịch (OTP)", "Wrong one-time password"),
    "24": ("Khách hàng hủy giao dịch", "The customer cancelled the payment"),
    "51": ("Tài khoản không đủ số dư", "Insufficient balance"),
    "65": ("Tài khoản đã vượt quá hạn mức giao dịch trong ngày", "Daily limit exceeded"),
    "75": ("Ngân hàng thanh toán đang bảo trì", "The bank is under maintenance"),
    "79": ("Nhập sai mật khẩu thanh toán quá số lần quy định", "Payment password wrong too many times"),
    "99": ("Các lỗi khác", "Other error"),
}
# vnp_TransactionStatus: the transaction's state at VNPAY.
TRANSACTION_STATUSES = {
    "00": ("Giao dịch thanh toán thành công", "Payment successful"),
    "01": ("Giao dịch chưa hoàn tất", "Not completed"),
    "02": ("Giao dịch bị lỗi", "Failed"),
    "04": ("Giao dịch đảo (khách hàng đã bị trừ tiền tại ngân hàng nhưng giao dịch chưa thành công ở VNPAY)",
           "Reversed (debited at the bank, not successful at VNPAY)"),
    "05": ("VNPAY đang xử lý giao dịch này (hoàn tiền)", "VNPAY is processing the refund"),
    "06": ("VNPAY đã gửi yêu cầu hoàn tiền sang ngân hàng", "VNPAY sent the refund to the bank"),
    "07": ("Giao dịch bị nghi ngờ gian lận", "Suspected of fraud"),
    "09": ("Giao dịch hoàn trả bị từ chối", "Refund refused"),
}
# The merchant's answer to an IPN (RspCode, Message), as VNPAY's merchant demos word it.
IPN_MESSAGES = {
    "00": "Confirm Success",
    "01": "Order not found",
    "02": "Order already confirmed",
    "04": "Invalid amount",
    "97": "Invalid signature",
    "99": "Unknown error",
}
# vnp_ResponseCode of the querydr and refund APIs.
QUERYDR_CODES = {
    "00": ("Yêu cầu thành công", "Request successful"),
    "02": ("Mã định danh kết nối không hợp lệ (kiểm tra lại TmnCode)", "Invalid terminal (check TmnCode)"),
    "03": ("Dữ liệu gửi sang không đúng định dạng", "Malformed request"),
    "91": ("Không tìm thấy giao dịch yêu cầu", "Transaction not found"),
    "94": ("Yêu cầu bị trùng lặp trong thời gian giới hạn của API", "Duplicate request"),
    "97": ("Checksum không hợp lệ", "Invalid checksum"),
    "99": ("Các lỗi khác", "Other error"),
}
REFUND_CODES = {
    "00": ("Yêu cầu thành công", "Request successful"),
    "02": ("Mã định danh kết nối không hợp lệ (kiểm tra lại TmnCode)", "Invalid terminal (check TmnCode)"),
    "03": ("Dữ liệu gửi sang không đúng định dạng", "Malformed request"),
    "91": ("Không tìm thấy giao dịch yêu cầu hoàn trả", "Transaction to refund not found"),
    "94": ("Giao dịch đã được gửi yêu cầu hoàn tiền trước đó, VNPAY đang xử lý",
           "A refund of this transaction was already requested; VNPAY is processing it"),
    "95": ("Giao dịch này không thành công bên VNPAY, VNPAY từ chối xử lý yêu cầu",
           "The transaction did not succeed at VNPAY; the refund is refused"),
    "97": ("Checksum không hợp lệ", "Invalid checksum"),
    "99": ("Các lỗi khác", "Other error"),
}


def describe(table: Mapping[str, tuple[str, str]], code: str, *, english: bool = False) -> str:
    vi, en = table.get(code, ("Mã không xác định", "Unknown code"))
    return en if english else vi


def ipn_answer(code: str) -> dict[str, str]:
    """The JSON the merchant answers an IPN with."""
    return {"RspCode": code, "Message": IPN_MESSAGES[code]}


@dataclass(frozen=True)
class PaymentResult:
    """The gateway's result of a payment, from an IPN or a return (signature checked apart)."""

    tmn_code: str
    txn_ref: str
    amount_vnd: int
    response_code: str
    transaction_status: str
    transaction_no: str | None
    bank_code: str | None
    bank_tran_no: str | None
    card_type: str | None
    pay_date: dt.datetime | None
    order_info: str | None

    @property
    def outcome(self) -> str:
        """What it means for the payment: ``paid`` (both codes 00), ``cancelled`` (24), ``pending``
        (not final at VNPAY: not completed, or debited but held as suspicious; the transaction
        query settles it later), ``failed`` otherwise."""
        return outcome_of(self.response_code, self.transaction_status)


def outcome_of(response_code: str, transaction_status: str) -> str:
    if response_code == "00" and transaction_status == "00":
        return "paid"
    if response_code == "24":
        return "cancelled"
    if response_code == "07" or transaction_status in ("01", "07"):
        return "pending"
    return "failed"


def _code(params: Mapping[str, str], name: str, *, required: bool = True) -> str:
    value = params.get(name)
    if value in (None, "") and not required:
        return ""
    if not isinstance(value, str) or not re.fullmatch(r"\d{2}", value):
        raise VnpayError(f"{name} is a two-digit code", name)
    return value


def _optional(params: Mapping[str, str], name: str, limit: int) -> str | None:
    value = params.get(name)
    if value in (None, ""):
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise VnpayError(f"{name} is at most {limit} characters", name)
    return value


def payment_result(params: Mapping[str, str]) -> PaymentResult:
    """The result parameters read and checked (each malformed one named)."""
    tmn = params.get("vnp_TmnCode")
    if not isinstance(tmn, str) or not tmn:
        raise VnpayError("vnp_TmnCode is missing", "vnp_TmnCode")
    ref = params.get("vnp_TxnRef")
    if not isinstance(ref, str) or not 1 <= len(ref) <= 100:
        raise VnpayError("vnp_TxnRef is 1 to 100 characters", "vnp_TxnRef")
    pay_date = params.get("vnp_PayDate")
    return PaymentResult(
        tmn_code=tmn, txn_ref=ref, amount_vnd=amount_of(params.get("vnp_Amount")),
        response_code=_code(params, "vnp_ResponseCode"),
        transaction_status=_code(params, "vnp_TransactionStatus", required=False),
        transaction_no=_optional(params, "vnp_TransactionNo", 20), bank_code=_optional(params, "vnp_BankCode", 20),
        bank_tran_no=_optional(params, "vnp_BankTranNo", 255), card_type=_optional(params, "vnp_CardType", 20),
        pay_date=parse_gmt7(pay_date, "vnp_PayDate") if pay_date else None,
        order_info=_optional(params, "vnp_OrderInfo", 255),
    )


# ------------------------------------------------------------------------------ querydr and refund


QUERYDR_REQUEST = ("vnp_RequestId", "vnp_Version", "vnp_Command", "vnp_TmnCode", "vnp_TxnRef",
                   "vnp_TransactionDate", "vnp_CreateDate", "vnp_IpAddr", "vnp_OrderInfo")
QUERYDR_RESPONSE = ("vnp_ResponseId", "vnp_Command", "vnp_ResponseCode", "vnp_Message", "vnp_TmnCode", "vnp_TxnRef",
                    "vnp_Amount", "vnp_BankCode", "vnp_PayDate", "vnp_TransactionNo", "vnp_TransactionType",
                    "vnp_TransactionStatus", "vnp_OrderInfo", "vnp_PromotionCode", "vnp_PromotionAmount")
REFUND_REQUEST = ("vnp_RequestId", "vnp_Version", "vnp_Command", "vnp_TmnCode", "vnp_TransactionType", "vnp_TxnRef",
                  "vnp_Amount", "vnp_TransactionNo", "vnp_TransactionDate", "vnp_CreateBy", "vnp_CreateDate",
                  "vnp_IpAddr", "vnp_OrderInfo")
REFUND_RESPONSE = ("vnp_ResponseId", "vnp_Command", "vnp_ResponseCode", "vnp_Message", "vnp_TmnCode", "vnp_TxnRef",
                   "vnp_Amount", "vnp_BankCode", "vnp_PayDate", "vnp_TransactionNo", "vnp_TransactionType",
                   "vnp_TransactionStatus", "vnp_OrderInfo")
CHECKSUM_FIELDS = {("querydr", "request"): QUERYDR_REQUEST, ("querydr", "response"): QUERYDR_RESPONSE,
                   ("refund", "request"): REFUND_REQUEST, ("refund", "response"): REFUND_RESPONSE}
FULL_REFUND, PARTIAL_REFUND = "02", "03"  # vnp_TransactionType of a refund


def pipe_data(body: Mapping[str, object], fields: tuple[str, ...]) -> str:
    """The checksum text of the transaction API: the ``fields``' values in that order joined with
    ``|``, an absent one as the empty string."""
    return "|".join("" if body.get(name) is None else str(body[name]) for name in fields)


def pipe_authentic(body: Mapping[str, object], fields: tuple[str, ...], secret: str) -> bool:
    given = body.get("vnp_SecureHash")
    if not isinstance(given, str) or len(given) != 128:
        return False
    expected = secure_hash(secret, pipe_data(body, fields))
    return hmac.compare_digest(given.lower().encode("ascii", "replace"), expected.encode("ascii"))


def with_checksum(body: dict[str, object], fields: tuple[str, ...], secret: str) -> dict[str, object]:
    """``body`` with its ``vnp_SecureHash`` (either side of the transaction API)."""
    return {**body, "vnp_SecureHash": secure_hash(secret, pipe_data(body, fields))}


def _request_id(request_id: str) -> str:
    if not isinstance(request_id, str) or not 1 <= len(request_id) <= 32 or not _ALNUM.fullmatch(request_id):
        raise VnpayError("vnp_RequestId is 1 to 32 letters or digits, unique within the day", "vnp_RequestId")
    return request_id


def querydr_request(merchant: Merchant, *, request_id: str, txn_ref: str, transaction_date: str, order_info: str,
                    ip_addr: str, created: dt.datetime, transaction_no: str | None = None) -> dict[str, object]:
    """The body of a transaction query; ``transaction_date`` is the pay request's ``vnp_CreateDate``."""
    parse_gmt7(transaction_date, "vnp_TransactionDate")
    body: dict[str, object] = {
        "vnp_RequestId": _request_id(request_id), "vnp_Version": VERSION, "vnp_Command": "querydr",
        "vnp_TmnCode": merchant.tmn_code, "vnp_TxnRef": txn_ref, "vnp_OrderInfo": order_info,
        "vnp_TransactionDate": transaction_date, "vnp_CreateDate": gmt7(created), "vnp_IpAddr": ip_addr,
    }
    if transaction_no:
        body["vnp_TransactionNo"] = transaction_no
    return with_checksum(body, QUERYDR_REQUEST, merchant.hash_secret)


def refund_request(merchant: Merchant, *, request_id: str, txn_ref: str, amount_vnd: int, transaction_no: str | None,
                   transaction_date: str, created_by: str, created: dt.datetime, ip_addr: str, order_info: str,
                   transaction_type: str = FULL_REFUND) -> dict[str, object]:
    """The body of a refund (02 the whole amount, 03 part of it)."""
    parse_gmt7(transaction_date, "vnp_TransactionDate")
    if transaction_type not in (FULL_REFUND, PARTIAL_REFUND):
        raise VnpayError("vnp_TransactionType is 02 (full) or 03 (partial)", "vnp_TransactionType")
    if not created_by or len(created_by) > 250:
        raise VnpayError("vnp_CreateBy names who asks for the refund", "vnp_CreateBy")
    body: dict[str, object] = {
        "vnp_RequestId": _request_id(request_id), "vnp_Version": VERSION, "vnp_Command": "refund",
        "vnp_TmnCode": merchant.tmn_code, "vnp_TransactionType": transaction_type, "vnp_TxnRef": txn_ref,
        "vnp_Amount": amount_field(amount_vnd), "vnp_OrderInfo": order_info,
        "vnp_TransactionNo": transaction_no or "0", "vnp_TransactionDate": transaction_date,
        "vnp_CreateBy": created_by, "vnp_CreateDate": gmt7(created), "vnp_IpAddr": ip_addr,
    }
    return with_checksum(body, REFUND_REQUEST, merchant.hash_secret)
