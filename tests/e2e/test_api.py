"""The officer API end to end, through HTTP (FastAPI TestClient), on SQLite and PostgreSQL.

The register is the test FAMILY (tests/support.py): a family in Hà Nội (Phường Hoàn Kiếm, 00070)
and three people in Hồ Chí Minh City (Phường Bến Thành, 26743). Officers: one national, one of the
commune 00070, one of the province 79 (Hồ Chí Minh City).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from dinhdanh.audit.tables import access_log
from dinhdanh.ids import pid as pidfmt
from dinhdanh.officers.service import Officer, add_officer
from dinhdanh.registry.tables import changes, events, former_pids, households, persons
from dinhdanh.store.outbox import outbox
from dinhdanh.web.app import create_app

try:
    from tests.support import FAMILY
except ImportError:  # older layout: the data lived in conftest
    from tests.conftest import FAMILY  # type: ignore[no-redef]

# FAMILY, by name
KINDS = ("birth", "death", "missing", "marriage", "divorce", "permanent-residence", "temporary-residence",
         "temporary-absence", "stay-notification", "name-change", "sex-change", "correction")
AN, BINH, CHAU, DUNG = "001085000001", "001187000002", "001212000003", "001215000004"  # Hà Nội, 00070
DUC, HOA, GIANG = "079090000005", "079193000006", "079095000007"  # Hồ Chí Minh City, 26743
HANOI = (AN, BINH, CHAU, DUNG)
HCMC = (DUC, HOA, GIANG)
UNKNOWN = "001099999999"  # well formed, nobody holds it

TODAY = dt.datetime.now(dt.UTC).date()


@dataclass
class Api:
    client: TestClient
    engine: sa.Engine
    officers: dict[str, tuple[Officer, str]]

    def headers(self, who: str = "national") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.officers[who][1]}"}

    def label(self, who: str = "national") -> str:
        return self.officers[who][0].label

    def get(self, url: str, who: str = "national", **params):
        return self.client.get(url, headers=self.headers(who), params=params)

    def record(self, pid: str, who: str = "national", **params) -> dict:
        r = self.get(f"/api/v1/citizens/{pid}", who, **params)
        assert r.status_code == 200, r.text
        return r.json()

    def post(self, kind: str, body, who: str = "national"):
        return self.client.post(f"/api/v1/events/{kind}", headers=self.headers(who), json=body)

    def event(self, kind: str, body, who: str = "national") -> dict:
        r = self.post(kind, body, who)
        assert r.status_code == 201, r.text
        return r.json()

    def search(self, who: str = "national", **params):
        return self.get("/api/v1/citizens", who, **params)

    def person_id(self, pid: str) -> int:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(persons.c.person_id).where(persons.c.pid == pid)).scalar_one()

    def access_rows(self) -> list:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(access_log).order_by(access_log.c.access_id)).all()

    def snapshot(self) -> dict:
        """Every row of the register's tables: equal before and after means nothing changed."""
        with self.engine.connect() as conn:
            return {t.name: conn.execute(sa.select(t).order_by(*t.primary_key.columns)).all()
                    for t in (persons, households, events, changes, former_pids, outbox)}


@pytest.fixture
def api(family) -> Api:
    officers = {}
    with family.begin() as conn:
        roles = ["registrar", "data_steward"]  # the register and its quality
        officers["national"] = add_officer(conn, "Cán bộ Bộ Công an", "national", None, roles=roles)
        officers["commune"] = add_officer(conn, "Cán bộ phường Hoàn Kiếm", "commune", "00070", roles=roles)
        officers["province"] = add_officer(conn, "Cán bộ TP Hồ Chí Minh", "province", "79", roles=roles)
    client = TestClient(create_app(family), raise_server_exceptions=False)
    return Api(client, family, officers)


def assert_error(r, status: int, code: str | None = None, field: str | None = "<any>") -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    error = r.json()["error"]
    assert {"code", "title", "message", "field"} <= set(error), error
    assert isinstance(error["message"], str) and error["message"]
    if code is not None:
        assert error["code"] == code, error
    if field != "<any>":
        assert error["field"] == field, error
    return error


def each(cases, check) -> None:
    """Run ``check`` on every case (they change nothing, so they share one register) and report
    every failing case at once."""
    failures = []
    for case in cases:
        try:
            check(*case) if isinstance(case, tuple) else check(case)
        except AssertionError as exc:
            failures.append(f"{case!r}: {str(exc).splitlines()[0] if str(exc) else 'assertion failed'}")
    assert not failures, f"{len(failures)} of {len(cases)} cases failed:\n" + "\n".join(failures)


# ------------------------------------------------------------------------------------ the token

PROTECTED = [
    ("GET", f"/api/v1/citizens/{AN}"),
    ("GET", f"/api/v1/citizens/{AN}/history"),
    ("GET", "/api/v1/citizens?name=nguyen"),
    ("GET", "/api/v1/quality"),
    ("POST", "/api/v1/events/death"),
]


AUTHORIZATIONS = [None, "Bearer ddo_not-a-real-token", "Bearer ", "Basic YTpi", "ddo_no-scheme",
                  "Bearer ddo_" + "x" * 500]


def test_no_or_bad_token_is_401_with_json_error(api):
    before = api.snapshot()

    def check(method, url, authorization):
        headers = {} if authorization is None else {"Authorization": authorization}
        body = {"pid": GIANG, "date_of_death": "2024-01-01"} if method == "POST" else None
        r = api.client.request(method, url, headers=headers, json=body)
        error = assert_error(r, 401, "unauthenticated", None)
        assert error["title"]
        assert r.headers["www-authenticate"].lower().startswith("bearer")

    each([(m, u, a) for m, u in PROTECTED for a in AUTHORIZATIONS], check)
    # the real token of another officer, sent as it should be, works
    assert api.get(f"/api/v1/citizens/{AN}", "commune").status_code == 200
    assert api.snapshot() == before


def test_inactive_officer_token_is_refused(api):
    from dinhdanh.officers.tables import officers

    with api.engine.begin() as conn:
        conn.execute(officers.update().where(officers.c.officer_id == api.officers["commune"][0].officer_id)
                     .values(active=False))
    assert_error(api.get(f"/api/v1/citizens/{AN}", "commune"), 401, "unauthenticated")
    assert api.get(f"/api/v1/citizens/{AN}").status_code == 200


# ------------------------------------------------------------------------------- reading records


def test_national_officer_reads_a_record_with_relatives_and_household(api):
    rec = api.record(AN)
    assert rec["pid"] == AN
    assert rec["full_name"] == "Nguyễn Văn An"
    assert (rec["surname"], rec["middle_name"], rec["given_name"]) == ("Nguyễn", "Văn", "An")
    assert rec["date_of_birth"] == "1985-03-04"
    assert rec["sex"] == "male"
    assert rec["status"] == "alive"
    assert rec["marital_status"] == "married"
    assert rec["relatives"]["spouse"]["pid"] == BINH
    assert rec["relatives"]["spouse"]["full_name"] == "Trần Thị Bình"
    assert [c["pid"] for c in rec["relatives"]["children"]] == [CHAU, DUNG]
    assert rec["relatives"]["father"] is None and rec["relatives"]["mother"] is None
    assert rec["household"] == {"number": "0100000001", "relation_to_head": "head",
                                "head": {"pid": AN, "full_name": "Nguyễn Văn An", "nationality": "VNM",
                                         "old_id_number": None}}
    assert rec["permanent_residence"]["commune_code"] == "00070"
    assert rec["permanent_residence"]["commune_name"] == "Phường Hoàn Kiếm"
    assert rec["birth_registration"] == {"code": "001", "name": "Hà Nội"}
    assert rec["former_pids"] == [] and rec["as_of"] is None

    child = api.record(DUNG)
    assert child["relatives"]["father"]["pid"] == AN
    assert child["relatives"]["mother"]["pid"] == BINH
    assert child["household"]["relation_to_head"] == "child"
    assert child["household"]["head"]["pid"] == AN


def test_every_read_is_written_to_the_access_log(api):
    assert api.access_rows() == []
    api.record(AN)
    api.record(BINH, purpose="investigation")
    assert api.get(f"/api/v1/citizens/{CHAU}/history", purpose="civil_status").status_code == 200
    r = api.search(name="nguyen", purpose="data_quality")
    assert r.status_code == 200
    found = {i["pid"] for i in r.json()["items"]}
    assert found == {AN, CHAU, DUNG}

    rows = [(a.actor, a.person_id, a.action, a.purpose) for a in api.access_rows()]
    me = api.label()
    assert rows[:3] == [
        (me, api.person_id(AN), "read", "administration"),  # the default purpose
        (me, api.person_id(BINH), "read", "investigation"),
        (me, api.person_id(CHAU), "history", "civil_status"),
    ]
    assert sorted(rows[3:]) == sorted((me, api.person_id(p), "search", "data_quality") for p in found)
    assert all(a.at is not None for a in api.access_rows())


def test_unknown_purpose_is_422_naming_purpose_and_nothing_is_logged(api):
    def check(url, purpose):
        r = api.client.get(url, headers=api.headers(), params={"purpose": purpose})
        error = assert_error(r, 422, "invalid_input", "purpose")
        assert "administration" in error["message"]

    each([(url, purpose) for url in (f"/api/v1/citizens/{AN}", f"/api/v1/citizens/{AN}/history",
                                     "/api/v1/citizens?name=nguyen")
          for purpose in ("curiosity", "", "ADMINISTRATION")], check)
    assert api.access_rows() == []


def test_malformed_pid_in_path_is_422_naming_pid(api):
    each(["12345", "00108500000a", "0010850000011", "001 085 000 001", "٠٠١٠٨٥٠٠٠٠٠١"],
         lambda pid: assert_error(api.get(f"/api/v1/citizens/{pid}"), 422, "invalid_input", "pid"))
    assert api.access_rows() == []


def test_unknown_pid_is_404(api):
    assert_error(api.get(f"/api/v1/citizens/{UNKNOWN}"), 404, "not_found", "pid")
    assert_error(api.get(f"/api/v1/citizens/{UNKNOWN}/history"), 404, "not_found", "pid")
    assert api.access_rows() == []


# ------------------------------------------------------------------------------------------ areas


def test_commune_officer_sees_own_commune_only_and_learns_nothing_of_others(api):
    for pid in HANOI:
        assert api.record(pid, "commune")["pid"] == pid
    unknown = api.get(f"/api/v1/citizens/{UNKNOWN}", "commune")
    assert_error(unknown, 404, "not_found")
    unknown_history = api.get(f"/api/v1/citizens/{UNKNOWN}/history", "commune")
    logged = len(api.access_rows())
    for pid in HCMC:
        hidden = api.get(f"/api/v1/citizens/{pid}", "commune")
        assert hidden.status_code == 404
        assert hidden.json() == unknown.json()  # no hint that the person exists
        # every header alike but the request's own id (random, web.observability)
        same = lambda r: {k: v for k, v in r.headers.items() if k.lower() != "x-request-id"}  # noqa: E731
        assert same(hidden) == same(unknown)
        history = api.get(f"/api/v1/citizens/{pid}/history", "commune")
        assert (history.status_code, history.json()) == (unknown_history.status_code, unknown_history.json())
    assert len(api.access_rows()) == logged  # nothing was read, nothing logged


def test_province_officer_sees_own_province_only(api):
    for pid in HCMC:
        assert api.record(pid, "province")["pid"] == pid
    for pid in HANOI:
        assert_error(api.get(f"/api/v1/citizens/{pid}", "province"), 404, "not_found")


def test_search_is_limited_to_the_officers_area(api):
    def pids(who, **params):
        r = api.search(who, **params)
        assert r.status_code == 200, r.text
        return {i["pid"] for i in r.json()["items"]}

    assert pids("national", name="nguyen") == {AN, CHAU, DUNG}
    assert pids("commune", name="nguyen") == {AN, CHAU, DUNG}
    assert pids("province", name="nguyen") == set()
    assert pids("national", name="le van duc") == {DUC}
    assert pids("commune", name="le van duc") == set()
    assert pids("province", name="le van duc") == {DUC}
    assert pids("commune", commune="26743") == set()
    assert pids("province", commune="26743") == set(HCMC)
    assert pids("province", date_of_birth="1985-03-04") == set()
    assert pids("national", date_of_birth="1985-03-04") == {AN}


def test_temporary_residence_brings_a_person_into_the_area(api):
    assert_error(api.get(f"/api/v1/citizens/{AN}", "province"), 404)
    until = (TODAY + dt.timedelta(days=200)).isoformat()
    api.event("temporary-residence", {"pid": AN, "commune_code": "26743", "address": "12 Lê Lợi", "until": until})
    rec = api.record(AN, "province")
    assert rec["temporary_residence"]["commune_code"] == "26743"
    assert rec["temporary_residence"]["until"] == until
    assert AN in {i["pid"] for i in api.search("province", name="nguyen van an").json()["items"]}
    assert api.record(AN, "commune")["pid"] == AN  # still in Hoàn Kiếm too


# ----------------------------------------------------------------------------------------- search


def test_search_by_name_ignores_diacritics_case_and_spacing(api):
    def check(typed):
        r = api.search(name=typed)
        assert r.status_code == 200, r.text
        page = r.json()
        assert [i["pid"] for i in page["items"]] == [AN], page
        assert page["items"][0] == {"pid": AN, "full_name": "Nguyễn Văn An", "date_of_birth": "1985-03-04",
                                    "sex": "male", "status": "alive", "province_code": "01", "commune_code": "00070"}
        assert page["next_page"] is None and page["page"] == 1

    each(["  NGUYEN   van an ", "nguyen van an", "Nguyễn Văn An", "NGUYỄN VĂN AN", "nguyen van a", "Nguyen-Van An",
          "nguyen\tvan  an", "Nguye\u0302\u0303n Va\u0306n An"], check)


def test_search_by_name_with_d_stroke(api):
    assert [i["pid"] for i in api.search(name="le van duc").json()["items"]] == [DUC]
    assert [i["pid"] for i in api.search(name="LÊ VĂN ĐỨC").json()["items"]] == [DUC]
    assert api.search(name="tran thi binh").json()["items"][0]["pid"] == BINH


def test_search_narrows_by_birth_year_province_commune_and_date(api):
    def pids(**params):
        r = api.search(**params)
        assert r.status_code == 200, r.text
        return [i["pid"] for i in r.json()["items"]]

    assert sorted(pids(name="nguyen")) == sorted([AN, CHAU, DUNG])
    assert pids(name="nguyen", birth_year=2012) == [CHAU]
    assert pids(name="nguyen", birth_year=1999) == []
    assert pids(name="hoang", province="79") == [GIANG]
    assert pids(name="hoang", province="01") == []
    assert pids(name="nguyen", commune="00070", birth_year=2015) == [DUNG]
    assert sorted(pids(commune="26743")) == sorted(HCMC)
    assert pids(date_of_birth="1993-11-12") == [HOA]


def test_search_pages_with_next_page(api):
    everything = [i["pid"] for i in api.search(name="nguyen").json()["items"]]
    assert len(everything) == 3
    seen, page = [], 1
    while page is not None:
        r = api.search(name="nguyen", page_size=1, page=page)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["page"] == page and body["page_size"] == 1
        assert len(body["items"]) == 1
        seen.append(body["items"][0]["pid"])
        page = body["next_page"]
        assert page is None or page == body["page"] + 1
        assert len(seen) <= 3
    assert seen == everything
    beyond = api.search(name="nguyen", page_size=1, page=4).json()
    assert beyond["items"] == [] and beyond["next_page"] is None
    two = api.search(name="nguyen", page_size=2).json()
    assert [i["pid"] for i in two["items"]] == everything[:2] and two["next_page"] == 2


def test_search_without_criteria_is_422(api):
    each([{}, {"birth_year": "1985"}, {"province": "01"}, {"purpose": "administration"}],
         lambda params: assert_error(api.search(**params), 422, "invalid_input", "name"))
    assert api.access_rows() == []


BAD_SEARCHES = [
    ({"name": "nguyen", "birth_year": "abc"}, "birth_year"),
    ({"name": "nguyen", "birth_year": "1800"}, "birth_year"),
    ({"name": "nguyen", "province": "1"}, "province"),
    ({"name": "nguyen", "province": "HN"}, "province"),
    ({"name": "nguyen", "commune": "70"}, "commune"),
    ({"name": "nguyen", "page": "0"}, "page"),
    ({"name": "nguyen", "page": "-1"}, "page"),
    ({"name": "nguyen", "page_size": "1000"}, "page_size"),
    ({"name": "nguyen", "page_size": "0"}, "page_size"),
    ({"date_of_birth": "2020-13-01"}, "date_of_birth"),
    ({"date_of_birth": "yesterday"}, "date_of_birth"),
    ({"name": ""}, "name"),
    ({"name": "x" * 101}, "name"),
    ({"name": " - . "}, "name"),  # no letters to search for
    ({"name": "nguyen\x00"}, "name"),  # PostgreSQL cannot compare text holding NUL
]


def test_search_with_bad_parameters_is_422_naming_the_field(api):
    each(BAD_SEARCHES, lambda params, field: assert_error(api.search(**params), 422, "invalid_input", field))
    assert api.access_rows() == []


# ---------------------------------------------------------------------------------------- history


def test_history_shows_who_when_why_legal_basis_and_old_new_values(api):
    history = api.get(f"/api/v1/citizens/{BINH}/history").json()
    assert [h["kind"] for h in history] == ["imported"]
    assert history[0]["actor"] == "import"

    before = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)
    api.event("name-change", {"pid": BINH, "full_name": "Trần Thị Bích", "reason": "Đổi tên theo nguyện vọng",
                              "legal_basis": "Luật Hộ tịch 2014, điều 26"})
    api.event("correction", {"pid": BINH, "fields": {"phone": "0912345678", "blood_type": "A+"},
                             "reason": "Bổ sung thông tin", "legal_basis": "Luật Căn cước 2023, điều 9"},
              who="commune")
    after = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=5)

    r = api.get(f"/api/v1/citizens/{BINH}/history")
    assert r.status_code == 200, r.text
    history = r.json()
    assert [h["kind"] for h in history] == ["imported", "name-change", "correction"]
    rename, correction = history[1], history[2]
    assert rename["actor"] == api.label("national")
    assert correction["actor"] == api.label("commune")
    assert rename["reason"] == "Đổi tên theo nguyện vọng"
    assert rename["legal_basis"] == "Luật Hộ tịch 2014, điều 26"
    assert correction["legal_basis"] == "Luật Căn cước 2023, điều 9"
    for h in (rename, correction):
        assert isinstance(h["event_id"], int)
        assert before <= dt.datetime.fromisoformat(h["recorded_at"]) <= after
    assert rename["changes"] == [{"field": "full_name", "old": "Trần Thị Bình", "new": "Trần Thị Bích"}]
    assert sorted(correction["changes"], key=lambda c: c["field"]) == [
        {"field": "blood_type", "old": None, "new": "A+"},
        {"field": "phone", "old": None, "new": "0912345678"},
    ]
    # the spouse's history holds none of it
    assert [h["kind"] for h in api.get(f"/api/v1/citizens/{AN}/history").json()] == ["imported"]


def _backdate_register(api: Api, when: dt.datetime) -> None:
    """As if the register had been loaded on ``when``."""
    with api.engine.begin() as conn:
        conn.execute(persons.update().values(created_at=when))


def test_as_of_before_a_name_change_shows_the_old_name(api):
    _backdate_register(api, dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
    api.event("name-change", {"pid": BINH, "full_name": "Trần Thị Bích", "reason": "Đổi tên"})
    yesterday = (TODAY - dt.timedelta(days=1)).isoformat()

    old = api.record(BINH, as_of=yesterday)
    assert old["full_name"] == "Trần Thị Bình"
    assert old["as_of"] == yesterday
    assert api.record(BINH, as_of="2021-06-30")["full_name"] == "Trần Thị Bình"
    assert api.record(BINH, as_of=TODAY.isoformat())["full_name"] == "Trần Thị Bích"
    now = api.record(BINH)
    assert now["full_name"] == "Trần Thị Bích" and now["given_name"] == "Bích" and now["as_of"] is None
    # the spouse sees the new name in the relatives, the old one as of yesterday
    assert api.record(AN)["relatives"]["spouse"]["full_name"] == "Trần Thị Bích"


def test_as_of_before_a_name_change_shows_the_old_name_parts(api):
    _backdate_register(api, dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
    api.event("name-change", {"pid": BINH, "full_name": "Lê Thị Bình", "reason": "Đổi họ"})
    old = api.record(BINH, as_of=(TODAY - dt.timedelta(days=1)).isoformat())
    assert (old["surname"], old["middle_name"], old["given_name"]) == ("Trần", "Thị", "Bình"), old


def test_as_of_before_a_marriage_and_a_move(api):
    _backdate_register(api, dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
    api.event("marriage", {"pid": DUC, "spouse_pid": HOA, "date": "2024-06-01"})
    api.event("permanent-residence", {"pid": DUC, "commune_code": "00070", "address": "5 Hàng Bạc",
                                      "new_household": True})
    yesterday = (TODAY - dt.timedelta(days=1)).isoformat()
    old = api.record(DUC, as_of=yesterday)
    assert old["marital_status"] == "single"
    assert old["relatives"]["spouse"] is None
    assert old["permanent_residence"]["commune_code"] == "26743"
    new = api.record(DUC)
    assert new["marital_status"] == "married" and new["relatives"]["spouse"]["pid"] == HOA
    assert new["permanent_residence"]["commune_code"] == "00070"


def test_as_of_before_the_person_was_registered_is_404_and_bad_as_of_is_422(api):
    _backdate_register(api, dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
    assert_error(api.get(f"/api/v1/citizens/{AN}", as_of="2019-12-31"), 404, "not_found", "as_of")
    assert api.record(AN, as_of="2020-01-01")["pid"] == AN
    for bad in ("2020-13-01", "yesterday", "2020-02-30"):
        assert_error(api.get(f"/api/v1/citizens/{AN}", as_of=bad), 422, "invalid_input", "as_of")


# ---------------------------------------------------------------------------------- life events

IN_A_YEAR = (TODAY + dt.timedelta(days=365)).isoformat()


def _check_death(api, out):
    rec = api.record(GIANG)
    assert (rec["status"], rec["date_of_death"], rec["household"]) == ("dead", "2024-01-01", None)


def _check_missing(api, out):
    rec = api.record(HOA)
    assert (rec["status"], rec["date_missing"]) == ("missing", "2024-02-03")


def _check_marriage(api, out):
    duc, hoa = api.record(DUC), api.record(HOA)
    assert duc["marital_status"] == hoa["marital_status"] == "married"
    assert duc["relatives"]["spouse"]["pid"] == HOA
    assert hoa["relatives"]["spouse"]["pid"] == DUC


def _check_divorce(api, out):
    an, binh = api.record(AN), api.record(BINH)
    assert an["marital_status"] == binh["marital_status"] == "divorced"
    assert an["relatives"]["spouse"] is None and binh["relatives"]["spouse"] is None


def _check_permanent_residence(api, out):
    rec = api.record(DUC)
    assert rec["permanent_residence"]["commune_code"] == "00070"
    assert rec["permanent_residence"]["province_code"] == "01"
    assert rec["permanent_residence"]["address"] == "5 Hàng Bạc"
    assert rec["permanent_residence"]["dossier_number"] == "HS-0001"
    assert rec["household"]["relation_to_head"] == "head"
    assert rec["household"]["head"]["pid"] == DUC
    assert rec["household"]["number"].startswith("01") and rec["household"]["number"] != "0100000001"


def _check_join_household(api, out):
    rec = api.record(GIANG)
    assert rec["household"]["number"] == "0100000001"
    assert rec["household"]["head"]["pid"] == AN
    assert rec["household"]["relation_to_head"] == "sibling"
    assert rec["permanent_residence"]["commune_code"] == "00070"


def _check_temporary_residence(api, out):
    temp = api.record(CHAU)["temporary_residence"]
    assert (temp["commune_code"], temp["province_code"], temp["address"], temp["until"]) == (
        "26743", "79", "12 Lê Lợi", IN_A_YEAR)


def _check_temporary_absence(api, out):
    assert api.record(DUNG)["temporary_absence"] == {"from": "2024-01-01", "until": "2024-06-01",
                                                     "destination": "Đà Nẵng"}


def _check_stay(api, out):
    assert api.record(CHAU)["current_address"].startswith("12 Lê Lợi, ")
    assert out["changes"] == [{"field": "current_address", "old": None, "new": api.record(CHAU)["current_address"]}]


def _check_name_change(api, out):
    rec = api.record(BINH)
    assert rec["full_name"] == "Trần Thị Bích" and rec["given_name"] == "Bích"
    assert [i["pid"] for i in api.search(name="tran thi bich").json()["items"]] == [BINH]
    assert api.search(name="tran thi binh").json()["items"] == []


def _check_sex_change(api, out):
    assert out["pid"] != DUNG
    rec = api.record(out["pid"])
    assert rec["sex"] == "male" and [f["pid"] for f in rec["former_pids"]] == [DUNG]


def _check_correction(api, out):
    rec = api.record(AN)
    assert (rec["phone"], rec["blood_type"], rec["email"]) == ("0912345678", "O+", "an@example.vn")


VALID_EVENTS = [
    ("death", {"pid": GIANG, "date_of_death": "2024-01-01", "reason": "Bệnh",
               "legal_basis": "Luật Hộ tịch 2014"}, GIANG, _check_death),
    ("missing", {"pid": HOA, "date_missing": "2024-02-03"}, HOA, _check_missing),
    ("marriage", {"pid": DUC, "spouse_pid": HOA, "date": "2024-06-01"}, DUC, _check_marriage),
    ("divorce", {"pid": AN, "spouse_pid": BINH, "date": "2024-06-01"}, AN, _check_divorce),
    ("permanent-residence", {"pid": DUC, "commune_code": "00070", "address": "5 Hàng Bạc", "new_household": True,
                             "dossier_number": "HS-0001"}, DUC, _check_permanent_residence),
    ("permanent-residence", {"pid": GIANG, "commune_code": "00070", "address": "1 Tràng Tiền",
                             "household_number": "0100000001", "relation_to_head": "sibling"}, GIANG,
     _check_join_household),
    ("temporary-residence", {"pid": CHAU, "commune_code": "26743", "address": "12 Lê Lợi", "until": IN_A_YEAR},
     CHAU, _check_temporary_residence),
    ("temporary-absence", {"pid": DUNG, "from_date": "2024-01-01", "until": "2024-06-01",
                           "destination": "Đà Nẵng"}, DUNG, _check_temporary_absence),
    ("stay-notification", {"pid": CHAU, "commune_code": "26743", "address": "12 Lê Lợi", "from_date": "2024-03-01",
                           "until": "2024-03-10", "host_pid": AN}, CHAU, _check_stay),
    ("name-change", {"pid": BINH, "full_name": "Trần  Thị   Bích", "reason": "Đổi tên"}, BINH, _check_name_change),
    ("sex-change", {"pid": DUNG, "sex": "male", "reason": "Xác định lại giới tính"}, None, _check_sex_change),
    ("correction", {"pid": AN, "fields": {"phone": "0912345678", "blood_type": "O+", "email": "an@example.vn"},
                    "reason": "Bổ sung"}, AN, _check_correction),
]


@pytest.mark.parametrize(("kind", "body", "pid", "check"), VALID_EVENTS,
                         ids=[f"{e[0]}-{i}" for i, e in enumerate(VALID_EVENTS)])
def test_valid_event_is_201_and_visible(api, kind, body, pid, check):
    with api.engine.connect() as conn:
        n_events = conn.execute(sa.select(sa.func.count()).select_from(events)).scalar_one()
    r = api.post(kind, body)
    assert r.status_code == 201, r.text
    out = r.json()
    assert set(out) == {"event_id", "kind", "pid", "changes"}
    assert out["kind"] == kind and isinstance(out["event_id"], int)
    if pid is not None:
        assert out["pid"] == pid
    assert out["changes"] and all(set(c) == {"field", "old", "new"} for c in out["changes"])
    check(api, out)
    with api.engine.connect() as conn:
        row = conn.execute(sa.select(events).where(events.c.event_id == out["event_id"])).one()
        assert conn.execute(sa.select(sa.func.count()).select_from(events)).scalar_one() == n_events + 1
    assert (row.kind, row.actor) == (kind, api.label())
    history = api.get(f"/api/v1/citizens/{out['pid']}/history").json()
    assert history[-1]["event_id"] == out["event_id"] and history[-1]["kind"] == kind


def test_birth_returns_a_new_valid_pid_at_once_with_parents_and_household(api):
    r = api.post("birth", {"full_name": "Nguyễn Văn Em", "sex": "male", "date_of_birth": "2020-02-03",
                           "commune_code": "00070", "father_pid": AN, "mother_pid": BINH,
                           "reason": "Khai sinh", "legal_basis": "Luật Hộ tịch 2014, điều 16"})
    assert r.status_code == 201, r.text
    out = r.json()
    number = out["pid"]
    assert pidfmt.validate(number, strict=True) == number
    info = pidfmt.parse(number)
    assert (info.sex, info.birth_year, info.foreign_birth) == ("male", 2020, False)
    assert number[:3] == "0" + "01"  # registered in Hà Nội (commune 00070, province 01)
    assert number not in {row[0] for row in FAMILY}

    rec = api.record(number)
    assert (rec["full_name"], rec["sex"], rec["date_of_birth"], rec["status"]) == (
        "Nguyễn Văn Em", "male", "2020-02-03", "alive")
    assert rec["relatives"]["father"]["pid"] == AN and rec["relatives"]["mother"]["pid"] == BINH
    assert rec["household"]["number"] == "0100000001" and rec["household"]["relation_to_head"] == "child"
    assert rec["permanent_residence"]["commune_code"] == "00070"
    assert rec["birth_registration"]["code"] == number[:3]
    assert rec["marital_status"] == "single"
    assert number in [c["pid"] for c in api.record(AN)["relatives"]["children"]]
    assert number in [c["pid"] for c in api.record(BINH)["relatives"]["children"]]
    history = api.get(f"/api/v1/citizens/{number}/history").json()
    assert [h["kind"] for h in history] == ["birth"]
    assert history[0]["actor"] == api.label() and history[0]["legal_basis"] == "Luật Hộ tịch 2014, điều 16"
    assert history[0]["effective_date"] == "2020-02-03"
    assert {"field": "full_name", "old": None, "new": "Nguyễn Văn Em"} in history[0]["changes"]
    assert [i["pid"] for i in api.search(name="nguyen van em").json()["items"]] == [number]


def test_birth_in_hcmc_gets_the_hcmc_place_code_and_a_female_2000s_digit(api):
    out = api.event("birth", {"full_name": "Lê Thị Bé", "sex": "female", "date_of_birth": "2001-09-30",
                              "commune_code": "26743", "household_number": "7900000001",
                              "relation_to_head": "child"}, who="province")
    number = out["pid"]
    assert pidfmt.validate(number) == number
    assert number[:3] == "079" and number[3] == "3" and number[4:6] == "01"
    info = pidfmt.parse(number)
    assert (info.place_name, info.sex, info.birth_year) == ("Hồ Chí Minh", "female", 2001)
    rec = api.record(number, "province")
    assert rec["household"]["head"]["pid"] == DUC
    assert rec["relatives"]["father"] is None


def test_births_get_distinct_numbers(api):
    body = {"full_name": "Nguyễn Thị Sinh Đôi", "sex": "female", "date_of_birth": "2021-03-03",
            "commune_code": "00070", "father_pid": AN, "mother_pid": BINH}
    numbers = {api.event("birth", body)["pid"] for _ in range(3)}
    assert len(numbers) == 3
    assert all(n[:6] == "001321" for n in numbers)


def test_commune_officer_registers_births_in_own_commune_only(api):
    body = {"full_name": "Nguyễn Văn Út", "sex": "male", "date_of_birth": "2022-01-01", "commune_code": "00070",
            "father_pid": AN, "mother_pid": BINH}
    assert api.event("birth", body, who="commune")["pid"][:3] == "001"
    before = api.snapshot()
    elsewhere = {**body, "commune_code": "26743", "household_number": "7900000001"}
    assert_error(api.post("birth", elsewhere, who="commune"), 403, "forbidden", "commune_code")
    assert_error(api.post("birth", {**body, "commune_code": "00004"}, who="commune"), 403, "forbidden",
                 "commune_code")
    assert_error(api.post("birth", body, who="province"), 403, "forbidden", "commune_code")
    assert api.snapshot() == before


def test_sex_change_gives_a_new_pid_and_the_old_one_still_finds_the_record(api):
    r = api.post("sex-change", {"pid": CHAU, "sex": "female", "reason": "Xác định lại giới tính",
                                "legal_basis": "Bộ luật Dân sự 2015, điều 37"})
    assert r.status_code == 201, r.text
    new = r.json()["pid"]
    assert new != CHAU
    assert pidfmt.validate(new, strict=True) == new
    info = pidfmt.parse(new)
    assert (info.sex, info.birth_year, info.place_code) == ("female", 2012, CHAU[:3])
    assert new[3] == "3" and new[4:6] == "12"
    assert {"field": "pid", "old": CHAU, "new": new} in r.json()["changes"]

    by_old, by_new = api.record(CHAU), api.record(new)
    assert by_old == by_new
    assert by_new["pid"] == new and by_new["sex"] == "female"
    assert [f["pid"] for f in by_new["former_pids"]] == [CHAU]
    assert by_new["former_pids"][0]["reason"]
    assert dt.datetime.fromisoformat(by_new["former_pids"][0]["retired_at"]).date() == TODAY
    assert [h["kind"] for h in api.get(f"/api/v1/citizens/{CHAU}/history").json()] == ["imported", "sex-change"]
    assert new in [c["pid"] for c in api.record(AN)["relatives"]["children"]]
    found = api.search(name="nguyen minh chau").json()["items"]
    assert [i["pid"] for i in found] == [new]
    # the old number is retired, never given again: the record keeps answering to it
    assert api.record(CHAU, "commune")["pid"] == new


def test_correction_of_the_year_of_birth_gives_a_consistent_pid(api):
    out = api.event("correction", {"pid": DUC, "fields": {"date_of_birth": "1991-09-10"}, "reason": "Sai năm sinh"})
    new = out["pid"]
    assert new != DUC and pidfmt.parse(new).birth_year == 1991 and pidfmt.parse(new).sex == "male"
    assert api.record(DUC)["pid"] == new and api.record(new)["date_of_birth"] == "1991-09-10"


# -------------------------------------------------------------------------- refusals change nothing

DEATH_OF_GIANG = ("death", {"pid": GIANG, "date_of_death": "2024-01-01"})
MARRIAGE_DUC_HOA = ("marriage", {"pid": DUC, "spouse_pid": HOA, "date": "2024-06-01"})

REFUSALS = [
    # (setup events, kind, body, code, field)
    ([DEATH_OF_GIANG], "marriage", {"pid": GIANG, "spouse_pid": HOA, "date": "2024-06-01"}, "person_dead", "pid"),
    ([DEATH_OF_GIANG], "marriage", {"pid": HOA, "spouse_pid": GIANG, "date": "2024-06-01"}, "person_dead",
     "spouse_pid"),
    ([], "marriage", {"pid": DUC, "spouse_pid": DUNG, "date": "2024-06-01"}, "under_marriage_age", "spouse_pid"),
    ([], "marriage", {"pid": DUC, "spouse_pid": HOA, "date": "2010-06-01"}, "under_marriage_age", "pid"),
    ([], "marriage", {"pid": DUC, "spouse_pid": GIANG, "date": "2024-06-01"}, "same_sex", "spouse_pid"),
    ([], "marriage", {"pid": DUC, "spouse_pid": BINH, "date": "2024-06-01"}, "already_married", "spouse_pid"),
    ([], "marriage", {"pid": DUC, "spouse_pid": HOA, "date": (TODAY + dt.timedelta(days=30)).isoformat()},
     "date_in_future", "date"),
    ([], "divorce", {"pid": DUC, "spouse_pid": HOA, "date": "2024-06-01"}, "not_married", "spouse_pid"),
    ([MARRIAGE_DUC_HOA], "divorce", {"pid": AN, "spouse_pid": HOA, "date": "2024-07-01"}, "not_married",
     "spouse_pid"),
    ([], "name-change", {"pid": BINH, "full_name": "Trần Thị Bình", "reason": "x"}, "no_change", "full_name"),
    ([], "name-change", {"pid": BINH, "full_name": "  Trần   Thị Bình ", "reason": "x"}, "no_change", "full_name"),
    ([DEATH_OF_GIANG], "name-change", {"pid": GIANG, "full_name": "Hoàng Văn Giàu", "reason": "x"}, "person_dead",
     "pid"),
    ([], "birth", {"full_name": "Nguyễn Văn Sớm", "sex": "male", "date_of_birth": "1980-01-01",
                   "commune_code": "00070", "father_pid": AN}, "child_before_parent", "father_pid"),
    ([], "birth", {"full_name": "Nguyễn Văn Sớm", "sex": "male", "date_of_birth": "1987-01-01",
                   "commune_code": "00070", "mother_pid": BINH}, "child_before_parent", "mother_pid"),
    ([], "birth", {"full_name": "Nguyễn Văn Nhỏ", "sex": "male", "date_of_birth": "2020-01-01",
                   "commune_code": "00070", "father_pid": CHAU}, "parent_too_young", "father_pid"),
    ([], "birth", {"full_name": "Nguyễn Văn Nhỏ", "sex": "male", "date_of_birth": "2020-01-01",
                   "commune_code": "00070", "father_pid": BINH}, "parent_sex", "father_pid"),
    ([], "birth", {"full_name": "Nguyễn Văn Mai", "sex": "male", "date_of_birth": IN_A_YEAR,
                   "commune_code": "00070", "father_pid": AN}, "date_in_future", "date_of_birth"),
    ([], "birth", {"full_name": "Lê Văn Một", "sex": "male", "date_of_birth": "2020-01-01",
                   "commune_code": "26743"}, "household_required", "household_number"),
    ([DEATH_OF_GIANG], "birth", {"full_name": "Hoàng Văn Con", "sex": "male", "date_of_birth": "2025-01-01",
                                 "commune_code": "26743", "father_pid": GIANG, "household_number": "7900000002"},
     "parent_dead", "father_pid"),
    ([DEATH_OF_GIANG], "death", {"pid": GIANG, "date_of_death": "2024-02-01"}, "person_dead", "pid"),
    ([], "death", {"pid": AN, "date_of_death": "1980-01-01"}, "death_before_birth", "date_of_death"),
    ([], "death", {"pid": AN, "date_of_death": IN_A_YEAR}, "date_in_future", "date_of_death"),
    ([DEATH_OF_GIANG], "missing", {"pid": GIANG, "date_missing": "2024-02-01"}, "person_dead", "pid"),
    ([], "temporary-residence", {"pid": AN, "commune_code": "00070", "address": "x", "until": IN_A_YEAR},
     "same_commune", "commune_code"),
    ([DEATH_OF_GIANG], "temporary-residence", {"pid": GIANG, "commune_code": "00070", "address": "x",
                                               "until": IN_A_YEAR}, "person_dead", "pid"),
    ([DEATH_OF_GIANG], "temporary-absence", {"pid": GIANG, "from_date": "2024-03-01", "until": "2024-04-01",
                                             "destination": "Huế"}, "person_dead", "pid"),
    ([], "stay-notification", {"pid": CHAU, "commune_code": "26743", "address": "x", "from_date": "2024-03-01",
                               "until": "2024-04-15"}, "stay_too_long", "until"),
    ([DEATH_OF_GIANG], "stay-notification", {"pid": GIANG, "commune_code": "26743", "address": "x",
                                             "from_date": "2024-03-01", "until": "2024-03-02"}, "person_dead", "pid"),
    ([], "permanent-residence", {"pid": BINH, "commune_code": "00070", "address": "x",
                                 "household_number": "0100000001"}, "same_household", "household_number"),
    ([DEATH_OF_GIANG], "permanent-residence", {"pid": GIANG, "commune_code": "00070", "address": "x",
                                               "new_household": True}, "person_dead", "pid"),
    ([], "sex-change", {"pid": AN, "sex": "male", "reason": "x"}, "no_change", "sex"),
    ([], "correction", {"pid": AN, "fields": {"full_name": "Nguyễn Văn An"}, "reason": "x"}, "no_change", "fields"),
    ([], "correction", {"pid": CHAU, "fields": {"date_of_birth": "1980-01-01"}, "reason": "x"},
     "child_before_parent", "fields.date_of_birth"),
    ([], "correction", {"pid": AN, "fields": {"date_of_birth": IN_A_YEAR}, "reason": "x"}, "date_in_future",
     "fields.date_of_birth"),
]


SETUPS = {"none": [], "Giang dead": [DEATH_OF_GIANG], "Đức married to Hoa": [MARRIAGE_DUC_HOA]}


@pytest.mark.parametrize("setup", list(SETUPS))
def test_rule_refusal_is_409_with_a_code_and_changes_nothing(api, setup):
    for setup_kind, setup_body in SETUPS[setup]:
        api.event(setup_kind, setup_body)
    before = api.snapshot()

    def check(kind, body, code, field):
        error = assert_error(api.post(kind, body), 409, code, field)
        assert error["title"]
        assert api.snapshot() == before, "the register changed"

    each([(kind, body, code, field) for events_, kind, body, code, field in REFUSALS
          if events_ == SETUPS[setup]], check)


def test_every_kind_has_valid_refused_and_malformed_cases():
    assert {r[1] for r in REFUSALS} == set(KINDS)
    assert {m[0] for m in MALFORMED} == set(KINDS)
    assert {v[0] for v in VALID_EVENTS} | {"birth"} == set(KINDS)
    assert all(r[0] in SETUPS.values() for r in REFUSALS)


MALFORMED = [
    # (kind, body, field named)
    ("death", {"pid": GIANG, "date_of_death": "2024-01-01", "cause": "x"}, "cause"),
    ("death", {"pid": GIANG, "date_of_death": "2020-13-01"}, "date_of_death"),
    ("death", {"pid": GIANG, "date_of_death": "2020-02-30"}, "date_of_death"),
    ("death", {"pid": GIANG, "date_of_death": 20200101}, "date_of_death"),
    ("death", {"pid": GIANG, "date_of_death": "01/02/2020"}, "date_of_death"),
    ("death", {"pid": GIANG, "date_of_death": "2024-01-01T10:00:00"}, "date_of_death"),
    ("death", {"pid": GIANG, "date_of_death": None}, "date_of_death"),
    ("death", {"pid": GIANG}, "date_of_death"),
    ("death", {"pid": "07909500000x", "date_of_death": "2024-01-01"}, "pid"),
    ("death", {"pid": "0790950000", "date_of_death": "2024-01-01"}, "pid"),
    ("death", {"pid": 79095000007, "date_of_death": "2024-01-01"}, "pid"),
    ("death", {"pid": GIANG, "date_of_death": "2024-01-01", "reason": 5}, "reason"),
    ("death", {"pid": GIANG, "date_of_death": "2024-01-01", "legal_basis": "x" * 201}, "legal_basis"),
    ("missing", {"pid": HOA, "date_missing": True}, "date_missing"),
    ("marriage", {"pid": DUC, "date": "2024-06-01"}, "spouse_pid"),
    ("marriage", {"pid": DUC, "spouse_pid": [HOA], "date": "2024-06-01"}, "spouse_pid"),
    ("marriage", {"pid": DUC, "spouse_pid": DUC, "date": "2024-06-01"}, "spouse_pid"),
    ("divorce", {"pid": AN, "spouse_pid": BINH, "date": "2024/06/01"}, "date"),
    ("name-change", {"pid": BINH, "full_name": 5, "reason": "x"}, "full_name"),
    ("name-change", {"pid": BINH, "full_name": "Trần Thị 3", "reason": "x"}, "full_name"),
    ("name-change", {"pid": BINH, "full_name": "", "reason": "x"}, "full_name"),
    ("name-change", {"pid": BINH, "full_name": "Trần Thị Bích"}, "reason"),
    ("sex-change", {"pid": AN, "sex": "M", "reason": "x"}, "sex"),
    ("birth", {"full_name": "Nguyễn Văn Em", "sex": "male", "date_of_birth": "2020-02-03", "commune_code": "99999",
               "father_pid": AN}, "commune_code"),
    ("birth", {"full_name": "Nguyễn Văn Em", "sex": "male", "date_of_birth": "2020-02-03", "commune_code": 70,
               "father_pid": AN}, "commune_code"),
    ("birth", {"full_name": "Nguyễn Văn Em", "sex": "other", "date_of_birth": "2020-02-03", "commune_code": "00070",
               "father_pid": AN}, "sex"),
    ("birth", {"sex": "male", "date_of_birth": "2020-02-03", "commune_code": "00070", "father_pid": AN},
     "full_name"),
    ("birth", {"full_name": "Nguyễn Văn Em", "sex": "male", "date_of_birth": "1899-12-31", "commune_code": "00070",
               "household_number": "0100000001"}, "date_of_birth"),
    ("birth", {"full_name": "Nguyễn Văn Em", "sex": "male", "date_of_birth": "2020-02-03", "commune_code": "00070",
               "father_pid": AN, "nationality": "vn"}, "nationality"),
    ("birth", {"full_name": "Nguyễn Văn Em", "sex": "male", "date_of_birth": "2020-02-03", "commune_code": "00070",
               "father_pid": UNKNOWN}, "father_pid"),
    ("birth", {"full_name": "Nguyễn Văn Em", "sex": "male", "date_of_birth": "2020-02-03", "commune_code": "00070",
               "household_number": "0199999999"}, "household_number"),
    ("permanent-residence", {"pid": DUC, "commune_code": "99999", "address": "x", "new_household": True},
     "commune_code"),
    ("permanent-residence", {"pid": DUC, "commune_code": "00070", "address": "x", "new_household": "yes"},
     "new_household"),
    ("permanent-residence", {"pid": DUC, "commune_code": "00070", "address": "x"}, "household_number"),
    ("permanent-residence", {"pid": DUC, "commune_code": "00070", "address": "x", "new_household": True,
                             "household_number": "0100000001"}, "household_number"),
    # refused only after the registry has started writing: the transaction must roll back
    ("permanent-residence", {"pid": AN, "commune_code": "26743", "address": "x", "household_number": "0100000001"},
     "household_number"),
    ("permanent-residence", {"pid": DUC, "commune_code": "00070", "address": "x", "household_number": "0100000001",
                             "relation_to_head": "head"}, "relation_to_head"),
    ("temporary-residence", {"pid": CHAU, "commune_code": "26743", "address": "x", "until": TODAY.isoformat()},
     "until"),
    ("temporary-residence", {"pid": CHAU, "commune_code": "26743", "address": "x",
                             "until": (TODAY + dt.timedelta(days=3 * 365)).isoformat()}, "until"),
    ("temporary-absence", {"pid": DUNG, "from_date": "2024-06-01", "until": "2024-01-01", "destination": "Huế"},
     "until"),
    ("temporary-absence", {"pid": DUNG, "from_date": "2024-01-01", "until": "2024-06-01", "destination": ""},
     "destination"),
    ("stay-notification", {"pid": CHAU, "commune_code": "26743", "address": "x", "from_date": "2024-03-05",
                           "until": "2024-03-01"}, "until"),
    ("stay-notification", {"pid": CHAU, "commune_code": "99999", "address": "x", "from_date": "2024-03-01",
                           "until": "2024-03-02"}, "commune_code"),
    ("correction", {"pid": AN, "fields": {}, "reason": "x"}, "fields"),
    ("correction", {"pid": AN, "fields": {"phone": 912345678}, "reason": "x"}, "fields.phone"),
    ("correction", {"pid": AN, "fields": {"phone": "12345"}, "reason": "x"}, "fields.phone"),
    ("correction", {"pid": AN, "fields": {"email": "an at example"}, "reason": "x"}, "fields.email"),
    ("correction", {"pid": AN, "fields": {"blood_type": "C+"}, "reason": "x"}, "fields.blood_type"),
    ("correction", {"pid": AN, "fields": {"date_of_birth": "1985-13-04"}, "reason": "x"}, "fields.date_of_birth"),
    ("correction", {"pid": AN, "fields": {"full_name": None}, "reason": "x"}, "fields.full_name"),
    ("correction", {"pid": AN, "fields": {"full_name": "Nguyễn Văn 4"}, "reason": "x"}, "fields.full_name"),
    ("correction", {"pid": AN, "fields": {"nationality": "Vietnam"}, "reason": "x"}, "fields.nationality"),
]


def test_malformed_event_is_422_naming_the_field_and_changes_nothing(api):
    before = api.snapshot()

    def check(kind, body, field):
        assert_error(api.post(kind, body), 422, "invalid_input", field)
        assert api.snapshot() == before, "the register changed"

    each(MALFORMED, check)
    assert {kind for kind, _, _ in MALFORMED} == set(KINDS)  # every kind refuses something


def test_unknown_correctable_field_is_422_naming_it(api):
    before = api.snapshot()
    error = assert_error(api.post("correction", {"pid": AN, "fields": {"pid": "001085000009"}, "reason": "x"}),
                         422, "invalid_input")
    assert error["field"].startswith("fields.pid"), error
    assert api.snapshot() == before


def test_a_form_that_cannot_be_read_is_422_naming_the_body(api):
    """A multipart body of more fields than Starlette reads (1,000) is refused as a form, not as
    JSON text, Vietnamese first."""
    files = [(f"f{i}", (None, "x")) for i in range(1100)]
    error = assert_error(api.client.post("/api/v1/batches", files=files, headers=api.headers()), 422,
                         "invalid_input", "body")
    assert error["message"].startswith("Không đọc được biểu mẫu"), error
    english = api.client.post("/api/v1/batches", files=files, headers={**api.headers(), "Accept-Language": "en"})
    message = assert_error(english, 422, "invalid_input", "body")["message"]
    assert message.startswith("The form cannot be read") and "JSON" not in message


def test_malformed_json_body_is_422_not_500(api):
    before = api.snapshot()
    broken = api.client.post("/api/v1/events/death", content=b'{"pid": "0790", ',
                             headers={**api.headers(), "Content-Type": "application/json"})
    error = assert_error(broken, 422, "invalid_input", "body")
    assert error["message"] == "Nội dung yêu cầu không phải là văn bản JSON hợp lệ."
    english = api.client.post("/api/v1/events/death", content=b'{"pid": "0790", ',
                              headers={**api.headers(), "Content-Type": "application/json", "Accept-Language": "en"})
    assert assert_error(english, 422, "invalid_input", "body")["message"].startswith("The request body is not valid JSON")

    def check(kind, content):
        r = api.client.post(f"/api/v1/events/{kind}", content=content,
                            headers={**api.headers(), "Content-Type": "application/json"})
        error = assert_error(r, 422, "invalid_input")
        assert not (error["field"] or "").isdigit(), error  # a broken text names the body, not a position

    each([(kind, content) for kind in ("death", "birth")
          for content in (b'{"pid": "079095000007", "date_of_death": ', b"{'pid': 1}", b"not json",
                          b"\xff\xfe\x00{", b'{"pid": "\xc3\x28"}', b"[1, 2]", b"null", b'"text"', b"",
                          b'{"pid": "079095000007", "date_of_death": "2024-01-01"} trailing')], check)
    assert api.snapshot() == before


def test_unknown_event_kind_is_404_and_wrong_method_405(api):
    before = api.snapshot()
    assert_error(api.post("adoption", {"pid": AN}), 404, "not_found")
    error = assert_error(api.post("Birth", {"pid": AN}), 404, "not_found")
    assert error["message"] == "Không tìm thấy địa chỉ này."  # Vietnamese first, as every refusal
    error = assert_error(api.client.get("/api/v1/events/death", headers=api.headers()), 405, "method_not_allowed")
    assert error["message"] == "Địa chỉ này không nhận phương thức HTTP đó."
    english = api.client.get("/api/v1/events/death", headers={**api.headers(), "Accept-Language": "en"})
    assert assert_error(english, 405)["message"] == "Method Not Allowed"
    assert_error(api.client.delete(f"/api/v1/citizens/{AN}", headers=api.headers()), 405)
    assert api.snapshot() == before


# ------------------------------------------------------------------------------- events and areas


OUTSIDE_EVENTS = [
    ("death", {"pid": DUC, "date_of_death": "2024-01-01"}),
    ("missing", {"pid": DUC, "date_missing": "2024-01-01"}),
    ("marriage", {"pid": DUC, "spouse_pid": HOA, "date": "2024-06-01"}),
    ("divorce", {"pid": DUC, "spouse_pid": HOA, "date": "2024-06-01"}),
    ("temporary-absence", {"pid": DUC, "from_date": "2024-01-01", "until": "2024-02-01", "destination": "Huế"}),
    ("name-change", {"pid": DUC, "full_name": "Lê Văn Đạt", "reason": "x"}),
    ("sex-change", {"pid": DUC, "sex": "female", "reason": "x"}),
    ("correction", {"pid": DUC, "fields": {"phone": "0912345678"}, "reason": "x"}),
]


def test_commune_officer_cannot_record_events_of_people_outside_the_area(api):
    before = api.snapshot()

    def check(kind, body):
        unknown = api.post(kind, {**body, "pid": UNKNOWN}, who="commune")
        hidden = api.post(kind, body, who="commune")
        assert_error(hidden, 404, "not_found", "pid")
        assert hidden.json() == unknown.json()

    each(OUTSIDE_EVENTS, check)
    assert api.snapshot() == before


def test_commune_officer_records_events_of_own_people_and_residence_where_allowed(api):
    api.event("name-change", {"pid": BINH, "full_name": "Trần Thị Bích", "reason": "x"}, who="commune")
    # a newcomer from Hồ Chí Minh City registers permanent residence in Hoàn Kiếm
    api.event("permanent-residence", {"pid": DUC, "commune_code": "00070", "address": "5 Hàng Bạc",
                                      "new_household": True}, who="commune")
    assert api.record(DUC, "commune")["permanent_residence"]["commune_code"] == "00070"
    assert_error(api.get(f"/api/v1/citizens/{DUC}", "province"), 404)  # gone from the province
    # but residence elsewhere is registered by the officers there
    before = api.snapshot()
    assert_error(api.post("temporary-residence", {"pid": AN, "commune_code": "26743", "address": "x",
                                                  "until": IN_A_YEAR}, who="commune"), 403, "forbidden",
                 "commune_code")
    assert_error(api.post("permanent-residence", {"pid": HOA, "commune_code": "26743", "address": "x",
                                                  "new_household": True}, who="commune"), 403, "forbidden",
                 "commune_code")
    assert api.snapshot() == before


# ---------------------------------------------------------------------------- consistency rules


def test_events_keep_households_and_spouses_consistent(api):
    api.event("death", {"pid": AN, "date_of_death": "2024-01-01"})
    binh = api.record(BINH)
    assert binh["marital_status"] == "widowed" and binh["relatives"]["spouse"] is None
    assert binh["household"]["relation_to_head"] == "head"  # the spouse heads the household now
    for child in (CHAU, DUNG):
        assert api.record(child)["household"]["head"]["pid"] == BINH
    an = api.record(AN)
    assert an["status"] == "dead" and an["household"] is None


def test_a_registered_death_leaves_no_spouse_inconsistency(api):
    api.event("death", {"pid": AN, "date_of_death": "2024-01-01"})
    report = api.get("/api/v1/quality").json()
    assert "spouse_not_reciprocal" not in report["totals"], report["totals"]


def test_correcting_a_parents_birth_date_after_a_childs_is_refused(api):
    before = api.snapshot()
    r = api.post("correction", {"pid": AN, "fields": {"date_of_birth": "2014-01-01"}, "reason": "x"})
    assert_error(r, 409, "child_before_parent")
    assert api.snapshot() == before


def test_correcting_the_birth_date_to_before_1900_is_422(api):
    before = api.snapshot()
    r = api.post("correction", {"pid": AN, "fields": {"date_of_birth": "1899-03-04"}, "reason": "x"})
    assert_error(r, 422, "invalid_input", "fields.date_of_birth")
    assert api.snapshot() == before


def test_nul_characters_in_text_are_422_not_500(api):
    before = api.snapshot()
    for kind, body in [
        ("death", {"pid": GIANG, "date_of_death": "2024-01-01", "reason": "a\x00b"}),
        ("correction", {"pid": AN, "fields": {"address": "1\x00 Hàng Bạc"}, "reason": "x"}),
        ("temporary-absence", {"pid": DUNG, "from_date": "2024-01-01", "until": "2024-02-01",
                               "destination": "Huế\x00"}),
    ]:
        r = api.post(kind, body)
        assert r.status_code == 422, (kind, r.status_code, r.text)
    assert api.snapshot() == before


# ---------------------------------------------------------------------------- quality and places


def test_quality_report_per_province(api):
    r = api.get("/api/v1/quality")
    assert r.status_code == 200, r.text
    report = r.json()
    assert set(report) == {"totals", "provinces"}
    by_code = {p["province_code"]: p for p in report["provinces"]}
    assert set(by_code) == {"01", "79"}
    assert (by_code["01"]["population"], by_code["79"]["population"]) == (4, 3)
    assert by_code["01"]["province_name"] == "Thành phố Hà Nội"
    assert by_code["79"]["province_name"] == "Thành phố Hồ Chí Minh"
    # Dung's PID says male (digit 2) but she is recorded female: the "đúng" check finds her
    assert by_code["01"]["checks"]["pid_sex"] == {"kind": "inconsistent", "count": 1, "examples": [DUNG]}
    assert "pid_sex" not in by_code["79"]["checks"]
    assert report["totals"]["pid_sex"] == 1
    # nobody has ethnicity, hometown ... in FAMILY: every record is incomplete
    assert report["totals"]["incomplete"] == 7
    assert sorted(by_code["79"]["checks"]["incomplete"]["examples"]) == sorted(HCMC)

    only = api.get("/api/v1/quality", province="79").json()
    assert [p["province_code"] for p in only["provinces"]] == ["79"]
    assert only["totals"] == {"incomplete": 3}
    mine = api.get("/api/v1/quality", "commune").json()
    assert [(p["province_code"], p["population"]) for p in mine["provinces"]] == [("01", 4)]
    theirs = api.get("/api/v1/quality", "province").json()
    assert [(p["province_code"], p["population"]) for p in theirs["provinces"]] == [("79", 3)]
    assert_error(api.get("/api/v1/quality", province="1"), 422, "invalid_input", "province")


def test_quality_report_follows_a_fix(api):
    api.event("sex-change", {"pid": DUNG, "sex": "male", "reason": "x"})
    assert "pid_sex" not in api.get("/api/v1/quality").json()["totals"]


def test_places_provinces_and_communes(api):
    r = api.client.get("/api/v1/places/provinces")  # public reference data: no token needed
    assert r.status_code == 200
    provinces = r.json()
    assert len(provinces) == 34
    assert len({p["code"] for p in provinces}) == 34
    by_code = {p["code"]: p for p in provinces}
    assert by_code["01"]["name"] == "Thành phố Hà Nội" and by_code["01"]["predecessors"] == ["001"]
    assert sorted(by_code["79"]["predecessors"]) == ["074", "077", "079"]
    assert sorted(by_code["92"]["predecessors"]) == ["092", "093", "094"]
    communes = api.client.get("/api/v1/places/provinces/01/communes").json()
    assert {"code": "00070", "name": "Phường Hoàn Kiếm", "kind": "phường", "province_code": "01"} in communes
    assert all(c["province_code"] == "01" and len(c["code"]) == 5 for c in communes)
    assert_error(api.client.get("/api/v1/places/provinces/99/communes"), 404, "not_found", "code")
    assert_error(api.client.get("/api/v1/places/provinces/1/communes"), 422, "invalid_input", "code")


def test_healthz_landing_and_openapi(api):
    assert api.client.get("/healthz").json() == {"status": "ok"}
    assert "Định danh" in api.client.get("/").text
    assert "population register" in api.client.get("/?lang=en").text
    spec = api.client.get("/openapi.json").json()
    kinds = {path.rsplit("/", 1)[1] for path in spec["paths"] if path.startswith("/api/v1/events/")}
    assert kinds == set(KINDS)


def test_search_by_pid_respects_the_area_and_logs_the_read(api):
    r = api.search(pid="001085000001")
    assert r.status_code == 200 and [p["full_name"] for p in r.json()["items"]] == ["Nguyễn Văn An"]
    assert api.access_rows()[-1].action == "search"
    assert api.search("province", pid="001085000001").json()["items"] == []
    assert_error(api.search(pid="00108500000A"), 422, "invalid_input", "pid")
