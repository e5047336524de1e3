"""A dossier's attachments over HTTP: the citizen uploads the papers the procedure asks for (PDF,
JPEG, PNG), lists, downloads and deletes them; the officers of the dossier's area with
``dossiers.read`` list and download them, every such read written to the access log (purpose
``public_service``, as ``web.api.dossiers`` does for the dossier itself). Thin: parse, call one
``dossiers.attachments`` function, answer.

- ``POST /api/v1/dossiers/{id}/attachments``: ``multipart/form-data`` with ``kind`` (the catalogue's
  attachment code) and ``file`` (its name and ``Content-Type`` must agree with its content). The
  body is limited by the app's body-size middleware (``web.body_limits.PATTERNS``: 10 MiB plus the
  multipart envelope, 413 ``attachment_too_large`` on ``file`` before it is spooled); a file over
  10 MiB inside that envelope is refused the same way by ``dossiers.attachments``.
- ``GET .../attachments``: the files (no content), the kinds the rules ask for, the limits.
- ``GET .../attachments/{attachment_id}``: the bytes, as the type read from them, always as a
  download (``Content-Disposition: attachment``, ``X-Content-Type-Options: nosniff``, a sandboxing
  CSP), never cached.
- ``DELETE .../attachments/{attachment_id}``: the citizen's, while the dossier waits for papers.

A citizen asking for another's dossier gets the same 404 as for one that does not exist.
"""

from __future__ import annotations

import logging
import unicodedata
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, File, Form, Path, Request, Response, UploadFile

from dinhdanh.dossiers import attachments, service
from dinhdanh.registry.errors import TooLarge
from dinhdanh.web import errors
from dinhdanh.web.api.cards import vault_of
from dinhdanh.web.api.dossiers import Citizen, Id, Reader
from dinhdanh.web.api.schemas import ErrorBody
from dinhdanh.web.deps import Conn

log = logging.getLogger("dinhdanh.web")
router = APIRouter(prefix="/api/v1/dossiers", tags=["dossiers"],
                   responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}, 404: {"model": ErrorBody},
                              409: {"model": ErrorBody}, 422: {"model": ErrorBody}})
errors.add_messages(attachments.VI)
AttachmentId = Annotated[int, Path(ge=1, le=2**62, description="The attachment's id")]
LIST_ACTION, READ_ACTION = "dossier_attachments", "dossier_attachment_read"  # in the access log


@router.post("/{dossier_id}/attachments", status_code=201, summary="Attach a paper to my dossier (citizen): PDF, "
                                                                     "JPEG or PNG, at most 10 MiB",
             responses={413: {"model": ErrorBody}})
def upload_attachment(dossier_id: Id, request: Request, caller: Citizen, conn: Conn,
                      kind: Annotated[str, Form(min_length=1, max_length=60,
                                                description="The attachment's code in the service's rules")],
                      file: Annotated[UploadFile, File(description="The paper: PDF, JPEG or PNG")]) -> dict:
    limit = attachments.MAX_FILE_BYTES
    content = file.file.read(limit + 1)  # spooled by the form parser, bounded by the body middleware
    if len(content) > limit:
        raise TooLarge(f"The file is larger than the limit of {limit} bytes.", code="attachment_too_large",
                       field="file")
    return attachments.add_attachment(conn, vault_of(request), dossier_id, owner_person_id=caller.person_id,
                                      kind=kind, filename=file.filename or "", content=content,
                                      content_type=file.content_type)


@router.get("/{dossier_id}/attachments", summary="A dossier's attachments (the citizen's own, or an officer's "
                                                 "of the area): names, types, sizes, SHA-256; the kinds asked for")
def list_dossier_attachments(dossier_id: Id, caller: Reader, conn: Conn) -> dict:
    if caller.officer is None:
        out = attachments.list_attachments(conn, dossier_id, person_id=caller.person_id)
    else:
        out = attachments.list_attachments(conn, dossier_id, area=caller.officer.area,
                                           agency=caller.officer.agency_code)
        service.audit_officer_read(conn, caller.officer.label, [out["person_id"]], LIST_ACTION)
    return out


@router.get("/{dossier_id}/attachments/{attachment_id}", summary="Download an attachment (as a file)",
            response_class=Response,
            responses={200: {"content": {t: {} for t in attachments.TYPES}}, 500: {"model": ErrorBody}})
def download_attachment(dossier_id: Id, attachment_id: AttachmentId, request: Request, caller: Reader,
                        conn: Conn) -> Response:
    area = caller.officer.area if caller.officer is not None else None
    agency = caller.officer.agency_code if caller.officer is not None else None
    try:
        summary, content = attachments.read_attachment(conn, vault_of(request), dossier_id, attachment_id,
                                                       person_id=caller.person_id, area=area, agency=agency)
    except attachments.IntegrityFailure as exc:
        log.error("dossier attachment integrity: %s", exc)
        return errors.error_body(500, "attachment_integrity", errors.message_for(
            request, "attachment_integrity", "attachment_id", "The attachment is not intact; it is not served."),
            "attachment_id")
    if caller.officer is not None:
        service.audit_officer_read(conn, caller.officer.label, [summary["person_id"]], READ_ACTION)
    return file_response(summary, content)


def file_response(summary: dict, content: bytes) -> Response:
    """An attachment as a download (this API's and the officers' console's): its checked type, never
    rendered in the platform's origin (sandboxed, no sniffing), never cached, with its digest."""
    return Response(content, media_type=summary["content_type"], headers={
        "Content-Disposition": content_disposition(summary["filename"]),
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "Cache-Control": "no-store",
        "Repr-Digest": f"sha-256=:{_b64(summary['sha256'])}:",  # RFC 9530
    })


@router.delete("/{dossier_id}/attachments/{attachment_id}", status_code=204, response_class=Response,
               summary="Remove an attachment from my dossier (citizen), while it waits for papers")
def delete_attachment(dossier_id: Id, attachment_id: AttachmentId, caller: Citizen, conn: Conn) -> Response:
    attachments.delete_attachment(conn, dossier_id, attachment_id, owner_person_id=caller.person_id)
    return Response(status_code=204)


def content_disposition(filename: str) -> str:
    """``attachment`` with the name twice (RFC 6266): an ASCII fallback without diacritics, and the
    name itself in UTF-8 (``filename*``).

    >>> content_disposition("Giấy chứng sinh.pdf")
    'attachment; filename="Giay chung sinh.pdf"; filename*=UTF-8\\'\\'Gi%E1%BA%A5y%20ch%E1%BB%A9ng%20sinh.pdf'
    """
    plain = unicodedata.normalize("NFKD", filename.replace("đ", "d").replace("Đ", "D"))
    ascii_name = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_"
                         for c in plain if not unicodedata.combining(c)) or "attachment"
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"


def _b64(hex_digest: str) -> str:
    import base64

    return base64.b64encode(bytes.fromhex(hex_digest)).decode()
