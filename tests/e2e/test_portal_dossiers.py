"""The demo portal's online public services over HTTP (a live server, on SQLite and PostgreSQL): a
citizen logs in to the portal, opens the catalogue, files a temporary absence declaration through
the form drawn from the service's JSON Schema, lands on the dossier's page and finds it in "Hồ sơ
của tôi". A form with a bad date shows the API's problem next to the field and files nothing; a
POST without the CSRF token is refused; a token the API no longer takes asks to log in again."""

from __future__ import annotations

import datetime as dt
import html
import re

import httpx
import pytest
import sqlalchemy as sa

from dinhdanh.dossiers.tables import dossiers
from dinhdanh.officers.service import add_officer
from dinhdanh.web import portal
from tests.oidc_support import BINH, Browser, LiveServer, load_people

ABSENCE = "1.003677"  # Khai báo tạm vắng: 1 working day, free


@pytest.fixture
def live(engine, tmp_path):
    load_people(engine, tmp_path)
    with LiveServer(engine) as server:
        yield server


def logged_in(http: httpx.Client) -> Browser:
    browser = Browser(http)
    assert browser.get("/portal/login") is None
    assert browser.login(BINH) is None  # login, consent, the portal's callback, the portal
    assert browser.page.url.path == "/portal" and 'id="name">Trần Thị Bình<' in browser.page.text
    return browser


def csrf_of(page: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert m, page
    return html.unescape(m.group(1))


def absence_form(**over) -> dict:
    form = {"absent_from": "2026-12-20", "absent_until": "2027-03-20", "destination.province_code": "79",
            "destination.commune_code": "26743", "destination.street": "12 Lê Lợi",
            "reason": "Đi làm việc tại Thành phố Hồ Chí Minh", "case": "military_age"}
    form.update(over)
    return form


def count(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(dossiers)).scalar_one()


def test_a_citizen_files_a_temporary_absence_through_the_portal(live, engine):
    with httpx.Client(base_url=live.url, follow_redirects=False, timeout=60) as http:
        browser = logged_in(http)
        home = browser.page.text
        assert 'id="services" href="/portal/services' in home and 'id="my-dossiers"' in home

        r = http.get("/portal/services")
        assert r.status_code == 200 and "Dịch vụ công trực tuyến" in r.text
        row = re.search(r'<tr class="service" data-code="1\.003677">(.*?)</tr>', r.text, re.S).group(1)
        assert "Khai báo tạm vắng" in row and "Công an cấp xã" in row and "Miễn phí" in row
        assert "1 ngày làm việc" in row and "Toàn trình" in row
        assert f'href="/portal/services/{ABSENCE}/file?lang=vi"' in row

        r = http.get(f"/portal/services/{ABSENCE}/file")
        assert r.status_code == 200, r.text
        page = r.text
        # the register's values shown read-only with their source, not as inputs
        assert re.search(r'<output id="f-applicant\.full_name"[^>]*>Trần Thị Bình</output>', page)
        assert "Từ Cơ sở dữ liệu quốc gia về dân cư" in page
        assert 'name="applicant.full_name" value' not in page and 'name="applicant.pid" value' not in page
        # the rest drawn from the schema: dates, a nested object, an enum with its labels
        assert 'id="f-absent_from" name="absent_from" value="" type="date"' in page
        assert re.search(r'name="destination\.commune_code"[^>]*pattern="\[0-9\]\{5\}"', page)
        assert 'value="military_age"' in page and "Người đi khỏi xã từ 12 tháng liên tục" in page
        token = csrf_of(page)

        # a bad date: the API's problem next to the field, what was typed kept, nothing filed
        r = http.post(f"/portal/services/{ABSENCE}/file",
                      data={"csrf_token": token, **absence_form(absent_from="2026-02-30")})
        assert r.status_code == 422, r.text
        assert re.search(r'<div class="field invalid" data-field="absent_from">.*?<p class="problem" role="alert" '
                         r'data-field="absent_from">[^<]+</p>', r.text, re.S), r.text
        assert 'value="12 Lê Lợi"' in r.text and 'value="2026-02-30"' in r.text
        assert count(engine) == 0

        # without the CSRF token, or with another: refused, nothing filed
        assert http.post(f"/portal/services/{ABSENCE}/file", data=absence_form()).status_code == 403
        assert http.post(f"/portal/services/{ABSENCE}/file",
                         data={"csrf_token": token[:-2] + "xx", **absence_form()}).status_code == 403
        assert count(engine) == 0

        # filed: 303 to the dossier's page
        r = http.post(f"/portal/services/{ABSENCE}/file", data={"csrf_token": token, **absence_form()})
        assert r.status_code == 303, r.text
        location = r.headers["location"]
        assert re.match(r"^/portal/dossiers/\d+\?lang=vi$", location)
        with engine.connect() as conn:
            row = conn.execute(sa.select(dossiers)).one()
        assert row.service_code == ABSENCE and row.status == "submitted"
        assert row.data["applicant"]["full_name"] == "Trần Thị Bình" and row.data["applicant"]["pid"] == BINH
        assert row.data["destination"] == {"province_code": "79", "commune_code": "26743", "street": "12 Lê Lợi"}
        assert row.data["case"] == "military_age" and row.data["absent_from"] == "2026-12-20"

        r = http.get(location)
        assert r.status_code == 200
        assert f'<span id="code">{row.code}</span>' in r.text
        assert re.search(r'id="status" data-status="submitted">Đã nộp<', r.text)
        assert f'id="due">{row.due_date.strftime("%d/%m/%Y")}<' in r.text
        assert 'class="action">Nộp hồ sơ<' in r.text and 'id="withdraw"' in r.text

        r = http.get("/portal/dossiers")
        assert r.status_code == 200 and "Hồ sơ của tôi" in r.text
        listed = re.search(rf'<tr class="dossier" data-id="{row.dossier_id}" data-status="submitted">(.*?)</tr>',
                           r.text, re.S).group(1)
        assert row.code in listed and "Khai báo tạm vắng" in listed and "Đã nộp" in listed

        # what is not there is a 404 page, never a 500 (another's dossier is not there either)
        for path in ("/portal/dossiers/abc", "/portal/dossiers/%C2%B2", f"/portal/dossiers/{row.dossier_id + 999}",
                     "/portal/services/9.999999/file"):
            r = http.get(path)
            assert r.status_code == 404 and 'id="not-found"' in r.text, path

        # the commune police receive it: the receipt is listed with its public verification page
        with engine.begin() as conn:
            _, officer = add_officer(conn, "Cán bộ Công an phường Hoàn Kiếm", "commune", row.place_commune,
                                     roles=["dossier_officer"])
        r = http.post(f"/api/v1/dossiers/{row.dossier_id}/actions", json={"action": "receive"},
                      headers={"Authorization": f"Bearer {officer}"})
        assert r.status_code == 200, r.text
        r = http.get(location)
        receipt = re.search(r'<li class="document" data-kind="receipt">Giấy tiếp nhận hồ sơ và hẹn trả kết quả '
                            r'\(\d\d/\d\d/\d{4} \d\d:\d\d\):\s*<a href="(/results/[A-Z2-7]{20})\?lang=vi"', r.text)
        assert receipt, r.text
        assert http.get(receipt.group(1)).status_code == 200
        assert 'data-status="received">Đã tiếp nhận, đang giải quyết<' in r.text

        # English on asking
        r = http.get(location.replace("lang=vi", "lang=en"))
        assert 'data-status="received">Received, being processed<' in r.text

        # withdrawn with the CSRF token (not without)
        one = location.split("?")[0]
        assert http.post(f"{one}/withdraw", data={}).status_code == 403
        r = http.post(f"{one}/withdraw", data={"csrf_token": token, "reason": "Hoãn chuyến đi"})
        assert r.status_code == 303
        r = http.get(r.headers["location"])
        assert 'data-status="withdrawn"' in r.text and 'id="withdraw"' not in r.text and "Hoãn chuyến đi" in r.text


def test_an_expired_token_asks_to_log_in_again_and_no_login_goes_home(live):
    with httpx.Client(base_url=live.url, follow_redirects=False, timeout=60) as http:
        r = http.get("/portal/services")
        assert r.status_code == 303 and r.headers["location"].startswith("/portal")
        assert http.get("/portal").status_code == 200  # the portal's client registered
        settings = live.app.state.portal_clients[live.url]
        user = {"name": "Trần Thị Bình", "sub": "x"}
        http.cookies.set(portal.COOKIE, portal._pack(settings, {"user": user, "access_token": "no-such-token"}),
                         path="/portal")
        assert http.get("/portal/services").status_code == 200  # the catalogue needs no token
        for path in ("/portal/dossiers", "/portal/dossiers/1",
                     f"/portal/services/{ABSENCE}/file"):
            r = http.get(path)
            assert r.status_code == 401, (path, r.status_code)
            assert "Phiên đăng nhập đã hết hạn: hãy đăng nhập lại." in r.text


def test_a_linked_group_files_the_procedures_chosen(live, engine):
    """3.000722 (birth, permanent residence, health insurance card; the child's ID card optional):
    the mandatory procedures come ticked, a choice without one of them is the API's problem next to
    the choice, and the group files one sub-dossier per procedure chosen."""
    with httpx.Client(base_url=live.url, follow_redirects=False, timeout=60) as http:
        logged_in(http)
        r = http.get("/portal/services/3.000722/file")
        assert r.status_code == 200
        boxes = dict(re.findall(r'<input type="checkbox" name="procedures" value="(\w+)"([^>]*)>', r.text))
        assert set(boxes) == {"birth_registration", "permanent_residence", "health_insurance_card", "id_card"}
        assert all("checked required" in boxes[k] for k in ("birth_registration", "permanent_residence",
                                                            "health_insurance_card"))
        assert "checked" not in boxes["id_card"]
        assert "Cấp thẻ bảo hiểm y tế cho trẻ em dưới 6 tuổi" in r.text  # the group's names label the choice
        born = (dt.date.today() - dt.timedelta(days=10)).isoformat()
        form = {"csrf_token": csrf_of(r.text), "applicant_role": "mother", "child.full_name": "Nguyễn Minh Khang",
                "child.date_of_birth": born, "child.sex": "male", "child.ethnicity": "Kinh",
                "child.place_of_birth": "Bệnh viện Phụ sản Hà Nội", "residence.with": "mother",
                "residence.relation_to_head": "child", "health_insurance.initial_care_facility": "Bệnh viện Xanh Pôn",
                "delivery.method": "electronic"}

        r = http.post("/portal/services/3.000722/file",
                      data={**form, "procedures": ["birth_registration", "health_insurance_card"]})
        assert r.status_code == 422
        assert re.search(r'<p class="problem" role="alert" data-field="procedures">', r.text)
        assert re.search(r'value="permanent_residence"(?! checked)', r.text)  # the choice as it was sent
        assert count(engine) == 0

        chosen = ["birth_registration", "permanent_residence", "health_insurance_card", "id_card"]
        r = http.post("/portal/services/3.000722/file", data={**form, "procedures": chosen})
        assert r.status_code == 303, r.text
        with engine.connect() as conn:
            group = conn.execute(sa.select(dossiers).where(dossiers.c.kind == "group")).one()
            children = conn.execute(sa.select(dossiers.c.procedure).where(dossiers.c.parent_id == group.dossier_id)
                                    ).scalars().all()
        assert group.data["procedures"] == chosen and group.data["child"]["sex"] == "male"
        assert group.data["applicant"]["pid"] == BINH
        assert sorted(children) == sorted(chosen)
        r = http.get(r.headers["location"])
        assert f'<span id="code">{group.code}</span>' in r.text and r.text.count('<tr class="child"') == 4
        assert "Chờ kết quả thủ tục liên thông trước" in r.text


def test_the_form_is_rebuilt_typed_from_its_dotted_names():
    """No database: the renderer's widgets and the JSON rebuilt from a posted form, per the schema."""
    from starlette.datastructures import FormData

    from dinhdanh.web.portal_dossiers import TEXT, build_fields, rebuild

    schema = {"type": "object", "required": ["count", "who", "items"], "properties": {
        "who": {"type": "object", "required": ["pid"], "properties": {
            "pid": {"type": "string", "pattern": "^[0-9]{12}$", "x-source": "register:pid"},
            "name": {"type": "string"}}},
        "count": {"type": "integer", "minimum": 1},
        "area": {"type": "number"},
        "agree": {"type": "boolean"},
        "items": {"type": "array", "uniqueItems": True, "items": {"enum": ["a", "b", "c"]}},
        "members": {"type": "array", "items": {"type": "string", "pattern": "^[0-9]{12}$"}},
        "history": {"type": "array", "items": {"type": "object", "properties": {
            "from": {"type": "string", "format": "date"}, "place": {"type": "string"}}}},
        "later": {"type": "object", "properties": {"day": {"type": "string", "format": "date"}}},
        "nationality": {"const": "VNM"},
        "kind": {"enum": ["x", "y"], "x-labels": {"x": "Ích", "y": "Y"}}}}
    prefilled = {"who.pid": {"field": "who.pid", "value": "001187000002", "source": "register:pid"}}
    fields = {f["path"]: f for f in build_fields(schema, prefilled, TEXT["vi"])}
    assert fields["who"]["kind"] == "object" and fields["who"]["children"][0]["kind"] == "prefilled"
    assert fields["who"]["children"][0]["source"] == "Từ Cơ sở dữ liệu quốc gia về dân cư"
    assert fields["count"]["kind"] == "integer" and fields["count"]["required"]
    assert fields["items"]["kind"] == "choices" and fields["agree"]["kind"] == "boolean"
    assert fields["kind"]["radios"] and [o["label"] for o in fields["kind"]["options"]] == ["Ích", "Y"]
    assert fields["history"]["kind"] == "rows" and fields["history"]["rows"][1]["path"] == "history.1"
    assert fields["members"]["html_pattern"] == "[0-9]{12}"

    form = FormData([("count", "3"), ("area", "12,5"), ("agree", "on"), ("items", "c"), ("items", "a"),
                     ("members", "001187000002"), ("members", ""), ("history.0.from", "2020-01-01"),
                     ("history.0.place", "Hà Nội"), ("history.1.from", ""), ("later.day", ""), ("kind", "y"),
                     ("who.pid", "079193000006"), ("who.name", " Bình ")])
    assert rebuild(schema, form, prefilled) == {
        "who": {"pid": "001187000002", "name": "Bình"},  # the prefilled value, not the posted one
        "count": 3, "area": 12.5, "agree": True, "items": ["a", "c"], "members": ["001187000002"],
        "history": [{"from": "2020-01-01", "place": "Hà Nội"}], "kind": "y", "nationality": "VNM"}
    # not a number: kept as typed for the API to name; empty optional fields omitted, required ones present
    assert rebuild(schema, FormData([("count", "ba")]), {}) == {"who": {}, "count": "ba", "items": [],
                                                                 "nationality": "VNM"}
