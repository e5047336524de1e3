"""The officers' console over HTTP (a live server, on SQLite and PostgreSQL): officer An of Phường
Hoàn Kiếm (00070) signs in through the platform's provider at level 2 (passcode, then TOTP), sees
the dossiers of their area only (a dossier of Bến Thành is a 404 showing nothing, and nothing is
audited for it), receives then approves a temporary absence declaration (the register takes the
absence, as through the API), is refused an invalid transition (409 naming the state) and a refusal
without a reason (422 naming the field), and a POST without the CSRF token changes nothing. A
citizen who is no officer cannot sign in. English with ``?lang=en``."""

from __future__ import annotations

import html
import re
import time

import httpx
import pytest
import sqlalchemy as sa

from dinhdanh.audit.tables import access_log
from dinhdanh.dossiers import service
from dinhdanh.dossiers.tables import dossiers
from dinhdanh.officers import credentials
from dinhdanh.officers.service import add_officer
from dinhdanh.registry.tables import persons
from dinhdanh.web import officer_console
from tests.oidc_support import AN, BINH, DUC, HOA, PASSCODE, Browser, LiveServer, load_people

ABSENCE = "1.003677"  # Khai báo tạm vắng: free, 1 working day, the register's temporary absence on approval


def absence(pid: str, name: str, born: str, **over) -> dict:
    form = {"applicant": {"pid": pid, "full_name": name, "date_of_birth": born},
            "absent_from": "2026-12-20", "absent_until": "2027-03-20",
            "destination": {"province_code": "79", "commune_code": "26743", "street": "12 Lê Lợi"},
            "reason": "Đi làm việc tại Thành phố Hồ Chí Minh", "case": "military_age"}
    form.update(over)
    return form


class Desk:
    """People, An's officer (dossier officer of 00070, linked to An's level-2 account), three filed
    dossiers (Bình's and An's in Hoàn Kiếm, Hoa's in Bến Thành) and the live server."""

    def __init__(self, engine, tmp_path):
        self.engine = engine
        self.people = load_people(engine, tmp_path)
        with engine.begin() as conn:
            self.officer, _ = add_officer(conn, "Nguyễn Văn An (cán bộ tiếp nhận)", "commune", "00070",
                                          roles=("dossier_officer",))
            credentials.link_account(conn, self.officer.officer_id, AN, actor="test")
            self.person = {pid: conn.execute(sa.select(persons.c.person_id).where(persons.c.pid == pid)
                                             ).scalar_one() for pid in (AN, BINH, HOA)}
            self.binh = service.file(conn, self.person[BINH], ABSENCE,
                                     absence(BINH, "Trần Thị Bình", "1987-05-06"))["dossier_id"]
            self.an = service.file(conn, self.person[AN], ABSENCE,
                                   absence(AN, "Nguyễn Văn An", "1985-03-04"))["dossier_id"]
            self.hoa = service.file(conn, self.person[HOA], ABSENCE,
                                    absence(HOA, "Phạm Thị Hoa", "1993-11-12",
                                            destination={"province_code": "01", "commune_code": "00070",
                                                         "street": "1 Hàng Bài"}))["dossier_id"]
        self._step = 0

    def totp(self) -> str:
        assert self._step < 3  # each code is taken once: the steps before, at and after now
        self._step += 1
        return self.people.totp(time.time() + 30 * (self._step - 2))

    def row(self, dossier_id: int):
        with self.engine.connect() as conn:
            return conn.execute(sa.select(dossiers).where(dossiers.c.dossier_id == dossier_id)).one()

    def audited(self, pid: str) -> list[str]:
        with self.engine.connect() as conn:
            return list(conn.execute(sa.select(access_log.c.action).where(
                access_log.c.person_id == self.person[pid], access_log.c.actor == self.officer.label)
                .order_by(access_log.c.access_id)).scalars())


@pytest.fixture
def desk(engine, tmp_path) -> Desk:
    return Desk(engine, tmp_path)


def signed_in(http: httpx.Client, desk: Desk) -> Browser:
    browser = Browser(http)
    assert browser.get("/officer/login") is None
    assert 'name="password"' in browser.page.text
    assert browser.submit(username=AN, password=PASSCODE) is None
    assert 'action="/login/step-up"' in browser.page.text  # level 2: the second factor, always
    if browser.submit(totp=desk.totp()) is None and 'action="/consent"' in browser.page.text:
        browser.submit(decision="allow")
    assert browser.page.url.path == "/officer/dossiers", browser.page.text[:2000]
    return browser


def csrf_of(page: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert m, page
    return html.unescape(m.group(1))


def test_an_officer_works_the_dossiers_of_their_area(desk, engine):
    with LiveServer(engine) as live, httpx.Client(base_url=live.url, follow_redirects=False, timeout=60) as http:
        browser = signed_in(http, desk)
        page = browser.page
        assert page.status_code == 200 and "Danh sách hồ sơ" in page.text
        assert 'id="officer-name">Nguyễn Văn An (cán bộ tiếp nhận)<' in page.text
        # the session: sealed, HTTP-only, SameSite, the console's path only
        jar = next(c for c in http.cookies.jar if c.name == "dd_officer")
        assert jar.path == "/officer" and jar.has_nonstandard_attr("HttpOnly")
        assert (jar.get_nonstandard_attr("SameSite") or jar.get_nonstandard_attr("samesite")).lower() == "lax"
        assert "Nguy" not in http.cookies["dd_officer"] and "officer_id" not in http.cookies["dd_officer"]

        # the worklist: the area's dossiers only, with the columns asked for
        rows = dict(re.findall(r'<tr class="dossier[^"]*" data-id="(\d+)"[^>]*>(.*?)</tr>', page.text, re.S))
        assert set(rows) == {str(desk.binh), str(desk.an)}
        binh = desk.row(desk.binh)
        row = rows[str(desk.binh)]
        assert binh.code in row and "Khai báo tạm vắng" in row and "Trần Thị Bình" in row
        assert "Đã nộp, chờ tiếp nhận" in row and binh.due_date.strftime("%d/%m/%Y") in row
        assert desk.audited(BINH) == ["dossier_list"] and desk.audited(HOA) == []

        # filters, as the API's: status, service, overdue
        r = http.get("/officer/dossiers", params={"status": "received"})
        assert r.status_code == 200 and 'id="empty"' in r.text
        r = http.get("/officer/dossiers", params={"service": ABSENCE, "status": "submitted"})
        assert r.text.count('<tr class="dossier') == 2
        assert 'id="empty"' in http.get("/officer/dossiers", params={"overdue": "true"}).text
        r = http.get("/officer/dossiers", params={"status": "lost"})
        assert r.status_code == 422 and 'data-field="status"' in r.text and "Trần Thị Bình" not in r.text

        # another area's dossier: a 404 showing nothing of it, and nothing audited for it
        hoa = desk.row(desk.hoa)
        for path in (f"/officer/dossiers/{desk.hoa}", f"/officer/dossiers/{desk.hoa + 999}", "/officer/dossiers/x"):
            r = http.get(path)
            assert r.status_code == 404 and 'id="not-found"' in r.text, path
            assert hoa.code not in r.text and "Phạm Thị Hoa" not in r.text
        token = csrf_of(http.get(f"/officer/dossiers/{desk.binh}").text)
        r = http.post(f"/officer/dossiers/{desk.hoa}/actions", data={"csrf_token": token, "action": "receive"})
        assert r.status_code == 404 and hoa.code not in r.text
        assert desk.row(desk.hoa).status == "submitted" and desk.audited(HOA) == []

        # one dossier: data, history, the actions its state allows
        one = f"/officer/dossiers/{desk.binh}"
        r = http.get(one)
        assert r.status_code == 200
        assert f'<span id="code">{binh.code}</span>' in r.text and 'id="applicant">Trần Thị Bình<' in r.text
        assert 'data-field="destination.street"' in r.text and "12 Lê Lợi" in r.text
        assert 'id="form-receive"' in r.text and 'id="form-refuse"' in r.text and 'id="form-approve"' not in r.text
        assert 'id="no-attachments"' in r.text
        assert desk.audited(BINH)[-2:] == ["dossier_read", "dossier_attachments"]

        # an invalid transition: 409 naming the state, nothing changed
        r = http.post(f"{one}/actions", data={"csrf_token": token, "action": "approve"})
        assert r.status_code == 409
        assert 'data-state="submitted"' in r.text and "Đã nộp, chờ tiếp nhận (submitted)" in r.text
        assert desk.row(desk.binh).status == "submitted"

        # without the CSRF token, or with another: refused, nothing changed
        assert http.post(f"{one}/actions", data={"action": "receive"}).status_code == 403
        assert http.post(f"{one}/actions", data={"action": "receive", "csrf_token": token[:-2] + "xx"}
                         ).status_code == 403
        assert desk.row(desk.binh).status == "submitted"

        # received: a redirect back to the dossier, the receipt with its public check
        r = http.post(f"{one}/actions", data={"csrf_token": token, "action": "receive"})
        assert r.status_code == 303 and r.headers["location"] == f"{one}?lang=vi&done=receive"
        r = http.get(r.headers["location"])
        assert 'data-status="received">Đã tiếp nhận, đang giải quyết<' in r.text and 'id="notice"' in r.text
        assert re.search(r'<li class="document" data-kind="receipt">.*?<a href="/results/[A-Z2-7]{20}\?lang=vi"',
                         r.text, re.S)
        assert 'id="form-approve"' in r.text and 'id="form-receive"' not in r.text
        assert desk.row(desk.binh).status == "received"

        # approved: the register takes the temporary absence, as through the API; the result is linked
        r = http.post(f"{one}/actions", data={"csrf_token": token, "action": "approve", "reason": ""})
        assert r.status_code == 303, r.text
        done = desk.row(desk.binh)
        assert done.status == "approved" and done.result_code and done.effect["event"] == "temporary-absence"
        with engine.connect() as conn:
            person = conn.execute(sa.select(persons).where(persons.c.pid == BINH)).one()
        assert person.absent_from.isoformat() == "2026-12-20" and person.absent_until.isoformat() == "2027-03-20"
        r = http.get(one)
        assert f'href="/results/{done.result_code}?lang=vi" id="result"' in r.text
        assert http.get(f"/results/{done.result_code}").status_code == 200
        assert 'id="no-actions"' in r.text
        assert {"dossier_receive", "dossier_approve"} <= set(desk.audited(BINH))

        # a refusal without a reason: 422 naming the field, nothing changed; with one, refused
        other = f"/officer/dossiers/{desk.an}"
        r = http.post(f"{other}/actions", data={"csrf_token": token, "action": "refuse", "reason": "  "})
        assert r.status_code == 422
        assert re.search(r'<p class="problem" data-field="reason" data-code="reason_required">Lý do: Cần nêu lý do\.',
                         r.text), r.text
        assert re.search(r'<p class="problem" role="alert" data-field="reason">', r.text)
        assert desk.row(desk.an).status == "submitted"
        r = http.post(f"{other}/actions", data={"csrf_token": token, "action": "extend", "new_due_date": "20-12"})
        assert r.status_code == 422 and 'data-field="new_due_date"' in r.text
        r = http.post(f"{other}/actions", data={"csrf_token": token, "action": "fly"})
        assert r.status_code == 422 and 'data-field="action"' in r.text
        r = http.post(f"{other}/actions", data={"csrf_token": token, "action": "refuse",
                                                "reason": "Không thuộc trường hợp phải khai báo tạm vắng"})
        assert r.status_code == 303
        assert desk.row(desk.an).status == "refused"

        # English on asking
        r = http.get("/officer/dossiers", params={"lang": "en"})
        assert r.status_code == 200 and "<h1>Dossiers</h1>" in r.text and 'lang="en"' in r.text
        row = dict(re.findall(r'<tr class="dossier[^"]*" data-id="(\d+)"[^>]*>(.*?)</tr>', r.text, re.S))[
            str(desk.binh)]
        assert "Temporary absence declaration" in row and ">Approved<" in row
        r = http.post(f"{other}/actions?lang=en", data={"csrf_token": token, "action": "approve"})
        assert r.status_code == 409 and "Current state: Refused (refused)" in r.text

        # signed out (the menu's form, with the CSRF token): the console sends to its sign-in page
        r = http.post("/officer/logout", data={"csrf_token": token})
        assert r.status_code == 303 and "/logout?" in r.headers["location"]
        assert "dd_officer" not in http.cookies
        r = http.get("/officer/dossiers")
        assert r.status_code == 303 and r.headers["location"].startswith("/officer?")


def test_a_citizen_without_an_officer_role_cannot_sign_in(desk, engine):
    with LiveServer(engine) as live, httpx.Client(base_url=live.url, follow_redirects=False, timeout=60) as http:
        r = http.get("/officer")
        assert r.status_code == 200 and 'id="login"' in r.text and "Bàn làm việc của cán bộ" in r.text
        assert 'id="login"' in http.get("/officer?lang=en").text
        browser = Browser(http)
        assert browser.get("/officer/login") is None
        assert browser.submit(username=DUC, password=PASSCODE) is None  # refused by the provider: back home
        assert browser.page.url.path == "/officer", browser.page.text[:1000]
        assert 'id="error"' in browser.page.text and "không phải của cán bộ" in browser.page.text
        for path in ("/officer/dossiers", f"/officer/dossiers/{desk.binh}"):
            r = http.get(path)
            assert r.status_code == 303 and r.headers["location"].startswith("/officer?")
        r = http.post(f"/officer/dossiers/{desk.binh}/actions", data={"action": "receive"})
        assert r.status_code == 303 and desk.row(desk.binh).status == "submitted"
        # a cookie the console did not seal is no session either
        http.cookies.set("dd_officer", "eyJvZmZpY2VyIjp7Im9mZmljZXJfaWQiOjF9fQ", path="/officer")
        assert http.get("/officer/dossiers").status_code == 303
        assert desk.audited(BINH) == []


def test_revoked_credentials_end_the_console_session(desk, engine):
    with LiveServer(engine) as live, httpx.Client(base_url=live.url, follow_redirects=False, timeout=60) as http:
        signed_in(http, desk)
        assert http.get("/officer/dossiers").status_code == 200
        with engine.begin() as conn:
            credentials.revoke(conn, desk.officer.officer_id)
        r = http.get("/officer/dossiers")
        assert r.status_code == 303 and "error=expired" in r.headers["location"]
        assert live.app.state.officer_console_clients[live.url]["client_id"] == officer_console.CLIENT_ID


def test_an_officer_downloads_the_papers_of_their_area_only(desk, engine):
    """The dossier's page links each attached paper; the link serves the file as the API does
    (checked type, sandboxed, not cached), audited before it is sent; another area's paper, or a
    paper asked for under another dossier, is a 404 serving nothing and auditing nothing."""
    from fpdf import FPDF

    from dinhdanh.dossiers import attachments

    doc = FPDF()
    doc.add_page()
    doc.set_font("helvetica", size=12)
    doc.cell(text="Quyet dinh dong y")
    paper = bytes(doc.output())
    with engine.begin() as conn:
        binh = service.file(conn, desk.person[BINH], ABSENCE,
                            absence(BINH, "Trần Thị Bình", "1987-05-06", case="probation"))["dossier_id"]
        hoa = service.file(conn, desk.person[HOA], ABSENCE,
                           absence(HOA, "Phạm Thị Hoa", "1993-11-12", case="probation",
                                   destination={"province_code": "01", "commune_code": "00070",
                                                "street": "1 Hàng Bài"}))["dossier_id"]
        mine = attachments.add_attachment(conn, desk.people.vault, binh, owner_person_id=desk.person[BINH],
                                          kind="authority_consent", filename="Quyết định đồng ý.pdf", content=paper)
        theirs = attachments.add_attachment(conn, desk.people.vault, hoa, owner_person_id=desk.person[HOA],
                                            kind="authority_consent", filename="hoa.pdf", content=paper)
    link = f"/officer/dossiers/{binh}/attachments/{mine['attachment_id']}"
    with LiveServer(engine) as live, httpx.Client(base_url=live.url, follow_redirects=False, timeout=60) as http:
        with httpx.Client(base_url=live.url, follow_redirects=False, timeout=60) as stranger:
            r = stranger.get(link)
            assert r.status_code != 200 or b"%PDF" not in r.content
        signed_in(http, desk)
        page = http.get(f"/officer/dossiers/{binh}")
        assert page.status_code == 200 and f'href="{link}"' in page.text and "Quyết định đồng ý.pdf" in page.text
        before = desk.audited(BINH)
        r = http.get(link)
        assert r.status_code == 200 and r.content == paper
        assert r.headers["content-type"] == "application/pdf" and r.headers["x-content-type-options"] == "nosniff"
        assert "sandbox" in r.headers["content-security-policy"] and r.headers["cache-control"] == "no-store"
        assert "attachment" in r.headers["content-disposition"] and "UTF-8''" in r.headers["content-disposition"]
        assert desk.audited(BINH) == [*before, "dossier_attachment_read"]
        for path in (f"/officer/dossiers/{hoa}/attachments/{theirs['attachment_id']}",  # another area's
                     f"/officer/dossiers/{binh}/attachments/{theirs['attachment_id']}",  # not this dossier's
                     f"/officer/dossiers/{binh}/attachments/x", f"/officer/dossiers/{binh}/attachments/0"):
            r = http.get(path)
            assert r.status_code == 404 and b"%PDF" not in r.content and "hoa.pdf" not in r.text, path
        assert desk.audited(HOA) == []


# ------------------------------------------------------------------------------ an outsider's attempts


def test_the_console_pages_are_neither_cached_nor_framed(desk, engine):
    """Every page of the console (sign-in, worklist, dossier, its 404, the CSRF refusal) says
    ``no-store`` and refuses to be framed (``X-Frame-Options: DENY``, ``frame-ancestors 'none'``): a
    page of another site cannot lay the console's approve button under a decoy (clickjacking)."""
    with LiveServer(engine) as live, httpx.Client(base_url=live.url, follow_redirects=False, timeout=60) as http:
        answers = [http.get("/officer")]
        signed_in(http, desk)
        answers += [http.get("/officer/dossiers"), http.get(f"/officer/dossiers/{desk.binh}"),
                    http.get(f"/officer/dossiers/{desk.hoa}"),
                    http.post(f"/officer/dossiers/{desk.binh}/actions", data={"action": "receive"})]
        assert [r.status_code for r in answers] == [200, 200, 200, 404, 403]
        for r in answers:
            assert r.headers["cache-control"] == "no-store", r.request.url
            assert r.headers["x-frame-options"] == "DENY", r.request.url
            assert "frame-ancestors 'none'" in r.headers["content-security-policy"], r.request.url
        assert desk.row(desk.binh).status == "submitted"


def test_oversized_ids_and_control_characters_are_a_4xx_never_a_500(desk, engine):
    """Ids of thousands of digits (Python refuses to convert more than 4,300: it was a 500) are the
    console's 404; a NUL in a reason or an item (PostgreSQL refuses to store it: it was a 500) is a
    422 naming the field, and nothing changes."""
    huge = "1" * 5000
    with LiveServer(engine) as live, httpx.Client(base_url=live.url, follow_redirects=False, timeout=60) as http:
        signed_in(http, desk)
        token = csrf_of(http.get(f"/officer/dossiers/{desk.binh}").text)
        for path in (f"/officer/dossiers/{huge}", f"/officer/dossiers/{desk.binh}/attachments/{huge}"):
            r = http.get(path)
            assert r.status_code == 404 and 'id="not-found"' in r.text, path[:40]
        r = http.post(f"/officer/dossiers/{huge}/actions", data={"csrf_token": token, "action": "receive"})
        assert r.status_code == 404 and 'id="not-found"' in r.text
        assert http.get("/officer/dossiers", params={"before": huge}).status_code == 200
        one = f"/officer/dossiers/{desk.binh}/actions"
        r = http.post(one, data={"csrf_token": token, "action": "refuse", "reason": "Không\x00hợp lệ"})
        assert r.status_code == 422 and re.search(r'<p class="problem" data-field="reason" data-code="invalid_input">'
                                                  r'Lý do: Lý do không được chứa ký tự điều khiển\.', r.text), r.text
        r = http.post(one, data={"csrf_token": token, "action": "request_supplement", "items": "Giấy tờ\x00"})
        assert r.status_code == 422 and 'data-field="items"' in r.text
        assert desk.row(desk.binh).status == "submitted" and desk.row(desk.binh).version == 1


def test_an_old_cookie_is_refused_after_the_logout(desk, engine):
    """The console's cookie is no bearer token outliving the logout: the sign-out ends the
    provider's session the ID token named (even if the browser never follows to the provider), and
    a copy of the old cookie is then refused for pages and actions alike; nothing is read or done."""
    with LiveServer(engine) as live, httpx.Client(base_url=live.url, follow_redirects=False, timeout=60) as http:
        signed_in(http, desk)
        token = csrf_of(http.get(f"/officer/dossiers/{desk.binh}").text)
        old = http.cookies["dd_officer"]
        r = http.post("/officer/logout", data={"csrf_token": token})
        assert r.status_code == 303 and "/logout?" in r.headers["location"] and "dd_officer" not in http.cookies
        bye = r.headers["location"]  # not followed yet: the console alone ended the session
        read = len(desk.audited(BINH))
        with httpx.Client(base_url=live.url, follow_redirects=False, timeout=60, cookies={"dd_officer": old}) as copy:
            for path in ("/officer/dossiers", f"/officer/dossiers/{desk.binh}"):
                r = copy.get(path)
                assert r.status_code == 303 and "error=expired" in r.headers["location"], path
            r = copy.post(f"/officer/dossiers/{desk.binh}/actions", data={"csrf_token": token, "action": "receive"})
            assert r.status_code == 303 and "error=expired" in r.headers["location"]
        assert desk.row(desk.binh).status == "submitted" and len(desk.audited(BINH)) == read
        r = http.get(bye)  # the provider's logout then still sends back to the console
        assert r.status_code == 303 and r.headers["location"] == f"{live.url}/officer"


def test_the_sign_in_page_shows_no_words_from_the_link(desk, engine):
    """``/officer?error=...`` names the console's own error codes only: a link cannot make the
    platform's page say a stranger's words (e.g. a phone number to call)."""
    with LiveServer(engine) as live, httpx.Client(base_url=live.url, follow_redirects=False, timeout=60) as http:
        r = http.get("/officer", params={"error": "Tài khoản bị khóa, hãy gọi 0900 123 456"})
        shown = re.search(r'id="error">([^<]*)<', r.text)
        assert r.status_code == 200 and shown, r.text
        assert "0900" not in shown.group(1) and "gọi" not in shown.group(1)
        assert shown.group(1).startswith("Đăng nhập không thành công")
        r = http.get("/officer", params={"error": "expired"})
        assert "Phiên làm việc đã hết hạn" in r.text


def test_a_link_from_another_site_signs_nobody_out(desk, engine):
    """``GET /officer/logout`` (another site's link or image: the SameSite=Lax cookie goes with a
    top-level GET) signs nobody out, neither of the console nor of the provider; the sign-out is the
    menu's form, a POST refused without this session's CSRF token."""
    with LiveServer(engine) as live, httpx.Client(base_url=live.url, follow_redirects=False, timeout=60) as http:
        page = signed_in(http, desk).page
        assert re.search(r'<form method="post" action="/officer/logout" id="logout-form"[^>]*>'
                         r'<input type="hidden" name="csrf_token" value="[^"]+">', page.text)
        token = csrf_of(page.text)
        r = http.get("/officer/logout", headers={"referer": "https://evil.example/"})
        assert r.status_code == 303 and r.headers["location"] == "/officer?lang=vi" and "set-cookie" not in r.headers
        assert http.get("/officer/dossiers").status_code == 200
        for data in ({}, {"csrf_token": token[:-2] + "xx"}):
            r = http.post("/officer/logout", data=data, headers={"origin": "https://evil.example"})
            assert r.status_code == 403 and "set-cookie" not in r.headers
        assert http.get("/officer/dossiers").status_code == 200
        # nor does a link to the sign-in or its callback replace or drop a working sign-in
        for url in ("/officer/login", "/officer/callback?state=x&code=y", "/officer/callback"):
            r = http.get(url, headers={"referer": "https://evil.example/"})
            assert r.status_code == 303 and r.headers["location"].startswith("/officer/dossiers"), (url, r.headers)
            assert "set-cookie" not in r.headers, url
        assert http.get("/officer/dossiers").status_code == 200
        r = http.post("/officer/logout", data={"csrf_token": token})
        assert r.status_code == 303 and "/logout?" in r.headers["location"] and "dd_officer" not in http.cookies
