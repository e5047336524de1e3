"""Every error as JSON ``{"error": {"code", "message", "field"}}`` with a 4xx status, never a 500
for bad input. ``title`` is the Vietnamese heading shown to officers."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from dinhdanh.registry.errors import Conflict, Forbidden, InvalidInput, NotFound, RegistryError, RuleViolation

STATUS = {NotFound: 404, InvalidInput: 422, RuleViolation: 409, Conflict: 409, Forbidden: 403}
TITLES = {
    400: "Yêu cầu không hợp lệ", 401: "Chưa xác thực", 403: "Không có quyền", 404: "Không tìm thấy",
    405: "Phương thức không được hỗ trợ", 409: "Không thực hiện được theo quy định",
    413: "Dữ liệu quá lớn", 422: "Dữ liệu không hợp lệ",
}


def error_body(status: int, code: str, message: str, field: str | None = None, **extra) -> JSONResponse:
    body = {"code": code, "title": TITLES.get(status, "Lỗi"), "message": message, "field": field, **extra}
    return JSONResponse({"error": body}, status_code=status)


def _loc(loc: tuple) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or str(loc[-1] if loc else "")


def install(app: FastAPI) -> None:
    @app.exception_handler(RegistryError)
    async def registry_error(_: Request, exc: RegistryError):
        return error_body(STATUS.get(type(exc), 422), exc.code, exc.message, exc.field)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError):
        problems = [{"field": _loc(e["loc"]), "message": e["msg"]} for e in exc.errors()]
        first = problems[0] if problems else {"field": None, "message": "invalid request"}
        message = "; ".join(f"{p['field']}: {p['message']}" for p in problems[:5])
        return error_body(422, "invalid_input", message, first["field"], problems=problems)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException):
        if exc.status_code == 400:
            # FastAPI's "There was an error parsing the body" (e.g. bytes that are not UTF-8): a
            # malformed body is bad input like malformed JSON, 422 as documented, not an odd 400.
            return error_body(422, "invalid_input", "The request body cannot be read as JSON text (UTF-8).",
                              "body")
        codes = {401: "unauthenticated", 403: "forbidden", 404: "not_found", 405: "method_not_allowed"}
        response = error_body(exc.status_code, codes.get(exc.status_code, "http_error"), str(exc.detail))
        for k, v in (exc.headers or {}).items():
            response.headers[k] = v
        return response
