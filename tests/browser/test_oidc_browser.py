"""A person logs in to the demo portal in a real browser (Debian's Chromium, headless, driven by
Playwright's sync API) against a live server: open /portal, click log in, fill the PID and the
passcode, allow the consent, land back on the portal showing the name."""

from __future__ import annotations

import os

import pytest

from tests.oidc_support import BINH, PASSCODE, LiveServer, load_people

CHROMIUM = "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                reason=f"{CHROMIUM} is missing: install Debian's chromium to run the browser tests")


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


def test_log_in_to_the_portal(sqlite_engine, tmp_path, page):
    load_people(sqlite_engine, tmp_path)
    with LiveServer(sqlite_engine) as server:
        page.goto(f"{server.url}/portal")
        assert page.locator("h1").inner_text() == "Cổng Dịch vụ công (bản mẫu)"
        page.click("#login")
        page.wait_for_url("**/login?*")
        assert page.get_attribute("input[name=username]", "autocomplete") == "username"
        assert page.get_attribute("input[name=password]", "autocomplete") == "current-password"
        page.fill("input[name=username]", BINH)
        page.fill("input[name=password]", PASSCODE)
        page.click("button[type=submit]")
        page.wait_for_url("**/consent?*")
        assert "Họ, chữ đệm và tên" in page.locator("#claims").inner_text()
        page.click("button[value=allow]")
        page.wait_for_url(f"{server.url}/portal")
        assert page.locator("#name").inner_text() == "Trần Thị Bình"
        assert page.locator("#level").inner_text() == "1"
        # the session cookie is HttpOnly and SameSite=Lax
        cookie = next(c for c in page.context.cookies() if c["name"] == "dd_session")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
        page.click("#logout")
        page.wait_for_selector("#login")
