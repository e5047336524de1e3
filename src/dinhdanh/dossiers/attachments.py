"""A dossier's attachments: the papers the catalogue asks for (PDF, JPEG, PNG), uploaded apart from
the form, checked by their content, limited in size and sealed at rest.

**What is accepted.** The type is read from the bytes, never taken from the client: a PDF starts
with ``%PDF-1.x`` (or ``2.0``) at the first byte, ends with ``startxref``, the offset of a real
cross-reference section and ``%%EOF`` (nothing after it but blanks) and parses with ``pypdf``
with at least one page and no encryption (an officer could not open it); a JPEG
or PNG is decoded in full by Pillow (``JPEG`` at a reduced scale, which still reads every scan)
and must end where the format ends (JPEG's EOI marker, PNG's ``IEND`` chunk), so a truncated file
or one with another file glued after it (a polyglot: an image that is also a ZIP or an HTML page)
is refused. The client's declarations must agree with what the bytes are: the declared media type
(the multipart part's ``Content-Type``, when given; ``application/octet-stream`` says nothing) and
the file name's extension (when it has one). The ``kind`` is the code of one of the attachments
named by the rules the dossier was filed under (``catalogue.version(version_id).attachments``) and
the file's type one that attachment accepts. Refusals are ``InvalidInput`` (422) on ``file``
(type, content), ``kind`` or ``filename``, and for the limits:

- ``MAX_FILE_BYTES``: 10 MiB a file (``TooLarge``, 413 ``attachment_too_large`` on ``file``);
- ``MAX_FILES``: 20 files a dossier; ``MAX_DOSSIER_BYTES``: 50 MiB a dossier, all its files
  (``RuleViolation``, 409 ``attachments_full`` on ``file``: the file is fine, the dossier is full);
- ``MAX_PIXELS``: 50 million pixels an image (decoding a larger one would cost too much memory;
  422 ``attachment_type``).

**When.** The citizen adds (and deletes) files only while the dossier waits for them: ``submitted``
(filed, not received yet) or ``supplement_requested``; for a linked group's parent, while the group
is in progress. Once received, decided or withdrawn, the files are the record (409
``invalid_transition`` naming the state; for a group's parent, 409 ``attachments_closed``).

**Concurrency.** An upload first takes the dossier's row with a conditional UPDATE from the states
that allow it (as ``service._move`` moves a dossier: the row lock on PostgreSQL, the database's
write lock on SQLite), then counts and sums the dossier's files and inserts: concurrent uploads to
one dossier queue on that row, so ``MAX_FILES`` and ``MAX_DOSSIER_BYTES`` hold, and an officer's
``receive`` at the same moment is ordered before or after the upload, never between the check and
the insert. The UPDATE touches ``updated_at`` only, not ``version``: an officer who read the
dossier before a file was added still acts on it.

**At rest.** The content is sealed with the vault (AES-256-GCM under the master key), its purpose
``dossier-attachment:<dossier id>`` bound as associated data, so a sealed file copied into another
dossier's row does not open. The SHA-256 of the plain content is kept beside it and checked after
every opening (``read_attachment``); a mismatch is an integrity failure, never served.

Reading is the caller's to authorise and audit (the citizen owner, or an officer whose area covers
the dossier's place: ``person_id`` / ``area`` as ``service.view`` takes them; any other caller gets
the same 404 as an unknown dossier).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import re
import unicodedata
import warnings
from typing import Any

import pypdf
import sqlalchemy as sa

from dinhdanh.dossiers import catalogue, service, workflow
from dinhdanh.dossiers.tables import dossier_attachments, dossiers
from dinhdanh.dossiers.workflow import SUBMITTED, SUPPLEMENT, InvalidTransition
from dinhdanh.registry.area import Area
from dinhdanh.registry.errors import InvalidInput, NotFound, RuleViolation, TooLarge
from dinhdanh.store.base import utcnow
from dinhdanh.store.vault import Vault, VaultError

__all__ = ["ALLOWED_STATES", "MAX_DOSSIER_BYTES", "MAX_FILES", "MAX_FILE_BYTES", "MAX_PIXELS", "TYPES",
           "AttachmentNotFound", "IntegrityFailure", "add_attachment", "delete_attachment", "list_attachments",
           "read_attachment", "sniff"]

MAX_FILE_BYTES = 10 * 1024 * 1024  # 10 MiB a file
MAX_FILES = 20  # files a dossier
MAX_DOSSIER_BYTES = 50 * 1024 * 1024  # 50 MiB a dossier
MAX_PIXELS = 50_000_000  # an image's width x height
MAX_FILENAME = 200  # characters
PURPOSE = "dossier-attachment"  # the vault's purpose, with ":<dossier id>"
ALLOWED_STATES = (SUBMITTED, SUPPLEMENT)  # the dossier waits for the citizen's papers

PDF, JPEG, PNG = "application/pdf", "image/jpeg", "image/png"
TYPES = (PDF, JPEG, PNG)
EXTENSIONS = {".pdf": PDF, ".jpg": JPEG, ".jpeg": JPEG, ".jpe": JPEG, ".jfif": JPEG, ".png": PNG}
UNDECLARED = ("", "application/octet-stream")  # a client that does not say what it sends

# Vietnamese wording of this module's refusals (web.api.attachments adds them).
VI = {
    "attachment_not_found": "Không tìm thấy tệp đính kèm.",
    "attachment_type": "Tệp đính kèm phải là PDF, JPEG hoặc PNG, đúng với nội dung của tệp.",
    "attachment_type_mismatch": "Loại tệp khai báo (tên, kiểu nội dung) không khớp với nội dung của tệp.",
    "attachment_kind": "Loại giấy tờ không có trong thành phần hồ sơ của thủ tục này.",
    "attachment_too_large": "Tệp đính kèm vượt quá dung lượng cho phép (10 MB một tệp).",
    "attachments_full": "Hồ sơ đã đủ số tệp hoặc dung lượng đính kèm cho phép (20 tệp, 50 MB).",
    "attachment_integrity": "Tệp đính kèm không còn nguyên vẹn.",
    "attachments_closed": "Nhóm thủ tục liên thông đã được giải quyết: không thể thay đổi tệp đính kèm.",
}


class AttachmentNotFound(NotFound):
    code = "attachment_not_found"


class IntegrityFailure(Exception):
    """A stored attachment does not open, or opens to other bytes than were stored: never served."""


# ------------------------------------------------------------------------------ the content (pure)

_PDF_HEADER = re.compile(rb"%PDF-(1\.[0-7]|2\.0)[\r\n \t%]")
_PDF_TAIL = re.compile(rb"startxref[\r\n \t]+(\d{1,10})[\r\n \t]+%%EOF[\r\n \t\x00]*\Z")
_PDF_XREF = re.compile(rb"[\r\n \t]*(xref|\d{1,10}[\r\n \t]+\d{1,5}[\r\n \t]+obj)")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"  # the IEND chunk: no data, its CRC


def _bad(message: str) -> InvalidInput:
    return InvalidInput(message, code="attachment_type", field="file")


def sniff(content: bytes) -> str:
    """The media type of ``content`` (PDF, JPEG or PNG) once it checks as a whole file of that
    type, else ``InvalidInput`` (``attachment_type``, field ``file``)."""
    if not content:
        raise _bad("The file is empty.")
    if content.startswith(b"%PDF-"):
        _check_pdf(content)
        return PDF
    if content.startswith(b"\xff\xd8\xff"):
        _check_image(content, "JPEG")
        return JPEG
    if content.startswith(_PNG_SIGNATURE):
        _check_image(content, "PNG")
        return PNG
    raise _bad("The file is not a PDF, JPEG or PNG.")


def _check_pdf(content: bytes) -> None:
    if not _PDF_HEADER.match(content):
        raise _bad("The PDF header is not valid (%PDF-1.0 to %PDF-2.0).")
    tail = _PDF_TAIL.search(content, max(0, len(content) - 1024))
    if tail is None:
        raise _bad("The PDF does not end with its cross-reference offset and %%EOF (truncated, or more after it).")
    offset = int(tail.group(1))
    if not 0 < offset < len(content) or not _PDF_XREF.match(content, offset):
        raise _bad("The PDF's cross-reference offset points at no cross-reference section.")
    try:
        reader = pypdf.PdfReader(io.BytesIO(content), strict=False)
        if reader.is_encrypted:
            raise _bad("The PDF is encrypted: upload it without a password.")
        if len(reader.pages) < 1:
            raise _bad("The PDF has no page.")
    except InvalidInput:
        raise
    except Exception as exc:  # noqa: BLE001 (pypdf raises many kinds on a broken file; all mean "not a PDF")
        raise _bad(f"The PDF cannot be read ({type(exc).__name__}).") from None


def _check_image(content: bytes, kind: str) -> None:
    from PIL import Image, ImageFile

    if kind == "JPEG" and not content.endswith(b"\xff\xd9"):
        raise _bad("The JPEG does not end with its end-of-image marker (truncated, or more after it).")
    if kind == "PNG" and not content.endswith(_PNG_END):
        raise _bad("The PNG does not end with its IEND chunk (truncated, or more after it).")
    if ImageFile.LOAD_TRUNCATED_IMAGES:  # a process-wide switch some library may have turned on
        raise RuntimeError("PIL.ImageFile.LOAD_TRUNCATED_IMAGES is on: truncated images would pass")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(content), formats=[kind]) as image:
                if image.width < 1 or image.height < 1 or image.width * image.height > MAX_PIXELS:
                    raise _bad(f"The image is {image.width}x{image.height}: at most {MAX_PIXELS} pixels.")
                if kind == "PNG":
                    image.verify()  # every chunk's CRC
                else:
                    image.draft("L", (max(1, image.width // 8), max(1, image.height // 8)))
                    image.load()
            if kind == "PNG":
                with Image.open(io.BytesIO(content), formats=[kind]) as image:
                    image.load()  # the pixels inflate to the size the header says
    except InvalidInput:
        raise
    except Exception as exc:  # noqa: BLE001 (OSError, SyntaxError, ValueError, zlib, bomb: all "not an image")
        raise _bad(f"The {kind} image cannot be decoded ({type(exc).__name__}).") from None


def _declared_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _filename(filename: object) -> str:
    """The name as the citizen's device gave it, without folders or control characters (NFKC:
    diacritics kept, and a full-width dot or slash is the dot or slash it looks like, so the
    extension checked is the one a download's plain-ASCII name shows), at most ``MAX_FILENAME``
    characters."""
    if not isinstance(filename, str):
        raise InvalidInput("filename is a text.", field="filename")
    name = unicodedata.normalize("NFKC", filename).replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip().strip(".")
    if not name:
        raise InvalidInput("filename is required (the file's name).", field="filename")
    if len(name) > MAX_FILENAME:
        raise InvalidInput(f"filename is at most {MAX_FILENAME} characters.", field="filename")
    return name


def _agree(sniffed: str, name: str, content_type: str | None) -> None:
    declared = _declared_type(content_type)
    if declared not in UNDECLARED and declared != sniffed:
        raise InvalidInput(f"The file was declared {declared} but its content is {sniffed}.",
                           code="attachment_type_mismatch", field="file")
    dot = name.rfind(".")
    if dot > 0:
        by_name = EXTENSIONS.get(name[dot:].lower())
        if by_name != sniffed:
            raise InvalidInput(f"The file's name {name!r} does not fit its content ({sniffed}).",
                               code="attachment_type_mismatch", field="filename")


# ------------------------------------------------------------------------------ storage


def _may_add(conn: sa.Connection, row) -> bool:
    if row.kind == service.GROUP:
        return workflow.group_status(c.status for c in service._children(conn, row.dossier_id)) == workflow.IN_PROGRESS
    return row.status in ALLOWED_STATES


def _lock(conn: sa.Connection, row, action: str, now: dt.datetime) -> None:
    """Take the dossier's row while it still waits for papers (see the module's doc), else 409
    naming its state. A group's parent stays ``submitted``: its sub-dossiers are read once it is held."""
    states = (SUBMITTED,) if row.kind == service.GROUP else ALLOWED_STATES
    taken = conn.execute(dossiers.update()
                         .where(dossiers.c.dossier_id == row.dossier_id, dossiers.c.status.in_(states))
                         .values(updated_at=now)).rowcount
    if taken != 1:
        state = conn.execute(sa.select(dossiers.c.status).where(dossiers.c.dossier_id == row.dossier_id)).scalar_one()
        raise InvalidTransition(action, state)
    if row.kind == service.GROUP and not _may_add(conn, row):
        raise _group_closed(conn, row)


def _group_closed(conn: sa.Connection, row) -> RuleViolation:
    status = workflow.group_status(c.status for c in service._children(conn, row.dossier_id))
    return RuleViolation(f"The linked group is {status}: its papers can no longer change.", code="attachments_closed",
                         field="action")


def _closed(conn: sa.Connection, row) -> Exception:
    return _group_closed(conn, row) if row.kind == service.GROUP else InvalidTransition("attach", row.status)


def _kinds(row) -> dict[str, Any]:
    version = catalogue.version(row.version_id)
    return {a.code: a for a in version.attachments}


def _check_kind(row, kind: object):
    kinds = _kinds(row)
    if not isinstance(kind, str) or kind not in kinds:
        named = ", ".join(kinds) or "none"
        raise InvalidInput(f"kind is one of the attachments of this procedure: {named}.", code="attachment_kind",
                           field="kind")
    return kinds[kind]


def _summary(row) -> dict:
    return {"attachment_id": row.attachment_id, "dossier_id": row.dossier_id, "kind": row.kind,
            "filename": row.filename, "content_type": row.content_type, "size": row.size,
            "sha256": row.sha256.hex(), "uploaded_at": row.created_at.isoformat()}


_COLUMNS = [c for c in dossier_attachments.c if c.name != "sealed"]


def add_attachment(conn: sa.Connection, vault: Vault, dossier_id: int, *, owner_person_id: int, kind: str,
                   filename: str, content: bytes, content_type: str | None = None,
                   now: dt.datetime | None = None) -> dict:
    """Attach ``content`` to the citizen's own dossier as ``kind`` (see the module's doc for what
    is checked); the summary of the stored file (id, kind, name, type, size, SHA-256)."""
    now = now or utcnow()
    row = service._row(conn, dossier_id, person_id=owner_person_id)
    if not _may_add(conn, row):
        raise _closed(conn, row)
    wanted = _check_kind(row, kind)
    if not isinstance(content, bytes | bytearray | memoryview):
        raise InvalidInput("file is the file's bytes.", field="file")
    content = bytes(content)
    if len(content) > MAX_FILE_BYTES:
        raise TooLarge(f"The file is {len(content)} bytes: at most {MAX_FILE_BYTES}.", code="attachment_too_large",
                       field="file")
    name = _filename(filename)
    sniffed = sniff(content)
    _agree(sniffed, name, content_type)
    if sniffed not in wanted.types:
        raise InvalidInput(f"{kind} is accepted as {', '.join(wanted.types)}, not {sniffed}.", code="attachment_type",
                           field="file")
    digest = hashlib.sha256(content).digest()
    sealed = vault.seal(content, f"{PURPOSE}:{row.dossier_id}")  # before the lock: the row is held briefly
    _lock(conn, row, "attach", now)
    count, total = conn.execute(sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(dossier_attachments.c.size), 0))
                                .where(dossier_attachments.c.dossier_id == row.dossier_id)).one()
    if count >= MAX_FILES or total + len(content) > MAX_DOSSIER_BYTES:
        raise RuleViolation(f"The dossier has {count} files, {total} bytes: at most {MAX_FILES} files and "
                            f"{MAX_DOSSIER_BYTES} bytes in all.", code="attachments_full", field="file")
    attachment_id = conn.execute(dossier_attachments.insert().values(
        dossier_id=row.dossier_id, kind=kind, filename=name, content_type=sniffed, size=len(content), sha256=digest,
        sealed=sealed, uploaded_by=f"citizen:{owner_person_id}", created_at=now)
        .returning(dossier_attachments.c.attachment_id)).scalar_one()
    stored = conn.execute(sa.select(*_COLUMNS).where(dossier_attachments.c.attachment_id == attachment_id)).one()
    return _summary(stored)


def list_attachments(conn: sa.Connection, dossier_id: int, *, person_id: int | None = None,
                     area: Area | None = None, agency: str | None = None) -> dict:
    """The dossier's files (without their content), oldest first, with the kinds its rules ask for
    (``required``: as the catalogue says; ``when``: the condition, if any) and whether each has a
    file yet. For the applicant (``person_id``) or an officer whose ``area`` covers the dossier."""
    row = service._row(conn, dossier_id, person_id=person_id, area=area, agency=agency)
    rows = conn.execute(sa.select(*_COLUMNS).where(dossier_attachments.c.dossier_id == row.dossier_id)
                        .order_by(dossier_attachments.c.attachment_id)).all()
    have = {r.kind for r in rows}
    kinds = [a.as_dict() | {"attached": a.code in have} for a in _kinds(row).values()]
    return {"dossier_id": row.dossier_id, "person_id": row.person_id, "items": [_summary(r) for r in rows],
            "kinds": kinds, "may_add": _may_add(conn, row),
            "limits": {"file_bytes": MAX_FILE_BYTES, "files": MAX_FILES, "dossier_bytes": MAX_DOSSIER_BYTES}}


def read_attachment(conn: sa.Connection, vault: Vault, dossier_id: int, attachment_id: int, *,
                    person_id: int | None = None, area: Area | None = None,
                    agency: str | None = None) -> tuple[dict, bytes]:
    """One file: its summary (with the dossier's ``person_id``, for the caller's audit) and its
    content, unsealed and checked against its SHA-256 (``IntegrityFailure`` if it does not match)."""
    row = service._row(conn, dossier_id, person_id=person_id, area=area, agency=agency)
    found = _attachment(conn, row, attachment_id)
    try:
        content = vault.open(found.sealed, f"{PURPOSE}:{row.dossier_id}")
    except VaultError as exc:
        raise IntegrityFailure(f"attachment {attachment_id} does not open: {exc}") from None
    if len(content) != found.size or hashlib.sha256(content).digest() != found.sha256:
        raise IntegrityFailure(f"attachment {attachment_id} does not match its SHA-256")
    return _summary(found) | {"person_id": row.person_id}, content


def delete_attachment(conn: sa.Connection, dossier_id: int, attachment_id: int, *, owner_person_id: int,
                      now: dt.datetime | None = None) -> None:
    """The citizen removes a file from their dossier while it still waits for papers (the sealed
    content goes with the row)."""
    now = now or utcnow()
    row = service._row(conn, dossier_id, person_id=owner_person_id)
    _attachment(conn, row, attachment_id)
    _lock(conn, row, "detach", now)
    gone = conn.execute(dossier_attachments.delete().where(dossier_attachments.c.attachment_id == attachment_id,
                                                           dossier_attachments.c.dossier_id == row.dossier_id)).rowcount
    if gone != 1:  # removed by a concurrent delete meanwhile
        raise AttachmentNotFound("No attachment with this id in this dossier.", field="attachment_id")


def _attachment(conn: sa.Connection, row, attachment_id: object):
    if not isinstance(attachment_id, int) or isinstance(attachment_id, bool):
        raise InvalidInput("attachment_id is a number.", field="attachment_id")
    found = conn.execute(sa.select(dossier_attachments).where(
        dossier_attachments.c.attachment_id == attachment_id,
        dossier_attachments.c.dossier_id == row.dossier_id)).first()
    if found is None:
        raise AttachmentNotFound("No attachment with this id in this dossier.", field="attachment_id")
    return found
