"""Second factors over HTTP and the CLI, on SQLite and PostgreSQL: a passcode-only session cannot add,
replace or remove a factor (403 step_up_required); a level-2 session can; every change is in the
account's history and told to the owner through the outbox; a level-2 enrolment at the counter (CLI
and officer API) registers a TOTP factor and shows its otpauth URI once, with which a level-2 login
works."""

from __future__ import annotations

import json
import time

import pyotp
import sqlalchemy as sa
from fastapi.testclient import TestClient

from dinhdanh.eid.tables import account_events, eid_accounts
from dinhdanh.notify.service import opened
from dinhdanh.store.outbox import outbox
from dinhdanh.store.vault import of_bind
from tests.chips import AN, DUC
from tests.e2e.test_eid_api import EidApi, api, b64  # noqa: F401  (the fixture)
from tests.e2e.test_eid_cli import db, run  # noqa: F401  (the fixture)
from tests.eid_support import PHONES, card_photo, enroll

PASS = "135790"


def _login(api: EidApi, username: str, passcode: str = PASS, **factor) -> dict:
    r = api.post("/api/v1/eid/sessions", {"username": username, "passcode": passcode, **factor})
    assert r.status_code == 201, r.text
    return r.json()


def _bearer(session: dict) -> dict:
    return {"Authorization": f"Bearer {session['token']}"}


def _code(totp: pyotp.TOTP, last: list) -> str:
    """A code of a step not used yet (each code is accepted once)."""
    while True:
        step = int(time.time() // totp.interval)
        if not last or step > last[-1]:
            last.append(step)
            return totp.now()
        time.sleep(0.5)


def _notices(engine, msisdn: str) -> list[str]:
    with engine.connect() as conn:
        payloads = conn.execute(sa.select(outbox.c.payload).where(outbox.c.topic == "notify.sms")
                                .order_by(outbox.c.seq)).scalars().all()
    texts = [opened(of_bind(engine), p) for p in payloads if "sealed" in (p or {})]
    return [t["text"] for t in texts if t["to"] == msisdn]


def _history(engine, account_id: int) -> list[str]:
    with engine.connect() as conn:
        return conn.execute(sa.select(account_events.c.kind).where(account_events.c.account_id == account_id)
                            .order_by(account_events.c.event_id)).scalars().all()


def test_a_passcode_only_session_cannot_touch_the_second_factor(api):
    out = enroll(api.engine, api.vault, DUC, level=2, passcode=PASS)
    totp = pyotp.parse_uri(out["totp_uri"])
    with api.engine.connect() as conn:
        sealed = conn.execute(sa.select(eid_accounts.c.totp_secret)).scalar_one()
    assert totp.secret.encode() not in sealed  # sealed at rest
    session = _login(api, DUC)
    assert (session["level"], session["account_level"]) == (1, 2)
    before = _history(api.engine, out["account_id"])
    for method in ("post", "delete"):
        r = getattr(api.client, method)("/api/v1/eid/me/totp", headers=_bearer(session))
        assert r.status_code == 403, r.text
        assert (r.json()["error"]["code"], r.json()["error"]["field"]) == ("step_up_required", "session")
    r = api.post("/api/v1/eid/me/devices", {"device_key": {"kty": "EC", "crv": "P-256", "x": "a", "y": "b"}},
                 _bearer(session))
    assert r.status_code == 403 and r.json()["error"]["code"] == "step_up_required"
    assert _history(api.engine, out["account_id"]) == before
    with api.engine.connect() as conn:
        assert conn.execute(sa.select(eid_accounts.c.totp_secret)).scalar_one() == sealed
    # the old factor still opens a level-2 session
    assert _login(api, DUC, totp=totp.now())["level"] == 2


def test_a_level2_session_replaces_the_factor_the_owner_is_told_and_the_history_shows_it(api):
    out = enroll(api.engine, api.vault, DUC, level=2, passcode=PASS)
    old = pyotp.parse_uri(out["totp_uri"])
    used: list = []
    session = _login(api, DUC, totp=_code(old, used))
    assert session["level"] == 2
    r = api.post("/api/v1/eid/me/totp", None, _bearer(session))
    assert r.status_code == 201, r.text
    new = pyotp.parse_uri(r.json()["otpauth_uri"])
    assert new.secret != old.secret
    history = api.client.get("/api/v1/eid/me/history", headers=_bearer(session)).json()
    assert [h["kind"] for h in history][:2] == ["totp_replaced", "totp_enabled"]
    assert history[0]["source"] == "owner"
    notices = _notices(api.engine, PHONES[DUC])
    assert any("thay ma xac thuc TOTP" in text for text in notices), notices
    # the old secret no longer opens level 2, the new one does
    r = api.post("/api/v1/eid/sessions", {"username": DUC, "passcode": PASS, "totp": old.now()})
    assert r.status_code == 401 and r.json()["error"]["code"] == "second_factor_failed"
    session = _login(api, DUC, totp=_code(new, []))
    assert session["level"] == 2
    # the last factor of a level-2 account cannot be removed
    r = api.client.delete("/api/v1/eid/me/totp", headers=_bearer(session))
    assert r.status_code == 409 and r.json()["error"]["code"] == "last_second_factor"


def test_the_officer_api_level2_enrolment_gives_a_totp_uri(api):
    enroll(api.engine, api.vault, AN, level=1, passcode=PASS)
    r = api.post(f"/api/v1/eid/accounts/{AN}/level2", {
        "card_number": AN, "chip_verdict": "valid", "face_image": b64(card_photo(api.engine, api.vault, AN)),
        "fingerprint": b64(b"minutiae"), "face_match": "match", "fingerprint_match": "match", "consent": True},
        api.officer())
    assert r.status_code == 200, r.text
    uri = r.json()["totp_uri"]
    totp = pyotp.parse_uri(uri)
    assert uri.startswith("otpauth://totp/") and "issuer=" in uri
    assert (totp.digits, totp.interval, totp.digest().name) == (6, 30, "sha1")
    assert _login(api, AN, totp=totp.now())["level"] == 2
    # and the counter can give a new one (e.g. a lost phone)
    r = api.post(f"/api/v1/eid/accounts/{AN}/totp", None, api.officer())
    assert r.status_code == 201 and r.json()["totp_uri"] != uri
    assert "totp_replaced" in _history(api.engine, r.json()["account_id"])


def test_cli_enroll_level2_prints_the_totp_uri_and_it_logs_in_at_level2(db):
    from dinhdanh.cards import lifecycle, pki
    from dinhdanh.store.engine import make_engine
    from dinhdanh.store.vault import for_database
    from dinhdanh.web.app import create_app
    from tests.chips import NATIONAL

    home, url = db
    engine = make_engine(url)
    vault = for_database(url)
    with engine.begin() as conn:
        pki.init_pki(conn, vault)
        lifecycle.issue_card(conn, vault, NATIONAL, DUC)
    p = run(home, "eid", "enroll", DUC, "--level", "2", "--passcode", PASS, "--db", url)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["level"] == 2 and out["totp_uri"].startswith("otpauth://totp/")
    totp = pyotp.parse_uri(out["totp_uri"])
    assert (totp.digits, totp.interval, totp.digest().name, totp.issuer) == (6, 30, "sha1", "VNeID (dinhdanh)")
    shown = run(home, "eid", "show", DUC, "--db", url)
    assert shown.returncode == 0 and totp.secret not in shown.stdout and "totp_uri" not in shown.stdout
    client = TestClient(create_app(engine), raise_server_exceptions=False)
    r = client.post("/api/v1/eid/sessions", json={"username": DUC, "passcode": PASS, "totp": totp.now()})
    assert r.status_code == 201, r.text
    assert r.json()["level"] == 2
    engine.dispose()
