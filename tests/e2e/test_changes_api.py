"""The partners' change-notification API end to end (TestClient at https://testserver), on SQLite
and PostgreSQL: follow list, subscriptions, the pull feed, dead letters, and every bad input."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from dinhdanh.store.unit_of_work import UnitOfWork
from dinhdanh.changes import routing
from dinhdanh.changes.tables import change_deliveries
from dinhdanh.exchange.tables import partners
from dinhdanh.web.app import create_app
from tests.e2e.test_verify_api import bearer
from tests.integration.test_changes import AN, BINH, DUC, HOA, record
from tests.oidc_support import add_partner


@pytest.fixture
def http(family) -> TestClient:
    return TestClient(create_app(family), base_url="https://testserver", follow_redirects=False)


def partner(engine, http, *, area_code=None, operations=("subscribe",), kind="bank", name="Ngân hàng"):
    made = add_partner(engine, name=name, kind=kind, operations=operations, fields=("full_name",))
    if area_code:
        with engine.begin() as conn:
            conn.execute(partners.update().where(partners.c.client_id == made["client_id"]).values(area_code=area_code))
    return made, bearer(http, made)


def test_follow_subscribe_and_pull_the_feed(family, http):
    _, auth = partner(family, http)
    r = http.post("/api/v1/follows", json={"pids": [AN, DUC, "001099999999", "abc"], "days": 30}, headers=auth)
    assert r.status_code == 200, r.text
    assert [(i["pid"], i["status"]) for i in r.json()["items"]] == [
        (AN, "following"), (DUC, "following"), ("001099999999", "following"), ("abc", "invalid")]  # no oracle
    listed = http.get("/api/v1/follows", headers=auth).json()
    # the list shows what was followed, person or not (listing after following is no oracle either)
    assert [i["pid"] for i in listed["items"]] == [AN, DUC, "001099999999"] and listed["next_after"] is None
    r = http.post("/api/v1/subscriptions", json={"kinds": ["person.died", "person.renamed"], "scope": "follows"},
                  headers=auth)
    assert r.status_code == 201, r.text
    sub = r.json()
    assert sub["webhook_url"] is None and sub["webhook_secret"] is None and sub["state"] == "active"
    record(family, "death", pid=AN, date_of_death="2024-05-01")
    record(family, "death", pid=HOA, date_of_death="2024-05-02")  # not followed
    record(family, "name-change", pid=DUC, full_name="Lê Văn Đông", reason="Quyết định 12/QĐ")
    routing.route_all(family)
    feed = http.get("/api/v1/changes", params={"after": 0}, headers=auth)
    assert feed.status_code == 200, feed.text
    events = feed.json()["events"]
    assert [(e["type"], e["data"]["pid"]) for e in events] == [("person.died", AN), ("person.renamed", DUC)]
    assert events[0]["data"]["date_of_death"] == "2024-05-01" and events[0]["timestamp"].endswith("Z")
    seqs = [e["data"]["seq"] for e in events]
    assert seqs == sorted(seqs) and feed.json()["next_after"] == seqs[-1]
    page = http.get("/api/v1/changes", params={"after": 0, "limit": 1}, headers=auth).json()
    assert [e["data"]["seq"] for e in page["events"]] == seqs[:1] and page["next_after"] == seqs[0]
    rest = http.get("/api/v1/changes", params={"after": page["next_after"]}, headers=auth).json()
    assert [e["data"]["seq"] for e in rest["events"]] == seqs[1:]
    assert http.get("/api/v1/changes", params={"after": seqs[-1]}, headers=auth).json() == \
        {"events": [], "next_after": seqs[-1]}
    # a second subscription matching the same event: the feed still has it once
    http.post("/api/v1/subscriptions", json={"kinds": ["person.died"], "scope": "follows"}, headers=auth)
    record(family, "death", pid=DUC, date_of_death="2024-05-03")
    routing.route_all(family)
    more = http.get("/api/v1/changes", params={"after": seqs[-1]}, headers=auth).json()["events"]
    assert [(e["type"], e["data"]["pid"]) for e in more] == [("person.died", DUC)]
    # unfollow, unsubscribe
    assert http.request("DELETE", "/api/v1/follows", params={"pid": [AN]}, headers=auth).json() == {"removed": 1}
    assert [i["pid"] for i in http.get("/api/v1/follows", headers=auth).json()["items"]] == [DUC, "001099999999"]
    gone = http.delete(f"/api/v1/subscriptions/{sub['subscription_id']}", headers=auth)
    assert gone.status_code == 200 and gone.json()["state"] == "disabled"
    assert [s["state"] for s in http.get("/api/v1/subscriptions", headers=auth).json()] == ["disabled", "active"]


def test_webhook_subscription_and_dead_letters(family, http):
    _, auth = partner(family, http)
    r = http.post("/api/v1/subscriptions", json={"kinds": ["person.died"], "scope": "follows",
                                                 "webhook_url": "http://127.0.0.1:9/hook"}, headers=auth)
    assert r.status_code == 201, r.text
    sub = r.json()
    assert sub["webhook_secret"].startswith("whsec_")
    again = http.get(f"/api/v1/subscriptions/{sub['subscription_id']}", headers=auth).json()
    assert again["webhook_secret"] is None  # shown once
    http.post("/api/v1/follows", json={"pids": [BINH]}, headers=auth)
    record(family, "death", pid=BINH, date_of_death="2024-05-01")
    routing.route_all(family)
    with family.begin() as conn:
        conn.execute(change_deliveries.update().values(status="dead", attempts=12, last_error="ConnectError"))
    dead = http.get(f"/api/v1/subscriptions/{sub['subscription_id']}/dead-letters", headers=auth)
    assert dead.status_code == 200 and [(d["type"], d["last_error"]) for d in dead.json()] == [
        ("person.died", "ConnectError")]
    assert BINH not in dead.text  # the dead-letter list names no one
    retry = http.post(f"/api/v1/subscriptions/{sub['subscription_id']}/dead-letters/retry", headers=auth)
    assert retry.json() == {"requeued": 1}
    assert http.get(f"/api/v1/subscriptions/{sub['subscription_id']}/dead-letters", headers=auth).json() == []
    # another partner sees none of it
    _, other = partner(family, http, name="Ngân hàng khác")
    for method, path in (("GET", ""), ("DELETE", ""), ("GET", "/dead-letters"), ("POST", "/dead-letters/retry")):
        r = http.request(method, f"/api/v1/subscriptions/{sub['subscription_id']}{path}", headers=other)
        assert r.status_code == 404, (method, path, r.text)
        assert r.json()["error"]["message"].startswith("Không tìm thấy đăng ký")  # Vietnamese by default
    assert http.get("/api/v1/changes", headers=other).json()["events"] == []


@pytest.mark.parametrize("method, path, kw, field", [
    ("GET", "/api/v1/changes", {"params": {"after": -1}}, "after"),
    ("GET", "/api/v1/changes", {"params": {"after": "abc"}}, "after"),
    ("GET", "/api/v1/changes", {"params": {"limit": 0}}, "limit"),
    ("GET", "/api/v1/changes", {"params": {"limit": 10**9}}, "limit"),
    ("GET", "/api/v1/changes", {"params": {"after": 2**70}}, "after"),
    ("POST", "/api/v1/subscriptions", {"json": {"kinds": ["person.exploded"], "scope": "follows"}}, "kinds.0"),
    ("POST", "/api/v1/subscriptions", {"json": {"kinds": [], "scope": "follows"}}, "kinds"),
    ("POST", "/api/v1/subscriptions", {"json": {"kinds": ["person.died"], "scope": "all"}}, "scope"),
    ("POST", "/api/v1/subscriptions", {"json": {"kinds": ["person.died"], "scope": "follows",
                                                "webhook_url": "http://hooks.example.vn/x"}}, "webhook_url"),
    ("POST", "/api/v1/subscriptions", {"json": {"kinds": ["person.died"], "scope": "follows",
                                                "webhook_url": "not a url"}}, "webhook_url"),
    ("POST", "/api/v1/subscriptions", {"json": {"kinds": ["person.died"], "scope": "area",
                                                "area_code": "79"}}, "area_code"),
    ("POST", "/api/v1/subscriptions", {"json": {"kinds": ["person.died"], "scope": "area",
                                                "area_code": "1"}}, "area_code"),
    ("POST", "/api/v1/subscriptions", {"json": {"kinds": ["person.died"], "scope": "follows",
                                                "extra": 1}}, "extra"),
    ("POST", "/api/v1/follows", {"json": {"pids": [AN], "days": 367}}, "days"),
    ("POST", "/api/v1/follows", {"json": {"pids": [AN], "days": "30"}}, "days"),
    ("POST", "/api/v1/follows", {"json": {"pids": []}}, "pids"),
    ("POST", "/api/v1/follows", {"json": {"pids": [AN] * 1001}}, "pids"),
    ("DELETE", "/api/v1/follows", {"params": {"pid": "12"}}, "pid.0"),
    ("GET", "/api/v1/subscriptions/0", {}, "subscription_id"),
    ("GET", "/api/v1/subscriptions/x", {}, "subscription_id"),
])
def test_bad_input_is_a_422_naming_the_field(family, http, method, path, kw, field):
    _, auth = partner(family, http, area_code="01", kind="locality", name="UBND Hà Nội")
    r = http.request(method, path, headers=auth, **kw)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == field


def test_the_app_s_background_loop_routes_and_delivers(family):
    from tests.integration.test_changes import Receiver, follow, subscribe, subscriber

    _, row = subscriber(family)
    receiver = Receiver().start()
    try:
        receiver.secret = subscribe(family, row, ["person.died"], webhook_url=receiver.url)["webhook_secret"]
        follow(family, row, [AN])
        with TestClient(create_app(family, background=True), base_url="https://testserver"):
            record(family, "death", pid=AN, date_of_death="2024-05-01")
            deadline = time.monotonic() + 20
            while not receiver.got and time.monotonic() < deadline:
                time.sleep(0.05)
    finally:
        receiver.stop()
    assert [(e["type"], e["data"]["pid"]) for e in receiver.events()] == [("person.died", AN)]


def test_who_may_subscribe(family, http):
    _, verify_only = partner(family, http, operations=("verify",))
    for method, path in (("GET", "/api/v1/changes"), ("GET", "/api/v1/follows"), ("GET", "/api/v1/subscriptions")):
        r = http.request(method, path, headers=verify_only)
        assert r.status_code == 403 and r.json()["error"]["code"] == "operation_not_allowed"
    assert http.get("/api/v1/changes").status_code == 401
    _, hanoi = partner(family, http, area_code="01", kind="locality", name="UBND Hà Nội")
    ok = http.post("/api/v1/subscriptions", json={"kinds": ["person.moved"], "scope": "area", "area_code": "00070"},
                   headers=hanoi)
    assert ok.status_code == 201 and ok.json()["area_code"] == "00070"
    own = http.post("/api/v1/subscriptions", json={"kinds": ["person.moved"], "scope": "area"}, headers=hanoi)
    assert own.json()["area_code"] == "01"
    with family.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(change_deliveries)).scalar_one() == 0


# ------------------------------------------------------------------------ fuzzing with a partner


from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dinhdanh.changes import service
from dinhdanh.registry.errors import InvalidInput
from tests.e2e.test_api_fuzz import APP, CHECKS, schema

partner_schema = schema.include(path_regex=r"^/api/v1/(follows|subscriptions|changes)")


@pytest.fixture
def partner_token(sqlite_engine, tmp_path):
    from dinhdanh.population.importer import import_population
    from tests.support import FAMILY, write_people

    import_population(sqlite_engine, write_people(tmp_path / "family.csv", FAMILY))
    client = TestClient(create_app(sqlite_engine), base_url="https://testserver")
    _, auth = partner(sqlite_engine, client, area_code="01", kind="locality", name="UBND Hà Nội")
    APP.state.engine = sqlite_engine
    APP.state.uow = UnitOfWork(sqlite_engine)
    APP.state.oidc_issuer = "https://testserver"  # the issuer the token was issued at
    yield auth
    APP.state.engine = None
    APP.state.oidc_issuer = None


@partner_schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_partner_routes_never_fail_and_conform(case, partner_token):
    response = case.call(headers=partner_token)
    assert response.status_code < 500, (case.operation.label, response.status_code, response.text[:500])
    case.validate_response(response, checks=CHECKS)


@given(st.text(max_size=80) | st.from_regex(r"\Ahttps?://[a-z0-9.:\[\]@%-]{0,30}(/[^ ]{0,20})?\Z"))
@settings(max_examples=300, deadline=None)
def test_webhook_url_check_only_refuses_with_invalid_input(url):
    try:
        assert service.check_webhook_url(url) == url
    except InvalidInput as exc:
        assert exc.field == "webhook_url"
