"""An officer works a dossier in a real browser (Chromium from ``$DINHDANH_TEST_CHROMIUM``, headless,
driven by Playwright) against a live server: sign in to the console at level 2 (passcode, then the
TOTP second factor), open the worklist, open the dossier of the area, receive it."""

from __future__ import annotations

import os
import re

import pytest
import sqlalchemy as sa

from dinhdanh.dossiers import service
from dinhdanh.dossiers.tables import dossiers
from dinhdanh.officers import credentials
from dinhdanh.officers.service import add_officer
from dinhdanh.registry.tables import persons
from tests.e2e.test_officer_console import ABSENCE, absence
from tests.oidc_support import AN, BINH, PASSCODE, LiveServer, load_people

CHROMIUM = os.environ.get("DINHDANH_TEST_CHROMIUM", "")
pytestmark = pytest.mark.skipif(not CHROMIUM or not os.path.exists(CHROMIUM),
                                reason="DINHDANH_TEST_CHROMIUM is unset or missing: the browser tests need Chromium")


@pytest.fixture
def page():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--no-sandbox", "--disable-dev-shm-usage"])
        context = browser.new_context(locale="vi-VN")
        page = context.new_page()
        page.set_default_timeout(15_000)
        yield page
        context.close()
        browser.close()


def test_an_officer_signs_in_and_receives_a_dossier(sqlite_engine, tmp_path, page):
    people = load_people(sqlite_engine, tmp_path)
    with sqlite_engine.begin() as conn:
        officer, _ = add_officer(conn, "Nguyễn Văn An", "commune", "00070", roles=("dossier_officer",))
        credentials.link_account(conn, officer.officer_id, AN, actor="test")
        binh = conn.execute(sa.select(persons.c.person_id).where(persons.c.pid == BINH)).scalar_one()
        filed = service.file(conn, binh, ABSENCE, absence(BINH, "Trần Thị Bình", "1987-05-06"))
    with LiveServer(sqlite_engine) as server:
        page.goto(f"{server.url}/officer")
        assert page.locator("h1").inner_text() == "Bàn làm việc của cán bộ: hồ sơ dịch vụ công"
        page.click("#login")
        page.wait_for_url("**/login?*")
        page.fill("input[name=username]", AN)
        page.fill("input[name=password]", PASSCODE)
        page.click("button[type=submit]")
        page.wait_for_url("**/login/step-up?*")  # level 2, always, for the officer scope
        page.fill("#totp", people.totp())
        page.click("button[type=submit]")
        page.wait_for_url(re.compile(r".*/(consent\?.*|officer/dossiers\?lang=vi)$"))
        if "/consent" in page.url:
            page.click("button[value=allow]")
        page.wait_for_url(f"{server.url}/officer/dossiers?lang=vi")
        assert page.locator("#officer-name").inner_text() == "Nguyễn Văn An"
        cookie = next(c for c in page.context.cookies() if c["name"] == "dd_officer")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and cookie["path"] == "/officer"

        row = page.locator("tr.dossier", has_text=filed["code"])
        assert row.count() == 1
        assert row.locator(".applicant").inner_text() == "Trần Thị Bình"
        assert row.locator(".service").inner_text().startswith("Khai báo tạm vắng")
        assert row.locator(".status").inner_text() == "Đã nộp, chờ tiếp nhận"
        row.locator(".code a").click()
        page.wait_for_url(f"**/officer/dossiers/{filed['dossier_id']}?lang=vi")
        assert page.locator("#code").inner_text() == filed["code"]
        page.click("#do-receive")
        page.wait_for_url(f"**/officer/dossiers/{filed['dossier_id']}?lang=vi&done=receive")
        assert page.locator("#status").inner_text() == "Đã tiếp nhận, đang giải quyết"
        assert page.locator("li.document[data-kind=receipt]").count() == 1
        with sqlite_engine.connect() as conn:
            assert conn.execute(sa.select(dossiers.c.status)).scalar_one() == "received"
