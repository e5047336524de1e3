"""Dossiers over HTTP on SQLite and PostgreSQL: a citizen logs in through our provider (scope
``dinhdanh.dossiers``), files a temporary residence registration in Bến Thành; the commune's dossier
officer receives it, asks for a supplement, approves it; the signed result checks as genuine.
Refusals: another citizen's dossier and another commune's officer (404, absent from the worklist),
an officer without the permission (403 ``permission_denied``), a refusal without a reason (422
``reason``), an invalid transition (409 naming the state), bad bodies (422 naming the field)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from dinhdanh.audit.tables import access_log
from dinhdanh.officers.service import add_officer
from dinhdanh.web.app import create_app
from tests.e2e.test_oidc_flow import ISSUER, RP_SCOPES, Op
from tests.oidc_support import BINH, HOA, add_client, load_people

DOSSIERS = "/api/v1/dossiers"
SCOPE = "openid dinhdanh.dossiers"


def form(pid=BINH) -> dict:
    return {"applicant": {"pid": pid, "full_name": "Trần Thị Bình", "date_of_birth": "1987-05-06"},
            "registration": "individual",
            "stay_address": {"province_code": "79", "commune_code": "26743", "street": "12 Lê Lợi"},
            "from": "2026-12-10", "until": "2027-12-10", "basis": "rented", "fee_exemption_ground": "disability"}


@pytest.fixture
def op(engine, tmp_path) -> Op:
    people = load_people(engine, tmp_path)
    rp = add_client(engine, scopes=RP_SCOPES + " dinhdanh.dossiers")
    http = TestClient(create_app(engine), base_url=ISSUER, follow_redirects=False)
    return Op(engine, people, rp, http)


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def error_of(response, status: int, code: str, field: str | None = None) -> dict:
    assert response.status_code == status, response.text
    body = response.json()["error"]
    assert body["code"] == code, body
    if field is not None:
        assert body["field"] == field, body
    return body


def test_filed_received_supplemented_approved_and_refusals(op):
    http = op.http
    with op.engine.begin() as conn:
        _, ben_thanh = add_officer(conn, "Cán bộ Công an phường Bến Thành", "commune", "26743",
                                   roles=["dossier_officer"])
        _, hoan_kiem = add_officer(conn, "Cán bộ Công an phường Hoàn Kiếm", "commune", "00070",
                                   roles=["dossier_officer"])
        _, registrar = add_officer(conn, "Cán bộ hộ tịch", "national", None, roles=["registrar"])
    officer, elsewhere, no_role = bearer(ben_thanh), bearer(hoan_kiem), bearer(registrar)
    binh = bearer(op.tokens(scope=SCOPE, who=BINH)["access_token"])
    hoa = bearer(op.tokens(scope=SCOPE, who=HOA)["access_token"])
    me_only = bearer(op.tokens(scope="openid dinhdanh.me", who=BINH)["access_token"])

    # filing
    assert http.post(DOSSIERS, json={"service": "1.004194", "data": form()}).status_code == 401
    assert http.post(DOSSIERS, json={"service": "1.004194", "data": form()}, headers=me_only).status_code == 403
    error_of(http.post(DOSSIERS, json={"service": 1004194, "data": form()}, headers=binh), 422, "invalid_input",
             "service")
    error_of(http.post(DOSSIERS, json={"service": "1.004194", "data": {**form(), "x": 1}}, headers=binh), 422,
             "invalid_form", "x")
    # every problem of the form is listed (the portal marks each field), in the client's language
    two = {**form(), "x": 1, "basis": "squatting"}
    for language in ("vi", "en"):
        body = error_of(http.post(DOSSIERS, json={"service": "1.004194", "data": two},
                                  headers={**binh, "Accept-Language": language}), 422, "invalid_form")
        fields = {p["field"] for p in body["problems"]}
        assert {"x", "basis"} <= fields, body
        assert all(p["code"] and p["message"] for p in body["problems"]), body
    assert body["problems"] != error_of(http.post(DOSSIERS, json={"service": "1.004194", "data": two},
                                                  headers=binh), 422, "invalid_form")["problems"]
    error_of(http.post(DOSSIERS, json={"service": "1.004194", "data": form(HOA)}, headers=binh), 422,
             "applicant_mismatch", "applicant.pid")
    r = http.post(DOSSIERS, json={"service": "1.004194", "data": form()}, headers=binh)
    assert r.status_code == 201, r.text
    filed = r.json()
    assert set(filed) == {"dossier_id", "code", "status", "due_date", "fee_amount"}
    assert filed["status"] == "submitted" and filed["code"].startswith("G26743-")
    one = f"{DOSSIERS}/{filed['dossier_id']}"
    mine = http.get(DOSSIERS, headers=binh).json()["items"]
    assert [d["code"] for d in mine] == [filed["code"]]
    assert http.get(DOSSIERS, headers=hoa).json()["items"] == []
    error_of(http.get(one, headers=hoa), 404, "dossier_not_found", "dossier_id")

    # officers: area and permission
    error_of(http.get(one, headers=elsewhere), 404, "dossier_not_found")
    assert http.get(DOSSIERS, headers=elsewhere).json()["items"] == []
    error_of(http.get(DOSSIERS, headers=no_role), 403, "permission_denied", "permission")
    error_of(http.post(f"{one}/actions", json={"action": "receive"}, headers=no_role), 403, "permission_denied")
    error_of(http.post(f"{one}/actions", json={"action": "receive"}, headers=elsewhere), 404, "dossier_not_found")
    error_of(http.post(f"{one}/actions", json={"action": "receive"}, headers=binh), 401, "unauthenticated")
    work = http.get(DOSSIERS, params={"status": "submitted", "service": "1.004194"}, headers=officer).json()
    assert [d["code"] for d in work["items"]] == [filed["code"]]
    assert http.get(DOSSIERS, params={"overdue": "true"}, headers=officer).json()["items"] == []
    error_of(http.get(DOSSIERS, params={"limit": 201}, headers=officer), 422, "invalid_input", "limit")
    error_of(http.get(DOSSIERS, params={"status": "lost"}, headers=officer), 422, "invalid_input", "status")

    # the workflow
    body = error_of(http.post(f"{one}/actions", json={"action": "approve"}, headers=officer), 409,
                    "invalid_transition", "action")
    assert body["state"] == "submitted" and "submitted" in body["message"]
    error_of(http.post(f"{one}/actions", json={"action": "fly"}, headers=officer), 422, "invalid_input", "action")
    r = http.post(f"{one}/actions", json={"action": "receive"}, headers=officer)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "received" and [d["kind"] for d in r.json()["documents"]] == ["receipt"]
    error_of(http.post(f"{one}/actions", json={"action": "refuse"}, headers=officer), 422, "reason_required",
             "reason")
    r = http.post(f"{one}/actions", json={"action": "request_supplement", "items": ["Hợp đồng thuê nhà"]},
                  headers=officer)
    assert r.json()["status"] == "supplement_requested", r.text
    error_of(http.post(f"{one}/supplement", json={"data": {"basis": "family"}}, headers=officer), 403, "forbidden")
    error_of(http.post(f"{one}/supplement", json={"data": {"basis": "castle"}}, headers=binh), 422, "invalid_form",
             "basis")
    r = http.post(f"{one}/supplement", json={"data": {"basis": "family"}}, headers=binh)
    assert r.status_code == 200 and r.json()["status"] == "received", r.text
    r = http.post(f"{one}/actions", json={"action": "approve"}, headers=officer)
    assert r.status_code == 200, r.text
    result = r.json()["result_code"]
    assert http.get(f"/api/v1/results/{result}").json()["status"] == "genuine"
    seen = http.get(one, headers=binh).json()
    assert seen["status"] == "approved" and seen["result_code"] == result
    assert [h["to"] for h in seen["history"]] == ["submitted", "received", "supplement_requested", "received",
                                                  "approved"]
    error_of(http.post(f"{one}/withdraw", headers=binh), 409, "invalid_transition", "action")
    assert http.get(one, headers=officer).status_code == 200

    # every officer view is in the access log, for the public-service purpose
    with op.engine.connect() as conn:
        actions = {r.action for r in conn.execute(sa.select(access_log.c.action, access_log.c.purpose)
                                                  .where(access_log.c.purpose == "public_service"))}
    assert {"dossier_list", "dossier_read", "dossier_receive", "dossier_approve"} <= actions


def test_a_citizen_withdraws_before_a_decision(op):
    binh = bearer(op.tokens(scope=SCOPE, who=BINH)["access_token"])
    filed = op.http.post(DOSSIERS, json={"service": "1.004194", "data": form()}, headers=binh).json()
    r = op.http.post(f"{DOSSIERS}/{filed['dossier_id']}/withdraw", json={"reason": "Đổi chỗ ở"}, headers=binh)
    assert r.status_code == 200 and r.json()["status"] == "withdrawn", r.text
    error_of(op.http.get(f"{DOSSIERS}/0", headers=binh), 422, "invalid_input", "dossier_id")
    error_of(op.http.get(f"{DOSSIERS}/999999", headers=binh), 404, "dossier_not_found")


def test_control_characters_in_reasons_and_forms_are_refused_naming_the_field(op):
    """A NUL (which PostgreSQL cannot store: a 500) or another control character in a reason or a
    form's text is a 422 naming the field, and nothing changes; a line break in a reason is text."""
    binh = bearer(op.tokens(scope=SCOPE, who=BINH)["access_token"])
    with op.engine.begin() as conn:
        _, ben_thanh = add_officer(conn, "Cán bộ Công an phường Bến Thành", "commune", "26743",
                                   roles=["dossier_officer"])
    officer = bearer(ben_thanh)
    for bad in ("12 Lê\x00 Lợi", "12 Lê\x1b[31m Lợi"):
        data = {**form(), "stay_address": {**form()["stay_address"], "street": bad}}
        body = error_of(op.http.post(DOSSIERS, json={"service": "1.004194", "data": data}, headers=binh), 422,
                        "invalid_form")
        assert [p["field"] for p in body["problems"]] == ["stay_address.street"], body
    filed = op.http.post(DOSSIERS, json={"service": "1.004194", "data": form()}, headers=binh).json()
    url = f"{DOSSIERS}/{filed['dossier_id']}"
    for bad in ("Đổi\x00 chỗ ở", "Đổi\x07 chỗ ở"):
        error_of(op.http.post(f"{url}/withdraw", json={"reason": bad}, headers=binh), 422, "invalid_input", "reason")
    assert op.http.get(url, headers=binh).json()["status"] == "submitted"
    assert op.http.post(f"{url}/actions", json={"action": "receive"}, headers=officer).status_code == 200
    for bad in ("Giấy tờ\x00", "Giấy\u202e tờ"):  # an officer's supplement request: its items
        error_of(op.http.post(f"{url}/actions", json={"action": "request_supplement", "items": ["Hợp đồng", bad]},
                              headers=officer), 422, "invalid_input", "items")
    assert op.http.get(url, headers=binh).json()["status"] == "received"
    r = op.http.post(f"{url}/withdraw", json={"reason": "Đổi chỗ ở\nsang Hà Nội"}, headers=binh)
    assert r.status_code == 200 and r.json()["status"] == "withdrawn", r.text


def test_the_fee_is_paid_through_the_gateway_before_receipt(op, monkeypatch):
    from dinhdanh.fees import vnpay
    from dinhdanh.fees.gateway import configured_merchant
    from dinhdanh.store.vault import for_database

    monkeypatch.setenv("DINHDANH_PAYMENTS_LOCAL_GATEWAY", "1")
    for name in ("DINHDANH_VNPAY_TMN_CODE", "DINHDANH_VNPAY_HASH_SECRET", "DINHDANH_OIDC_ISSUER"):
        monkeypatch.delenv(name, raising=False)
    http = TestClient(create_app(op.engine), base_url=ISSUER, follow_redirects=False)
    with op.engine.begin() as conn:
        _, token = add_officer(conn, "Cán bộ Công an phường Bến Thành", "commune", "26743", roles=["dossier_officer"])
    officer = bearer(token)
    binh = bearer(op.tokens(scope=SCOPE, who=BINH)["access_token"])
    owed = {k: v for k, v in form().items() if k != "fee_exemption_ground"}
    filed = http.post(DOSSIERS, json={"service": "1.004194", "data": owed}, headers=binh).json()
    assert filed["fee_amount"] == 7000
    one = f"{DOSSIERS}/{filed['dossier_id']}"
    error_of(http.post(f"{one}/actions", json={"action": "receive"}, headers=officer), 409, "fee_unpaid", "fee")
    error_of(http.post(f"{one}/payment", headers=officer), 403, "forbidden")
    r = http.post(f"{one}/payment", headers=binh)
    assert r.status_code == 201, r.text
    started = r.json()
    assert started["amount_vnd"] == 7000 and "vnp_Amount=700000&" in started["pay_url"]
    # the gateway's IPN, signed with the terminal's secret, settles it (server to server)
    merchant = configured_merchant(for_database(op.engine.url.render_as_string(hide_password=False)), ISSUER)
    params = {"vnp_Amount": "700000", "vnp_BankCode": "NCB", "vnp_CardType": "ATM", "vnp_OrderInfo": "Le phi",
              "vnp_PayDate": "20261207083500", "vnp_ResponseCode": "00", "vnp_TmnCode": merchant.tmn_code,
              "vnp_TransactionNo": "14422574", "vnp_TransactionStatus": "00", "vnp_TxnRef": started["txn_ref"]}
    forged = {**params, "vnp_SecureHash": vnpay.sign(params, "not the secret")}
    assert http.get("/api/v1/payments/vnpay/ipn", params=forged).json()["RspCode"] == "97"
    params["vnp_SecureHash"] = vnpay.sign(params, merchant.hash_secret)
    assert http.get("/api/v1/payments/vnpay/ipn", params=params).json()["RspCode"] == "00"
    error_of(http.post(f"{one}/payment", headers=binh), 409, "already_paid")
    r = http.post(f"{one}/actions", json={"action": "receive"}, headers=officer)
    assert r.status_code == 200 and r.json()["status"] == "received", r.text
