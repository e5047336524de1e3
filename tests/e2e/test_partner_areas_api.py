"""A partner's area holds for verification, follows and change notifications, end to end on SQLite
and PostgreSQL: a person outside it is answered exactly as an unknown PID and never notified about;
follows are no oracle and are written to the access log; a person who leaves the area is reported
leaving (without the new address), and then no more."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from dinhdanh.audit.tables import access_log
from dinhdanh.changes import routing, service
from dinhdanh.changes.tables import change_deliveries
from tests.e2e.test_changes_api import http, partner  # noqa: F401 - the fixture
from tests.e2e.test_verify_api import URL, log_rows
from tests.integration.test_changes import AN, BINH, DUC, HOA, person_id, record, routed, subscriber

UNKNOWN = "079099999999"


def test_verify_outside_the_area_is_exactly_an_unknown_pid(family, http):  # noqa: F811
    made, auth = partner(family, http, area_code="79", operations=("verify",), kind="locality", name="UBND TP.HCM")
    client_id = made["client_id"]

    def check(pid, **body):
        r = http.post(URL, json={"pid": pid, **body}, headers=auth)
        return r.status_code, r.json()

    inside = check(DUC, full_name="Lê Văn Đức")
    assert inside == (200, {"found": True, "match": True, "fields": {"full_name": "match"}})
    unknown = check(UNKNOWN, full_name="Nguyễn Văn An")
    assert unknown == (200, {"found": False, "match": False, "fields": {}})
    assert check(AN, full_name="Nguyễn Văn An") == unknown  # a person of Hà Nội: not to be told apart
    assert check(AN, full_name="Ai đó") == unknown
    # refusals too: the same answer, and no entry, for a person outside as for no one
    assert check(AN, full_name="Nguyễn Văn An", purpose="marketing") == \
        check(UNKNOWN, full_name="Nguyễn Văn An", purpose="marketing")
    assert check(AN, sex="male")[1]["error"]["code"] == "field_not_allowed"
    assert [r.person_id for r in log_rows(family, client_id)] == [person_id(family, DUC)]


def test_follows_outside_the_area_look_like_unknown_pids_and_are_not_delivered(family, http):  # noqa: F811
    made, auth = partner(family, http, area_code="79", kind="locality", name="UBND TP.HCM")
    r = http.post("/api/v1/follows", json={"pids": [AN, DUC, UNKNOWN], "days": 30}, headers=auth)
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [(i["pid"], i["status"]) for i in items] == [(AN, "following"), (DUC, "following"),
                                                        (UNKNOWN, "following")]
    assert len({i["expires_at"] for i in items}) == 1 and r.json()["following"] == 3
    # listed as given: the list does not tell the persons in the area from the others
    assert [i["pid"] for i in http.get("/api/v1/follows", headers=auth).json()["items"]] == [AN, DUC, UNKNOWN]
    assert http.post("/api/v1/subscriptions", json={"kinds": ["person.died"], "scope": "follows"},
                     headers=auth).status_code == 201
    record(family, "death", pid=AN, date_of_death="2024-05-01")
    record(family, "death", pid=DUC, date_of_death="2024-05-02")
    routing.route_all(family)
    assert [(e["type"], e["data"]["pid"]) for e in http.get("/api/v1/changes", headers=auth).json()["events"]] == [
        ("person.died", DUC)]
    rows = log_rows(family, made["client_id"])
    assert [(r.person_id, r.action) for r in rows] == [(person_id(family, DUC), "follow"),
                                                       (person_id(family, DUC), "notify")]


def test_follows_and_unfollows_are_written_to_the_access_log(family, http):  # noqa: F811
    made, auth = partner(family, http)
    r = http.post("/api/v1/follows", json={"pids": [AN, BINH, UNKNOWN, AN]}, headers=auth)
    assert r.status_code == 200 and r.json()["following"] == 3
    gone = http.request("DELETE", "/api/v1/follows", params={"pid": [AN, UNKNOWN]}, headers=auth)
    assert gone.status_code == 200 and gone.json() == {"removed": 2}  # the unknown one too: no oracle
    never = http.request("DELETE", "/api/v1/follows", params={"pid": [HOA]}, headers=auth)
    assert never.json() == {"removed": 1}
    rows = log_rows(family, made["client_id"])
    assert [(r.person_id, r.action, r.purpose, r.outcome) for r in rows] == [
        (person_id(family, AN), "follow", "customer_verification", "ok"),
        (person_id(family, BINH), "follow", "customer_verification", "ok"),
        (person_id(family, AN), "unfollow", "customer_verification", "ok"),
        (person_id(family, HOA), "unfollow", "customer_verification", "ok")]
    assert [i["pid"] for i in http.get("/api/v1/follows", headers=auth).json()["items"]] == [BINH]


def test_a_follow_and_its_entry_commit_together(family, monkeypatch):
    _, row = subscriber(family)

    def broken(*args, **kw):
        raise RuntimeError("the access log is down")

    monkeypatch.setattr(service, "record_access", broken)
    with pytest.raises(RuntimeError), family.begin() as conn:
        service.follow(conn, row, [AN], 30)
    with family.connect() as conn:
        assert service.list_follows(conn, row)["items"] == []
        assert conn.execute(sa.select(sa.func.count()).select_from(access_log)).scalar_one() == 0


def test_a_person_who_leaves_the_area_is_reported_leaving_without_the_new_address(family, http):  # noqa: F811
    hanoi, hanoi_auth = partner(family, http, area_code="01", kind="locality", name="UBND Hà Nội")
    http.post("/api/v1/follows", json={"pids": [BINH, AN]}, headers=hanoi_auth)
    http.post("/api/v1/subscriptions", json={"kinds": ["person.renamed", "person.moved", "person.died"],
                                             "scope": "follows"}, headers=hanoi_auth)
    http.post("/api/v1/subscriptions", json={"kinds": ["person.moved"], "scope": "area"}, headers=hanoi_auth)
    hcm, hcm_row = subscriber(family, name="UBND TP.HCM", kind="locality", area_code="79")
    with family.begin() as conn:
        service.create_subscription(conn, None, hcm_row, kinds=["person.moved", "person.renamed"], scope="area")
    # all recorded before routing: each event is routed by where the person lived at the event
    record(family, "name-change", pid=BINH, full_name="Trần Thị Bích", reason="Quyết định 1/QĐ")
    record(family, "permanent-residence", pid=BINH, commune_code="26743", address="1 Lê Lợi", new_household=True)
    record(family, "name-change", pid=BINH, full_name="Trần Thị Bình", reason="Quyết định 2/QĐ")
    record(family, "permanent-residence", pid=HOA, commune_code="00070", address="2 Tràng Tiền", new_household=True)
    record(family, "death", pid=AN, date_of_death="2024-05-01")
    routing.route_all(family)
    events = http.get("/api/v1/changes", headers=hanoi_auth).json()["events"]
    assert [(e["type"], e["data"]["pid"]) for e in events] == [
        ("person.renamed", BINH), ("person.moved", BINH), ("person.moved", HOA), ("person.died", AN)]
    left, came = events[1]["data"], events[2]["data"]
    assert "commune_code" not in left and set(left) == {"seq", "pid", "event_id"}  # left: not where to
    assert came["commune_code"] == "00070"  # came: where, in its area
    assert routed(family, hcm["client_id"]) == [("person.moved", BINH), ("person.renamed", BINH),
                                                ("person.moved", HOA)]
    with family.connect() as conn:
        hcm_saw = conn.execute(sa.select(change_deliveries.c.data).where(change_deliveries.c.client_id == hcm["client_id"])
                               .order_by(change_deliveries.c.seq)).scalars().all()
    assert hcm_saw[0]["commune_code"] == "26743" and "commune_code" not in hcm_saw[2]
    notified = [r for r in log_rows(family, hanoi["client_id"]) if r.action == "notify"]
    assert "commune_code" not in notified[1].fields
