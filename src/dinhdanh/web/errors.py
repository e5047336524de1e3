"""Every error as JSON ``{"error": {"code", "message", "field"}}`` with a 4xx status, never a 500
for bad input. ``title`` is the Vietnamese heading shown to officers."""

from __future__ import annotations

import logging

from http import HTTPStatus

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from dinhdanh.registry.errors import Conflict, Forbidden, InvalidInput, NotFound, RegistryError, RuleViolation, TooLarge
from dinhdanh.store.unit_of_work import DatabaseBusy, DatabaseUnavailable, is_busy, is_unavailable

log = logging.getLogger("dinhdanh.web")
STATUS = {NotFound: 404, InvalidInput: 422, RuleViolation: 409, Conflict: 409, Forbidden: 403, TooLarge: 413}
TITLES = {
    400: "Yêu cầu không hợp lệ", 401: "Chưa xác thực", 403: "Không có quyền", 404: "Không tìm thấy",
    405: "Phương thức không được hỗ trợ", 409: "Không thực hiện được theo quy định",
    413: "Dữ liệu quá lớn", 422: "Dữ liệu không hợp lệ", 429: "Vượt giới hạn truy cập", 500: "Lỗi hệ thống",
    503: "Dịch vụ tạm thời không sẵn sàng",
}


# Vietnamese messages for the register's refusals, by stable code (and field where it matters).
VI = {
    "upload_too_large": "Tệp tải lên vượt quá dung lượng cho phép.",
    "body_too_large": "Nội dung yêu cầu vượt quá dung lượng cho phép.",
    "batch_not_done": "Lô đối chiếu chưa xử lý xong.",
    "not_a_telco": "Chỉ doanh nghiệp viễn thông mới có thuê bao trong quy trình xử lý sai lệch.",
    "already_married": "Người này đang có vợ hoặc chồng.",
    "child_before_parent": "Con không thể sinh trước cha hoặc mẹ.",
    "close_kin": "Cấm kết hôn giữa những người cùng dòng máu về trực hệ hoặc anh chị em ruột.",
    "date_in_future": "Ngày tháng không được ở tương lai.",
    "death_before_birth": "Ngày chết trước ngày sinh.",
    "household_required": "Cần ghi số hộ: cha, mẹ chưa có hộ để nhập.",
    "no_change": "Thông tin mới trùng với thông tin đã ghi.",
    "not_married": "Hai người không phải là vợ chồng của nhau.",
    "parent_dead": "Cha hoặc mẹ đã chết trước ngày sinh.",
    "parent_sex": "Giới tính của cha hoặc mẹ không đúng với dữ liệu đã ghi.",
    "parent_too_young": "Cha hoặc mẹ chưa đủ 12 tuổi vào ngày sinh của con.",
    "person_dead": "Người này đã được ghi nhận là đã chết.",
    "person_missing": "Người này đã bị tuyên bố mất tích.",
    "pid_exhausted": "Không còn số định danh cá nhân trống cho nhóm này.",
    "same_commune": "Người này đã đăng ký thường trú tại xã, phường này.",
    "same_household": "Người này đã ở trong hộ này.",
    "same_sex": "Việc kết hôn chỉ được đăng ký giữa nam và nữ (Luật Hôn nhân và gia đình 2014).",
    "under_marriage_age": "Chưa đủ tuổi kết hôn (nam từ đủ 20 tuổi, nữ từ đủ 18 tuổi).",
    ("not_found", "pid"): "Không tìm thấy người có số định danh cá nhân này.",
    ("not_found", "as_of"): "Người này chưa có trong Cơ sở dữ liệu vào ngày đó.",
    ("not_found", "subscription_id"): "Không tìm thấy đăng ký nhận thông báo thay đổi này của đối tác.",
    "forbidden": "Cán bộ chỉ được thực hiện việc này trong địa bàn được giao.",
    "conflict": "Hồ sơ vừa được người khác cập nhật; hãy tải lại và thử lại.",
    "unauthenticated": "Cần mã truy cập hợp lệ (Authorization: Bearer ...).",  # an officer's or a citizen's
    "rate_limited": "Vượt giới hạn số yêu cầu mỗi phút của đối tác; hãy thử lại sau.",
    "quota_exceeded": "Đã dùng hết hạn mức yêu cầu trong ngày của đối tác; hạn mức được đặt lại lúc 0 giờ "
                      "(giờ Việt Nam).",
    "rate_limiter_unavailable": "Bộ giới hạn truy cập tạm thời không hoạt động nên chưa phục vụ được yêu cầu "
                                "của đối tác; hãy thử lại sau ít phút.",
    "consent_required": "Công dân chưa đồng ý cho đối tác này nhận các thông tin được yêu cầu.",
    "database_busy": "Hệ thống đang bận; yêu cầu chưa được thực hiện. Hãy thử lại sau ít giây.",
    "database_unavailable": "Cơ sở dữ liệu tạm thời không truy cập được; yêu cầu chưa được thực hiện. "
                            "Hãy thử lại sau ít giây.",
    "json_invalid": "Nội dung yêu cầu không phải là văn bản JSON hợp lệ.",
    "form_invalid": "Không đọc được biểu mẫu gửi lên (quá nhiều trường hoặc tệp, hoặc sai định dạng).",
    "partner_unauthenticated": "Cần mã truy cập hợp lệ của đối tác (cấp qua /token, phạm vi dinhdanh.verify; "
                               "Authorization: Bearer ...).",
}
# Vietnamese wording of refusals that keep the generic code of their status (``Refusal(vi=...)``)
INSUFFICIENT_SCOPE_VI = "Mã truy cập không có phạm vi (scope) mà yêu cầu này cần (xem tiêu đề WWW-Authenticate)."
CITIZEN_ONLY_VI = ("Đây là thao tác của chính công dân: cần mã truy cập của công dân (phạm vi dinhdanh.dossiers), "
                   "không dùng mã của cán bộ.")
# A route's own HTTP refusal with nothing more to say than its status (an unknown address, a method
# the address does not take): Starlette's English phrase, in Vietnamese
GENERIC_VI = {404: "Không tìm thấy địa chỉ này.", 405: "Địa chỉ này không nhận phương thức HTTP đó."}
# HTTP refusals whose message is translated (the others carry their own English detail).
_TRANSLATED = {"unauthenticated", "partner_unauthenticated", "rate_limited", "quota_exceeded",
               "rate_limiter_unavailable"}


class Refusal(HTTPException):
    """An HTTP refusal with a stable error code, put in the body; its message in Vietnamese when the
    code is one of ``_TRANSLATED`` or ``vi`` words it (the English ``detail`` with Accept-Language: en)."""

    def __init__(self, status_code: int, code: str, detail: str, headers: dict | None = None, vi: str | None = None):
        super().__init__(status_code=status_code, detail=detail, headers=headers)
        self.code, self.vi = code, vi


def add_messages(messages: dict) -> None:
    """Add an area's Vietnamese wording to ``VI``. A key already worded differently is refused: one code
    (and field) has one meaning across the whole API, so an area cannot silently reword another's refusal."""
    clashes = sorted(str(k) for k, v in messages.items() if k in VI and VI[k] != v)
    if clashes:
        raise ValueError(f"Vietnamese messages already worded differently: {', '.join(clashes)}")
    VI.update(messages)


def _english(request: Request) -> bool:
    first = request.headers.get("accept-language", "").split(",")[0].strip().lower()
    return first.startswith("en")


def _message(request: Request, code: str, field: str | None, english: str) -> str:
    if _english(request):
        return english
    return VI.get((code, field)) or VI.get(code) or english


def message_for(request: Request, code: str, field: str | None, english: str) -> str:
    """The message for a stable ``code``: Vietnamese from ``VI`` unless the client asks for English."""
    return _message(request, code, field, english)


def error_body(status: int, code: str, message: str, field: str | None = None, **extra) -> JSONResponse:
    body = {"code": code, "title": TITLES.get(status, "Lỗi"), "message": message, "field": field, **extra}
    return JSONResponse({"error": body}, status_code=status)


def _database_refusal(request: Request, exc: Exception) -> JSONResponse:
    """503 with ``Retry-After``: nothing was done (the unit of work rolled back), try again."""
    busy = is_busy(exc)
    code = "database_busy" if busy else "database_unavailable"
    english = ("The database is busy; nothing was done. Try again in a moment." if busy else
               "The database cannot be reached; nothing was done. Try again in a moment.")
    log.warning("%s: %s", code, type(exc).__name__)
    response = error_body(503, code, _message(request, code, None, english))
    response.headers["Retry-After"] = str(getattr(exc, "retry_after", None) or (1 if busy else 5))
    return response


def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    """The answer to an exception no handler took: 503 for a database that was busy or unreachable
    (a wait that ran out, in a unit of work or outside one), else 500 with nothing of the request or
    the data in it (nor in the log line)."""
    if is_busy(exc) or is_unavailable(exc):
        return _database_refusal(request, exc)
    log.error("unexpected %s in a request", type(exc).__name__)
    return error_body(500, "internal_error", "An unexpected error; it has been logged.")


def method_not_allowed(request: Request, allow: str) -> JSONResponse:
    """405 with ``Allow``, Vietnamese first, as the router's own."""
    phrase = HTTPStatus.METHOD_NOT_ALLOWED.phrase
    response = error_body(405, "method_not_allowed", phrase if _english(request) else GENERIC_VI[405])
    response.headers["Allow"] = allow
    return response


def insufficient_scope(scope: str) -> Refusal:
    """403 for an access token without ``scope`` (RFC 6750 s.3.1: ``insufficient_scope``)."""
    return Refusal(403, "forbidden", f"The access token lacks the scope {scope}.", vi=INSUFFICIENT_SCOPE_VI,
                   headers={"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{scope}"'})


def _loc(loc: tuple) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or str(loc[-1] if loc else "")


def install(app: FastAPI) -> None:
    @app.exception_handler(RegistryError)
    async def registry_error(request: Request, exc: RegistryError):
        message = _message(request, exc.code, exc.field, exc.message)
        status = next((STATUS[c] for c in type(exc).__mro__ if c in STATUS), 422)  # an area may refine a kind
        listed = getattr(exc, "problems", None)  # e.g. every problem of a filled form, not only the first
        if listed and all(hasattr(p, "as_dict") for p in listed):
            english = _english(request)
            return error_body(status, exc.code, message, exc.field, problems=[p.as_dict(english) for p in listed])
        return error_body(status, exc.code, message, exc.field)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        errors_ = exc.errors()
        broken = next((e for e in errors_ if e.get("type") == "json_invalid"), None)
        if broken is not None:  # its "loc" is the character position, not a field
            at = broken["loc"][-1] if broken.get("loc") else None
            english = f"The request body is not valid JSON (at character {at})."
            return error_body(422, "invalid_input", _message(request, "json_invalid", None, english), "body")
        problems = [{"field": _loc(e["loc"]), "message": e["msg"]} for e in errors_]
        first = problems[0] if problems else {"field": None, "message": "invalid request"}
        message = "; ".join(f"{p['field']}: {p['message']}" for p in problems[:5])
        return error_body(422, "invalid_input", message, first["field"], problems=problems)

    @app.exception_handler(DatabaseBusy)
    @app.exception_handler(DatabaseUnavailable)
    async def database_wait(request: Request, exc: Exception):
        return _database_refusal(request, exc)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):
        return unexpected_error(request, exc)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        if exc.status_code == 400:
            # FastAPI's "There was an error parsing the body" (e.g. bytes that are not UTF-8) or
            # Starlette's refusal of a form (too many fields or files): a malformed body is bad
            # input like malformed JSON, 422 as documented, not an odd 400
            kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if kind in ("multipart/form-data", "application/x-www-form-urlencoded"):
                english = f"The form cannot be read: {exc.detail}"
                return error_body(422, "invalid_input", _message(request, "form_invalid", None, english), "body")
            english = "The request body cannot be read as JSON text (UTF-8)."
            return error_body(422, "invalid_input", _message(request, "json_invalid", None, english), "body")
        codes = {401: "unauthenticated", 403: "forbidden", 404: "not_found", 405: "method_not_allowed"}
        code = getattr(exc, "code", None) or codes.get(exc.status_code, "http_error")
        vi = getattr(exc, "vi", None)
        if code in _TRANSLATED:
            message = _message(request, code, None, str(exc.detail))
        elif vi is not None:
            message = exc.detail if _english(request) else vi
        elif exc.detail == HTTPStatus(exc.status_code).phrase and exc.status_code in GENERIC_VI:
            message = exc.detail if _english(request) else GENERIC_VI[exc.status_code]
        else:
            message = str(exc.detail)
        response = error_body(exc.status_code, code, message)
        for k, v in (exc.headers or {}).items():
            response.headers[k] = v
        return response
