"""A sample relying party, "Cổng dịch vụ công" (the public-services portal), at ``/portal``.

It behaves as any outside relying party would: a confidential client (``client_secret_basic``)
that logs people in with the authorization code flow and PKCE through Authlib's own client
(``authlib.integrations.httpx_client.OAuth2Client``), over HTTP to the provider at the app's base
URL, checks the ID token with ``oidc.relying_party.validate_id_token`` (the JWKS fetched from
``/jwks``), reads the person's name from ``/userinfo`` and logs out with RP-initiated logout. Its
state (``state``, ``nonce``, the PKCE verifier, then who is logged in) lives in its own signed
cookie, not in the provider's tables.

``ensure_demo_client(conn, base_url)`` registers and approves it (idempotent) and returns its
credentials; its secret is kept sealed by the vault so that the running app can use it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
import warnings

import httpx
import sqlalchemy as sa
from authlib.common.errors import AuthlibBaseError
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from dinhdanh.oidc import clients, keys
from dinhdanh.oidc.claims import ACR_LEVELS
from dinhdanh.oidc.relying_party import IdTokenError, validate_id_token
from dinhdanh.oidc.tables import oidc_clients
from dinhdanh.store import advisory
from dinhdanh.store.vault import for_database
from dinhdanh.web.deps import uow_of

CLIENT_ID = "dvc-portal-demo"
SCOPE = "openid profile dinhdanh.pid dinhdanh.me dinhdanh.dossiers"  # the data tracker; dossiers (portal_dossiers)
SECTOR = "dichvucong.demo"
COOKIE = "dd_portal"
router = APIRouter(prefix="/portal", include_in_schema=False)
_env = Environment(loader=PackageLoader("dinhdanh.web", "templates"), autoescape=select_autoescape())


def ensure_demo_client(conn: sa.Connection, base_url: str) -> dict:
    """Register (once) and approve the demo portal as a relying party of the provider at
    ``base_url``; returns ``client_id``, ``client_secret``, its redirect and logout URIs."""
    base = base_url.rstrip("/")
    redirect_uri, logout_uri = f"{base}/portal/callback", f"{base}/portal"
    vault = for_database(conn.engine.url.render_as_string(hide_password=False))
    # two processes' first requests at once: one registers (or resets the secret), the other, let
    # in after it, reads what the first made (not a second registration, not a secret no longer kept)
    advisory.hold(conn, f"setup:{CLIENT_ID}")
    client = clients.load_client(conn, CLIENT_ID)
    if client is None:
        made = clients.register_client(
            conn, name="Cổng Dịch vụ công (demo)", redirect_uris=[redirect_uri], scopes=SCOPE, sector=SECTOR,
            post_logout_redirect_uris=[logout_uri], actor="demo", client_id=CLIENT_ID)
        clients.approve_client(conn, CLIENT_ID, agreement="DEMO-01/2025/TTLK-C06",
                               purpose="Đăng nhập một lần vào Cổng dịch vụ công để nộp hồ sơ trực tuyến (bản mẫu).",
                               security_level=3, actor="demo")
        secret = made["client_secret"]
        keys.store_secret(conn, vault, "portal", secret.encode())
    else:
        if set(client.scopes) != set(SCOPE.split()):  # a register made by an older version
            conn.execute(oidc_clients.update().where(oidc_clients.c.client_id == CLIENT_ID).values(scopes=SCOPE))
        if redirect_uri not in client.redirect_uris or logout_uri not in client.post_logout_redirect_uris:
            clients.set_redirect_uris(conn, CLIENT_ID, [*client.redirect_uris, redirect_uri],
                                      [*client.post_logout_redirect_uris, logout_uri])
        stored = keys.stored_secret(conn, vault, "portal")
        if stored is None:
            secret = clients.reset_secret(conn, CLIENT_ID)
            keys.store_secret(conn, vault, "portal", secret.encode())
        else:
            secret = stored.decode()
    return {"client_id": CLIENT_ID, "client_secret": secret, "redirect_uri": redirect_uri,
            "post_logout_redirect_uri": logout_uri, "scope": SCOPE, "issuer": base}


# ------------------------------------------------------------------------------ the portal


def _base(request: Request) -> str:
    from dinhdanh.web.oidc import issuer_of

    return issuer_of(request)


def _settings(request: Request) -> dict:
    base = _base(request)
    cache = getattr(request.app.state, "portal_clients", None)
    if cache is None:
        cache = request.app.state.portal_clients = {}
    if base not in cache:
        with uow_of(request).begin() as conn:
            cache[base] = ensure_demo_client(conn, base)
    return cache[base]


def _http(request: Request, settings: dict):
    """Authlib's client; ``app.state.portal_transport`` lets tests route it without a socket."""
    with warnings.catch_warnings():  # Authlib 1.9 would prefer the "httpx2" fork; we pin httpx
        warnings.simplefilter("ignore", DeprecationWarning)
        from authlib.integrations.httpx_client import OAuth2Client

    transport = getattr(request.app.state, "portal_transport", None)
    return OAuth2Client(client_id=settings["client_id"], client_secret=settings["client_secret"],
                        token_endpoint_auth_method="client_secret_basic", scope=settings["scope"],
                        redirect_uri=settings["redirect_uri"], code_challenge_method="S256",
                        transport=transport, timeout=10)


def _cookie_key(settings: dict) -> bytes:
    return hashlib.sha256(b"dinhdanh portal cookie|" + settings["client_secret"].encode()).digest()


def _pack(settings: dict, data: dict) -> str:
    body = base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode().rstrip("=")
    mac = base64.urlsafe_b64encode(hmac.new(_cookie_key(settings), body.encode(), hashlib.sha256).digest())
    return body + "." + mac.decode().rstrip("=")


def _unpack(settings: dict, value: str | None) -> dict:
    if not value or value.count(".") != 1 or len(value) > 4000:
        return {}
    body, mac = value.split(".")
    good = base64.urlsafe_b64encode(hmac.new(_cookie_key(settings), body.encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(good.rstrip(b"="), mac.encode()):
        return {}
    try:
        data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _with_cookie(response: Response, settings: dict, data: dict | None, secure: bool) -> Response:
    if data is None:
        response.delete_cookie(COOKIE, path="/portal")
    else:
        response.set_cookie(COOKIE, _pack(settings, data), httponly=True, samesite="lax", secure=secure,
                            path="/portal", max_age=8 * 3600)
    return response


TEXT = {
    "vi": {"title": "Cổng Dịch vụ công (bản mẫu)", "switch": "English", "other": "en",
           "lead": "Nộp hồ sơ, theo dõi và nhận kết quả thủ tục hành chính trực tuyến.",
           "login": "Đăng nhập bằng tài khoản định danh điện tử", "login2": "Đăng nhập mức độ 2",
           "hello": "Xin chào", "level": "Mức độ tài khoản định danh điện tử", "acr": "Mức xác thực lần đăng nhập này",
           "pid": "Số định danh cá nhân", "logout": "Đăng xuất", "error": "Đăng nhập không thành công",
           "tracker": "Ai đã khai thác dữ liệu của tôi", "tracker_lead":
               "Mọi lần cán bộ hoặc đối tác đọc, đối chiếu hay nhận thông tin của bạn từ Cơ sở dữ liệu quốc gia "
               "về dân cư, mới nhất trước.",
           "when": "Thời gian", "who": "Ai", "action": "Việc", "purpose": "Mục đích", "fields": "Thông tin",
           "outcome": "Kết quả", "empty": "Chưa có lần truy cập nào.", "back": "Về trang chính",
           "again": "Phiên đăng nhập đã hết hạn: hãy đăng nhập lại.", "officer": "Cán bộ",
           "actions": {"read": "đọc hồ sơ", "search": "tra cứu", "history": "xem lịch sử", "verify": "đối chiếu",
                       "kyc": "nhận thông tin (eKYC)", "batch_match": "đối chiếu theo lô",
                       "notify": "nhận thông báo thay đổi", "verify_card": "kiểm tra thẻ căn cước",
                       "cards": "xem thẻ căn cước", "follow": "đăng ký nhận thông báo thay đổi",
                       "unfollow": "hủy nhận thông báo thay đổi",
                       "eid_registration_check": "đối chiếu khi đăng ký tài khoản định danh điện tử"},
           "field_names": {"full_name": "họ, chữ đệm và tên", "date_of_birth": "ngày sinh", "sex": "giới tính",
                           "phone": "số điện thoại", "address": "địa chỉ", "current_address": "nơi ở hiện tại",
                           "nationality": "quốc tịch", "hometown": "quê quán", "status": "tình trạng",
                           "card": "thẻ căn cước", "record": "hồ sơ", "history": "lịch sử", "cards": "thẻ căn cước",
                           "pid": "số định danh", "seq": "số thứ tự", "event_id": "sự kiện",
                           "date_of_death": "ngày chết"},
           "outcomes": {"ok": "đã thực hiện", "match": "khớp", "mismatch": "không khớp", "refused": "bị từ chối",
                        "not_found": "không tìm thấy", "valid": "hợp lệ", "invalid": "không hợp lệ"}},
    "en": {"title": "Public services portal (sample)", "switch": "Tiếng Việt", "other": "vi",
           "lead": "Apply for, follow and receive administrative procedures online.",
           "login": "Log in with your e-ID account", "login2": "Log in at level 2",
           "hello": "Hello", "level": "Level of your e-ID account", "acr": "Level of this login",
           "pid": "Personal ID number", "logout": "Log out", "error": "The login did not succeed",
           "tracker": "Who used my data", "tracker_lead":
               "Every time an officer or a partner read, checked or received your data from the national "
               "population register, newest first.",
           "when": "When", "who": "Who", "action": "What", "purpose": "Purpose", "fields": "Data",
           "outcome": "Outcome", "empty": "No access yet.", "back": "Back to the portal",
           "again": "Your login has expired: log in again.", "officer": "Officer",
           "actions": {"read": "read the record", "search": "search", "history": "read the history",
                       "verify": "check", "kyc": "receive (e-KYC)", "batch_match": "batch check",
                       "notify": "change notification", "verify_card": "chip card check", "cards": "read the cards",
                       "follow": "follow changes", "unfollow": "stop following changes",
                       "eid_registration_check": "check for an e-ID account registration"},
           "field_names": {}, "outcomes": {}},
}


def _lang(request: Request) -> str:
    lang = request.query_params.get("lang")
    if lang not in TEXT:
        lang = "en" if request.headers.get("accept-language", "").lower().startswith("en") else "vi"
    return lang


def _page(request: Request, user: dict, error: str | None = None) -> HTMLResponse:
    lang = _lang(request)
    html = _env.get_template("oidc_portal.html").render(t=TEXT[lang], lang=lang, user=user, error=error)
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})


@router.get("")
def home(request: Request) -> Response:
    settings = _settings(request)
    data = _unpack(settings, request.cookies.get(COOKIE))
    user = data.get("user") or {}
    error = request.query_params.get("error")
    return _page(request, user, error[:200] if error else None)


@router.get("/login")
def login(request: Request) -> Response:
    settings = _settings(request)
    level = request.query_params.get("level")
    state, nonce, verifier = secrets.token_urlsafe(24), secrets.token_urlsafe(24), secrets.token_urlsafe(48)
    extra = {"acr_values": "urn:dinhdanh:level2"} if level == "2" else {}
    lang = request.query_params.get("lang")
    if lang in ("vi", "en"):
        extra["ui_locales"] = lang
    with _http(request, settings) as client:
        url, _ = client.create_authorization_url(f"{settings['issuer']}/authorize", state=state, nonce=nonce,
                                                 code_verifier=verifier, **extra)
    pending = {"state": state, "nonce": nonce, "verifier": verifier, "level": 2 if level == "2" else None,
               "at": int(time.time())}
    response = RedirectResponse(url, status_code=303)
    return _with_cookie(response, settings, {"pending": pending}, settings["issuer"].startswith("https://"))


@router.get("/callback")
def callback(request: Request) -> Response:
    settings = _settings(request)
    issuer = settings["issuer"]
    secure = issuer.startswith("https://")
    pending = _unpack(settings, request.cookies.get(COOKIE)).get("pending") or {}
    params = request.query_params

    def fail(reason: str) -> Response:
        return _with_cookie(RedirectResponse(f"/portal?error={reason}", status_code=303), settings, None, secure)

    state = str(params.get("state", "")).encode()
    if not pending or not hmac.compare_digest(state, str(pending.get("state", "")).encode()):
        return fail("state_mismatch")
    if params.get("iss") != issuer:  # RFC 9207: the answer comes from the server we asked
        return fail("issuer_mismatch")
    if "error" in params or "code" not in params:
        return fail(str(params.get("error", "no_code"))[:60])
    try:
        with _http(request, settings) as client:
            token = client.fetch_token(f"{issuer}/token", grant_type="authorization_code", code=params["code"],
                                       code_verifier=pending["verifier"], redirect_uri=settings["redirect_uri"])
            jwks = client.get(f"{issuer}/jwks").json()
            claims = validate_id_token(token.get("id_token"), jwks, issuer=issuer, client_id=settings["client_id"],
                                       nonce=pending["nonce"], required_level=pending.get("level"))
            info = client.get(f"{issuer}/userinfo").json()
    except IdTokenError:
        return fail("invalid_id_token")
    except (httpx.HTTPError, AuthlibBaseError, ValueError, KeyError) as e:  # a refusal is an OAuthError
        return fail(getattr(e, "error", None) or "token_request_failed")
    if info.get("sub") != claims["sub"]:
        return fail("userinfo_mismatch")
    user = {"name": info.get("name"), "sub": claims["sub"], "acr": claims.get("acr"),
            "acr_level": ACR_LEVELS.get(claims.get("acr")), "level": info.get("urn:dinhdanh:level"),
            "pid": info.get("urn:dinhdanh:pid")}
    response = RedirectResponse("/portal", status_code=303)
    return _with_cookie(response, settings, {"user": user, "id_token": token["id_token"],
                                             "access_token": token.get("access_token")}, secure)


@router.get("/access-log")
def access_log(request: Request) -> Response:
    """The citizen's data tracker, as a relying party shows it: ``GET /api/v1/me/access-log`` with
    the access token of this login (scope ``dinhdanh.me``)."""
    settings = _settings(request)
    data = _unpack(settings, request.cookies.get(COOKIE))
    if not data.get("user") or not data.get("access_token"):
        return RedirectResponse("/portal", status_code=303)
    lang = _lang(request)
    entries, expired = [], False
    try:
        transport = getattr(request.app.state, "portal_transport", None)
        with httpx.Client(transport=transport, timeout=10) as client:
            r = client.get(f"{settings['issuer']}/api/v1/me/access-log", params={"limit": 100},
                           headers={"Authorization": f"Bearer {data['access_token']}",
                                    "Accept-Language": lang})
        if r.status_code == 401:
            expired = True
        else:
            r.raise_for_status()
            entries = r.json()["items"]
    except (httpx.HTTPError, ValueError, KeyError):
        expired = True
    html = _env.get_template("oidc_portal_access_log.html").render(
        t=TEXT[lang], lang=lang, user=data["user"], entries=entries, expired=expired)
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})


@router.get("/logout")
def logout(request: Request) -> Response:
    settings = _settings(request)
    data = _unpack(settings, request.cookies.get(COOKIE))
    query = httpx.QueryParams({"client_id": settings["client_id"],
                               "post_logout_redirect_uri": settings["post_logout_redirect_uri"],
                               **({"id_token_hint": data["id_token"]} if data.get("id_token") else {})})
    response = RedirectResponse(f"{settings['issuer']}/logout?{query}", status_code=303)
    return _with_cookie(response, settings, None, settings["issuer"].startswith("https://"))
