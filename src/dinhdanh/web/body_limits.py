"""Every request body has a size limit, enforced before it is read into memory.

``BodyLimit`` is a pure ASGI middleware (it wraps ``receive`` and ``send``; nothing is buffered):

- a declared ``Content-Length`` over the limit is refused at once, before a byte of the body is
  read (``413``, the project's JSON error, ``Connection: close`` so the server drops the rest);
- a body without one (chunked) or longer than declared is counted as it arrives: once past the
  limit, reading stops (the handler gets an HTTP 413 error from ``receive``, which FastAPI's body
  and form parsers re-raise) and the client gets the same 413 instead of whatever the handler
  would have answered, unless the response had already started.

The limit is 1 MiB (``DINHDANH_MAX_BODY_BYTES``, read once by ``create_app`` through
``max_body_bytes()`` and passed in); routes that take larger bodies have their own rule in
``RULES``, by method and path: the batch upload (``POST /api/v1/batches``) is limited by
``DINHDANH_BATCH_MAX_BYTES`` (``exchange.batches.max_upload_bytes``, read per request) plus the
multipart envelope, refused as ``upload_too_large`` on the field ``file``. Routes with an id in
their path have theirs in ``PATTERNS`` (a full match of the path): a dossier's attachment upload
(``POST /api/v1/dossiers/{id}/attachments``) takes ``dossiers.attachments.MAX_FILE_BYTES`` plus the
envelope, refused as ``attachment_too_large`` on ``file``. The OpenID Connect form
endpoints also cap their form at 64 KiB themselves (``web.oidc.read_http``).

FastAPI's own ``max_body_size`` is not used: its 413 answer is not the project's error body.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass

from starlette.exceptions import HTTPException
from starlette.requests import Request

from dinhdanh.exchange import batches
from dinhdanh.web.errors import error_body, message_for

__all__ = ["BodyLimit", "PATTERNS", "Rule", "RULES", "DEFAULT_MAX_BYTES", "ENV", "max_body_bytes"]

DEFAULT_MAX_BYTES = 1 << 20
ENV = "DINHDANH_MAX_BODY_BYTES"
ENVELOPE = 64 << 10  # multipart boundaries, part headers and the small form fields of an upload


def max_body_bytes() -> int:
    """``DINHDANH_MAX_BODY_BYTES`` (a positive whole number of bytes), else 1 MiB."""
    raw = os.environ.get(ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_BYTES
    if not raw.isdigit() or int(raw) <= 0:
        raise ValueError(f"{ENV} must be a positive whole number of bytes, not {raw!r}")
    return int(raw)


@dataclass(frozen=True, slots=True)
class Rule:
    """A route's own limit: ``limit()`` bytes (read per request) plus ``slack``, refused with
    ``code`` on ``field``; ``english`` is formatted with ``limit``."""

    limit: Callable[[], int]
    code: str = "body_too_large"
    field: str = "body"
    english: str = "The request body is larger than the limit of {limit} bytes."
    slack: int = 0


# Routes whose bodies may be larger than the default, by (method, path).
RULES: dict[tuple[str, str], Rule] = {
    ("POST", "/api/v1/batches"): Rule(batches.max_upload_bytes, code="upload_too_large", field="file",
                                      english="The file is larger than the limit of {limit} bytes.",
                                      slack=ENVELOPE),
}


def _attachment_limit() -> int:
    from dinhdanh.dossiers.attachments import MAX_FILE_BYTES

    return MAX_FILE_BYTES


# Routes with an id in their path, by method and a pattern the whole path matches (after RULES).
PATTERNS: tuple[tuple[str, re.Pattern[str], Rule], ...] = (
    ("POST", re.compile(r"/api/v1/dossiers/[0-9]{1,19}/attachments"),
     Rule(_attachment_limit, code="attachment_too_large", field="file",
          english="The file is larger than the limit of {limit} bytes.", slack=ENVELOPE)),
)


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` once the body passes the limit: an HTTP error, which FastAPI re-raises
    from its body and form parsers (anything else there becomes "error parsing the body")."""

    code = "body_too_large"

    def __init__(self):
        super().__init__(status_code=413, detail="The request body is too large.")


class BodyLimit:
    """ASGI middleware: see the module's doc. ``max_bytes`` is the default limit; ``rules``
    override it for some routes (default ``RULES``)."""

    def __init__(self, app, max_bytes: int = DEFAULT_MAX_BYTES,
                 rules: dict[tuple[str, str], Rule] | None = None):
        if max_bytes <= 0:
            raise ValueError("max_bytes must be positive")
        self.app = app
        self.max_bytes = max_bytes
        self.rules = RULES if rules is None else rules

    def _limit(self, scope) -> tuple[int, int, Rule | None]:
        """(bytes allowed, the limit to quote, the route's rule if any)."""
        method, path = scope.get("method", ""), scope.get("path", "")
        rule = self.rules.get((method, path))
        if rule is None and self.rules is RULES:
            rule = next((r for m, pattern, r in PATTERNS if m == method and pattern.fullmatch(path)), None)
        if rule is None:
            return self.max_bytes, self.max_bytes, None
        limit = rule.limit()
        return limit + rule.slack, limit, rule

    @staticmethod
    def _refusal(scope, limit: int, rule: Rule | None):
        rule = rule or Rule(lambda: limit)
        english = rule.english.format(limit=limit)
        response = error_body(413, rule.code, message_for(Request(scope), rule.code, rule.field, english),
                              rule.field)
        response.headers["Connection"] = "close"  # the rest of the body is not read
        return response

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        allowed, limit, rule = self._limit(scope)
        declared = next((v for k, v in scope.get("headers") or () if k == b"content-length"), None)
        if declared is not None and declared.strip().isdigit() and int(declared) > allowed:
            await self._refusal(scope, limit, rule)(scope, receive, send)
            return
        received = 0
        exceeded = False
        started = False

        async def counted_receive():
            nonlocal received, exceeded
            if exceeded:  # asked again after the refusal: the client is as good as gone
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > allowed:
                    exceeded = True
                    raise BodyTooLarge()
            return message

        async def guarded_send(message):
            nonlocal started
            if exceeded and not started:
                return  # the handler's answer to a cut-off body: replaced by ours below
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except Exception:
            if not exceeded:
                raise
            if started:  # too late for a 413: the response is cut short, as the body was
                raise
        if exceeded and not started:
            await self._refusal(scope, limit, rule)(scope, receive, send)


def document(app) -> None:
    """Every operation that takes a body says in the OpenAPI document that a body over the limit is
    answered 413 with the project's error (``ErrorBody``), as ``BodyLimit`` does for any route."""
    generate = app.openapi

    def openapi() -> dict:
        spec = generate()
        error = {"$ref": "#/components/schemas/ErrorBody"}
        for operations in spec.get("paths", {}).values():
            for operation in operations.values():
                if isinstance(operation, dict) and "requestBody" in operation:
                    operation.setdefault("responses", {}).setdefault("413", {
                        "description": "The request body is larger than this route accepts (body_too_large).",
                        "content": {"application/json": {"schema": error}}})
        if "ErrorBody" not in spec.get("components", {}).get("schemas", {}):
            from dinhdanh.web.api.schemas import ErrorBody

            spec.setdefault("components", {}).setdefault("schemas", {})["ErrorBody"] = ErrorBody.model_json_schema()
        return spec

    app.openapi = openapi
