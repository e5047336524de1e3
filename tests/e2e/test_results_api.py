"""Result documents over HTTP (FastAPI TestClient), on SQLite and PostgreSQL: the public check as
JSON and as a page, Vietnamese first; unknown and malformed codes; revocation; the documents CA's
certificate and CRL as a validator downloads them, used with pyHanko's validator."""

from __future__ import annotations

import io

import pytest
import sqlalchemy as sa
from asn1crypto import crl as asn1_crl, pem, x509 as asn1_x509
from cryptography import x509
from fastapi.testclient import TestClient
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

from dinhdanh.audit.tables import access_log
from dinhdanh.documents import results
from dinhdanh.documents.model import Agency
from dinhdanh.registry.tables import persons
from dinhdanh.store.base import vietnam_date
from dinhdanh.web.app import create_app
from tests import chips

AGENCY = Agency("G01.C06", "Cục Cảnh sát quản lý hành chính về trật tự xã hội")
KEYS = {"code", "status", "kind", "kind_label", "issued_on", "agency", "holder", "sha256", "revoked_on"}


@pytest.fixture
def api(family):
    vault = chips.new_vault()
    app = create_app(family)
    app.state.vault = vault
    client = TestClient(app, raise_server_exceptions=False)
    return client, family, vault


def issue(engine, vault, kind="result", **fields):
    with engine.begin() as conn:
        holder = conn.execute(sa.select(persons.c.person_id).where(persons.c.pid == "079193000006")).scalar_one()
        return results.issue_document(conn, vault, kind, holder, agency=AGENCY, base_url="http://testserver",
                                      actor="officer:1", text="Cấp giấy xác nhận thông tin về cư trú cho bà Phạm "
                                      "Thị Hoa.", **fields)


def test_a_genuine_document_as_json_and_as_a_page(api):
    client, engine, vault = api
    doc = issue(engine, vault)
    r = client.get(f"/api/v1/results/{doc.code}")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json"), r.text
    body = r.json()
    assert set(body) == KEYS
    assert (body["status"], body["kind"], body["holder"], body["sha256"], body["agency"]) == \
        ("genuine", "result", "P. T. H.", doc.sha256, AGENCY.name)
    assert body["issued_on"] == vietnam_date(doc.issued_at).isoformat()
    assert "Hoa" not in r.text and "079193000006" not in r.text  # initials only, never the name or PID
    # what a phone's browser sends after scanning the QR code
    page = client.get(doc.verify_url.replace("http://testserver", ""),
                      headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html"), page.text
    assert "Văn bản do cơ quan nhà nước ban hành và đang có hiệu lực." in page.text
    assert doc.sha256 in page.text and "P. T. H." in page.text
    assert vietnam_date(doc.issued_at).strftime("%d/%m/%Y") in page.text
    english = client.get(f"/results/{doc.code}?lang=en")
    assert english.status_code == 200 and "Issued by a state agency and in force." in english.text
    assert "Result of an administrative procedure" in english.text
    # every check of a known document is in the holder's access log
    with engine.connect() as conn:
        checks = conn.execute(sa.select(sa.func.count()).select_from(access_log)
                              .where(access_log.c.action == "check_result")).scalar_one()
    assert checks == 3


def test_unknown_revoked_and_malformed_codes(api):
    client, engine, vault = api
    r = client.get("/api/v1/results/" + "Q" * 20)
    assert r.status_code == 200 and r.json()["status"] == "unknown" and set(r.json()) == KEYS
    page = client.get("/results/" + "Q" * 20)
    assert page.status_code == 200 and "Không có văn bản nào mang mã tra cứu này." in page.text
    for bad in ("Q" * 19, "Q" * 21, "Q" * 19 + "1", "Q" * 19 + "%2F"):
        for url in (f"/api/v1/results/{bad}", f"/results/{bad}"):
            r = client.get(url)
            assert r.status_code in (404, 422), (url, r.status_code, r.text)
            if r.status_code == 422:
                assert r.json()["error"]["field"] == "code", r.text
    r = client.get("/api/v1/results/" + "Q" * 19 + "1")
    assert r.status_code == 422 and r.json()["error"]["field"] == "code"

    doc = issue(engine, vault, kind="apology", due_date=vietnam_date())
    with engine.begin() as conn:
        results.revoke_result(conn, doc.code, "Quyết định bị hủy bỏ", actor="officer:2")
    r = client.get(f"/api/v1/results/{doc.code}")
    assert r.json()["status"] == "revoked" and r.json()["revoked_on"] == vietnam_date().isoformat()
    page = client.get(f"/results/{doc.code}")
    assert "Văn bản đã bị thu hồi: không còn giá trị." in page.text
    assert "Quyết định bị hủy bỏ" not in page.text  # the reason stays with the agency


def test_the_exported_ca_and_crl_validate_the_document(api):
    client, engine, vault = api
    r = client.get("/api/v1/pki/documents-ca.pem")
    assert r.status_code == 404 and r.json()["error"]["field"] == "pki"  # no CA before the first document
    doc = issue(engine, vault)
    r = client.get("/api/v1/pki/documents-ca.pem")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-pem-file")
    roots = [asn1_x509.Certificate.load(der) for _, _, der in pem.unarmor(r.content, multiple=True)]
    assert [x509.load_der_x509_certificate(c.dump()).subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0]
            .value for c in roots] == ["Bộ Công an – CA ký văn bản"]
    crl = client.get("/api/v1/pki/documents-ca.crl")
    assert crl.status_code == 200 and crl.headers["content-type"] == "application/pkix-crl"
    x509.load_der_x509_crl(crl.content).is_signature_valid(x509.load_der_x509_certificate(roots[0].dump())
                                                           .public_key())
    # the document and the two downloads are all a validator needs; nothing read from the DSS here
    reader = PdfFileReader(io.BytesIO(doc.pdf), strict=False)
    context = ValidationContext(trust_roots=roots, crls=[asn1_crl.CertificateList.load(crl.content)],
                                other_certs=[], allow_fetching=False, revocation_mode="require")
    status = validate_pdf_signature(reader.embedded_signatures[0], context)
    assert status.bottom_line and status.trusted, status.pretty_print_details()


def test_cli_issues_a_sample_and_verifies_it(tmp_path):
    """``dinhdanh documents sample`` and ``verify`` as an operator runs them (SQLite file, subprocess)."""
    import json
    import os
    import subprocess
    import sys

    from tests.support import FAMILY, write_people

    env = {k: v for k, v in os.environ.items() if k not in ("DINHDANH_DATABASE_URL", "DINHDANH_OIDC_ISSUER")}
    env |= {"DINHDANH_HOME": str(tmp_path), "PYTHONIOENCODING": "utf-8"}
    url = f"sqlite:///{tmp_path / 'register.sqlite'}"

    def run(*args: str, code: int = 0):
        p = subprocess.run([sys.executable, "-m", "dinhdanh", *args, "--db", url], capture_output=True, text=True,
                           encoding="utf-8", env=env, cwd=tmp_path, timeout=180)
        assert p.returncode == code and "Traceback" not in p.stderr, (args, p.returncode, p.stdout, p.stderr)
        return json.loads(p.stdout) if p.stdout.strip().startswith("{") else p.stdout

    run("population", "import", str(write_people(tmp_path / "family.csv", FAMILY)))
    made = run("documents", "sample", "--out", str(tmp_path / "kq.pdf"), "--pid", "001085000001")
    assert made["verify_url"] == f"http://127.0.0.1:8000/api/v1/results/{made['code']}"
    checked = run("documents", "verify", str(tmp_path / "kq.pdf"))
    assert (checked["status"], checked["code"], checked["signature"]["trusted"]) == ("genuine", made["code"], True)
    assert run("documents", "status", made["code"])["holder"] == "N. V. A."
    run("documents", "revoke", made["code"], "--reason", "Quyết định bị hủy bỏ")
    assert run("documents", "verify", str(tmp_path / "kq.pdf"), code=1)["status"] == "revoked"
    (tmp_path / "bad.pdf").write_bytes((tmp_path / "kq.pdf").read_bytes() + b"%changed\n")
    assert run("documents", "verify", str(tmp_path / "bad.pdf"), code=1)["status"] == "invalid"
    slip = run("documents", "sample", "--out", str(tmp_path / "tc.pdf"), "--kind", "refusal")
    assert slip["kind"] == "refusal" and slip["signer_id"] == made["signer_id"]
