"""The lockout does not tell who has an account, on SQLite and PostgreSQL: through ten wrong
passcodes an unknown username and a known one (locked after the fifth) get the same status, body and
headers at the app's login (``POST /api/v1/eid/sessions``) and the same refusal on the OIDC login
form; the known account is still locked (even its right passcode is refused) and its owner is told
by SMS."""

from __future__ import annotations

import re

import sqlalchemy as sa

from dinhdanh.eid.tables import eid_accounts
from dinhdanh.notify.service import opened
from dinhdanh.store.outbox import outbox
from dinhdanh.store.vault import of_bind
from tests.chips import DUC
from tests.e2e.test_eid_api import api  # noqa: F401  (the fixture)
from tests.e2e.test_oidc_flow import op  # noqa: F401  (the fixture)
from tests.eid_support import PHONES, enroll
from tests.oidc_support import PASSCODE as OIDC_PASSCODE, authorize_url, pkce

UNKNOWN = "001099999999"
PASS = "135790"
VARYING = {"date", "content-length", "x-request-id"}  # content-length is compared through the body; the id is per request


def _answer(r) -> tuple:
    headers = {k.lower(): v for k, v in r.headers.items() if k.lower() not in VARYING}
    return r.status_code, r.json(), headers


def test_app_login_unknown_and_known_accounts_answer_alike_through_ten_failures(api):
    account_id = enroll(api.engine, api.vault, DUC, level=2, passcode=PASS)["account_id"]
    for attempt in range(10):
        for lang in ("vi", "en"):
            headers = {"Accept-Language": lang}
            known = api.post("/api/v1/eid/sessions", {"username": DUC, "passcode": "000000"}, headers)
            unknown = api.post("/api/v1/eid/sessions", {"username": UNKNOWN, "passcode": "000000"}, headers)
            assert _answer(known) == _answer(unknown), (attempt, lang, known.text, unknown.text)
            assert known.status_code == 401 and known.json()["error"]["code"] == "bad_credentials"
            assert "retry-after" not in {k.lower() for k in known.headers}
    with api.engine.connect() as conn:  # yet the known account is locked (twice: 5 min, then 15 min)
        row = conn.execute(sa.select(eid_accounts).where(eid_accounts.c.account_id == account_id)).one()
        assert row.lockouts >= 1 and row.locked_until is not None
        payloads = conn.execute(sa.select(outbox.c.payload).where(outbox.c.topic == "notify.sms")).scalars().all()
    # the right passcode is refused too, the same way
    right = api.post("/api/v1/eid/sessions", {"username": DUC, "passcode": PASS})
    unknown = api.post("/api/v1/eid/sessions", {"username": UNKNOWN, "passcode": PASS})
    assert _answer(right) == _answer(unknown)
    # the owner hears of the lock on their phone
    texts = [opened(of_bind(api.engine), p)["text"] for p in payloads if "sealed" in (p or {})]
    assert any("tam khoa" in t for t in texts)
    assert {opened(of_bind(api.engine), p)["to"] for p in payloads if "sealed" in (p or {})} == {PHONES[DUC]}


def _alert(page: str) -> str:
    m = re.search(r'<div class="alert" role="alert">(.*?)</div>', page, re.S)
    return m.group(1) if m else ""


def test_oidc_login_form_unknown_and_known_accounts_answer_alike_through_ten_failures(op):
    known_browser, unknown_browser = op.browser(), op.browser()
    for browser in (known_browser, unknown_browser):
        _, challenge = pkce()
        browser.get(authorize_url(op.rp, challenge=challenge))
    for attempt in range(10):
        assert known_browser.submit(username=DUC, password="000000") is None
        assert unknown_browser.submit(username=UNKNOWN, password="000000") is None
        known, unknown = known_browser.page, unknown_browser.page
        assert known.status_code == unknown.status_code == 200
        assert _alert(known.text) == _alert(unknown.text) != "", attempt
        assert "phút" not in known.text
    assert known_browser.submit(username=DUC, password=OIDC_PASSCODE) is None  # locked: the right one too
    assert unknown_browser.submit(username=UNKNOWN, password=OIDC_PASSCODE) is None
    assert _alert(known_browser.page.text) == _alert(unknown_browser.page.text)
    with op.engine.connect() as conn:
        assert conn.execute(sa.select(eid_accounts.c.lockouts).where(
            eid_accounts.c.account_id == op.people.accounts[DUC])).scalar_one() >= 1
