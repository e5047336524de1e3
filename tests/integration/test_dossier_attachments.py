"""Dossier attachments on SQLite and PostgreSQL: a PDF, a JPEG and a PNG attached to a temporary
residence registration, sealed at rest (the stored bytes hold none of the plain content, open only
for their dossier) and checked against their SHA-256 when read; what the content check refuses
(a PNG declared as a PDF, a truncated JPEG, a PNG with a ZIP glued after it, an HTML page that
starts with ``%PDF``, an empty file); the kinds the rules name; the size and count limits, also
under concurrent uploads; the states in which files may change; who may read them."""

from __future__ import annotations

import datetime as dt
import io
import threading

import pytest
import sqlalchemy as sa
from PIL import Image

from dinhdanh.dossiers import attachments, service
from dinhdanh.dossiers.tables import dossier_attachments, dossiers
from dinhdanh.dossiers.workflow import InvalidTransition
from dinhdanh.registry.area import Area
from dinhdanh.registry.errors import InvalidInput, NotFound, RuleViolation, TooLarge
from dinhdanh.store.unit_of_work import UnitOfWork
from dinhdanh.store.vault import for_database
from tests.integration.test_dossiers import AN, BASE, BEN_THANH, FREE, HOA, pid_of, temporary_form
from tests.support import schema_drift

TEMPORARY = "1.004194"  # temporary residence registration: residence_proof, list_request
MARKER = "Hợp đồng thuê nhà số 12/2026 – BÍ MẬT"


def pdf(text: str = MARKER) -> bytes:
    from fpdf import FPDF

    doc = FPDF()
    doc.set_compression(False)  # the page's text is in the file as it is (to look for it at rest)
    doc.set_title(text)
    doc.add_page()
    doc.set_font("helvetica", size=12)
    doc.cell(text="Hop dong thue nha")
    return bytes(doc.output())


def image(fmt: str, size=(64, 48), seed: int = 1) -> bytes:
    picture = Image.effect_noise(size, 40 + seed).convert("RGB")
    out = io.BytesIO()
    picture.save(out, fmt)
    return out.getvalue()


@pytest.fixture
def register(family):
    return family, for_database(family.url.render_as_string(hide_password=False))


def file_dossier(engine, pid=AN) -> int:
    with UnitOfWork(engine).begin() as conn:
        return service.file(conn, pid_of(engine, pid), TEMPORARY, temporary_form(pid=pid, **FREE)
                            if pid == AN else temporary_form(pid=pid, name="Lê Thị Hoa", born="1993-06-15",
                                                             **FREE))["dossier_id"]


def attach(register, dossier_id, content, *, kind="residence_proof", filename="giay-to.pdf", pid=AN,
           content_type=None) -> dict:
    engine, vault = register
    with UnitOfWork(engine).begin() as conn:
        return attachments.add_attachment(conn, vault, dossier_id, owner_person_id=pid_of(engine, pid), kind=kind,
                                          filename=filename, content=content, content_type=content_type)


def read(register, dossier_id, attachment_id, **who):
    engine, vault = register
    with UnitOfWork(engine).begin() as conn:
        return attachments.read_attachment(conn, vault, dossier_id, attachment_id, **who)


def act(register, dossier_id, action, **kw):
    engine, vault = register
    with UnitOfWork(engine).begin() as conn:
        return service.act(conn, vault, dossier_id, action, actor="officer:1", area=BEN_THANH, base_url=BASE, **kw)


def stored(engine, attachment_id: int):
    with engine.connect() as conn:
        return conn.execute(sa.select(dossier_attachments)
                            .where(dossier_attachments.c.attachment_id == attachment_id)).one()


def test_attached_sealed_at_rest_and_read_back_whole(register):
    engine, vault = register
    dossier_id = file_dossier(engine)
    content = pdf()
    assert b"Hop dong thue nha" in content  # uncompressed: the plain text is in the file
    made = attach(register, dossier_id, content, filename="../../Hợp đồng thuê nhà.PDF",
                  content_type="application/pdf")
    assert made["content_type"] == "application/pdf" and made["size"] == len(content)
    assert made["filename"] == "Hợp đồng thuê nhà.PDF"  # no folders; the diacritics kept
    assert made["sha256"] == __import__("hashlib").sha256(content).hexdigest()
    row = stored(engine, made["attachment_id"])
    assert b"Hop dong thue nha" not in row.sealed and content[:16] not in row.sealed
    assert b"%PDF" not in row.sealed and len(row.sealed) == len(content) + 29  # version, nonce, tag
    # bound to its dossier: it opens for this one only
    assert vault.open(row.sealed, f"dossier-attachment:{dossier_id}") == content
    with pytest.raises(Exception, match="does not open"):
        vault.open(row.sealed, f"dossier-attachment:{dossier_id + 1}")

    png = image("PNG")
    jpeg = image("JPEG", seed=2)
    attach(register, dossier_id, png, kind="list_request", filename="danh sach.png", content_type="image/png")
    attach(register, dossier_id, jpeg, kind="list_request", filename="trang-2", content_type="image/jpeg")
    summary, back = read(register, dossier_id, made["attachment_id"], person_id=pid_of(engine, AN))
    assert back == content and summary["person_id"] == pid_of(engine, AN)
    listed = _list(register, dossier_id, person_id=pid_of(engine, AN))
    assert [(a["kind"], a["content_type"]) for a in listed["items"]] == [
        ("residence_proof", "application/pdf"), ("list_request", "image/png"), ("list_request", "image/jpeg")]
    assert {k["code"]: k["attached"] for k in listed["kinds"]} == {"residence_proof": True, "list_request": True}
    assert listed["may_add"] is True and listed["limits"]["files"] == attachments.MAX_FILES


def _list(register, dossier_id, **who) -> dict:
    engine, _ = register
    with UnitOfWork(engine).begin() as conn:
        return attachments.list_attachments(conn, dossier_id, **who)


def test_the_hash_and_the_seal_are_checked_on_every_read(register):
    engine, _ = register
    dossier_id = file_dossier(engine)
    other = file_dossier(engine)
    one = attach(register, dossier_id, image("PNG"), filename="a.png")
    two = attach(register, other, image("PNG", seed=3), filename="b.png")
    owner = pid_of(engine, AN)
    with engine.begin() as conn:  # the hash no longer that of the content
        conn.execute(dossier_attachments.update().where(dossier_attachments.c.attachment_id == one["attachment_id"])
                     .values(sha256=bytes(32)))
    with pytest.raises(attachments.IntegrityFailure, match="SHA-256"):
        read(register, dossier_id, one["attachment_id"], person_id=owner)
    # another dossier's sealed file (and its hash) moved into this row: it does not open here
    moved = stored(engine, two["attachment_id"])
    with engine.begin() as conn:
        conn.execute(dossier_attachments.update().where(dossier_attachments.c.attachment_id == one["attachment_id"])
                     .values(sealed=moved.sealed, sha256=moved.sha256, size=moved.size))
    with pytest.raises(attachments.IntegrityFailure, match="does not open"):
        read(register, dossier_id, one["attachment_id"], person_id=owner)
    flipped = bytearray(moved.sealed)
    flipped[40] ^= 1
    with engine.begin() as conn:
        conn.execute(dossier_attachments.update().where(dossier_attachments.c.attachment_id == two["attachment_id"])
                     .values(sealed=bytes(flipped)))
    with pytest.raises(attachments.IntegrityFailure):
        read(register, other, two["attachment_id"], person_id=owner)


def truncated_jpeg() -> bytes:
    whole = image("JPEG", size=(200, 150))
    return whole[: len(whole) * 2 // 3]


HTML_PDF = b"%PDF-1.4\n<html><body><script>alert(1)</script></body></html>\n"
HTML_PDF_EOF = b"%PDF-1.7\n<html><body>hello</body></html>\nstartxref\n9\n%%EOF\n"


@pytest.mark.parametrize(("content", "filename", "content_type", "code", "field"), [
    pytest.param(image("PNG"), "anh.png", "application/pdf", "attachment_type_mismatch", "file", id="png-as-pdf"),
    pytest.param(image("PNG"), "anh.pdf", None, "attachment_type_mismatch", "filename", id="png-named-pdf"),
    pytest.param(image("PNG"), "anh.html", "image/png", "attachment_type_mismatch", "filename", id="png-named-html"),
    # a full-width dot: no ASCII dot to check, but a download's plain-ASCII name would show ".html"
    pytest.param(pdf(), "x\uff0ehtml", "application/pdf", "attachment_type_mismatch", "filename",
                 id="pdf-named-html-with-a-full-width-dot"),
    pytest.param(truncated_jpeg(), "anh.jpg", "image/jpeg", "attachment_type", "file", id="truncated-jpeg"),
    pytest.param(truncated_jpeg() + b"\xff\xd9" + b"PK\x03\x04", "anh.jpg", None, "attachment_type", "file",
                 id="jpeg-then-zip"),
    pytest.param(image("PNG") + b"PK\x03\x04zip", "anh.png", None, "attachment_type", "file", id="png-then-zip"),
    pytest.param(image("PNG")[:-12], "anh.png", None, "attachment_type", "file", id="png-without-iend"),
    pytest.param(HTML_PDF, "a.pdf", "application/pdf", "attachment_type", "file", id="html-starting-pdf"),
    pytest.param(HTML_PDF_EOF, "a.pdf", "application/pdf", "attachment_type", "file", id="html-with-pdf-tail"),
    pytest.param(pdf()[:-200], "a.pdf", None, "attachment_type", "file", id="truncated-pdf"),
    pytest.param(pdf() + b"<html></html>", "a.pdf", None, "attachment_type", "file", id="pdf-then-html"),
    pytest.param(b"<html><body>x</body></html>", "a.html", "text/html", "attachment_type", "file", id="html"),
    pytest.param(b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", "a.gif", "image/gif", "attachment_type", "file",
                 id="gif"),
    pytest.param(b"", "a.pdf", None, "attachment_type", "file", id="empty"),
    pytest.param(image("PNG"), "   ", None, "invalid_input", "filename", id="no-name"),
    pytest.param(image("PNG"), "a" * 201 + ".png", None, "invalid_input", "filename", id="long-name"),
])
def test_the_content_decides_the_type(register, content, filename, content_type, code, field):
    engine, _ = register
    dossier_id = file_dossier(engine)
    with pytest.raises(InvalidInput) as refused:
        attach(register, dossier_id, content, filename=filename, content_type=content_type)
    assert (refused.value.code, refused.value.field) == (code, field), refused.value.message
    assert _list(register, dossier_id, person_id=pid_of(engine, AN))["items"] == []


def test_a_pdf_the_pure_check_would_pass_but_pypdf_cannot_read(register):
    engine, _ = register
    dossier_id = file_dossier(engine)
    fake = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 9 0 R >>\nendobj\nxref\n0 1\n0000000000 65535 f \n" \
           b"trailer\n<< /Root 1 0 R >>\nstartxref\n"
    fake += str(fake.index(b"xref")).encode() + b"\n%%EOF\n"
    with pytest.raises(InvalidInput) as refused:
        attach(register, dossier_id, fake)
    assert refused.value.code == "attachment_type"


def test_the_kind_must_be_one_the_rules_name(register):
    engine, _ = register
    dossier_id = file_dossier(engine)
    for kind in ("birth_certificate", "", None, "RESIDENCE_PROOF"):
        with pytest.raises(InvalidInput) as refused:
            attach(register, dossier_id, image("PNG"), kind=kind, filename="a.png")
        assert refused.value.field == "kind" and "residence_proof" in refused.value.message


def test_the_size_and_count_limits(register, monkeypatch):
    engine, _ = register
    dossier_id = file_dossier(engine)
    big = pdf()
    over = b"%PDF-1.4\n" + b"0" * attachments.MAX_FILE_BYTES  # refused on its size before it is read
    with pytest.raises(TooLarge) as refused:
        attach(register, dossier_id, over)
    assert (refused.value.code, refused.value.field) == ("attachment_too_large", "file")
    small = image("PNG", size=(8, 8))
    for n in range(attachments.MAX_FILES):
        attach(register, dossier_id, small, filename=f"trang {n + 1}.png")
    with pytest.raises(RuleViolation) as refused:
        attach(register, dossier_id, small, filename="one too many.png")
    assert (refused.value.code, refused.value.field) == ("attachments_full", "file")
    assert len(_list(register, dossier_id, person_id=pid_of(engine, AN))["items"]) == attachments.MAX_FILES

    other = file_dossier(engine)
    monkeypatch.setattr(attachments, "MAX_DOSSIER_BYTES", 2 * len(big) + 10)
    attach(register, other, big)
    attach(register, other, big)
    with pytest.raises(RuleViolation) as refused:
        attach(register, other, big)
    assert refused.value.code == "attachments_full"


def test_concurrent_uploads_keep_the_count_limit(register, monkeypatch):
    engine, _ = register
    monkeypatch.setattr(attachments, "MAX_FILES", 5)
    dossier_id = file_dossier(engine)
    barrier = threading.Barrier(12)
    outcomes: list[str] = []

    def upload(n: int) -> None:
        content = image("PNG", size=(16, 16), seed=n)
        barrier.wait()
        try:
            attach(register, dossier_id, content, filename=f"{n}.png")
            outcomes.append("ok")
        except RuleViolation as exc:
            outcomes.append(exc.code)

    threads = [threading.Thread(target=upload, args=(n,)) for n in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(outcomes) == ["attachments_full"] * 7 + ["ok"] * 5
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(dossier_attachments)
                            .where(dossier_attachments.c.dossier_id == dossier_id)).scalar() == 5


def test_files_change_only_while_the_dossier_waits_for_them(register):
    engine, _ = register
    dossier_id = file_dossier(engine)
    owner = pid_of(engine, AN)
    first = attach(register, dossier_id, image("PNG"), filename="a.png")
    act(register, dossier_id, "receive")
    with pytest.raises(InvalidTransition) as refused:
        attach(register, dossier_id, image("PNG"), filename="b.png")
    assert refused.value.state == "received" and refused.value.field == "action"
    with pytest.raises(InvalidTransition), UnitOfWork(engine).begin() as conn:
        attachments.delete_attachment(conn, dossier_id, first["attachment_id"], owner_person_id=owner)
    assert _list(register, dossier_id, person_id=owner)["may_add"] is False
    act(register, dossier_id, "request_supplement", items=["Bản chụp hợp đồng thuê nhà rõ nét"])
    second = attach(register, dossier_id, pdf(), filename="hop-dong.pdf")
    with UnitOfWork(engine).begin() as conn:
        attachments.delete_attachment(conn, dossier_id, first["attachment_id"], owner_person_id=owner)
    with pytest.raises(attachments.AttachmentNotFound), UnitOfWork(engine).begin() as conn:
        attachments.delete_attachment(conn, dossier_id, first["attachment_id"], owner_person_id=owner)
    assert [a["attachment_id"] for a in _list(register, dossier_id, person_id=owner)["items"]] == [
        second["attachment_id"]]
    with engine.connect() as conn:  # adding a file does not bump the version officers act on
        version = conn.execute(sa.select(dossiers.c.version).where(dossiers.c.dossier_id == dossier_id)).scalar()
    assert version == 3  # filed, received, supplement requested


def test_only_the_owner_and_the_area_s_officers_see_them(register):
    engine, _ = register
    dossier_id = file_dossier(engine)
    made = attach(register, dossier_id, image("JPEG"), filename="anh.jpg")
    hoa = pid_of(engine, HOA)
    with pytest.raises(NotFound) as hidden:
        attach(register, dossier_id, image("PNG"), filename="x.png", pid=HOA)
    assert hidden.value.code == "dossier_not_found"
    for who in ({"person_id": hoa}, {"area": Area.of_code("00070")}):
        with pytest.raises(NotFound):
            read(register, dossier_id, made["attachment_id"], **who)
        with pytest.raises(NotFound):
            _list(register, dossier_id, **who)
    with pytest.raises(NotFound), UnitOfWork(engine).begin() as conn:
        attachments.delete_attachment(conn, dossier_id, made["attachment_id"], owner_person_id=hoa)
    summary, content = read(register, dossier_id, made["attachment_id"], area=BEN_THANH)
    assert summary["content_type"] == "image/jpeg" and content.startswith(b"\xff\xd8\xff")
    other = file_dossier(engine)
    with pytest.raises(attachments.AttachmentNotFound):  # an id of another dossier's file
        read(register, other, made["attachment_id"], person_id=pid_of(engine, AN))


def test_a_huge_image_is_refused_before_it_is_decoded(register):
    engine, _ = register
    dossier_id = file_dossier(engine)
    out = io.BytesIO()
    Image.new("1", (10_000, 6_000)).save(out, "PNG")  # 60 million pixels in a few kilobytes
    with pytest.raises(InvalidInput) as refused:
        attach(register, dossier_id, out.getvalue(), filename="bomb.png")
    assert refused.value.code == "attachment_type" and "pixels" in refused.value.message


def test_now_is_the_upload_time(register):
    engine, vault = register
    dossier_id = file_dossier(engine)
    at = dt.datetime(2026, 12, 7, 2, 30, tzinfo=dt.UTC)
    with UnitOfWork(engine).begin() as conn:
        made = attachments.add_attachment(conn, vault, dossier_id, owner_person_id=pid_of(engine, AN),
                                          kind="list_request", filename="a.png", content=image("PNG"), now=at)
    assert made["uploaded_at"] == at.isoformat()


def test_the_migration_matches_the_table(engine):
    assert schema_drift(engine, "dossier_attachments") == []


def test_a_linked_group_takes_files_while_in_progress(register):
    """A linked group's parent never moves (it stays ``submitted``): it takes the group's papers
    while one of its procedures is undecided, and refuses them once none is (409
    ``attachments_closed``); a sub-dossier takes them by its own state."""
    from tests.integration.test_dossier_groups import BIRTH_GROUP, HOAN_KIEM, birth_form

    engine, vault = register
    with UnitOfWork(engine).begin() as conn:
        filed = service.file(conn, pid_of(engine, AN), BIRTH_GROUP, birth_form())
    parent, first = filed["dossier_id"], filed["children"][0]["dossier_id"]
    made = attach(register, parent, pdf(), kind="birth_certificate", filename="giay-chung-sinh.pdf")
    attach(register, first, image("PNG"), kind="birth_certificate", filename="giay-chung-sinh.png")
    with pytest.raises(InvalidInput):  # the group's rules name the kinds
        attach(register, parent, pdf(), kind="residence_proof")
    summary, _ = read(register, parent, made["attachment_id"], area=HOAN_KIEM)
    assert summary["kind"] == "birth_certificate"
    with UnitOfWork(engine).begin() as conn:  # withdrawn: every sub-dossier decided
        service.withdraw(conn, parent, pid_of(engine, AN))
    with pytest.raises(RuleViolation) as closed:
        attach(register, parent, pdf(), kind="birth_certificate")
    assert (closed.value.code, closed.value.field) == ("attachments_closed", "action")
    with pytest.raises(InvalidTransition):
        attach(register, first, pdf(), kind="birth_certificate")
    assert _list(register, parent, person_id=pid_of(engine, AN))["may_add"] is False
