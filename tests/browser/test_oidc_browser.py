"""A person logs in to the demo portal in a real browser (Debian's Chromium, headless, driven by
Playwright's sync API) against a live server: open /portal, click log in, fill the PID and the
passcode, allow the consent, land back on the portal showing the name."""

from __future__ import annotations

import os

import pytest

from tests.oidc_support import AN, BINH, PASSCODE, LiveServer, load_people

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


def test_a_level_2_login_completes_in_the_browser_with_the_totp_second_factor(sqlite_engine, tmp_path, page):
    """"Đăng nhập mức độ 2": the passcode, then the step-up page asks for the second factor; a
    wrong code is refused on the page, the code pyotp computes from the account's secret (as an
    authenticator app would from the enrolment's totp_uri) completes the login at level 2."""
    people = load_people(sqlite_engine, tmp_path)
    with LiveServer(sqlite_engine) as server:
        page.goto(f"{server.url}/portal")
        page.click("#login2")
        page.wait_for_url("**/login?*")
        page.fill("input[name=username]", AN)
        page.fill("input[name=password]", PASSCODE)
        page.click("button[type=submit]")
        page.wait_for_url("**/login/step-up?*")
        assert page.get_attribute("#totp", "autocomplete") == "one-time-code"
        right = people.totp()
        page.fill("#totp", "000000" if right != "000000" else "111111")
        page.click("button[type=submit]")
        page.wait_for_selector("div.alert[role=alert]")
        page.fill("#totp", people.totp())
        page.click("button[type=submit]")
        page.wait_for_url("**/consent?*")
        page.click("button[value=allow]")
        page.wait_for_url(f"{server.url}/portal")
        assert page.locator("#name").inner_text() == "Nguyễn Văn An"
        assert (page.locator("#level").inner_text(), page.locator("#acr").inner_text()) == ("2", "2")


def test_the_citizen_sees_who_used_her_data_on_the_portal(sqlite_engine, tmp_path, page):
    """The data tracker as a relying party shows it: a bank verified Bình's data and received a
    change notification about her; after logging in to the portal she opens "Ai đã khai thác dữ
    liệu của tôi" and sees the bank, what it did and why, in Vietnamese."""
    from dinhdanh.audit.service import record_access
    from dinhdanh.registry.records import find_person
    from tests.oidc_support import add_partner

    load_people(sqlite_engine, tmp_path)
    bank = add_partner(sqlite_engine, name="Ngân hàng Thử nghiệm", kind="bank")
    with sqlite_engine.begin() as conn:
        binh = find_person(conn, BINH).person_id
        record_access(conn, f"partner:{bank['client_id']}", [binh], "verify", "customer_verification",
                      fields=["full_name", "date_of_birth"], outcome="match")
    with LiveServer(sqlite_engine) as server:
        page.goto(f"{server.url}/portal")
        page.click("#login")
        page.wait_for_url("**/login?*")
        page.fill("input[name=username]", BINH)
        page.fill("input[name=password]", PASSCODE)
        page.click("button[type=submit]")
        page.wait_for_url("**/consent?*")
        assert "nhật ký khai thác dữ liệu" in page.locator("#claims").inner_text()
        page.click("button[value=allow]")
        page.wait_for_url(f"{server.url}/portal")
        page.click("#access-log")
        page.wait_for_url("**/portal/access-log*")
        assert page.locator("h1").inner_text() == "Ai đã khai thác dữ liệu của tôi"
        row = page.locator("tr.entry", has_text="Ngân hàng Thử nghiệm")
        assert row.count() == 1
        assert row.locator(".action").inner_text() == "đối chiếu"
        assert row.locator(".purpose").inner_text() == "Xác minh thông tin khách hàng (ngân hàng)"
        assert row.locator(".fields").inner_text() == "họ, chữ đệm và tên, ngày sinh"
        assert row.locator(".outcome").inner_text() == "khớp"
        page.click("a[href^='/portal/access-log?lang=en']")
        assert page.locator("h1").inner_text() == "Who used my data"
        row = page.locator("tr.entry", has_text="Ngân hàng Thử nghiệm")
        assert row.locator(".action").inner_text() == "check" and row.locator(".outcome").inner_text() == "match"
