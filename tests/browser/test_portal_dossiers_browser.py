"""A citizen files a dossier on the demo portal in a real browser (Debian's Chromium, headless,
driven by Playwright) against a live server: log in, open "Dịch vụ công", click the temporary
absence declaration, fill what the form asks (the register's values are shown, not asked), submit,
see the dossier's code and status, then find it in "Hồ sơ của tôi"."""

from __future__ import annotations

import re

import sqlalchemy as sa

from dinhdanh.dossiers.tables import dossiers
from tests.browser.test_oidc_browser import CHROMIUM, page, pytestmark  # noqa: F401  (the fixture, the skip)
from tests.oidc_support import BINH, PASSCODE, LiveServer, load_people


def test_a_citizen_files_a_temporary_absence_in_the_browser(sqlite_engine, tmp_path, page):  # noqa: F811
    load_people(sqlite_engine, tmp_path)
    with LiveServer(sqlite_engine) as server:
        page.goto(f"{server.url}/portal")
        page.click("#login")
        page.wait_for_url("**/login?*")
        page.fill("input[name=username]", BINH)
        page.fill("input[name=password]", PASSCODE)
        page.click("button[type=submit]")
        page.wait_for_url("**/consent?*")
        page.click("button[value=allow]")
        page.wait_for_url(f"{server.url}/portal")

        page.click("#services")
        page.wait_for_url("**/portal/services*")
        assert page.locator("h1").inner_text() == "Dịch vụ công trực tuyến"
        page.click("tr[data-code='1.003677'] td.name a")
        page.wait_for_url("**/portal/services/1.003677/file*")
        assert page.locator("#service-name").inner_text() == "Khai báo tạm vắng"
        # what the register holds is shown with its source, not asked
        assert page.locator("output[id='f-applicant.full_name']").inner_text() == "Trần Thị Bình"
        assert "Từ Cơ sở dữ liệu quốc gia về dân cư" in page.locator("[data-field='applicant']").inner_text()
        assert page.locator("input[name='applicant.pid']").count() == 0

        # the browser refuses what the schema refuses before anything is sent: five digits for a commune
        page.fill("input[name='absent_from']", "2026-12-20")
        page.fill("input[name='absent_until']", "2027-03-20")
        page.fill("input[name='destination.province_code']", "79")
        page.fill("input[name='destination.commune_code']", "2674")
        page.fill("input[name='destination.street']", "12 Lê Lợi")
        page.fill("input[name='reason']", "Đi làm việc tại Thành phố Hồ Chí Minh")
        page.select_option("select[name='case']", "military_age")
        assert page.evaluate("document.getElementById('dossier-form').checkValidity()") is False
        page.fill("input[name='destination.commune_code']", "26743")
        page.click("#submit")
        page.wait_for_url(re.compile(r".*/portal/dossiers/\d+\?lang=vi$"))

        with sqlite_engine.connect() as conn:
            filed = conn.execute(sa.select(dossiers)).one()
        assert page.locator("#code").inner_text() == filed.code
        assert page.locator("#status").inner_text() == "Đã nộp"
        assert page.locator("#due").inner_text() == filed.due_date.strftime("%d/%m/%Y")

        page.click("#my-dossiers")
        page.wait_for_url("**/portal/dossiers?*")
        row = page.locator("tr.dossier", has_text=filed.code)
        assert row.count() == 1
        assert row.locator(".service").inner_text() == "Khai báo tạm vắng"
        assert row.locator(".status").inner_text() == "Đã nộp"
