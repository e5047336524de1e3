"""Dossier attachments over HTTP on SQLite and PostgreSQL: a citizen (scope ``dinhdanh.dossiers``)
uploads papers to their temporary residence registration as ``multipart/form-data``, lists them and
downloads them byte for byte (a download, typed by content, ``nosniff``); the commune's dossier
officer reads them, in the access log; another citizen and another commune's officer get 404.
Refusals: 11 MB (413 before the body is read, naming ``file``), a file just over 10 MiB inside the
multipart envelope (413), a PNG declared as a PDF, an unknown kind (422 naming the field), a file
after the dossier was received (409). Concurrent uploads over the count limit, on a live server:
exactly the limit accepted."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import unquote

import httpx
import pytest
import sqlalchemy as sa

from dinhdanh.audit.tables import access_log
from dinhdanh.dossiers import attachments
from dinhdanh.officers.service import add_officer
from tests.e2e.test_dossiers_api import DOSSIERS, SCOPE, bearer, error_of, form, op  # noqa: F401 (the fixture)
from tests.e2e.test_oidc_flow import ISSUER
from tests.integration.test_dossier_attachments import image, pdf
from tests.oidc_support import BINH, HOA, LiveServer

MIB = 1 << 20


def upload(http, url: str, headers: dict, content: bytes, *, kind: str = "residence_proof",
           filename: str = "Hợp đồng thuê nhà.pdf", content_type: str = "application/pdf"):
    return http.post(url, headers=headers, data={"kind": kind}, files={"file": (filename, content, content_type)})


def officers(op) -> tuple[dict, dict]:
    with op.engine.begin() as conn:
        _, ben_thanh = add_officer(conn, "Cán bộ Công an phường Bến Thành", "commune", "26743",
                                   roles=["dossier_officer"])
        _, hoan_kiem = add_officer(conn, "Cán bộ Công an phường Hoàn Kiếm", "commune", "00070",
                                   roles=["dossier_officer"])
    return bearer(ben_thanh), bearer(hoan_kiem)


def test_uploaded_listed_downloaded_and_guarded(op):
    http = op.http
    officer, elsewhere = officers(op)
    binh = bearer(op.tokens(scope=SCOPE, who=BINH)["access_token"])
    hoa = bearer(op.tokens(scope=SCOPE, who=HOA)["access_token"])
    filed = http.post(DOSSIERS, json={"service": "1.004194", "data": form()}, headers=binh).json()
    url = f"{DOSSIERS}/{filed['dossier_id']}/attachments"

    content = pdf()
    assert upload(http, url, {}, content).status_code == 401
    error_of(upload(http, url, officer, content), 403, "forbidden")  # adding papers is the citizen's
    r = upload(http, url, binh, content)
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["content_type"] == "application/pdf" and made["filename"] == "Hợp đồng thuê nhà.pdf"
    assert made["sha256"] == hashlib.sha256(content).hexdigest() and made["size"] == len(content)
    png = image("PNG")
    r = upload(http, url, binh, png, kind="list_request", filename="danh-sach.png", content_type="image/png")
    assert r.status_code == 201, r.text

    listed = http.get(url, headers=binh).json()
    assert [(a["kind"], a["content_type"]) for a in listed["items"]] == [
        ("residence_proof", "application/pdf"), ("list_request", "image/png")]
    assert all(k["attached"] for k in listed["kinds"])
    r = http.get(f"{url}/{made['attachment_id']}", headers=binh)
    assert r.status_code == 200 and r.content == content  # byte for byte
    assert r.headers["content-type"] == "application/pdf"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["cache-control"] == "no-store"
    disposition = r.headers["content-disposition"]
    assert disposition.startswith("attachment;") and 'filename="Hop dong thue nha.pdf"' in disposition
    assert unquote(disposition.split("filename*=UTF-8''")[1]) == "Hợp đồng thuê nhà.pdf"

    # another citizen, another commune's officer: as if it did not exist
    for who in (hoa, elsewhere):
        error_of(http.get(url, headers=who), 404, "dossier_not_found", "dossier_id")
        error_of(http.get(f"{url}/{made['attachment_id']}", headers=who), 404, "dossier_not_found")
    error_of(upload(http, url, hoa, content), 404, "dossier_not_found")
    error_of(http.delete(f"{url}/{made['attachment_id']}", headers=hoa), 404, "dossier_not_found")
    error_of(http.get(f"{url}/999999", headers=binh), 404, "attachment_not_found", "attachment_id")
    error_of(http.get(f"{DOSSIERS}/{filed['dossier_id']}/attachments/0", headers=binh), 422, "invalid_input")

    # the commune's officer reads them; every read is in the access log
    assert [a["attachment_id"] for a in http.get(url, headers=officer).json()["items"]] == [
        a["attachment_id"] for a in listed["items"]]
    r = http.get(f"{url}/{made['attachment_id']}", headers=officer)
    assert r.status_code == 200 and r.content == content
    with op.engine.connect() as conn:
        actions = [row.action for row in conn.execute(
            sa.select(access_log.c.action).where(access_log.c.purpose == "public_service",
                                                 access_log.c.action.like("dossier_attachment%")))]
    assert sorted(actions) == ["dossier_attachment_read", "dossier_attachments"]

    # the citizen removes one while the dossier waits for papers
    r = http.delete(f"{url}/{made['attachment_id']}", headers=binh)
    assert r.status_code == 204, r.text
    error_of(http.get(f"{url}/{made['attachment_id']}", headers=binh), 404, "attachment_not_found")
    assert len(http.get(url, headers=binh).json()["items"]) == 1

    # once received, the papers are the record
    r = http.post(f"{DOSSIERS}/{filed['dossier_id']}/actions", json={"action": "receive"}, headers=officer)
    assert r.status_code == 200, r.text
    body = error_of(upload(http, url, binh, content), 409, "invalid_transition", "action")
    assert body["state"] == "received"


def test_bad_uploads_are_refused_naming_the_field(op):
    http = op.http
    binh = bearer(op.tokens(scope=SCOPE, who=BINH)["access_token"])
    filed = http.post(DOSSIERS, json={"service": "1.004194", "data": form()}, headers=binh).json()
    url = f"{DOSSIERS}/{filed['dossier_id']}/attachments"

    eleven = b"%PDF-1.4\n" + b"0" * (11 * 1000 * 1000)  # 11 MB: refused on its declared length
    body = error_of(upload(http, url, binh, eleven), 413, "attachment_too_large", "file")
    assert body["message"] == attachments.VI["attachment_too_large"]
    just_over = b"%PDF-1.4\n" + b"0" * attachments.MAX_FILE_BYTES  # inside the envelope: the route refuses it
    error_of(upload(http, url, binh, just_over), 413, "attachment_too_large", "file")

    error_of(upload(http, url, binh, image("PNG"), filename="anh.pdf", content_type="application/pdf"), 422,
             "attachment_type_mismatch", "file")
    error_of(upload(http, url, binh, image("PNG"), filename="anh.pdf", content_type="image/png"), 422,
             "attachment_type_mismatch", "filename")
    whole = image("JPEG", size=(200, 150))
    error_of(upload(http, url, binh, whole[: len(whole) // 2], filename="anh.jpg", content_type="image/jpeg"),
             422, "attachment_type", "file")
    error_of(upload(http, url, binh, b"%PDF-1.4\n<html><body>x</body></html>\n", filename="a.pdf"), 422,
             "attachment_type", "file")
    error_of(upload(http, url, binh, pdf(), kind="birth_certificate"), 422, "attachment_kind", "kind")
    error_of(http.post(url, headers=binh, data={"kind": "residence_proof"}), 422, "invalid_input", "file")
    error_of(http.post(url, headers=binh, files={"file": ("a.pdf", pdf(), "application/pdf")}), 422,
             "invalid_input", "kind")
    assert http.get(url, headers=binh).json()["items"] == []


def test_concurrent_uploads_over_the_count_limit(op):
    """More uploads than the dossier may hold, at once, on a live server: exactly the limit accepted,
    the others refused (409 ``attachments_full``), never more stored."""
    binh = bearer(op.tokens(scope=SCOPE, who=BINH)["access_token"])
    filed = op.http.post(DOSSIERS, json={"service": "1.004194", "data": form()}, headers=binh).json()
    extra = 6
    files = [image("PNG", size=(12, 12), seed=n) for n in range(attachments.MAX_FILES + extra)]
    with LiveServer(op.engine) as server:
        server.app.state.oidc_issuer = ISSUER  # the tokens were issued for the test client's issuer
        url = f"{server.url}{DOSSIERS}/{filed['dossier_id']}/attachments"

        def send(n: int) -> tuple[int, str | None]:
            r = upload(httpx, url, binh, files[n], kind="list_request", filename=f"trang {n}.png",
                       content_type="image/png")
            return r.status_code, (r.json().get("error") or {}).get("code")

        with ThreadPoolExecutor(max_workers=12) as pool:
            outcomes = list(pool.map(send, range(len(files))))
        listed = httpx.get(url, headers=binh).json()
    assert sorted(outcomes, key=str) == sorted([(201, None)] * attachments.MAX_FILES
                                               + [(409, "attachments_full")] * extra, key=str), outcomes
    assert len(listed["items"]) == attachments.MAX_FILES


@pytest.mark.parametrize("content_type", ["image/png", "application/octet-stream"])
def test_an_undeclared_or_agreeing_type_is_taken_from_the_content(op, content_type):
    binh = bearer(op.tokens(scope=SCOPE, who=BINH)["access_token"])
    filed = op.http.post(DOSSIERS, json={"service": "1.004194", "data": form()}, headers=binh).json()
    url = f"{DOSSIERS}/{filed['dossier_id']}/attachments"
    r = upload(op.http, url, binh, image("PNG"), filename="scan", content_type=content_type)
    assert r.status_code == 201 and r.json()["content_type"] == "image/png", r.text
    got = op.http.get(f"{url}/{r.json()['attachment_id']}", headers=binh)
    assert got.headers["content-type"] == "image/png"
