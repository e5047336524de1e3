"""Signed result documents on SQLite and PostgreSQL: PDF/A in Vietnamese signed PAdES under the
document-signing CA, checked with pyHanko's own validator (not documents.verify), pypdf and
zxing-cpp; the register of results (genuine, revoked, unknown), its audit, and the CA's profile."""

from __future__ import annotations

import datetime as dt
import io
import threading
import unicodedata

import pytest
import sqlalchemy as sa
from asn1crypto import crl as asn1_crl, pem, x509 as asn1_x509
from cryptography import x509
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.dss import DocumentSecurityStore
from pyhanko.sign.validation.status import SignatureCoverageLevel

from dinhdanh.audit.tables import access_log
from dinhdanh.cards import pki as card_pki
from dinhdanh.documents import ca, results
from dinhdanh.documents.model import Agency
from dinhdanh.documents.tables import results as results_table
from dinhdanh.documents.verify import verify_pdf
from dinhdanh.pki.tables import pki_key_uses, pki_keys
from dinhdanh.registry.errors import Conflict, InvalidInput, NotFound
from dinhdanh.registry.tables import persons
from dinhdanh.store.base import vietnam_date
from tests import chips

BASE = "https://dinhdanh.example.vn"
AGENCY = Agency("G01.C06", "Cục Cảnh sát quản lý hành chính về trật tự xã hội")
COMMUNE = Agency("H26.00070", "Công an phường Hoàn Kiếm", "Công an thành phố Hà Nội", "Hà Nội")
DUNG = "001215000004"  # Nguyễn Thị Dung (tests.support.FAMILY)
DECISION = ("Đồng ý cho bà Nguyễn Thị Dung đăng ký thường trú tại số 12 phố Hàng Bạc, phường Hoàn Kiếm, "
            "thành phố Hà Nội. Quyết định có hiệu lực kể từ ngày ký.")


@pytest.fixture
def vault():
    return chips.new_vault()


def person_id(engine, pid: str) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(persons.c.person_id).where(persons.c.pid == pid)).scalar_one()


def issue(engine, vault, kind="result", agency=AGENCY, **fields):
    fields = {"text": DECISION, "procedure": "Đăng ký thường trú", "dossier": "G01.C06-261205-0001"} | fields
    with engine.begin() as conn:
        return results.issue_document(conn, vault, kind, person_id(engine, DUNG), agency=agency, base_url=BASE,
                                      actor="officer:1", **fields)


def exported_ca(engine) -> list[asn1_x509.Certificate]:
    """The CA as a validator receives it: the PEM the platform publishes."""
    with engine.connect() as conn:
        text = ca.ca_pem(conn)
    return [asn1_x509.Certificate.load(der) for _, _, der in pem.unarmor(text, multiple=True)]


def pyhanko_status(pdf: bytes, roots, extra_crls=()):
    """pyHanko's validator, offline, with what the document carries (DSS) and nothing of ours."""
    reader = PdfFileReader(io.BytesIO(pdf), strict=False)
    [signature] = reader.embedded_signatures
    context = DocumentSecurityStore.read_dss(reader).as_validation_context(
        {"trust_roots": list(roots), "crls": list(extra_crls), "allow_fetching": False, "revocation_mode": "require"})
    return validate_pdf_signature(signature, context)


# ------------------------------------------------------------------------------- the signature


def test_a_signed_result_validates_with_pyhanko_against_the_exported_ca(family, vault):
    doc = issue(family, vault)
    status = pyhanko_status(doc.pdf, exported_ca(family))
    assert status.bottom_line and status.intact and status.valid and status.trusted, status.pretty_print_details()
    assert status.coverage == SignatureCoverageLevel.ENTIRE_FILE
    assert status.signing_cert.subject.native["organizational_unit_name"] == "G01.C06"
    # PAdES (ETSI.CAdES.detached), not the old adbe.pkcs7.detached
    reader = PdfFileReader(io.BytesIO(doc.pdf), strict=False)
    assert reader.embedded_signatures[0].sig_object["/SubFilter"] == "/ETSI.CAdES.detached"
    dss = reader.root["/DSS"]
    assert len(dss["/Certs"]) >= 2 and len(dss["/CRLs"]) >= 1  # the chain and the CA's CRL, for offline checks
    # our own verifier agrees
    with family.connect() as conn:
        assert verify_pdf(doc.pdf, ca.ca_certificates(conn)).status == "genuine"


def test_the_signature_is_logged_and_the_keys_are_sealed(family, vault):
    doc = issue(family, vault)
    with family.connect() as conn:
        uses = conn.execute(sa.select(pki_key_uses).where(pki_key_uses.c.key_id == doc.signer_id)).all()
        key = conn.execute(sa.select(pki_keys).where(pki_keys.c.key_id == doc.signer_id)).one()
        row = conn.execute(sa.select(results_table).where(results_table.c.code == doc.code)).one()
    assert [(u.purpose, u.reference) for u in uses] == [("sign_document", f"result:{doc.code}")]
    assert (key.role, key.agency, key.status) == ("doc_signer", "G01.C06", "active")
    assert b"PRIVATE" not in key.private_key and len(key.private_key) > 100
    assert row.pdf != doc.pdf and vault.open(row.pdf, f"result-pdf:{doc.code}") == doc.pdf  # sealed at rest
    assert row.sha256 == doc.sha256 and row.holder_initials == "N. T. D."


def test_a_byte_changed_after_signing_fails_validation(family, vault):
    doc = issue(family, vault)
    roots = exported_ca(family)
    reader = PdfFileReader(io.BytesIO(doc.pdf), strict=False)
    signed_up_to = [int(n) for n in reader.embedded_signatures[0].sig_object["/ByteRange"]][1]
    changed = bytearray(doc.pdf)
    at = changed.find(b"stream", 0, signed_up_to) + 60  # inside the first stream: a byte of the page
    assert 60 < at < signed_up_to
    changed[at] ^= 0x01
    status = pyhanko_status(bytes(changed), roots)
    assert not status.intact and not status.bottom_line
    assert verify_pdf(bytes(changed), [r.dump() for r in roots]).status == "invalid"
    # something appended after signing is not covered either
    appended = pyhanko_status(doc.pdf + b"\n% added\n", roots)
    assert appended.coverage != SignatureCoverageLevel.ENTIRE_FILE
    assert verify_pdf(doc.pdf + b"\n% added\n", [r.dump() for r in roots]).status == "invalid"


def test_the_signer_chains_to_the_documents_ca_and_not_to_the_csca(family, vault):
    with family.begin() as conn:
        card_pki.init_pki(conn, vault)  # the CSCA exists too: it must not be what signs documents
    doc = issue(family, vault)
    with family.connect() as conn:
        csca = [asn1_x509.Certificate.load(der) for der in card_pki.csca_certificates(conn)]
        signer = x509.load_der_x509_certificate(
            conn.execute(sa.select(pki_keys.c.certificate).where(pki_keys.c.key_id == doc.signer_id)).scalar_one())
        card_pki.trust_store(conn)  # the chips' trust store still builds (the documents CA's CRL is not a CSCA's)
    roots = exported_ca(family)
    ca_cert = x509.load_der_x509_certificate(roots[0].dump())
    assert signer.issuer == ca_cert.subject and ca_cert.subject != x509.load_der_x509_certificate(csca[0].dump()).subject
    assert "CA ký văn bản" in ca_cert.subject.rfc4514_string()
    assert {r.dump() for r in roots}.isdisjoint({c.dump() for c in csca})
    signer.verify_directly_issued_by(ca_cert)
    basic = ca_cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical and basic.value.ca
    usage = signer.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.content_commitment and not usage.key_cert_sign
    eku = signer.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36")]  # id-kp-documentSigning (RFC 9336)
    points = signer.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert points[0].full_name[0].value == f"{BASE}/api/v1/pki/documents-ca.crl"
    # trusting only the CSCA, pyHanko finds no path
    assert not pyhanko_status(doc.pdf, csca).trusted
    assert pyhanko_status(doc.pdf, roots).trusted


def test_each_agency_signs_with_its_own_certificate(family, vault):
    first, second = issue(family, vault), issue(family, vault, kind="receipt", agency=COMMUNE,
                                                 due_date=vietnam_date() + dt.timedelta(days=5))
    again = issue(family, vault)
    assert first.signer_id == again.signer_id != second.signer_id
    assert pyhanko_status(second.pdf, exported_ca(family)).signing_cert.subject.native["common_name"] == \
        "Công an phường Hoàn Kiếm"


def test_a_revoked_signer_no_longer_validates(family, vault):
    doc = issue(family, vault)
    with family.begin() as conn:
        revoked = ca.revoke_signer(conn, vault, doc.signer_id)
        crl = ca.current_crl(conn)
        with pytest.raises(Conflict):
            ca.revoke_signer(conn, vault, doc.signer_id)
    assert revoked["crl_number"] >= 2
    listed = asn1_crl.CertificateList.load(crl)
    serials = {entry["user_certificate"].native for entry in listed["tbs_cert_list"]["revoked_certificates"]}
    assert pyhanko_status(doc.pdf, exported_ca(family)).signing_cert.serial_number in serials
    status = pyhanko_status(doc.pdf, exported_ca(family), extra_crls=[listed])
    assert status.intact and not status.trusted and not status.bottom_line
    with family.connect() as conn:
        assert verify_pdf(doc.pdf, ca.ca_certificates(conn), [crl]).status == "invalid"
    # the agency's next document gets a new key
    assert issue(family, vault).signer_id != doc.signer_id


# ------------------------------------------------------------------------------- the PDF


def _page_text(pdf: bytes) -> str:
    from pypdf import PdfReader

    return unicodedata.normalize("NFC", "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages))


def test_diacritics_come_out_of_the_pdf_as_they_went_in(family, vault):
    # given decomposed (NFD), printed and extracted composed (NFC)
    doc = issue(family, vault, text=unicodedata.normalize("NFD", DECISION), procedure="Đăng ký thường trú")
    text = _page_text(doc.pdf)
    lines = text.splitlines()
    assert "Người nộp hồ sơ: Nguyễn Thị Dung" in lines
    assert "Thủ tục hành chính: Đăng ký thường trú" in lines
    assert "KẾT QUẢ GIẢI QUYẾT THỦ TỤC HÀNH CHÍNH" in lines
    assert "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM" in lines and "Độc lập - Tự do - Hạnh phúc" in lines
    day = vietnam_date(doc.issued_at)
    month = f"{day.month:02d}" if day.month < 3 else str(day.month)
    assert f"Hà Nội, ngày {day.day:02d} tháng {month} năm {day.year}" in lines
    assert " ".join(text.split()).count(DECISION) == 1  # the decision, wrapped over lines, word for word


def test_fonts_are_embedded_and_the_pdfa_identification_is_there(family, vault):
    from pypdf import PdfReader

    doc = issue(family, vault, kind="refusal", text=None,
                reasons=["Chỗ ở không hợp pháp.", "Thiếu văn bản đồng ý của chủ hộ."])
    reader = PdfReader(io.BytesIO(doc.pdf))
    fonts = reader.pages[0]["/Resources"]["/Font"]
    assert fonts
    for ref in fonts.values():
        font = ref.get_object()
        descendant = font["/DescendantFonts"][0].get_object()
        descriptor = descendant["/FontDescriptor"].get_object()
        assert "/FontFile2" in descriptor, font  # the TrueType program is in the file
        assert "DejaVuSans" in font["/BaseFont"] and "/ToUnicode" in font
    xmp = reader.trailer["/Root"]["/Metadata"].get_object().get_data().decode()
    assert 'pdfaid:part="2"' in xmp or "<pdfaid:part>2</pdfaid:part>" in xmp
    assert 'pdfaid:conformance="B"' in xmp or "<pdfaid:conformance>B</pdfaid:conformance>" in xmp
    [intent] = reader.trailer["/Root"]["/OutputIntents"]
    intent = intent.get_object()
    assert intent["/S"] == "/GTS_PDFA1" and intent["/DestOutputProfile"].get_object().get_data()[36:40] == b"acsp"
    assert "/Encrypt" not in reader.trailer
    assert "Thiếu văn bản đồng ý của chủ hộ." in _page_text(doc.pdf)


def test_the_qr_code_reads_as_the_verification_address(family, vault):
    import zxingcpp
    from PIL import Image
    from pypdf import PdfReader

    doc = issue(family, vault)
    images = PdfReader(io.BytesIO(doc.pdf)).pages[0].images
    read = []
    for image in images:
        picture = Image.open(io.BytesIO(image.data)).convert("L")
        read += [b.text for b in zxingcpp.read_barcodes(picture, formats=zxingcpp.BarcodeFormat.QRCode)]
    assert read == [f"{BASE}/api/v1/results/{doc.code}"] == [doc.verify_url]


# ------------------------------------------------------------------------------- the register


def test_genuine_revoked_and_unknown(family, vault):
    doc = issue(family, vault)
    with family.begin() as conn:
        answer = results.result_status(conn, doc.code.lower())
    assert answer == {"code": doc.code, "status": "genuine", "kind": "result",
                      "kind_label": "Kết quả giải quyết thủ tục hành chính",
                      "issued_on": vietnam_date(doc.issued_at).isoformat(), "agency": AGENCY.name,
                      "holder": "N. T. D.", "sha256": doc.sha256, "revoked_on": None}
    with family.begin() as conn:
        results.revoke_result(conn, doc.code, "Quyết định bị hủy bỏ", actor="officer:2")
        with pytest.raises(Conflict) as twice:
            results.revoke_result(conn, doc.code, "again", actor="officer:2")
        assert twice.value.code == "result_already_revoked"
        revoked = results.result_status(conn, doc.code)
        unknown = results.result_status(conn, "A" * 20)
        with pytest.raises(NotFound):
            results.revoke_result(conn, "A" * 20, "x", actor="officer:2")
        for bad in ("A" * 19, "A" * 21, "AAAAAAAAAAAAAAAAAAA1", "AAAAAAAAAAAAAAAAAAA-", ""):
            with pytest.raises(InvalidInput) as refused:
                results.result_status(conn, bad)
            assert refused.value.field == "code"
        register = results.verify_document(conn, vault, doc.pdf)
    assert revoked["status"] == "revoked" and revoked["revoked_on"] == vietnam_date().isoformat()
    assert set(unknown) == set(answer) and unknown["status"] == "unknown"
    assert {k for k, v in unknown.items() if v is not None} == {"code", "status"}
    # the signature is still intact; the register says it no longer counts
    assert (register["status"], register["register"], register["signature"]["status"]) == \
        ("revoked", "revoked", "genuine")


def test_issuing_and_checking_are_in_the_access_log(family, vault):
    doc = issue(family, vault)
    with family.begin() as conn:
        results.result_status(conn, doc.code)
        results.result_status(conn, "B" * 20)  # unknown: nobody's data
    with family.connect() as conn:
        rows = conn.execute(sa.select(access_log.c.actor, access_log.c.action, access_log.c.outcome)
                            .where(access_log.c.person_id == person_id(family, DUNG))
                            .order_by(access_log.c.access_id)).all()
    assert [tuple(r) for r in rows] == [("officer:1", "issue_document", "ok"), ("public", "check_result", "genuine")]


def test_slips_need_their_own_fields(family, vault):
    today = vietnam_date()
    cases = [
        (dict(kind="result", text=None), "text"),
        (dict(kind="receipt"), "due_date"),
        (dict(kind="apology", due_date=today - dt.timedelta(days=1)), "due_date"),
        (dict(kind="refusal", reasons=[]), "reasons"),
        (dict(kind="supplement_request", reasons=["ok", " "]), "reasons.1"),
        (dict(kind="result", text="Quyết định \x07"), "text"),
        (dict(kind="result", text="Chữ 漢"), "text"),  # not in the document's font
        (dict(kind="result", dossier="x" * 61), "dossier"),
        (dict(kind="letter"), "kind"),
        (dict(kind="refusal", reasons="one reason, not a list"), "reasons"),
        (dict(agency=Agency("G01.C06", "Cục 漢")), "agency.name"),
        (dict(agency=Agency("g01 c06", "Cục")), "agency.code"),
    ]
    for fields, field in cases:
        with pytest.raises(InvalidInput) as refused:
            issue(family, vault, **fields)
        assert refused.value.field == field, (fields, refused.value)
    with family.begin() as conn, pytest.raises(NotFound) as missing:
        results.issue_document(conn, vault, "result", 10**9, agency=AGENCY, base_url=BASE, actor="officer:1",
                               text="x")
    assert missing.value.field == "holder"
    with family.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(results_table)).scalar_one() == 0
    for kind, fields in (("receipt", dict(due_date=today + dt.timedelta(days=7))),
                         ("supplement_request", dict(reasons=["Giấy tờ chứng minh chỗ ở hợp pháp."],
                                                     due_date=today + dt.timedelta(days=7))),
                         ("apology", dict(text="Cần xác minh thêm.", due_date=today + dt.timedelta(days=3)))):
        doc = issue(family, vault, kind=kind, **fields)
        assert pyhanko_status(doc.pdf, exported_ca(family)).bottom_line


def test_one_active_signer_per_agency_under_concurrency(family, vault):
    """Two transactions that both find no signer for an agency: one makes it, the other uses it."""
    if family.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time: the race cannot happen there")
    with family.begin() as conn:
        ca.documents_ca(conn, vault)
    barrier, made, errors = threading.Barrier(2), [], []

    def sign_up():
        try:
            with family.begin() as conn:
                conn.execute(sa.select(pki_keys.c.key_id).limit(1)).all()
                barrier.wait(timeout=10)
                made.append(ca.agency_signer(conn, vault, COMMUNE, base_url=BASE).key_id)
        except Exception as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=sign_up) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors and len(made) == 2 and made[0] == made[1], (made, errors)
    with family.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(pki_keys)
                            .where(pki_keys.c.role == "doc_signer")).scalar_one() == 1


def test_the_migration_keeps_the_chip_pki_and_goes_back(engine):
    """0017 on a register whose pki_keys rows are referred to (on SQLite the table is redefined in
    place, not rebuilt), and back to 0016 and up again."""
    from alembic import command

    from dinhdanh.store.engine import alembic_config, upgrade

    command.downgrade(alembic_config(engine), "0016")
    now = dt.datetime.now(dt.UTC)
    insert = sa.text("INSERT INTO pki_keys (role, algorithm, subject, serial, key_identifier, certificate, "
                     "private_key, not_before, not_after, usage_ends, status, created_at) VALUES "
                     "(:role, 'ecdsa-p256', 'CN=x', '1', 'aa', :b, :b, :n, :n, :n, 'active', :n)")
    with engine.begin() as conn:
        conn.execute(insert, {"role": "csca", "b": b"x", "n": now})
        key_id = conn.execute(sa.text("SELECT key_id FROM pki_keys")).scalar_one()
        conn.execute(sa.text("INSERT INTO pki_key_uses (key_id, used_at, purpose, digest) VALUES (:k, :n, 'x', 'd')"),
                     {"k": key_id, "n": now})
        with pytest.raises((sa.exc.IntegrityError, sa.exc.DataError)), conn.begin_nested():
            conn.execute(insert, {"role": "doc_ca", "b": b"x", "n": now})  # not a role before 0017
    upgrade(engine)
    with engine.begin() as conn:
        conn.execute(insert, {"role": "doc_ca", "b": b"x", "n": now})
        with pytest.raises(sa.exc.IntegrityError), conn.begin_nested():
            conn.execute(insert, {"role": "doc_ca", "b": b"x", "n": now})  # a second active documents CA
        with pytest.raises(sa.exc.IntegrityError), conn.begin_nested():
            conn.execute(insert, {"role": "nope", "b": b"x", "n": now})
    command.downgrade(alembic_config(engine), "0016")
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT role FROM pki_keys")).scalars().all() == ["csca"]
    upgrade(engine)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM pki_key_uses")).scalar_one() == 1
