"""The OpenID Connect provider's routes: protocol endpoints and the pages a person sees.

Protocol endpoints (described by ``/.well-known/openid-configuration``, not by OpenAPI):
``/authorize`` (GET, POST), ``/par``, ``/token``, ``/userinfo`` (GET, POST), ``/revoke``,
``/introspect``, ``/logout`` (GET, POST), ``/jwks``, and the archive of every signing key
(``/.well-known/dinhdanh/keys-archive``). Pages: ``/login``, ``/login/step-up``,
``/consent`` (server-rendered, Vietnamese first, English with ``?lang=en``, ``ui_locales`` or
``Accept-Language``).

Each request reads its body here (form-encoded, at most 64 KiB: ``read_http``, ``http_request``),
then the work runs in the thread pool inside one transaction with a ``StarletteProvider``
(Authlib's ``AuthorizationServer`` made to read Starlette requests and answer Starlette
responses). OAuth errors are answered, not raised, so the transaction commits what a refusal must
keep: wrong-passcode counters, a used code, a revoked token family. The back-channel endpoints
(token, PAR, revocation, introspection, userinfo) are plain ASGI, dispatched before FastAPI's
router: ``web.protocol``.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.concurrency import run_in_threadpool

from dinhdanh import config
from dinhdanh.eid import auth as eid
from dinhdanh.oidc import authorize as flow
from dinhdanh.oidc import keys, sessions
from dinhdanh.oidc.claims import CLAIM_LABELS
from dinhdanh.oidc.discovery import metadata
from dinhdanh.oidc.server import HttpRequest, Provider
from dinhdanh.oidc.server import Request as OAuthRequest
from dinhdanh.store.base import utcnow
from dinhdanh.web.api.cards import vault_of
from dinhdanh.web.deps import uow_of

# the protocol's metadata and keys (machines read them, many times a second) apart from its pages
# (people's browsers): the app tries them early (web.app); the back-channel endpoints are
# dispatched before the router (``web.protocol``)
endpoints = APIRouter()
router = APIRouter()
MAX_BODY = 64 * 1024
_env = Environment(loader=PackageLoader("dinhdanh.web", "templates"), autoescape=select_autoescape())
PAGES = {"login": "/login", "step_up": "/login/step-up", "consent": "/consent"}
PAGE_HEADERS = {"Cache-Control": "no-store", "X-Frame-Options": "DENY",
                "Content-Security-Policy": "default-src 'self'; style-src 'unsafe-inline'; frame-ancestors 'none'",
                "Referrer-Policy": "same-origin"}


class BadBody(Exception):
    pass


def set_issuer(app, issuer: str) -> None:
    """Give an app its issuer (``serve`` and ``demo`` do: ``--issuer``, ``DINHDANH_OIDC_ISSUER`` or
    their own listening address)."""
    app.state.oidc_issuer = issuer.rstrip("/")


_UNREAD = object()


def held_keys_of(request: Request) -> keys.SigningKeys | None:
    """The signing keys this process holds (``keys.SigningKeys``, made by ``create_app``)."""
    return getattr(request.app.state, "signing_keys", None)


def issuer_of(request: Request) -> str:
    """The issuer, from configuration, never from the request (its Host header is the client's to
    write): ``app.state.oidc_issuer`` (``set_issuer``); else ``DINHDANH_OIDC_ISSUER``, read once per
    app; else the address the server listens on (the ASGI ``server`` of the connection, which the
    server takes from its socket: what ``http://<host>:<port>`` of ``serve`` is)."""
    state = request.app.state
    issuer = getattr(state, "oidc_issuer", None)
    if issuer:
        return issuer
    configured = getattr(state, "oidc_issuer_from_config", _UNREAD)
    if configured is _UNREAD:
        configured = state.oidc_issuer_from_config = config.oidc_issuer()
    return configured or listening_address(request.scope)


def listening_address(scope) -> str:
    """``scheme://host[:port]`` of the socket a connection came in on (default ports left out)."""
    scheme = "https" if scope.get("scheme") in ("https", "wss") else "http"
    server = scope.get("server") or ("127.0.0.1", None)
    host, port = server[0], server[1] if len(server) > 1 else None
    if ":" in host:
        host = f"[{host}]"
    default = 443 if scheme == "https" else 80
    return f"{scheme}://{host}" + (f":{port}" if port and port != default else "")


async def read_http(request: Request) -> HttpRequest:
    """The request's method, URI (on the issuer), headers, query and form, read once (``http_request``)."""
    body = await read_body(request.scope, request.receive) if request.method == "POST" else b""
    return http_request(request.scope, body, issuer_of(request))


async def read_body(scope, receive) -> bytes:
    """An ASGI request's body, refused (``BadBody``) past ``MAX_BODY``, declared or counted, before
    more is read."""
    for name, value in scope["headers"]:
        if name == b"content-length" and (not value.isdigit() or int(value) > MAX_BODY):
            raise BadBody("The request body is too large.")
    body = b""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise BadBody("The client went away before sending its body.")
        body += message.get("body", b"")
        if len(body) > MAX_BODY:
            raise BadBody("The request body is too large.")
        if not message.get("more_body"):
            return body


def http_request(scope, body: bytes, issuer: str) -> HttpRequest:
    """An ``HttpRequest`` of an ASGI request whose body (at most ``MAX_BODY``) was read: its URI on
    the issuer, its headers, query and form (application/x-www-form-urlencoded UTF-8, at most 100
    parameters, none holding a NUL); raises ``BadBody``."""
    method, path = scope["method"], scope["path"]
    query_string = scope.get("query_string", b"").decode("latin-1")
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
    uri = issuer + path + (f"?{query_string}" if query_string else "")
    form: list[tuple[str, str]] = []
    if method == "POST":
        kind = next((v for k, v in headers if k == "content-type"), "").split(";")[0].strip().lower()
        if body and kind not in ("application/x-www-form-urlencoded", ""):
            raise BadBody("Send the parameters as application/x-www-form-urlencoded.")
        try:
            form = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False, max_num_fields=100)
        except (UnicodeDecodeError, ValueError):
            raise BadBody("The request body is not form-encoded UTF-8 text.") from None
    try:
        query = parse_qsl(query_string, keep_blank_values=True, max_num_fields=100)
    except ValueError:
        raise BadBody("Too many query parameters.") from None
    if any("\x00" in k or "\x00" in v for k, v in (*query, *form)):
        raise BadBody("A parameter holds a NUL character.")  # never legitimate; PostgreSQL text refuses it
    client = scope.get("client")
    return HttpRequest(method=method, uri=uri, headers=headers, query=query, form=form,
                       ip=client[0] if client else None)


class StarletteProvider(Provider):
    """Authlib's server for Starlette: requests are read by ``read_http`` beforehand (Starlette
    reads bodies asynchronously, Authlib synchronously) and kept on ``request.state``."""

    def create_oauth2_request(self, request):
        if isinstance(request, Request):
            return OAuthRequest(request.state.oidc_http)
        return super().create_oauth2_request(request)

    def handle_response(self, status, body, headers):
        if isinstance(body, dict):
            response = JSONResponse(body, status_code=status)
        else:
            response = Response(body or b"", status_code=status)
        for name, value in headers:
            response.headers[name] = value
        return response


# ------------------------------------------------------------------------- metadata and keys


@endpoints.get("/.well-known/openid-configuration", tags=["oidc"], summary="OpenID Provider metadata (Discovery)")
def configuration(request: Request) -> JSONResponse:
    return JSONResponse(metadata(issuer_of(request)), headers={"Cache-Control": "public, max-age=300"})


def read_jwks(request: Request, published: keys.PublishedKeys) -> bytes:
    """The key set read again (``web.protocol`` serves ``/jwks``; a new provider's keys are made here)."""
    with uow_of(request).read() as conn:  # a read: no write lock is queued for (SQLite's is one)
        body = published.read(conn)
    if body is None:  # a new provider: make its keys, once
        with uow_of(request).begin() as conn:
            keys.ensure_signing_keys(conn, vault_of(request))  # there is always a key of each algorithm
            body = published.read(conn)
    return body


@endpoints.get("/.well-known/dinhdanh/keys-archive", tags=["oidc"],
            summary="Every key the provider ever signed with, and when (never shrinks)")
def keys_archive(request: Request) -> JSONResponse:
    """A JWKS of every signing key ever used, each with ``signs_from`` and ``signs_until``
    (NumericDate; null while it signs): e-KYC answers and other kept documents verify with it
    after any number of rotations. The access log's tree heads have their own keys at
    ``audit_log_keys`` (never removed either)."""
    with uow_of(request).begin() as conn:
        body = keys.archive(conn)
    body["audit_log_keys"] = f"{issuer_of(request)}/api/v1/audit/keys"
    max_age = int(keys.JWKS_CACHE_LIFETIME.total_seconds())
    return JSONResponse(body, headers={"Cache-Control": f"public, max-age={max_age}"})


# ------------------------------------------------------------------------------- pages

TEXT = {
    "vi": {
        "brand": "Định danh điện tử", "switch": "English", "other": "en",
        "login_title": "Đăng nhập bằng tài khoản định danh điện tử",
        "login_for": "để sử dụng dịch vụ", "username": "Số định danh cá nhân",
        "username_hint": "12 chữ số trên thẻ căn cước (người nước ngoài: số định danh; tổ chức: mã định danh)",
        "password": "Mật mã (6 chữ số)", "login": "Đăng nhập",
        "step_up_title": "Xác thực mức độ 2",
        "step_up_lead": "Dịch vụ này yêu cầu tài khoản định danh điện tử mức độ 2. Nhập mã xác thực (OTP) "
                        "trong ứng dụng, hoặc dán chữ ký của thiết bị cho mã thử thách bên dưới.",
        "totp": "Mã xác thực (6 chữ số)", "device_proof": "Chữ ký của thiết bị (không bắt buộc)",
        "challenge": "Mã thử thách cho thiết bị", "confirm": "Xác nhận",
        "step_up_failed": "Mã xác thực không đúng hoặc đã được dùng; hãy thử lại.",
        "consent_title": "Đồng ý chia sẻ thông tin",
        "consent_lead": "muốn nhận các thông tin sau của bạn từ hệ thống định danh điện tử:",
        "purpose": "Mục đích (theo thỏa thuận kết nối)",
        "sub_note": "Dịch vụ nhận một mã định danh riêng cho bạn, khác với mã mà các dịch vụ khác nhận, "
                    "để không thể đối chiếu dữ liệu của bạn giữa các dịch vụ.",
        "remember": "Lựa chọn của bạn được ghi nhớ trong 180 ngày; bạn có thể rút lại bất cứ lúc nào trong "
                    "phần quản lý tài khoản.",
        "allow": "Đồng ý", "deny": "Từ chối",
        "error_title": "Không thể tiếp tục đăng nhập",
        "logout_title": "Đăng xuất", "logout_confirm": "Bạn có muốn đăng xuất khỏi hệ thống định danh điện tử?",
        "logout": "Đăng xuất", "logged_out": "Bạn đã đăng xuất.",
        "details": "Chi tiết kỹ thuật",
    },
    "en": {
        "brand": "Electronic identification", "switch": "Tiếng Việt", "other": "vi",
        "login_title": "Log in with your e-ID account", "login_for": "to use", "username": "Personal ID number",
        "username_hint": "The 12 digits on your ID card (foreigners: identification number; organisations: "
                         "e-ID code)",
        "password": "Passcode (6 digits)", "login": "Log in",
        "step_up_title": "Level 2 authentication",
        "step_up_lead": "This service asks for a level-2 e-ID account. Enter the one-time code from your app, "
                        "or paste your device's signature of the challenge below.",
        "totp": "One-time code (6 digits)", "device_proof": "Device signature (optional)",
        "challenge": "Challenge for the device", "confirm": "Confirm",
        "step_up_failed": "The code is wrong or was used already; try again.",
        "consent_title": "Share your information",
        "consent_lead": "would like to receive the following information about you from the e-ID system:",
        "purpose": "Purpose (as in the connection agreement)",
        "sub_note": "The service receives an identifier of you for it alone, different from what other services "
                    "receive, so your data cannot be matched across services.",
        "remember": "Your choice is remembered for 180 days; you can withdraw it at any time from your account.",
        "allow": "Allow", "deny": "Deny",
        "error_title": "The login cannot continue",
        "logout_title": "Log out", "logout_confirm": "Do you want to log out of the e-ID system?",
        "logout": "Log out", "logged_out": "You have logged out.",
        "details": "Technical details",
    },
}

ERRORS = {
    "vi": {
        "client_not_approved": "Dịch vụ «{client_name}» chưa được phê duyệt kết nối với hệ thống định danh điện tử, "
                               "nên chưa thể đăng nhập. Xin hãy liên hệ đơn vị cung cấp dịch vụ.",
        "invalid_client": "Dịch vụ yêu cầu đăng nhập không được đăng ký với hệ thống định danh điện tử.",
        "invalid_request": "Yêu cầu đăng nhập từ dịch vụ không hợp lệ (ví dụ: địa chỉ quay lại chưa được đăng ký).",
        "invalid_request_uri": "Yêu cầu đăng nhập đã hết hạn hoặc đã được dùng. Hãy quay lại dịch vụ và thử lại.",
        "expired": "Phiên đăng nhập đã hết hạn hoặc đã hoàn tất. Hãy quay lại dịch vụ và bắt đầu lại.",
        "csrf": "Biểu mẫu đã hết hạn hoặc trình duyệt chặn cookie. Hãy tải lại trang, bật cookie và thử lại.",
        "bad_body": "Dữ liệu gửi lên không đọc được.",
        "logout_invalid": "Yêu cầu đăng xuất không hợp lệ.",
    },
    "en": {
        "client_not_approved": "The service “{client_name}” has not been approved to connect to the e-ID system, "
                               "so you cannot log in to it yet. Please contact the service provider.",
        "invalid_client": "The service asking you to log in is not registered with the e-ID system.",
        "invalid_request": "The login request from the service is not valid (for example, its return address is "
                           "not registered).",
        "invalid_request_uri": "The login request has expired or was used already. Go back to the service and "
                               "try again.",
        "expired": "This login has expired or is already complete. Go back to the service and start again.",
        "csrf": "The form has expired, or your browser blocks cookies. Reload the page, allow cookies and try again.",
        "bad_body": "The data sent cannot be read.",
        "logout_invalid": "The logout request is not valid.",
    },
}


def _lang(request: Request, http: HttpRequest | None = None, params: dict | None = None) -> str:
    explicit = request.query_params.get("lang")
    if http is not None and http.method == "POST":
        explicit = dict(http.form).get("lang") or explicit
    if explicit in TEXT:
        return explicit
    for tag in ((params or {}).get("ui_locales") or "").split():
        if tag[:2].lower() in TEXT:
            return tag[:2].lower()
    first = request.headers.get("accept-language", "").split(",")[0].strip().lower()
    return "en" if first.startswith("en") else "vi"


def _switch(query: list[tuple[str, str]], lang: str) -> str:
    """The link to the same page in the other language (its other parameters kept)."""
    return "?" + urlencode([(k, v) for k, v in query if k != "lang"] + [("lang", TEXT[lang]["other"])])


def _render(template: str, lang: str, status: int = 200, **context) -> HTMLResponse:
    context.setdefault("switch", _switch([], lang))
    html = _env.get_template(f"oidc_{template}.html").render(t=TEXT[lang], lang=lang, labels=CLAIM_LABELS[lang],
                                                              **context)
    return HTMLResponse(html, status_code=status, headers=PAGE_HEADERS)


def _error(lang: str, code: str, status: int = 400, description: str | None = None, switch: str | None = None,
           **context) -> HTMLResponse:
    messages = ERRORS[lang]
    message = messages.get(code, messages["invalid_request"]).format(client_name=context.get("client_name", ""))
    return _render("error", lang, status, message=message, code=code, description=description,
                   switch=switch or _switch([], lang))


def _set_cookie(response: Response, cookie: str | None, issuer: str) -> Response:
    if cookie is not None:
        response.set_cookie(sessions.COOKIE, cookie, max_age=int(sessions.SESSION_TTL.total_seconds()),
                            httponly=True, samesite="lax", secure=issuer.startswith("https://"), path="/")
    return response


class Page:
    """What a page handler returns from the thread pool."""

    def __init__(self, outcome: flow.Outcome | None = None, *, cookie: str | None = None, clear: bool = False,
                 render: tuple | None = None, lang_params: dict | None = None):
        self.outcome, self.cookie, self.clear, self.render, self.lang_params = (outcome, cookie, clear, render,
                                                                                lang_params)


async def _page(request: Request, work) -> Response:
    """Run ``work(provider, http, session)`` for a page in one transaction; turn its ``Page`` into
    a redirect or a rendered page, with the session cookie."""
    try:
        http = await read_http(request)
    except BadBody:
        return _error(_lang(request), "bad_body")
    request.state.oidc_http = http
    uow, vault, issuer = uow_of(request), vault_of(request), issuer_of(request)
    cookie = request.cookies.get(sessions.COOKIE)

    def run() -> Page:
        with uow.begin() as conn:
            provider = StarletteProvider(conn, vault, issuer, held_keys=held_keys_of(request))
            session = sessions.load(conn, vault, cookie, provider.now)
            fresh = None
            if session is None:  # every form needs a CSRF token, hence a (yet anonymous) session
                session, fresh = sessions.start(conn, vault, now=provider.now)
            page = work(provider, http, session)
            if page.cookie is None and not page.clear:
                page.cookie = fresh
            return page

    page = await run_in_threadpool(run)
    lang = _lang(request, http, page.lang_params)
    switch = _switch(http.query if http.method == "GET" else [(k, v) for k, v in http.form if k == "i"], lang)
    if page.render is not None:
        template, status, context = page.render
        if template == "error":
            response = _error(lang, context["code"], status, context.get("description"), switch)
        else:
            response = _render(template, lang, status, switch=switch, **context)
    else:
        response = _outcome_response(page.outcome, lang, switch)
    if page.clear:
        response.delete_cookie(sessions.COOKIE, path="/")
    return _set_cookie(response, page.cookie, issuer)


def _outcome_response(outcome: flow.Outcome, lang: str, switch: str) -> Response:
    if outcome.location is not None:
        return RedirectResponse(outcome.location, status_code=303, headers={"Cache-Control": "no-store"})
    if outcome.page in PAGES:
        query = {"i": outcome.context["interaction"]}
        if lang != "vi":
            query["lang"] = lang
        return RedirectResponse(f"{PAGES[outcome.page]}?{urlencode(query)}", status_code=303,
                                headers={"Cache-Control": "no-store"})
    context = dict(outcome.context)
    return _error(lang, context.pop("error", "invalid_request"), outcome.status, context.pop("description", None),
                  switch, **context)


@router.api_route("/authorize", methods=["GET", "POST"], include_in_schema=False)
async def authorization(request: Request) -> Response:
    def work(provider, http, session):
        params = dict(http.form if http.method == "POST" else http.query)
        return Page(flow.begin(provider, http, session), lang_params=params)

    return await _page(request, work)


def _current(provider: Provider, http: HttpRequest, session, page: str, *, need_login: bool = True):
    """The interaction a page is about and the page's own context, or a ``Page`` to answer
    instead (expired, or another step is due)."""
    handle = dict(http.form).get("i") if http.method == "POST" else dict(http.query).get("i")
    interaction = flow.load_interaction(provider.conn, handle, provider.now)
    if interaction is None:
        return None, Page(render=("error", 400, {"code": "expired"}))
    if http.method == "POST" and not sessions.check_csrf(session, dict(http.form).get("csrf_token")):
        return interaction, Page(render=("error", 400, {"code": "csrf"}),
                                 lang_params=interaction.params)
    return interaction, None


def _page_for(provider, interaction, session, http, page: str, **extra) -> Page:
    """Show ``page`` if it is the step due; otherwise go where ``advance`` says."""
    outcome = flow.advance(provider, interaction, session, http)
    if outcome.page == page:
        context = {**outcome.context, **extra, "csrf": session.csrf}
        return Page(render=(page, 200, context), lang_params=interaction.params)
    return Page(outcome, lang_params=interaction.params)


@router.get("/login", include_in_schema=False)
async def login_form(request: Request) -> Response:
    def work(provider, http, session):
        interaction, answer = _current(provider, http, session, "login")
        if answer:
            return answer
        return _page_for(provider, interaction, session, http, "login")

    return await _page(request, work)


async def _login_check(request: Request) -> tuple[Request, eid.PasscodeCheck | None] | Response:
    """The passcode of a login form, checked and counted before the page's transaction and outside
    any (``eid.check_login``: a short transaction claims the attempt, Argon2 runs with none open),
    once the form is seen to belong to a live interaction and session (a read, CSRF checked). The
    request to hand on to ``_page``, which reads the body again: the same form, replayed."""
    try:
        http = await read_http(request)
    except BadBody:
        return _error(_lang(request), "bad_body")
    form = dict(http.form)
    db = getattr(request.app.state, "uow", None) or request.app.state.engine
    vault, cookie = vault_of(request), request.cookies.get(sessions.COOKIE)

    def run() -> eid.PasscodeCheck | None:
        with db.begin() as conn:
            now = utcnow()
            session = sessions.load(conn, vault, cookie, now)
            live = (session is not None and sessions.check_csrf(session, form.get("csrf_token"))
                    and flow.load_interaction(conn, form.get("i"), now) is not None)
        if not live:
            return None  # the page answers (expired, csrf) without a check
        return eid.check_login(db, form.get("username", ""), form.get("password", ""))

    check = await run_in_threadpool(run)
    body = urlencode(http.form).encode()

    async def replay() -> dict:
        return {"type": "http.request", "body": body, "more_body": False}

    return Request(request.scope, replay), check


@router.post("/login", include_in_schema=False)
async def login(request: Request) -> Response:
    checked = await _login_check(request)
    if isinstance(checked, Response):
        return checked
    request, check = checked

    def work(provider, http, session):
        interaction, answer = _current(provider, http, session, "login")
        if answer:
            return answer
        form = dict(http.form)
        conn = provider.conn
        username = form.get("username", "")
        if check is None:  # the form was not live when checked, and is now: show it again
            return _page_for(provider, interaction, session, http, "login")
        try:
            who = eid.login_result(conn, check)
        except eid.LoginRefused as refused:
            if check.account_id is not None:
                eid.record_login(conn, check.account_id, client_id=interaction.client_id, acr=None,
                                 outcome=(check.refusal or refused).code, ip=http.ip,
                                 user_agent=http.user_agent)  # the true cause for the owner, not the answer
            client = provider.query_client(interaction.client_id)
            return Page(render=("login", 200, {
                "interaction": interaction.handle, "client": client, "csrf": session.csrf,
                "login_hint": username if isinstance(username, str) else "",
                "refusal": refused, "retry_minutes": -(-(refused.retry_after or 0) // 60)}),
                lang_params=interaction.params)
        eid.record_login(conn, who.account_id, client_id=interaction.client_id, acr="urn:dinhdanh:level1",
                         outcome="success", ip=http.ip, user_agent=http.user_agent)
        sessions.end(conn, session.session_id, provider.now)  # a new id after login (no fixation)
        new, cookie = sessions.start(conn, provider.vault, account_id=who.account_id, level=1, amr=["pwd"],
                                     now=provider.now)
        return Page(flow.advance(provider, interaction, new, http), cookie=cookie, lang_params=interaction.params)

    return await _page(request, work)


@router.get("/login/step-up", include_in_schema=False)
async def step_up_form(request: Request) -> Response:
    def work(provider, http, session):
        interaction, answer = _current(provider, http, session, "step_up")
        if answer:
            return answer
        challenge = eid.new_challenge()
        if session.authenticated:
            sessions.set_challenge(provider.conn, session, challenge)
        return _page_for(provider, interaction, session, http, "step_up", challenge=challenge)

    return await _page(request, work)


@router.post("/login/step-up", include_in_schema=False)
async def step_up(request: Request) -> Response:
    def work(provider, http, session):
        interaction, answer = _current(provider, http, session, "step_up")
        if answer:
            return answer
        if not session.authenticated:
            return Page(flow.advance(provider, interaction, session, http), lang_params=interaction.params)
        form = dict(http.form)
        totp = form.get("totp") or None
        proof = (form.get("device_proof") or "").strip() or None
        conn = provider.conn
        ok = eid.verify_second_factor(conn, session.account_id, totp=totp, device_proof=proof,
                                      challenge=session.challenge if proof else None, now=provider.now,
                                      vault=provider.vault)
        eid.record_login(conn, session.account_id, client_id=interaction.client_id,
                         acr="urn:dinhdanh:level2" if ok else None, outcome="step_up" if ok else "step_up_failed",
                         ip=http.ip, user_agent=http.user_agent)
        if not ok:
            challenge = eid.new_challenge()
            sessions.set_challenge(conn, session, challenge)
            return Page(render=("step_up", 200, {
                "interaction": interaction.handle, "client": provider.query_client(interaction.client_id),
                "csrf": session.csrf, "challenge": challenge, "failed": True}), lang_params=interaction.params)
        sessions.step_up(conn, session, "hwk" if proof and not totp else "otp", provider.now)
        return Page(flow.advance(provider, interaction, sessions.get(conn, session.session_id), http),
                    lang_params=interaction.params)

    return await _page(request, work)


@router.get("/consent", include_in_schema=False)
async def consent_form(request: Request) -> Response:
    def work(provider, http, session):
        interaction, answer = _current(provider, http, session, "consent")
        if answer:
            return answer
        return _page_for(provider, interaction, session, http, "consent")

    return await _page(request, work)


@router.post("/consent", include_in_schema=False)
async def consent(request: Request) -> Response:
    def work(provider, http, session):
        interaction, answer = _current(provider, http, session, "consent")
        if answer:
            return answer
        if not session.authenticated:
            return Page(flow.advance(provider, interaction, session, http), lang_params=interaction.params)
        if dict(http.form).get("decision") != "allow":
            return Page(flow.deny(provider, interaction), lang_params=interaction.params)
        flow.remember_consent(provider, interaction, session.account_id)
        return Page(flow.advance(provider, interaction, session, http, consented=True),
                    lang_params=interaction.params)

    return await _page(request, work)


@router.api_route("/logout", methods=["GET", "POST"], include_in_schema=False)
async def logout(request: Request) -> Response:
    from authlib.oauth2.rfc6749 import OAuth2Error

    def work(provider, http, session):
        endpoint = provider.end_session_endpoint(session)
        oauth_request = provider.create_oauth2_request(request)
        try:
            validated = endpoint.validate_request(oauth_request)
        except OAuth2Error as error:
            return Page(render=("error", 400, {"code": "logout_invalid", "description": error.description}))
        if validated.needs_confirmation:
            confirmed = http.method == "POST" and sessions.check_csrf(session, dict(http.form).get("csrf_token"))
            if not confirmed:
                params = {k: v for k, v in (http.form if http.method == "POST" else http.query)
                          if k in ("client_id", "post_logout_redirect_uri", "state", "ui_locales")}
                return Page(render=("logout", 200, {"csrf": session.csrf, "params": params, "done": False}))
        endpoint.create_response(validated)
        clear = session is not None and session.session_id in endpoint.ended
        if validated.redirect_uri:
            return Page(flow.Outcome(location=validated.redirect_uri), clear=clear)
        return Page(render=("logout", 200, {"done": True, "csrf": None, "params": {}}), clear=clear)

    return await _page(request, work)

