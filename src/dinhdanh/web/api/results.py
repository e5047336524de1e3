"""Public verification of result documents (``GET /api/v1/results/{code}``, JSON, or a page with
``Accept: text/html`` and at ``/results/{code}``), and the document-signing CA's certificate and
CRL for validators. No credential: whoever holds a document's code may check it; the answer is the
minimum needed to compare (documents.results)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape
from pydantic import BaseModel

from dinhdanh.documents import ca, results
from dinhdanh.web import errors
from dinhdanh.web.api.cards import vault_of
from dinhdanh.web.api.schemas import ErrorBody
from dinhdanh.web.deps import Conn, ReadConn

router = APIRouter(tags=["results"], responses={404: {"model": ErrorBody}, 422: {"model": ErrorBody}})
Code = Annotated[str, Path(pattern=results.CODE_PATTERN, description="The code printed on the document and in its "
                                                                     "QR code: 20 characters, A-Z and 2-7")]

# Vietnamese wording of this area's refusals, by stable code (English with Accept-Language: en).
VI = {
    "invalid_result_code": "Mã tra cứu gồm 20 ký tự: chữ cái A-Z và chữ số 2-7.",
    "unknown_result_code": "Không có văn bản kết quả nào mang mã tra cứu này.",
    "result_already_revoked": "Văn bản kết quả này đã bị thu hồi.",
    "documents_ca_exists": "CA ký văn bản đã được tạo.",
    "signer_busy": "Khóa ký của cơ quan đang được gia hạn; hãy thử lại.",
    ("not_found", "holder"): "Không tìm thấy người nhận kết quả trong Cơ sở dữ liệu quốc gia về dân cư.",
    ("not_found", "pki"): "Chưa có CA ký văn bản.",
}
errors.add_messages(VI)

TEXT = {
    "vi": {"title": "Kiểm tra văn bản kết quả", "code": "Mã tra cứu",
           "genuine": "Văn bản do cơ quan nhà nước ban hành và đang có hiệu lực.",
           "revoked": "Văn bản đã bị thu hồi: không còn giá trị.",
           "unknown": "Không có văn bản nào mang mã tra cứu này.",
           "unknown_hint": "Hãy kiểm tra lại mã in trên văn bản. Văn bản không có trong hệ thống thì không thể "
                           "coi là do cơ quan nhà nước ban hành.",
           "revoked_on": "Ngày thu hồi", "compare": "Đối chiếu các thông tin sau với văn bản bạn đang có:",
           "kind": "Loại văn bản", "agency": "Cơ quan ban hành", "issued_on": "Ngày ban hành",
           "holder": "Người nhận (chữ cái đầu)",
           "signature": "Tệp PDF gốc mang chữ ký số PAdES; kiểm tra chữ ký bằng", "ca": "chứng thư của CA ký văn bản",
           "switch": "English", "other": "en"},
    "en": {"title": "Result document check", "code": "Code",
           "genuine": "Issued by a state agency and in force.",
           "revoked": "Revoked: this document is no longer valid.",
           "unknown": "No document bears this code.",
           "unknown_hint": "Check the code printed on the document. A document the system does not know cannot be "
                           "taken as issued by a state agency.",
           "revoked_on": "Revoked on", "compare": "Compare these with the document you hold:",
           "kind": "Kind", "agency": "Issuing agency", "issued_on": "Date of issue", "holder": "Holder (initials)",
           "signature": "The original PDF carries a PAdES digital signature; check it with the",
           "ca": "document-signing CA's certificate", "switch": "Tiếng Việt", "other": "vi"},
}
_env = Environment(loader=PackageLoader("dinhdanh.web", "templates"), autoescape=select_autoescape())


class ResultStatus(BaseModel):
    code: str
    status: Literal["genuine", "revoked", "unknown"]
    kind: str | None
    kind_label: str | None
    issued_on: str | None  # YYYY-MM-DD, Vietnam's date
    agency: str | None
    holder: str | None  # initials only
    sha256: str | None  # of the signed PDF as issued
    revoked_on: str | None


def _wants_html(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "text/html" in accept and "application/json" not in accept.split("text/html")[0]


def _page(request: Request, answer: dict, lang: str | None) -> HTMLResponse:
    lang = lang if lang in TEXT else ("en" if errors._english(request) else "vi")
    shown = dict(answer)
    for key in ("issued_on", "revoked_on"):
        if answer[key]:
            shown[f"{key}_display"] = dt.date.fromisoformat(answer[key]).strftime("%d/%m/%Y")
    switch = f"/results/{answer['code']}?lang={TEXT[lang]['other']}"
    return HTMLResponse(_env.get_template("result_check.html").render(t=TEXT[lang], r=shown, lang=lang,
                                                                      switch=switch))


@router.get("/api/v1/results/{code}", response_model=ResultStatus,
            summary="Is this result document genuine, revoked or unknown? (a page with Accept: text/html)",
            responses={200: {"content": {"text/html": {}}}})
def result_check(code: Code, request: Request, conn: Conn, lang: Literal["vi", "en"] | None = None):
    answer = results.result_status(conn, code, english=(lang or ("en" if errors._english(request) else "vi")) == "en")
    if _wants_html(request):
        return _page(request, answer, lang)
    return JSONResponse(answer)


@router.get("/results/{code}", response_class=HTMLResponse, include_in_schema=False)
def result_page(code: Code, request: Request, conn: Conn, lang: Literal["vi", "en"] | None = None):
    answer = results.result_status(conn, code, english=(lang or ("en" if errors._english(request) else "vi")) == "en")
    return _page(request, answer, lang)


@router.get("/api/v1/pki/documents-ca.pem", tags=["pki"], summary="The document-signing CA certificate (PEM)",
            response_class=Response, responses={200: {"content": {"application/x-pem-file": {}}}})
def documents_ca_pem(conn: ReadConn) -> Response:
    return Response(ca.ca_pem(conn), media_type="application/x-pem-file")


@router.get("/api/v1/pki/documents-ca.crl", tags=["pki"], summary="The document-signing CA's current CRL (DER)",
            response_class=Response, responses={200: {"content": {"application/pkix-crl": {}}}})
def documents_ca_crl(request: Request, conn: Conn) -> Response:
    return Response(ca.current_crl(conn, vault_of(request)), media_type="application/pkix-crl")
