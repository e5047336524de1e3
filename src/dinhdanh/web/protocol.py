"""The provider's back-channel endpoints as plain ASGI: ``/token``, ``/par``, ``/revoke``,
``/introspect``, ``/userinfo`` and ``/jwks``.

Machines call them, many times a second (a partner's client-credentials token, a relying party's
refresh), and they use none of FastAPI's request machinery: they read their own form (at most 64
KiB, ``oidc.server.HttpRequest``), run Authlib's server (``oidc.server.Provider``) in one unit of
work and answer its ``(status, body, headers)``. So the app (``web.app``) sends them by exact path
to ``serve``, inside ``web.observability`` (request id, metrics and logs as for any route) and the
body limit (``web.body_limits``) but outside FastAPI: its router, request objects, exception and
telemetry layers cost a third of a token's CPU.

Errors are the project's as elsewhere: a busy or unreachable database is ``503`` with
``Retry-After`` (``web.errors``), an unexpected exception ``500`` with nothing of the request in the
answer or the log; a wrong method ``405`` with ``Allow``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import orjson
from authlib.oauth2.rfc6749.errors import InsecureTransportError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from dinhdanh.oidc import keys, rfc9126
from dinhdanh.oidc.server import HttpRequest, Provider
from dinhdanh.web import errors
from dinhdanh.web.api.cards import vault_of
from dinhdanh.web.deps import in_unit
from dinhdanh.web.oidc import BadBody, held_keys_of, http_request, issuer_of, read_body, read_jwks

Work = Callable[[Provider, HttpRequest], tuple]
Answer = Callable[[Request], Awaitable[tuple[int, bytes, list]]]


class Endpoint:
    """One back-channel endpoint: its path (the metrics' route label, as a route's ``path``), the
    methods it answers and how it answers: ``(status, body, headers)`` for a request."""

    def __init__(self, path: str, methods: tuple[str, ...], answer: Answer):
        self.path, self.methods, self.answer = path, methods, answer
        self.allow = ", ".join(methods)


def _provider(work: Work) -> Answer:
    """The answer of Authlib's server (``oidc.server.Provider``) doing ``work``, in one unit of work."""
    async def answer(request: Request) -> tuple[int, bytes, list]:
        return await _serve(work, request)
    return answer


async def _jwks(request: Request) -> tuple[int, bytes, list]:
    """Per algorithm (ES256, RS256): the key signing now, the next one, and retired keys whose
    tokens may still be presented. Served from this process's copy (``keys.PublishedKeys``), read
    again every ``keys.SERVED_JWKS_LIFETIME``: no transaction for a key set that changes once a
    quarter."""
    published: keys.PublishedKeys = request.app.state.published_keys
    body = published.fresh()
    if body is None:
        body = await run_in_threadpool(read_jwks, request, published)
    # a rotated key is published this long (and more) before it signs (keys.PUBLISH_AHEAD)
    max_age = int(keys.JWKS_CACHE_LIFETIME.total_seconds())
    return 200, body, [("Content-Type", "application/json"), ("Cache-Control", f"public, max-age={max_age}"),
                       ("Content-Length", str(len(body)))]


ENDPOINTS = {e.path: e for e in (
    Endpoint("/token", ("POST",), _provider(lambda p, http: p.create_token_response(http))),
    Endpoint("/par", ("POST",), _provider(lambda p, http: p.handle_response(*rfc9126.push(p, p.create_oauth2_request(http))))),
    Endpoint("/revoke", ("POST",), _provider(lambda p, http: p.create_endpoint_response("revocation", http))),
    Endpoint("/introspect", ("POST",), _provider(lambda p, http: p.create_endpoint_response("introspection", http))),
    Endpoint("/userinfo", ("GET", "POST"), _provider(lambda p, http: p.userinfo(http))),
    Endpoint("/jwks", ("GET",), _jwks),
)}


async def serve(scope, receive, send) -> None:
    """Answer a request to one of ``ENDPOINTS`` (the app sends them here by exact path: ``web.app``)."""
    endpoint = ENDPOINTS[scope["path"]]
    scope["route"] = endpoint
    request = Request(scope, receive)
    method = scope["method"]
    if method not in endpoint.methods and not (method == "HEAD" and "GET" in endpoint.methods):
        await errors.method_not_allowed(request, endpoint.allow)(scope, receive, send)
        return
    try:
        answer = await endpoint.answer(request)
    except Exception as exc:  # what the app's handler of any exception answers (web.errors)
        await errors.unexpected_error(request, exc)(scope, receive, send)
        return
    await _send(send, *answer)


async def _serve(work: Work, request: Request) -> tuple[int, bytes, list]:
    scope = request.scope
    issuer = issuer_of(request)
    try:
        body = await read_body(scope, request.receive) if scope["method"] == "POST" else b""
        http = http_request(scope, body, issuer)
    except BadBody as e:
        return _oauth_error(400, "invalid_request", str(e))
    vault, held = vault_of(request), held_keys_of(request)
    try:
        status, body, headers = await in_unit(
            request, lambda conn: work(Provider(conn, vault, issuer, held_keys=held), http), inline=True)
    except InsecureTransportError:  # plain http to a host other than loopback (RFC 6749 s3.1, s3.2)
        return _oauth_error(400, "invalid_request", "The provider's endpoints are served over https only.")
    if isinstance(body, dict):
        return _json(status, body, headers)
    out = body.encode() if isinstance(body, str) else (body or b"")
    return status, out, [*_without_length(headers), ("Content-Length", str(len(out)))]


def _json(status: int, body: dict, headers) -> tuple[int, bytes, list]:
    out = orjson.dumps(body)
    return status, out, [*_without_length([("Content-Type", "application/json"), *headers]),
                         ("Content-Length", str(len(out)))]


def _without_length(headers) -> list:
    """The provider's headers (each set once: a later one replaces an earlier one of the same name, as
    on a Starlette response), without a length of their own."""
    merged = {k.lower(): (k, v) for k, v in headers}
    merged.pop("content-length", None)
    return list(merged.values())


def _oauth_error(status: int, error: str, description: str) -> tuple[int, bytes, list]:
    return _json(status, {"error": error, "error_description": description}, [("Cache-Control", "no-store")])


async def _send(send, status: int, body: bytes, headers) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]})
    await send({"type": "http.response.body", "body": body})
