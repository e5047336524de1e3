"""``POST /api/v1/verify`` end to end (TestClient at https://testserver), on SQLite and PostgreSQL:
a partner is added and approved, gets a client-credentials token at /token, and checks FAMILY
people; every refusal the issue lists is tried, and the access log is read back."""

from __future__ import annotations

import json
import unicodedata

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from dinhdanh.audit.tables import access_log
from dinhdanh.exchange import partners
from dinhdanh.oidc import clients
from dinhdanh.registry.tables import persons
from dinhdanh.web.app import create_app
from tests.oidc_support import add_client, add_partner

ISSUER = "https://testserver"
AN, BINH = "001085000001", "001187000002"
URL = "/api/v1/verify"


@pytest.fixture
def http(family) -> TestClient:
    return TestClient(create_app(family), base_url=ISSUER, follow_redirects=False)


def token_of(http: TestClient, partner: dict, scope: str = "dinhdanh.verify"):
    return http.post("/token", data={"grant_type": "client_credentials", "scope": scope},
                     auth=(partner["client_id"], partner["client_secret"]))


def bearer(http: TestClient, partner: dict) -> dict:
    r = token_of(http, partner)
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def log_rows(engine, client_id: str) -> list:
    with engine.connect() as conn:
        return conn.execute(sa.select(access_log.c.person_id, access_log.c.action, access_log.c.purpose,
                                      access_log.c.fields, access_log.c.outcome)
                            .where(access_log.c.actor == f"partner:{client_id}")
                            .order_by(access_log.c.access_id)).all()


def person_id(engine, pid: str) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(persons.c.person_id).where(persons.c.pid == pid)).scalar_one()


def test_verify_matches_and_mismatches(family, http):
    telco = add_partner(family, fields=("full_name", "date_of_birth", "sex", "status", "card"))
    auth = bearer(http, telco)

    def check(**body):
        r = http.post(URL, json=body, headers=auth)
        assert r.status_code == 200, r.text
        return r.json()

    exact = check(pid=AN, full_name="Nguyễn Văn An", date_of_birth="1985-03-04", sex="male")
    assert exact == {"found": True, "match": True, "status": "alive", "card": "none",
                     "fields": {"full_name": "match", "date_of_birth": "match", "sex": "match"}}
    nfd = check(pid=AN, full_name=unicodedata.normalize("NFD", "Nguyễn Văn An"), date_of_birth="1985-03-04")
    assert nfd["match"] is True and nfd["fields"]["full_name"] == "match"
    odd = check(pid=BINH, full_name="  trần   THỊ bình ")
    assert odd["match"] is True and odd["fields"] == {"full_name": "match"}
    folded = check(pid=AN, full_name="Nguyen Van An", date_of_birth="1985-03-04")
    assert folded["match"] is False and folded["fields"] == {"full_name": "match_folded", "date_of_birth": "match"}
    wrong = check(pid=AN, full_name="Nguyễn Văn An", date_of_birth="1985-04-03")
    assert wrong["match"] is False and wrong["fields"]["date_of_birth"] == "mismatch"
    other = check(pid=AN, full_name="Nguyễn Văn Bân", sex="female")
    assert other["fields"] == {"full_name": "mismatch", "sex": "mismatch"} and other["match"] is False
    unknown = check(pid="001099999999", full_name="Nguyễn Văn An")
    assert unknown == {"found": False, "match": False, "fields": {}}
    # never a value of the register in any answer
    for answer in (exact, nfd, odd, folded, wrong, other, unknown):
        text = json.dumps(answer, ensure_ascii=False)
        assert "Nguyễn" not in text and "1985" not in text and "Bình" not in text

    an, binh = person_id(family, AN), person_id(family, BINH)
    rows = log_rows(family, telco["client_id"])
    assert [(r.person_id, r.action, r.purpose, json.loads(r.fields), r.outcome) for r in rows] == [
        (an, "verify", "subscriber_standardisation", ["full_name", "date_of_birth", "sex"], "match"),
        (an, "verify", "subscriber_standardisation", ["full_name", "date_of_birth"], "match"),
        (binh, "verify", "subscriber_standardisation", ["full_name"], "match"),
        (an, "verify", "subscriber_standardisation", ["full_name", "date_of_birth"], "mismatch"),
        (an, "verify", "subscriber_standardisation", ["full_name", "date_of_birth"], "mismatch"),
        (an, "verify", "subscriber_standardisation", ["full_name", "sex"], "mismatch"),
    ]  # the unknown PID: no person, no entry


def test_policy_refusals_are_logged(family, http):
    bank = add_partner(family, name="Ngân hàng thử nghiệm", kind="bank", fields=("full_name", "date_of_birth"),
                       purposes=["customer_verification", "identity_verification"])
    auth = bearer(http, bank)
    r = http.post(URL, json={"pid": AN, "full_name": "Nguyễn Văn An", "phone": "0912345678"}, headers=auth)
    assert r.status_code == 403 and r.json()["error"]["field"] == "phone" and "phone" in r.json()["error"]["message"]
    assert "match" not in r.json()
    r = http.post(URL, json={"pid": AN, "sex": "male"}, headers=auth)
    assert r.status_code == 403 and r.json()["error"]["field"] == "sex"
    r = http.post(URL, json={"pid": AN, "full_name": "Nguyễn Văn An", "purpose": "subscriber_standardisation"},
                  headers=auth)
    assert r.status_code == 403 and r.json()["error"]["field"] == "purpose"
    r = http.post(URL, json={"pid": AN, "full_name": "Nguyễn Văn An", "purpose": "identity_verification"},
                  headers=auth)
    assert r.status_code == 200 and r.json()["match"] is True
    assert "status" not in r.json() and "card" not in r.json()  # not in this partner's fields
    rows = log_rows(family, bank["client_id"])
    assert [(r.purpose, json.loads(r.fields), r.outcome) for r in rows] == [
        ("customer_verification", ["full_name", "phone"], "refused"),
        ("customer_verification", ["sex"], "refused"),
        ("subscriber_standardisation", ["full_name"], "refused"),
        ("identity_verification", ["full_name"], "match"),
    ]


def test_bad_bodies(family, http):
    auth = bearer(http, add_partner(family))
    for body in ({"pid": "12345", "full_name": "An"}, {"pid": AN}, {"pid": AN, "date_of_birth": "1985-02-30"},
                 {"pid": AN, "sex": "x"}, {"pid": AN, "full_name": "An", "extra": 1},
                 {"pid": 1085000001, "full_name": "An"}, {"pid": AN, "date_of_birth": "04/03/1985"}):
        r = http.post(URL, json=body, headers=auth)
        assert r.status_code == 422, (body, r.text)
    assert http.post(URL, content=b"not json", headers={**auth, "Content-Type": "application/json"}
                     ).status_code == 422


def test_who_may_not_verify(family, http):
    body = {"pid": AN, "full_name": "Nguyễn Văn An"}
    r = http.post(URL, json=body)
    assert r.status_code == 401 and "Bearer" in r.headers["WWW-Authenticate"]
    error = r.json()["error"]  # a partner's wording, in Vietnamese first, not an officer's
    assert error["code"] == "partner_unauthenticated" and "đối tác" in error["message"]
    r = http.post(URL, json=body, headers={"Authorization": "Bearer not.a.token", "Accept-Language": "en"})
    assert r.status_code == 401 and "not valid" in r.json()["error"]["message"]

    # pending: its client approved by hand, the partner not
    pending = add_partner(family, approve=False, name="Chưa duyệt")
    assert token_of(http, pending).json()["error"] == "unauthorized_client"  # no token before approval
    with family.begin() as conn:
        clients.approve_client(conn, pending["client_id"], agreement="X", purpose="Y", security_level=3, actor="t")
    r = http.post(URL, json=body, headers=bearer(http, pending))
    assert r.status_code == 403 and "pending" in r.json()["error"]["message"]

    # suspended after its token was issued
    active = add_partner(family, name="Sẽ tạm dừng")
    auth = bearer(http, active)
    assert http.post(URL, json=body, headers=auth).status_code == 200
    with family.begin() as conn:
        partners.suspend_partner(conn, active["client_id"], actor="test")
    r = http.post(URL, json=body, headers=auth)
    assert r.status_code == 403 and "suspended" in r.json()["error"]["message"]

    # a partner without the verify operation; a bare client-credentials client that is no partner
    batch_only = add_partner(family, name="Chỉ đối soát lô", operations=("batch",))
    assert http.post(URL, json=body, headers=bearer(http, batch_only)).status_code == 403
    bare = add_client(family, name="Không phải đối tác", redirect_uris=(), scopes="dinhdanh.verify",
                      grant_types=["client_credentials"])
    assert http.post(URL, json=body, headers=bearer(http, bare)).status_code == 403
    # nothing was logged for any of them
    for who in (pending, active, batch_only, bare):
        assert [r.outcome for r in log_rows(family, who["client_id"])] == (["match"] if who is active else [])


def test_rate_limit(family, http):
    fast = add_partner(family, rate=3)
    auth = bearer(http, fast)
    body = {"pid": AN, "date_of_birth": "1985-03-04"}
    assert [http.post(URL, json=body, headers=auth).status_code for _ in range(3)] == [200, 200, 200]
    r = http.post(URL, json=body, headers=auth)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    # another partner has its own bucket
    assert http.post(URL, json=body, headers=bearer(http, add_partner(family, name="Khác"))).status_code == 200
    assert len(log_rows(family, fast["client_id"])) == 3


class _Clock:
    def __init__(self, at: float):
        self.at = at

    def __call__(self) -> float:
        return self.at


def _utc(*args) -> float:
    import datetime as dt

    return dt.datetime(*args, tzinfo=dt.UTC).timestamp()


def test_daily_quota_on_the_vietnam_day(family, http):
    from dinhdanh.exchange.limits import MemoryLimiter

    clock = _Clock(_utc(2026, 12, 4, 16, 30))  # 23:30 in Hanoi
    http.app.state.limiter = MemoryLimiter(wall=clock)
    telco = add_partner(family)
    with family.begin() as conn:
        partners.update_policy(conn, telco["client_id"], quota_per_day=2, actor="test")
    auth = bearer(http, telco)
    body = {"pid": AN, "date_of_birth": "1985-03-04"}
    assert [http.post(URL, json=body, headers=auth).status_code for _ in range(2)] == [200, 200]
    r = http.post(URL, json=body, headers={**auth, "Accept-Language": "en"})
    assert r.status_code == 429 and r.json()["error"]["code"] == "quota_exceeded"
    assert "daily quota" in r.json()["error"]["message"]
    assert r.headers["Retry-After"] == "1800"  # to midnight in Hanoi
    vi = http.post(URL, json=body, headers=auth)
    assert vi.status_code == 429 and "trong ngày" in vi.json()["error"]["message"]
    # another partner is not affected; a rejected request logged nothing
    assert http.post(URL, json=body, headers=bearer(http, add_partner(family, name="Khác"))).status_code == 200
    assert len(log_rows(family, telco["client_id"])) == 2
    # midnight in Hanoi (17:00 UTC): a new day
    clock.at = _utc(2026, 12, 4, 17, 0, 5)
    assert http.post(URL, json=body, headers=auth).status_code == 200
    # no quota any more
    with family.begin() as conn:
        partners.update_policy(conn, telco["client_id"], quota_per_day=None, actor="test")
    assert all(http.post(URL, json=body, headers=auth).status_code == 200 for _ in range(3))


def test_rate_limiter_down_fails_closed_with_503(family, http):
    from dinhdanh.exchange.limits import RedisLimiter

    http.app.state.limiter = RedisLimiter("redis://127.0.0.1:1/0", timeout=0.2)  # nothing listens there
    telco = add_partner(family)
    r = http.post(URL, json={"pid": AN, "full_name": "Nguyễn Văn An"}, headers=bearer(http, telco))
    assert r.status_code == 503 and r.json()["error"]["code"] == "rate_limiter_unavailable"
    assert r.headers["Retry-After"] and log_rows(family, telco["client_id"]) == []


@pytest.mark.skipif(not __import__("os").environ.get("DINHDANH_TEST_REDIS_URL"),
                    reason="DINHDANH_TEST_REDIS_URL is not set: Redis tests skipped (.ci/run sets it)")
def test_two_workers_share_rate_and_quota_through_redis(family, monkeypatch):
    import os
    import uuid

    import redis

    from dinhdanh.exchange.limits import RedisLimiter

    url = os.environ["DINHDANH_TEST_REDIS_URL"]
    prefix = f"dinhdanh-test:{uuid.uuid4().hex}:"
    monkeypatch.setenv("DINHDANH_REDIS_URL", url)
    one, two = (TestClient(create_app(family), base_url=ISSUER) for _ in range(2))
    assert isinstance(one.app.state.limiter, RedisLimiter)  # chosen by DINHDANH_REDIS_URL
    for app in (one.app, two.app):
        app.state.limiter = RedisLimiter(url, prefix=prefix)
    try:
        telco = add_partner(family, rate=3)
        auth = bearer(one, telco)
        body = {"pid": AN, "date_of_birth": "1985-03-04"}
        assert [(one, two)[i % 2].post(URL, json=body, headers=auth).status_code for i in range(3)] == [200] * 3
        r = two.post(URL, json=body, headers=auth)
        assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limited"
        quota = add_partner(family, name="Có hạn mức")
        with family.begin() as conn:
            partners.update_policy(conn, quota["client_id"], quota_per_day=2, actor="test")
        auth = bearer(one, quota)
        assert [one.post(URL, json=body, headers=auth).status_code,
                two.post(URL, json=body, headers=auth).status_code] == [200, 200]
        r = one.post(URL, json=body, headers=auth)
        assert r.status_code == 429 and r.json()["error"]["code"] == "quota_exceeded"
        assert 1 <= int(r.headers["Retry-After"]) <= 86_400
    finally:
        server = redis.Redis.from_url(url)
        keys = list(server.scan_iter(f"{prefix}*"))
        if keys:
            server.delete(*keys)
        server.close()
