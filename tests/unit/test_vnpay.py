"""VNPAY's protocol (fees.vnpay): signature vectors computed here from the documented algorithm
(hmac + urllib, not the module), a published vector, tampering, ordering, encoding, checksums."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import random
from urllib.parse import parse_qsl, quote_plus, urlsplit

import pytest

from dinhdanh.fees import vnpay
from dinhdanh.fees.payments import plain_order_info
from dinhdanh.fees.vnpay import Merchant, VnpayError

SECRET = "K7FZ34WQ69Z060J60IGJTWH4H4UK4JQB"
MERCHANT = Merchant("DEMOV210", SECRET, "https://sandbox.vnpayment.vn/paymentv2/vpcpay.html")
CREATED = dt.datetime(2026, 3, 2, 1, 30, 5, tzinfo=dt.UTC)  # 08:30:05 in Hà Nội


def reference_hash(params: dict[str, str], secret: str) -> tuple[str, str]:
    """VNPAY's documented algorithm, written out: sort by name, quote_plus, '&', HMAC-SHA512 hex."""
    keys = sorted(k for k in params if k.startswith("vnp_") and k not in ("vnp_SecureHash", "vnp_SecureHashType"))
    data = "&".join(quote_plus(k) + "=" + quote_plus(params[k]) for k in keys)
    return data, hmac.new(secret.encode(), data.encode(), hashlib.sha512).hexdigest()


def order(**kw):
    base = dict(txn_ref="A1B2C3D4E5", amount_vnd=14_000, order_info="Thanh toan le phi ho so H01", locale="vn",
                return_url="https://dichvucong.example/api/v1/payments/vnpay/return", ip_addr="203.113.1.7",
                created=CREATED, expires=CREATED + dt.timedelta(minutes=15))
    base.update(kw)
    return base


def test_published_vector_from_a_public_integration():
    # lehuygiang28/vnpay, test/verify-ipn-call.test.ts: an IPN signed with the secret "test_secret"
    params = {"vnp_Amount": "1000000", "vnp_BankCode": "NCB", "vnp_BankTranNo": "VNP14422574", "vnp_CardType": "ATM",
              "vnp_OrderInfo": "Thanh toan don hang 2024-05-21T02:17:31.249Z", "vnp_PayDate": "20240521091806",
              "vnp_ResponseCode": "00", "vnp_TmnCode": "TEST_TMN_CODE", "vnp_TransactionNo": "14422574",
              "vnp_TransactionStatus": "00", "vnp_TxnRef": "1716257871703",
              "vnp_SecureHash": "649982421beb422556a1374713c74e58e716ecbd05007c0c0e1f7effdfaf361dbf146889ca446139afe1"
                                "1b9954c4d5c486e99e3b86fcfab6957f29eb0be72895"}
    assert vnpay.is_authentic(params, "test_secret")
    failed = {**params, "vnp_ResponseCode": "99",
              "vnp_SecureHash": "503194f6d93b57b357b2d1d09742565e67e86d771352c5dca4fc8d39df3d392c6b3809add9405f97cfb"
                                "9631f445e36c80656cfbf47eac67d97fa165865c13e1b"}
    assert vnpay.is_authentic(failed, "test_secret")
    assert not vnpay.is_authentic({**params, "vnp_ResponseCode": "99"}, "test_secret")
    assert not vnpay.is_authentic(params, "another_secret")
    assert vnpay.payment_result(params).amount_vnd == 10_000


def test_payment_url_matches_the_documented_algorithm():
    url = vnpay.payment_url(MERCHANT, **order())
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == MERCHANT.pay_url
    params = dict(parse_qsl(parts.query, keep_blank_values=True))
    assert params == {
        "vnp_Version": "2.1.0", "vnp_Command": "pay", "vnp_TmnCode": "DEMOV210", "vnp_Amount": "1400000",
        "vnp_CurrCode": "VND", "vnp_TxnRef": "A1B2C3D4E5", "vnp_OrderInfo": "Thanh toan le phi ho so H01",
        "vnp_OrderType": "other", "vnp_Locale": "vn",
        "vnp_ReturnUrl": "https://dichvucong.example/api/v1/payments/vnpay/return", "vnp_IpAddr": "203.113.1.7",
        "vnp_CreateDate": "20260302083005", "vnp_ExpireDate": "20260302084505",
        "vnp_SecureHash": params["vnp_SecureHash"],
    }
    data, expected = reference_hash(params, SECRET)
    assert params["vnp_SecureHash"] == expected
    assert parts.query == f"{data}&vnp_SecureHash={expected}"  # what is signed is what is sent
    assert "vnp_ReturnUrl=https%3A%2F%2Fdichvucong.example%2Fapi%2Fv1%2Fpayments%2Fvnpay%2Freturn" in parts.query
    assert "vnp_OrderInfo=Thanh+toan+le+phi+ho+so+H01" in parts.query
    assert vnpay.is_authentic(params, SECRET)


def test_bank_code_is_optional_and_signed_when_given():
    without = dict(parse_qsl(urlsplit(vnpay.payment_url(MERCHANT, **order())).query))
    with_bank = dict(parse_qsl(urlsplit(vnpay.payment_url(MERCHANT, **order(bank_code="NCB"))).query))
    assert "vnp_BankCode" not in without and with_bank["vnp_BankCode"] == "NCB"
    assert with_bank["vnp_SecureHash"] == reference_hash(with_bank, SECRET)[1]


def test_vietnamese_order_info_with_diacritics_and_spaces():
    info = "Lệ phí cấp thẻ Căn cước — hồ sơ số 12 (Đà Nẵng) & phí 50%"
    url = vnpay.payment_url(MERCHANT, **order(order_info=info))
    query = urlsplit(url).query
    # UTF-8 percent-encoded, a space as '+', reserved characters escaped: quote_plus, byte for byte
    assert "vnp_OrderInfo=L%E1%BB%87+ph%C3%AD+c%E1%BA%A5p+th%E1%BA%BB+C%C4%83n+c%C6%B0%E1%BB%9Bc+%E2%80%94+h%E1%BB%93" \
           "+s%C6%A1+s%E1%BB%91+12+%28%C4%90%C3%A0+N%E1%BA%B5ng%29+%26+ph%C3%AD+50%25" in query
    params = dict(parse_qsl(query, keep_blank_values=True))
    assert params["vnp_OrderInfo"] == info
    assert params["vnp_SecureHash"] == reference_hash(params, SECRET)[1]
    assert vnpay.is_authentic(params, SECRET)
    # the same text in another Unicode form is another text: the signature is over the bytes
    import unicodedata
    assert not vnpay.is_authentic({**params, "vnp_OrderInfo": unicodedata.normalize("NFD", info)}, SECRET)


def signed_result(**changes) -> dict[str, str]:
    params = {"vnp_Amount": "1400000", "vnp_BankCode": "NCB", "vnp_BankTranNo": "VNP14422574", "vnp_CardType": "ATM",
              "vnp_OrderInfo": "Thanh toan le phi ho so H01", "vnp_PayDate": "20260302083500",
              "vnp_ResponseCode": "00", "vnp_TmnCode": "DEMOV210", "vnp_TransactionNo": "14422574",
              "vnp_TransactionStatus": "00", "vnp_TxnRef": "A1B2C3D4E5"}
    params.update(changes)
    params["vnp_SecureHash"] = reference_hash(params, SECRET)[1]
    return params


def test_any_vnp_parameter_tampered_is_invalid():
    params = signed_result()
    assert vnpay.is_authentic(params, SECRET)
    for name in params:
        if name == "vnp_SecureHash":
            continue
        changed = {**params, name: params[name] + "0"}
        assert not vnpay.is_authentic(changed, SECRET), name
        removed = {k: v for k, v in params.items() if k != name}
        assert not vnpay.is_authentic(removed, SECRET), name
    assert not vnpay.is_authentic({**params, "vnp_Extra": "1"}, SECRET)
    assert not vnpay.is_authentic({**params, "vnp_Amount": "1400000 "}, SECRET)
    flipped = params["vnp_SecureHash"][:-1] + ("0" if params["vnp_SecureHash"][-1] != "0" else "1")
    assert not vnpay.is_authentic({**params, "vnp_SecureHash": flipped}, SECRET)
    assert not vnpay.is_authentic({k: v for k, v in params.items() if k != "vnp_SecureHash"}, SECRET)
    assert not vnpay.is_authentic({**params, "vnp_SecureHash": "00" * 64}, SECRET)
    # what VNPAY does not hash: other parameters, the hash type; the hex may come in capitals
    assert vnpay.is_authentic({**params, "utm_source": "x", "vnp_SecureHashType": "HmacSHA512"}, SECRET)
    assert vnpay.is_authentic({**params, "vnp_SecureHash": params["vnp_SecureHash"].upper()}, SECRET)


def test_order_of_parameters_does_not_matter():
    params = signed_result()
    items = list(params.items())
    for seed in range(5):
        random.Random(seed).shuffle(items)
        shuffled = dict(items)
        assert vnpay.sign(shuffled, SECRET) == params["vnp_SecureHash"]
        assert vnpay.is_authentic(shuffled, SECRET)
    # sorted by name, byte order (vnp_BankCode before vnp_BankTranNo before vnp_CardType)
    assert vnpay.hash_data(params).split("&")[:3] == ["vnp_Amount=1400000", "vnp_BankCode=NCB",
                                                      "vnp_BankTranNo=VNP14422574"]


def test_result_read_and_outcomes():
    result = vnpay.payment_result(signed_result())
    assert (result.txn_ref, result.amount_vnd, result.outcome) == ("A1B2C3D4E5", 14_000, "paid")
    assert result.pay_date == dt.datetime(2026, 3, 2, 1, 35, tzinfo=dt.UTC)  # GMT+7 read as UTC
    assert vnpay.outcome_of("24", "02") == "cancelled"
    assert vnpay.outcome_of("51", "02") == "failed"
    assert vnpay.outcome_of("00", "01") == "pending"
    assert vnpay.outcome_of("07", "07") == "pending"
    with pytest.raises(VnpayError) as bad:
        vnpay.payment_result(signed_result(vnp_Amount="1400050"))
    assert bad.value.field == "vnp_Amount"
    with pytest.raises(VnpayError) as bad:
        vnpay.payment_result(signed_result(vnp_PayDate="20261302083500"))
    assert bad.value.field == "vnp_PayDate"


def test_ipn_answers_are_vnpays():
    assert vnpay.ipn_answer("00") == {"RspCode": "00", "Message": "Confirm Success"}
    assert {c: vnpay.ipn_answer(c)["Message"] for c in ("01", "02", "04", "97", "99")} == {
        "01": "Order not found", "02": "Order already confirmed", "04": "Invalid amount", "97": "Invalid signature",
        "99": "Unknown error"}
    assert vnpay.describe(vnpay.RESPONSE_CODES, "24") == "Khách hàng hủy giao dịch"
    assert vnpay.describe(vnpay.RESPONSE_CODES, "24", english=True) == "The customer cancelled the payment"


@pytest.mark.parametrize("kw,field", [
    ({"amount_vnd": 0}, "amount_vnd"), ({"amount_vnd": True}, "amount_vnd"), ({"amount_vnd": 14.5}, "amount_vnd"),
    ({"amount_vnd": 10_000_000_000}, "amount_vnd"), ({"txn_ref": "A-1"}, "vnp_TxnRef"), ({"txn_ref": ""}, "vnp_TxnRef"),
    ({"order_info": ""}, "vnp_OrderInfo"), ({"order_info": "x" * 256}, "vnp_OrderInfo"),
    ({"return_url": "/relative"}, "vnp_ReturnUrl"), ({"return_url": "javascript:alert(1)"}, "vnp_ReturnUrl"),
    ({"ip_addr": "localhost"}, "vnp_IpAddr"), ({"locale": "vi"}, "vnp_Locale"), ({"bank_code": "N"}, "vnp_BankCode"),
    ({"expires": CREATED}, "vnp_ExpireDate"), ({"created": dt.datetime(2026, 3, 2, 8, 0)}, "vnp_CreateDate"),
])
def test_bad_pay_requests_name_the_field(kw, field):
    with pytest.raises(VnpayError) as bad:
        vnpay.payment_url(MERCHANT, **order(**kw))
    assert bad.value.field == field


def test_merchant_checks_and_hides_its_secret():
    assert SECRET not in repr(MERCHANT)
    with pytest.raises(VnpayError):
        Merchant("SHORT", SECRET)
    with pytest.raises(VnpayError):
        Merchant("DEMOV210", "short")


def test_querydr_checksum_is_the_pipe_joined_fields():
    body = vnpay.querydr_request(MERCHANT, request_id="a1b2c3", txn_ref="A1B2C3D4E5", transaction_date="20260302083005",
                                 order_info="Truy van giao dich A1B2C3D4E5", ip_addr="10.0.0.1", created=CREATED)
    data = "|".join(["a1b2c3", "2.1.0", "querydr", "DEMOV210", "A1B2C3D4E5", "20260302083005", "20260302083005",
                     "10.0.0.1", "Truy van giao dich A1B2C3D4E5"])
    assert body["vnp_SecureHash"] == hmac.new(SECRET.encode(), data.encode(), hashlib.sha512).hexdigest()
    assert vnpay.pipe_authentic(body, vnpay.QUERYDR_REQUEST, SECRET)
    assert not vnpay.pipe_authentic({**body, "vnp_TxnRef": "OTHER"}, vnpay.QUERYDR_REQUEST, SECRET)
    with pytest.raises(VnpayError) as bad:
        vnpay.querydr_request(MERCHANT, request_id="a-b", txn_ref="X", transaction_date="20260302083005",
                              order_info="x", ip_addr="10.0.0.1", created=CREATED)
    assert bad.value.field == "vnp_RequestId"


def test_querydr_answer_checksum_and_tampering():
    answer = {"vnp_ResponseId": "r1", "vnp_Command": "querydr", "vnp_ResponseCode": "00",
              "vnp_Message": "QueryDR Success", "vnp_TmnCode": "DEMOV210", "vnp_TxnRef": "A1B2C3D4E5",
              "vnp_Amount": "1400000", "vnp_BankCode": "NCB", "vnp_PayDate": "20260302083500",
              "vnp_TransactionNo": "14422574", "vnp_TransactionType": "01", "vnp_TransactionStatus": "00",
              "vnp_OrderInfo": "Thanh toan", "vnp_PromotionCode": "", "vnp_PromotionAmount": ""}
    data = "r1|querydr|00|QueryDR Success|DEMOV210|A1B2C3D4E5|1400000|NCB|20260302083500|14422574|01|00|Thanh toan||"
    signed = {**answer, "vnp_SecureHash": hmac.new(SECRET.encode(), data.encode(), hashlib.sha512).hexdigest()}
    assert vnpay.pipe_authentic(signed, vnpay.QUERYDR_RESPONSE, SECRET)
    assert vnpay.with_checksum(answer, vnpay.QUERYDR_RESPONSE, SECRET) == signed
    for name in vnpay.QUERYDR_RESPONSE:
        assert not vnpay.pipe_authentic({**signed, name: "x" + str(signed[name])}, vnpay.QUERYDR_RESPONSE, SECRET), name


def test_refund_checksum_fields_and_amount():
    body = vnpay.refund_request(MERCHANT, request_id="r2", txn_ref="A1B2C3D4E5", amount_vnd=14_000,
                                transaction_no="14422574", transaction_date="20260302083005", created_by="cli:officer",
                                created=CREATED, ip_addr="10.0.0.1", order_info="Hoan tra A1B2C3D4E5")
    assert body["vnp_Amount"] == "1400000" and body["vnp_TransactionType"] == "02" and body["vnp_Command"] == "refund"
    data = "r2|2.1.0|refund|DEMOV210|02|A1B2C3D4E5|1400000|14422574|20260302083005|cli:officer|20260302083005|" \
           "10.0.0.1|Hoan tra A1B2C3D4E5"
    assert body["vnp_SecureHash"] == hmac.new(SECRET.encode(), data.encode(), hashlib.sha512).hexdigest()


def test_times_are_gmt7():
    assert vnpay.gmt7(dt.datetime(2025, 12, 31, 17, 0, tzinfo=dt.UTC)) == "20260101000000"
    assert vnpay.parse_gmt7("20260101000000", "x") == dt.datetime(2025, 12, 31, 17, 0, tzinfo=dt.UTC)
    with pytest.raises(VnpayError):
        vnpay.parse_gmt7("2026-01-01", "x")


def test_plain_order_info():
    assert plain_order_info("Thanh toán lệ phí hồ sơ ĐK-01 <script>") == "Thanh toan le phi ho so DK-01 script"
