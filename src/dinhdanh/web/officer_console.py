"""The officers' console for online public-service dossiers, at ``/officer`` (Vietnamese first,
``?lang=en`` for English), beside the citizens' portal (``web.portal``, ``web.portal_dossiers``).

**Sign-in**: the console is an officer client of the platform's own provider
(``ensure_console_client``, registered and approved once, its secret sealed by the vault as the
portal's is). ``/officer/login`` starts the authorization code flow with PKCE for
``openid dinhdanh.officer`` through Authlib's client, as any officer client does; the provider
demands level 2 (passcode, then the TOTP second factor) and refuses an account that is not an
active officer's (``oidc.officers``). The callback checks the ID token (level 2) and maps the
access token to the officer (``oidc.officers.officer_of_access_token``); the console then keeps,
in its own sealed (AES-GCM), HTTP-only, SameSite cookie, the officer, the e-ID account, the
sign-in's time and the provider's session (the ID token's ``sid``). Every request checks them again
(``officers.credentials.officer_for_account``, ``oidc.sessions``): an officer made inactive, whose
credentials were revoked, whose working day (``oidc.officers.SIGN_IN_TTL``) is over or whose
session at the provider has ended, signs in again. The menu's sign-out (a ``POST /officer/logout``
with the CSRF token; a mere link signs nobody out) ends that session at once: a copy of an old
cookie is worth nothing after it. The pages are never cached nor framed.

**The pages** call in-process the very service functions behind ``web.api.dossiers``, in one unit
of work per request, so the area/agency checks and the access log are the API's:

- ``/officer/dossiers``: the worklist (``dossiers.service.worklist``, audited ``dossier_list``);
- ``/officer/dossiers/{id}``: one dossier (``service.view``, audited ``dossier_read``; its
  attachments ``dossiers.attachments.list_attachments``, audited as the API's listing), with the
  forms of the actions its state allows;
- ``/officer/dossiers/{id}/attachments/{aid}``: one attached paper, as the API's download
  (``dossiers.attachments.read_attachment``, audited ``dossier_attachment_read``);
- ``POST /officer/dossiers/{id}/actions``: ``service.act`` then its audit, as
  ``POST /api/v1/dossiers/{id}/actions``; forms carry a CSRF token (random, in the sealed cookie,
  compared in constant time). A refusal is shown in the dossier's page with the API's status and
  message (a 409 names the state, a missing field is named); a success redirects to the dossier.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import logging
import re
import secrets
import time

import httpx
import sqlalchemy as sa
from authlib.common.errors import AuthlibBaseError
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from dinhdanh.calendar.clock import utcnow
from dinhdanh.dossiers import attachments, catalogue, service, workflow
from dinhdanh.dossiers.catalogue.forms import UNSAFE_TEXT
from dinhdanh.dossiers.tables import dossiers
from dinhdanh.officers.credentials import officer_for_account
from dinhdanh.officers.permissions import PermissionDenied
from dinhdanh.officers.service import Officer, officer_by_id
from dinhdanh.oidc import clients, keys, sessions, tokens
from dinhdanh.oidc.claims import OFFICER_SCOPE
from dinhdanh.oidc.officers import REQUIRED_LEVEL, SIGN_IN_TTL, officer_of_access_token
from dinhdanh.oidc.relying_party import IdTokenError, validate_id_token
from dinhdanh.oidc.tables import oidc_clients
from dinhdanh.registry.errors import InvalidInput, RegistryError
from dinhdanh.registry.tables import persons
from dinhdanh.store import advisory
from dinhdanh.store.vault import for_database
from dinhdanh.web import errors
from dinhdanh.web.api.attachments import LIST_ACTION, READ_ACTION, file_response
from dinhdanh.web.api.cards import vault_of
from dinhdanh.web.deps import uow_of
# the console's pages as the provider's: never cached, never framed (clickjacking of the action
# buttons), no referrer outside the platform
from dinhdanh.web.oidc import PAGE_HEADERS
from dinhdanh.web.portal import _env, _http, _lang
from dinhdanh.web.portal_dossiers import money, vn_date, vn_time  # noqa: F401  (the templates' filters)

CLIENT_ID = "dinhdanh-officer-console"
SCOPE = f"openid {OFFICER_SCOPE}"
SECRET_USE = "officer"  # the vault's marker of its client secret (oidc_keys.active, 10 characters at most)
COOKIE = "dd_officer"
PREFIX = "/officer"
CSRF_FIELD = "csrf_token"
PAGE = 100  # dossiers per worklist page
CODE_PATTERN = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._-]{0,59}$")
log = logging.getLogger("dinhdanh.web")
router = APIRouter(prefix=PREFIX, include_in_schema=False)

TEXT = {
    "vi": {
        "brand": "Bàn làm việc của cán bộ: hồ sơ dịch vụ công", "switch": "English", "other": "en",
        "lead": "Tiếp nhận, giải quyết hồ sơ thủ tục hành chính trực tuyến trong địa bàn, cơ quan của cán bộ.",
        "login": "Đăng nhập bằng tài khoản định danh điện tử mức độ 2 của cán bộ", "logout": "Đăng xuất",
        "hello": "Cán bộ", "area": "Địa bàn", "errors": {
            "access_denied": "Tài khoản này không phải của cán bộ đang công tác: không thể đăng nhập bàn làm việc.",
            "not_officer": "Tài khoản này không phải của cán bộ đang công tác: không thể đăng nhập bàn làm việc.",
            "level": "Cán bộ phải đăng nhập ở mức độ 2 (mật khẩu và mã xác thực thứ hai).",
            "expired": "Phiên làm việc đã hết hạn hoặc đã bị thu hồi: hãy đăng nhập lại.",
            "other": "Đăng nhập không thành công"},
        "worklist": "Danh sách hồ sơ", "filter": "Lọc", "all": "— Tất cả —", "overdue_only": "Chỉ hồ sơ quá hạn",
        "code": "Mã hồ sơ", "service": "Thủ tục", "service_code": "Mã thủ tục", "applicant": "Người nộp",
        "status": "Trạng thái", "due": "Hạn trả kết quả", "overdue": "Quá hạn", "filed": "Ngày nộp",
        "yes": "Quá hạn", "empty": "Không có hồ sơ nào.", "next": "Trang sau", "back": "Về danh sách hồ sơ",
        "history": "Quá trình xử lý", "when": "Thời gian", "step": "Bước", "actor": "Người thực hiện",
        "reason": "Lý do, ghi chú", "data": "Thông tin tờ khai", "documents": "Phiếu, kết quả",
        "attachments": "Giấy tờ đính kèm", "no_attachments": "Chưa có giấy tờ đính kèm.", "kind": "Loại",
        "file": "Tệp", "size": "Dung lượng", "result": "Kết quả giải quyết", "fee_amount": "Phí, lệ phí",
        "free": "Miễn phí", "vnd": "đồng", "tz": "giờ Việt Nam", "actions_title": "Xử lý hồ sơ",
        "no_actions": "Không có thao tác nào ở trạng thái này.", "not_found": "Không tìm thấy hồ sơ.",
        "waiting": "Chờ kết quả thủ tục liên thông trước", "group": "Hồ sơ liên thông được giải quyết qua "
        "từng hồ sơ thành phần.", "done": "Đã thực hiện: {}.", "problems": "Chưa thực hiện được",
        "items": "Giấy tờ, thông tin cần bổ sung (mỗi dòng một mục)", "note": "Ghi chú (không bắt buộc)",
        "refuse_reason": "Lý do từ chối", "new_due_date": "Ngày hẹn trả kết quả mới",
        "apology": "Lý do gia hạn (ghi trong phiếu xin lỗi)", "csrf": "Biểu mẫu không hợp lệ (thiếu mã chống giả "
        "mạo yêu cầu): hãy mở lại trang và thử lại.",
        "fields": {"reason": "Lý do", "items": "Giấy tờ cần bổ sung", "new_due_date": "Ngày hẹn mới",
                   "action": "Thao tác", "status": "Trạng thái", "service": "Mã thủ tục", "fee": "Phí, lệ phí",
                   "dossier_id": "Hồ sơ", "permission": "Quyền"},
        "status_labels": {"submitted": "Đã nộp, chờ tiếp nhận", "received": "Đã tiếp nhận, đang giải quyết",
                          "supplement_requested": "Yêu cầu bổ sung hồ sơ", "approved": "Đã giải quyết (chấp thuận)",
                          "refused": "Từ chối giải quyết", "withdrawn": "Công dân đã rút hồ sơ"},
        "actions": {"file": "Nộp hồ sơ", "receive": "Tiếp nhận", "request_supplement": "Yêu cầu bổ sung",
                    "supplement": "Bổ sung hồ sơ", "approve": "Chấp thuận", "refuse": "Từ chối",
                    "withdraw": "Rút hồ sơ", "extend": "Gia hạn"},
        "document_kinds": {"result": "Kết quả giải quyết thủ tục hành chính",
                           "receipt": "Giấy tiếp nhận hồ sơ và hẹn trả kết quả",
                           "supplement_request": "Phiếu yêu cầu bổ sung, hoàn thiện hồ sơ",
                           "refusal": "Phiếu từ chối tiếp nhận, giải quyết hồ sơ",
                           "apology": "Phiếu xin lỗi và hẹn lại ngày trả kết quả"},
        "state_now": "Trạng thái hiện tại",
    },
    "en": {
        "brand": "Officers' desk: public-service dossiers", "switch": "Tiếng Việt", "other": "vi",
        "lead": "Receive and decide the online dossiers of your area and agency.",
        "login": "Sign in with your officer's level-2 e-ID account", "logout": "Sign out",
        "hello": "Officer", "area": "Area", "errors": {
            "access_denied": "This account is not an active officer's: it cannot sign in to the desk.",
            "not_officer": "This account is not an active officer's: it cannot sign in to the desk.",
            "level": "Officers sign in at level 2 (passcode and second factor).",
            "expired": "Your session has expired or was revoked: sign in again.",
            "other": "The sign-in did not succeed"},
        "worklist": "Dossiers", "filter": "Filter", "all": "— All —", "overdue_only": "Overdue only",
        "code": "Dossier code", "service": "Procedure", "service_code": "Procedure code", "applicant": "Applicant",
        "status": "Status", "due": "Due date", "overdue": "Overdue", "filed": "Filed on",
        "yes": "Overdue", "empty": "No dossiers.", "next": "Next page", "back": "Back to the dossiers",
        "history": "History", "when": "When", "step": "Step", "actor": "By", "reason": "Reason, note",
        "data": "The form", "documents": "Slips and results", "attachments": "Attached papers",
        "no_attachments": "No papers attached yet.", "kind": "Kind", "file": "File", "size": "Size",
        "result": "Result", "fee_amount": "Fee", "free": "Free", "vnd": "VND", "tz": "Việt Nam time",
        "actions_title": "Decide", "no_actions": "No action can be taken in this state.",
        "not_found": "No such dossier.", "waiting": "Waiting for the previous linked procedure",
        "group": "A linked group is decided through its sub-dossiers.", "done": "Done: {}.",
        "problems": "Not done", "items": "What must be supplied (one per line)", "note": "Note (optional)",
        "refuse_reason": "Why it is refused", "new_due_date": "New due date",
        "apology": "Why it is extended (in the apology slip)",
        "csrf": "The form is not valid (its anti-forgery token is missing): open the page again and retry.",
        "fields": {"reason": "Reason", "items": "What to supply", "new_due_date": "New due date",
                   "action": "Action", "status": "Status", "service": "Procedure code", "fee": "Fee",
                   "dossier_id": "Dossier", "permission": "Permission"},
        "status_labels": {"submitted": "Submitted, waiting for reception", "received": "Received, being processed",
                          "supplement_requested": "Supplement requested", "approved": "Approved",
                          "refused": "Refused", "withdrawn": "Withdrawn by the citizen"},
        "actions": {"file": "Filed", "receive": "Receive", "request_supplement": "Request a supplement",
                    "supplement": "Supplemented", "approve": "Approve", "refuse": "Refuse",
                    "withdraw": "Withdrawn", "extend": "Extend"},
        "document_kinds": {"result": "Result of the procedure", "receipt": "Receipt with the due date",
                           "supplement_request": "Request to supplement the dossier",
                           "refusal": "Refusal with reasons", "apology": "Apology with a new date"},
        "state_now": "Current state",
    },
}


# ------------------------------------------------------------------------------ the console's client


def ensure_console_client(conn: sa.Connection, base_url: str) -> dict:
    """Register (once) and approve the console as an officer client (``oidc_clients.officer``: the
    only kind given ``dinhdanh.officer``) of the provider at ``base_url``; its secret is sealed by
    the vault so that every process of the app can use it. Returns its settings."""
    base = base_url.rstrip("/")
    redirect_uri, logout_uri = f"{base}{PREFIX}/callback", f"{base}{PREFIX}"
    vault = for_database(conn.engine.url.render_as_string(hide_password=False))
    # two processes' first requests at once: one registers (or resets the secret), the other, let
    # in after it, reads what the first made (not a second registration, not a secret no longer kept)
    advisory.hold(conn, f"setup:{CLIENT_ID}")
    client = clients.load_client(conn, CLIENT_ID)
    if client is None:
        made = clients.register_client(
            conn, name="Bàn làm việc của cán bộ (hồ sơ dịch vụ công)", redirect_uris=[redirect_uri], scopes="openid",
            post_logout_redirect_uris=[logout_uri], actor="system", client_id=CLIENT_ID, officer=True)
        clients.approve_client(conn, CLIENT_ID, agreement="NOI-BO/2025/BLV",
                               purpose="Cán bộ đăng nhập bàn làm việc để tiếp nhận, giải quyết hồ sơ dịch vụ công "
                                       "trực tuyến.", security_level=3, actor="system")
        secret = made["client_secret"]
        keys.store_secret(conn, vault, SECRET_USE, secret.encode())
    else:
        if OFFICER_SCOPE not in client.scopes:  # registered otherwise by hand: the console needs the scope
            conn.execute(oidc_clients.update().where(oidc_clients.c.client_id == CLIENT_ID)
                         .values(scopes=" ".join(dict.fromkeys([*client.scopes, *SCOPE.split()])), officer=True))
        if redirect_uri not in client.redirect_uris or logout_uri not in client.post_logout_redirect_uris:
            clients.set_redirect_uris(conn, CLIENT_ID, [*client.redirect_uris, redirect_uri],
                                      [*client.post_logout_redirect_uris, logout_uri])
        stored = keys.stored_secret(conn, vault, SECRET_USE)
        if stored is None:
            secret = clients.reset_secret(conn, CLIENT_ID)
            keys.store_secret(conn, vault, SECRET_USE, secret.encode())
        else:
            secret = stored.decode()
    return {"client_id": CLIENT_ID, "client_secret": secret, "redirect_uri": redirect_uri,
            "post_logout_redirect_uri": logout_uri, "scope": SCOPE, "issuer": base}


def _settings(request: Request) -> dict:
    from dinhdanh.web.oidc import issuer_of

    base = issuer_of(request)
    cache = getattr(request.app.state, "officer_console_clients", None)
    if cache is None:
        cache = request.app.state.officer_console_clients = {}
    if base not in cache:
        with uow_of(request).begin() as conn:
            cache[base] = ensure_console_client(conn, base)
    return cache[base]


# ------------------------------------------------------------------------------ the sealed cookie


def _cookie_key(settings: dict) -> bytes:
    return hashlib.sha256(b"dinhdanh officer console cookie|" + settings["client_secret"].encode()).digest()


def seal(settings: dict, data: dict) -> str:
    nonce = secrets.token_bytes(12)
    sealed = AESGCM(_cookie_key(settings)).encrypt(nonce, json.dumps(data, separators=(",", ":")).encode(),
                                                   COOKIE.encode())
    return base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")


def unseal(settings: dict, value: str | None) -> dict:
    if not value or len(value) > 4000:
        return {}
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        data = json.loads(AESGCM(_cookie_key(settings)).decrypt(raw[:12], raw[12:], COOKIE.encode()))
    except (ValueError, InvalidTag, TypeError):
        return {}
    return data if isinstance(data, dict) else {}


def _with_cookie(response: Response, settings: dict, data: dict | None) -> Response:
    if data is None:
        response.delete_cookie(COOKIE, path=PREFIX)
    else:
        response.set_cookie(COOKIE, seal(settings, data), httponly=True, samesite="lax",
                            secure=settings["issuer"].startswith("https://"), path=PREFIX,
                            max_age=int(SIGN_IN_TTL.total_seconds()))
    return response


# ------------------------------------------------------------------------------ the session


class _Desk:
    """One request of the console: its language, the sealed cookie, the page drawn."""

    def __init__(self, request: Request):
        self.request = request
        self.settings = _settings(request)
        self.data = unseal(self.settings, request.cookies.get(COOKIE))
        self.lang = _lang(request)
        self.t = TEXT[self.lang]
        self.english = self.lang == "en"

    @property
    def signed_in(self) -> bool:
        return isinstance(self.data.get("officer"), dict)

    def officer(self, conn: sa.Connection) -> Officer | None:
        """The officer of the cookie, if the sign-in still counts: the account still an active
        officer's, not revoked since the sign-in, within the sign-in's working day."""
        who = self.data.get("officer")
        try:
            officer_id, account_id = int(who["officer_id"]), int(who["account_id"])
            signed_in_at = dt.datetime.fromisoformat(who["auth_time"])
        except (TypeError, KeyError, ValueError):
            return None
        if signed_in_at.tzinfo is None or utcnow() - signed_in_at > SIGN_IN_TTL:
            return None
        if officer_for_account(conn, account_id, signed_in_at) != officer_id:
            return None
        # the cookie is no bearer token outliving its sign-in: once the provider's session it came
        # from has ended (the console's logout, the provider's, an account locked), a copy of the
        # old cookie is refused too
        sid = who.get("sid")
        row = sessions.by_sid(conn, sid) if isinstance(sid, str) and sid else None
        if row is None or row.ended_at is not None or row.account_id != account_id:
            return None
        return officer_by_id(conn, officer_id)

    def csrf_ok(self, form: FormData) -> bool:
        given, expected = form.get(CSRF_FIELD), self.data.get("csrf")
        return (isinstance(given, str) and isinstance(expected, str)
                and hmac.compare_digest(given.encode(), expected.encode()))

    def page(self, template: str, status: int = 200, **context) -> HTMLResponse:
        html = _env.get_template(template).render(
            t=self.t, lang=self.lang, switch=f"{self.request.url.path}?{self._other_query()}",
            csrf=self.data.get("csrf"), csrf_field=CSRF_FIELD, name=(self.data.get("officer") or {}).get("name"),
            **context)
        return HTMLResponse(html, status_code=status, headers=PAGE_HEADERS)

    def _other_query(self) -> str:
        params = [(k, v) for k, v in self.request.query_params.multi_items() if k not in ("lang", "done")]
        return str(httpx.QueryParams([*params, ("lang", self.t["other"])]))

    def home(self, error: str | None = None) -> Response:
        suffix = f"&error={error}" if error else ""
        response = RedirectResponse(f"{PREFIX}?lang={self.lang}{suffix}", status_code=303)
        return _with_cookie(response, self.settings, None) if error else response


def _problem(desk: _Desk, exc: RegistryError) -> tuple[int, dict]:
    """The API's status and message for a service's refusal, in the console's language."""
    status = next((errors.STATUS[c] for c in type(exc).__mro__ if c in errors.STATUS), 422)
    if isinstance(exc, PermissionDenied):
        message = exc.message
    elif isinstance(exc, workflow.InvalidTransition):
        label = desk.t["status_labels"].get(exc.state, exc.state)
        lead = exc.message if desk.english else errors.VI["invalid_transition"]
        message = f"{lead} {desk.t['state_now']}: {label} ({exc.state})."
    else:
        message = exc.message if desk.english else (
            errors.VI.get((exc.code, exc.field)) or errors.VI.get(exc.code) or exc.message)
    field = exc.field or ""
    return status, {"code": exc.code, "field": field, "label": desk.t["fields"].get(field, field),
                    "message": message, "state": getattr(exc, "state", None)}


def _id(value: str) -> int | None:
    """A dossier's or attachment's id from the URL, or None (the console's 404). At most 19 digits
    before ``int``: Python refuses to convert more than 4,300 (a ``ValueError``, which was a 500)."""
    ok = value.isascii() and value.isdigit() and len(value) <= 19
    return int(value) if ok and 1 <= int(value) <= 2**62 else None


# ------------------------------------------------------------------------------ sign-in


@router.get("")
def home(request: Request) -> Response:
    desk = _Desk(request)
    if desk.signed_in:
        return RedirectResponse(f"{PREFIX}/dossiers?lang={desk.lang}", status_code=303)
    # the console's own codes only (the callback's are [a-z_]): a link to /officer?error=<any text>
    # must not put a stranger's words ("call this number...") in the platform's page
    error = re.sub(r"[^a-z_]", "", request.query_params.get("error") or "")[:60]
    message = None
    if error:
        message = desk.t["errors"].get(error) or f"{desk.t['errors']['other']} ({error})"
    return desk.page("officer_home.html", error=message)


@router.get("/login")
def login(request: Request) -> Response:
    desk = _Desk(request)
    if desk.signed_in:  # another site's link must not replace a working sign-in with a pending one
        return RedirectResponse(f"{PREFIX}/dossiers?lang={desk.lang}", status_code=303)
    settings = desk.settings
    state, nonce, verifier = secrets.token_urlsafe(24), secrets.token_urlsafe(24), secrets.token_urlsafe(48)
    with _http(request, settings) as client:
        url, _ = client.create_authorization_url(f"{settings['issuer']}/authorize", state=state, nonce=nonce,
                                                 code_verifier=verifier, acr_values="urn:dinhdanh:level2",
                                                 ui_locales=desk.lang)
    pending = {"state": state, "nonce": nonce, "verifier": verifier, "lang": desk.lang, "at": int(time.time())}
    return _with_cookie(RedirectResponse(url, status_code=303), settings, {"pending": pending})


@router.get("/callback")
def callback(request: Request) -> Response:
    desk = _Desk(request)
    settings, issuer = desk.settings, desk.settings["issuer"]
    pending = desk.data.get("pending") or {}
    if not pending and desk.signed_in:  # no sign-in in progress (another site's link): nothing to undo
        return RedirectResponse(f"{PREFIX}/dossiers?lang={desk.lang}", status_code=303)
    desk.lang = pending.get("lang") if pending.get("lang") in TEXT else desk.lang
    params = request.query_params
    state = str(params.get("state", "")).encode()
    if not pending or not hmac.compare_digest(state, str(pending.get("state", "")).encode()) \
            or time.time() - int(pending.get("at", 0)) > 900:
        return desk.home("state_mismatch")
    if params.get("iss") != issuer:  # RFC 9207
        return desk.home("issuer_mismatch")
    if "error" in params or "code" not in params:  # e.g. access_denied: not an active officer's account
        return desk.home(re.sub(r"[^a-z_]", "", str(params.get("error", "no_code")))[:60] or "other")
    try:
        with _http(request, settings) as client:
            token = client.fetch_token(f"{issuer}/token", grant_type="authorization_code", code=params["code"],
                                       code_verifier=pending["verifier"], redirect_uri=settings["redirect_uri"])
            jwks = client.get(f"{issuer}/jwks").json()
        claims = validate_id_token(token.get("id_token"), jwks, issuer=issuer, client_id=settings["client_id"],
                                   nonce=pending["nonce"], required_level=REQUIRED_LEVEL)
    except IdTokenError as e:  # below level 2 is named; any other failure is the token's
        return desk.home("level" if "authentication level" in str(e) else "invalid_id_token")
    except (httpx.HTTPError, AuthlibBaseError, ValueError, KeyError) as e:
        return desk.home(re.sub(r"[^a-z_]", "", str(getattr(e, "error", None) or "token_request_failed"))[:60])
    access = token.get("access_token")
    with uow_of(request).begin() as conn:
        officer_id = officer_of_access_token(conn, access, issuer)
        found = tokens.validate_access_token(conn, access, issuer) if officer_id is not None else None
        officer = officer_by_id(conn, officer_id) if officer_id is not None else None
    if officer is None or found is None or found.row.auth_time is None:
        return desk.home("not_officer")
    who = {"officer_id": officer.officer_id, "account_id": found.row.account_id, "name": officer.name,
           "auth_time": found.row.auth_time.isoformat(), "acr": claims.get("acr"), "sid": claims.get("sid")}
    response = RedirectResponse(f"{PREFIX}/dossiers?lang={desk.lang}", status_code=303)
    return _with_cookie(response, settings, {"officer": who, "id_token": token["id_token"],
                                             "csrf": secrets.token_urlsafe(32)})


@router.get("/logout")
def logout_link(request: Request) -> Response:
    """A link signs nobody out (another site's ``<a>`` or ``<img>``: the cookie is sent on a top-level
    GET, and the logout ends the provider's session too, without the confirmation the provider asks
    for a bare logout link): the sign-out is the menu's form (``POST``, with the CSRF token). The
    link leads to the console's home, which sends a signed-in officer on to the worklist."""
    return _Desk(request).home()


@router.post("/logout")
async def logout(request: Request) -> Response:
    form = await request.form()
    return await run_in_threadpool(_logout, request, form)


def _logout(request: Request, form: FormData) -> Response:
    """Sign out: the provider's session ended at once, the cookie dropped, then the provider's
    RP-initiated logout (with the ID token as its hint) and back to the console's home."""
    desk = _Desk(request)
    if not desk.signed_in:
        return desk.home()
    if not desk.csrf_ok(form):
        return HTMLResponse(f"403 Forbidden: {desk.t['csrf']}", status_code=403, headers=PAGE_HEADERS)
    settings = desk.settings
    sid = desk.data["officer"].get("sid")
    if isinstance(sid, str) and sid:  # ended here, not only if the browser follows to the provider
        with uow_of(request).begin() as conn:
            row = sessions.by_sid(conn, sid)
            if row is not None and row.ended_at is None:
                sessions.end(conn, row.session_id)
    query = httpx.QueryParams({"client_id": settings["client_id"],
                               "post_logout_redirect_uri": settings["post_logout_redirect_uri"],
                               **({"id_token_hint": desk.data["id_token"]} if desk.data.get("id_token") else {})})
    response = RedirectResponse(f"{settings['issuer']}/logout?{query}", status_code=303)
    return _with_cookie(response, settings, None)


# ------------------------------------------------------------------------------ the worklist


def _service_name(version_id: str, english: bool, fallback: str) -> str:
    try:
        return catalogue.version(version_id).name.in_(english)
    except (KeyError, LookupError, RegistryError):
        return fallback


def _applicants(conn: sa.Connection, dossier_ids: list[int]) -> dict[int, str]:
    """The applicants' names of the dossiers listed (the worklist's page already audits them)."""
    if not dossier_ids:
        return {}
    rows = conn.execute(sa.select(dossiers.c.dossier_id, persons.c.full_name)
                        .join(persons, persons.c.person_id == dossiers.c.person_id)
                        .where(dossiers.c.dossier_id.in_(dossier_ids)))
    return {r.dossier_id: r.full_name for r in rows}


@router.get("/dossiers")
def worklist(request: Request) -> Response:
    desk = _Desk(request)
    if not desk.signed_in:
        return desk.home()
    q = request.query_params
    status = q.get("status") or None
    code = (q.get("service") or "").strip() or None
    overdue = q.get("overdue") in ("true", "1", "on")
    before = _id(q.get("before") or "")
    filters = {"status": status or "", "service": code or "", "overdue": overdue}
    with uow_of(request).begin() as conn:
        officer = desk.officer(conn)
        if officer is None:
            return desk.home("expired")
        try:
            officer.require("dossiers.read", english=desk.english)
            if code is not None and not CODE_PATTERN.match(code):
                raise InvalidInput("service is a procedure code of the catalogue (at most 60 characters).",
                                           field="service")
            page, person_ids = service.worklist(conn, officer.area, agency=officer.agency_code, status=status,
                                                service=code, overdue=overdue, limit=PAGE, before=before)
        except RegistryError as exc:
            status_code, problem = _problem(desk, exc)
            return desk.page("officer_dossiers.html", status=status_code, officer=officer, items=[],
                             problems=[problem], filters=filters, states=workflow.STATES)
        service.audit_officer_read(conn, officer.label, person_ids, "dossier_list")  # as the API's worklist
        names = _applicants(conn, [d["dossier_id"] for d in page["items"]])
    items = [d | {"service_name": d.get("procedure_name") or _service_name(d["version"], desk.english, d["service"]),
                  "applicant": names.get(d["dossier_id"], "")} for d in page["items"]]
    more = None
    if page.get("next_before"):
        more = str(httpx.QueryParams({**{k: v for k, v in filters.items() if v}, "before": page["next_before"],
                                      "lang": desk.lang}))
    return desk.page("officer_dossiers.html", officer=officer, items=items, problems=[], filters=filters,
                     states=workflow.STATES, more=more)


# ------------------------------------------------------------------------------ one dossier


def _flatten(value, prefix: str = "") -> list[tuple[str, str]]:
    """The form's data as (dotted field, value) rows, to show as filed."""
    if isinstance(value, dict):
        return [row for k, v in value.items() for row in _flatten(v, f"{prefix}{k}.")]
    if isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        return [row for i, v in enumerate(value) for row in _flatten(v, f"{prefix}{i + 1}.")]
    if isinstance(value, list):
        value = ", ".join(str(v) for v in value)
    elif isinstance(value, bool):
        value = "✓" if value else "✗"
    return [(prefix.rstrip("."), "" if value is None else str(value))]


def _allowed_actions(d: dict) -> list[str]:
    if d.get("kind") == service.GROUP or d.get("waiting_for"):
        return []
    out = [a for a in workflow.OFFICER_ACTIONS if a != "extend" and workflow.allowed(a, d["status"])]
    if d.get("overdue"):
        out.append("extend")
    return out


def _dossier_page(desk: _Desk, dossier_id: int, *, problems: list[dict] | None = None, status: int = 200,
                  values: dict | None = None) -> Response:
    """The dossier as ``GET /api/v1/dossiers/{id}`` gives it, with its attachments as
    ``GET .../attachments`` lists them, each view audited as the API's are; one unit of work."""
    with uow_of(desk.request).begin() as conn:
        officer = desk.officer(conn)
        if officer is None:
            return desk.home("expired")
        try:
            officer.require("dossiers.read", english=desk.english)
            d = service.view(conn, dossier_id, area=officer.area, agency=officer.agency_code)
            service.audit_officer_read(conn, officer.label, [d["person_id"]], "dossier_read")
            files = attachments.list_attachments(conn, dossier_id, area=officer.area, agency=officer.agency_code)
            service.audit_officer_read(conn, officer.label, [files["person_id"]], LIST_ACTION)
        except service.DossierNotFound:
            return desk.page("officer_dossiers.html", status=404, officer=officer, items=None, missing=True,
                             problems=[], filters={}, states=workflow.STATES)
        except RegistryError as exc:
            status_code, problem = _problem(desk, exc)
            return desk.page("officer_dossiers.html", status=status_code, officer=officer, items=None,
                             problems=[problem], filters={}, states=workflow.STATES)
        applicant = _applicants(conn, [dossier_id]).get(dossier_id, "")
    done = desk.request.query_params.get("done")
    notice = desk.t["done"].format(desk.t["actions"][done]) if done in workflow.OFFICER_ACTIONS else None
    name = d.get("procedure_name") or _service_name(d["version"], desk.english, d["service"])
    return desk.page("officer_dossier.html", status=status, officer=officer, d=d, service_name=name,
                     applicant=applicant, data=_flatten(d.get("data") or {}), files=files,
                     actions=_allowed_actions(d) if officer.can("dossiers.decide") else [],
                     problems=problems or [], notice=notice, values=values or {},
                     bad={p["field"] for p in problems or ()})


@router.get("/dossiers/{dossier_id}")
def one_dossier(request: Request, dossier_id: str) -> Response:
    desk = _Desk(request)
    if not desk.signed_in:
        return desk.home()
    number = _id(dossier_id)
    if number is None:
        return desk.page("officer_dossiers.html", status=404, items=None, missing=True, problems=[], filters={},
                         states=workflow.STATES, officer=None)
    return _dossier_page(desk, number)


@router.get("/dossiers/{dossier_id}/attachments/{attachment_id}")
def download_attachment(request: Request, dossier_id: str, attachment_id: str) -> Response:
    """One attached paper, for an officer with ``dossiers.read`` of the dossier's area: what the API's
    download (``GET /api/v1/dossiers/{id}/attachments/{aid}``) answers, audited the same way
    (``dossier_attachment_read``, committed before the file is sent). Another area's dossier, or
    a paper that is not this dossier's, is the console's 404 and nothing is audited."""
    desk = _Desk(request)
    if not desk.signed_in:
        return desk.home()
    number, file_id = _id(dossier_id), _id(attachment_id)

    def missing(officer) -> Response:
        return desk.page("officer_dossiers.html", status=404, officer=officer, items=None, missing=True,
                         problems=[], filters={}, states=workflow.STATES)

    if number is None or file_id is None:
        return missing(None)
    with uow_of(request).begin() as conn:
        officer = desk.officer(conn)
        if officer is None:
            return desk.home("expired")
        try:
            officer.require("dossiers.read", english=desk.english)
            summary, content = attachments.read_attachment(conn, vault_of(request), number, file_id,
                                                           area=officer.area, agency=officer.agency_code)
        except (service.DossierNotFound, attachments.AttachmentNotFound):
            return missing(officer)
        except attachments.IntegrityFailure as exc:
            log.error("dossier attachment integrity: %s", exc)
            problem = {"code": "attachment_integrity", "field": "attachment_id", "label": "attachment_id",
                       "message": errors.message_for(request, "attachment_integrity", "attachment_id",
                                                     "The attachment is not intact; it is not served."),
                       "state": None}
            return desk.page("officer_dossiers.html", status=500, officer=officer, items=None, problems=[problem],
                             filters={}, states=workflow.STATES)
        except RegistryError as exc:
            status_code, problem = _problem(desk, exc)
            return desk.page("officer_dossiers.html", status=status_code, officer=officer, items=None,
                             problems=[problem], filters={}, states=workflow.STATES)
        service.audit_officer_read(conn, officer.label, [summary["person_id"]], READ_ACTION)
    return file_response(summary, content)


class _Refused(Exception):
    def __init__(self, status: int, problem: dict):
        self.status, self.problem = status, problem


def _inputs(desk: _Desk, form: FormData) -> dict:
    """The action's inputs as ``ActionBody`` of the API takes them; a bad one is a 422 naming it."""
    def refuse(field: str, en: str, vi: str) -> _Refused:
        return _Refused(422, {"code": "invalid_input", "field": field, "label": desk.t["fields"][field],
                              "message": en if desk.english else vi, "state": None})

    for field in ("reason", "items"):
        # the service refuses them too (``forms.UNSAFE_TEXT``); here the message is the console's
        if isinstance(form.get(field), str) and UNSAFE_TEXT.search(form[field]):
            raise refuse(field, f"The {field} cannot contain control characters.",
                         f"{desk.t['fields'][field]} không được chứa ký tự điều khiển.")
    action = form.get("action")
    reason = form.get("reason")
    reason = reason.strip() if isinstance(reason, str) and reason.strip() else None
    if reason is not None and len(reason) > 500:
        raise refuse("reason", "The reason is at most 500 characters.", "Lý do dài tối đa 500 ký tự.")
    raw_items = form.get("items")
    items = [line.strip() for line in raw_items.splitlines() if line.strip()] if isinstance(raw_items, str) else []
    if len(items) > 30 or any(len(i) > 500 for i in items):
        raise refuse("items", "At most 30 items of 500 characters.", "Tối đa 30 mục, mỗi mục tối đa 500 ký tự.")
    raw_day, new_due_date = form.get("new_due_date"), None
    if isinstance(raw_day, str) and raw_day.strip():
        try:
            new_due_date = dt.date.fromisoformat(raw_day.strip())
        except ValueError:
            raise refuse("new_due_date", "new_due_date is a date, YYYY-MM-DD.",
                         "Ngày hẹn mới phải là một ngày (YYYY-MM-DD).") from None
    return {"action": action if isinstance(action, str) else None, "reason": reason, "items": items or None,
            "new_due_date": new_due_date}


@router.post("/dossiers/{dossier_id}/actions")
async def act(request: Request, dossier_id: str) -> Response:
    form = await request.form()
    return await run_in_threadpool(_act, request, dossier_id, form)


def _act(request: Request, dossier_id: str, form: FormData) -> Response:
    desk = _Desk(request)
    if not desk.signed_in:
        return desk.home()
    if not desk.csrf_ok(form):
        return HTMLResponse(f"403 Forbidden: {desk.t['csrf']}", status_code=403, headers=PAGE_HEADERS)
    number = _id(dossier_id)
    if number is None:
        return desk.page("officer_dossiers.html", status=404, items=None, missing=True, problems=[], filters={},
                         states=workflow.STATES, officer=None)
    values = {k: v for k, v in form.items() if k != CSRF_FIELD and isinstance(v, str)}
    try:
        inputs = _inputs(desk, form)
        with uow_of(request).begin() as conn:  # one unit: the move, its slip, the register's change, the audit
            officer = desk.officer(conn)
            if officer is None:
                return desk.home("expired")
            try:
                officer.require("dossiers.decide", english=desk.english)
                out = service.act(conn, vault_of(request), number, inputs["action"], actor=officer.label,
                                  area=officer.area, agency=officer.agency_code, base_url=desk.settings["issuer"],
                                  reason=inputs["reason"], items=inputs["items"],
                                  new_due_date=inputs["new_due_date"])
            except RegistryError as exc:
                if isinstance(exc, service.DossierNotFound):
                    raise
                raise _Refused(*_problem(desk, exc)) from exc
            service.audit_officer_read(conn, officer.label, [out["person_id"]], "dossier_" + inputs["action"])
    except service.DossierNotFound:
        return desk.page("officer_dossiers.html", status=404, items=None, missing=True, problems=[], filters={},
                         states=workflow.STATES, officer=None)
    except _Refused as refused:  # the unit rolled back: nothing changed; the page says why
        return _dossier_page(desk, number, problems=[refused.problem], status=refused.status, values=values)
    return RedirectResponse(f"{PREFIX}/dossiers/{number}?lang={desk.lang}&done={inputs['action']}",
                            status_code=303)
