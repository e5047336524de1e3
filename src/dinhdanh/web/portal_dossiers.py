"""The demo portal's online public services: the citizen files and follows dossiers at ``/portal``.

It is a relying party like any other portal outside the platform: everything it shows or does goes
through the public API over HTTP with the access token of the citizen's login (scope
``dinhdanh.dossiers``, kept in the portal's signed cookie by ``web.portal``), never by calling the
dossiers service in-process:

- ``/portal/services``: the catalogue (``GET /api/v1/services``);
- ``/portal/services/{code}/file``: the service's form, drawn from its JSON Schema (``form`` of
  ``GET /api/v1/services/{code}``) by a small recursive renderer, with what the state already
  holds (``GET /api/v1/services/{code}/prefill``) shown read-only with its source; the POST
  rebuilds the nested, typed JSON from the dotted field names, adds the pre-filled values and
  files it (``POST /api/v1/dossiers``); the API's problems are shown next to the fields named;
- ``/portal/dossiers`` and ``/portal/dossiers/{id}``: "Hồ sơ của tôi", one dossier's history,
  slips and result (linked to their public verification page) and its withdrawal.

Forms carry a CSRF token: random, kept in the portal's signed cookie, compared in constant time.
An access token the API no longer takes (expired, revoked, or from a login before the portal asked
for ``dinhdanh.dossiers``) shows the "log in again" message, as the data tracker does.
"""

from __future__ import annotations

import datetime as dt
import hmac
import re
import secrets
from typing import Any

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from dinhdanh.calendar.clock import VIETNAM
from dinhdanh.web.portal import COOKIE, TEXT as PORTAL_TEXT, _env, _lang, _settings, _unpack, _with_cookie

router = APIRouter(prefix="/portal", include_in_schema=False)
CSRF_FIELD = "csrf_token"
CODE_PATTERN = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._-]{0,59}$")  # a catalogue code, as the API's path takes
ROW_COUNT = 3  # rows offered for an array of objects (more are filed through the API directly)
LIST_COUNT = 3  # inputs offered for an array of plain values

TEXT = {
    "vi": {
        "brand": "Cổng Dịch vụ công (bản mẫu)", "switch": "English", "other": "en",
        "services": "Dịch vụ công trực tuyến", "services_lead": "Chọn thủ tục để nộp hồ sơ trực tuyến.",
        "mine": "Hồ sơ của tôi", "mine_lead": "Hồ sơ bạn đã nộp, mới nhất trước.",
        "name": "Thủ tục", "agency": "Cơ quan giải quyết", "level": "Mức độ",
        "levels": {"full": "Toàn trình", "partial": "Một phần"}, "days": "Thời hạn giải quyết",
        "same_day": "Trong ngày", "working_days": "ngày làm việc", "fee": "Phí, lệ phí", "free": "Miễn phí",
        "from": "từ", "varies": "tùy trường hợp", "file": "Nộp hồ sơ", "submit": "Nộp hồ sơ",
        "prefilled": "Thông tin đã có", "sources": {"register": "Từ Cơ sở dữ liệu quốc gia về dân cư",
                                                  "card": "Từ Cơ sở dữ liệu căn cước",
                                                  "wallet": "Từ giấy tờ trong ví VNeID"},
        "choose": "— Chọn —", "yes": "Có", "optional": "không bắt buộc", "row": "Mục",
        "problems": "Tờ khai chưa đúng hoặc chưa đủ: xem các mục được đánh dấu.",
        "code": "Mã hồ sơ", "status": "Trạng thái", "due": "Hạn trả kết quả", "filed": "Ngày nộp",
        "empty": "Bạn chưa nộp hồ sơ nào.", "history": "Quá trình xử lý", "when": "Thời gian",
        "step": "Bước", "reason": "Lý do", "documents": "Giấy tờ, kết quả", "check": "Kiểm tra",
        "withdraw": "Rút hồ sơ", "withdraw_reason": "Lý do rút hồ sơ (không bắt buộc)",
        "withdrawn_done": "Hồ sơ đã được rút.", "children": "Các thủ tục liên thông",
        "waiting": "Chờ kết quả thủ tục liên thông trước", "procedure": "Thủ tục thành phần",
        "back": "Về trang chính", "again": PORTAL_TEXT["vi"]["again"], "login": PORTAL_TEXT["vi"]["login"],
        "not_found": "Không tìm thấy hồ sơ.",
        "unavailable": "Chưa lấy được thông tin từ hệ thống; hãy thử lại sau ít phút.",
        "fee_amount": "Lệ phí phải nộp", "vnd": "đồng", "tz": "giờ Việt Nam",
        "status_labels": {"submitted": "Đã nộp", "received": "Đã tiếp nhận, đang giải quyết",
                          "supplement": "Yêu cầu bổ sung hồ sơ", "approved": "Đã giải quyết (chấp thuận)",
                          "refused": "Từ chối giải quyết", "withdrawn": "Đã rút hồ sơ",
                          "in_progress": "Đang giải quyết các thủ tục liên thông",
                          "completed": "Đã giải quyết tất cả các thủ tục liên thông",
                          "partly_refused": "Đã giải quyết, có thủ tục bị từ chối"},
        "actions": {"file": "Nộp hồ sơ", "receive": "Tiếp nhận", "request_supplement": "Yêu cầu bổ sung",
                    "supplement": "Bổ sung hồ sơ", "approve": "Chấp thuận", "refuse": "Từ chối",
                    "withdraw": "Rút hồ sơ", "extend": "Gia hạn"},
        "document_kinds": {"result": "Kết quả giải quyết thủ tục hành chính",
                           "receipt": "Giấy tiếp nhận hồ sơ và hẹn trả kết quả",
                           "supplement_request": "Phiếu yêu cầu bổ sung, hoàn thiện hồ sơ",
                           "refusal": "Phiếu từ chối tiếp nhận, giải quyết hồ sơ",
                           "apology": "Phiếu xin lỗi và hẹn lại ngày trả kết quả"},
        "values": {"male": "Nam", "female": "Nữ", True: "Có", False: "Không"},
    },
    "en": {
        "brand": "Public services portal (sample)", "switch": "Tiếng Việt", "other": "vi",
        "services": "Online public services", "services_lead": "Choose a procedure to apply online.",
        "mine": "My dossiers", "mine_lead": "The dossiers you filed, newest first.",
        "name": "Procedure", "agency": "Deciding agency", "level": "Online level",
        "levels": {"full": "Fully online", "partial": "Partly online"}, "days": "Processing time",
        "same_day": "The same day", "working_days": "working days", "fee": "Fee", "free": "Free",
        "from": "from", "varies": "depends on the case", "file": "Apply", "submit": "File the dossier",
        "prefilled": "Already held", "sources": {"register": "From the national population register",
                                               "card": "From the ID card register",
                                               "wallet": "From the documents in your VNeID wallet"},
        "choose": "— Choose —", "yes": "Yes", "optional": "optional", "row": "Item",
        "problems": "The form is not right or not complete: see the fields marked.",
        "code": "Dossier code", "status": "Status", "due": "Due date", "filed": "Filed on",
        "empty": "You have not filed any dossier yet.", "history": "History", "when": "When",
        "step": "Step", "reason": "Reason", "documents": "Slips and results", "check": "Check",
        "withdraw": "Withdraw the dossier", "withdraw_reason": "Why (optional)",
        "withdrawn_done": "The dossier was withdrawn.", "children": "Linked procedures",
        "waiting": "Waiting for the previous linked procedure", "procedure": "Procedure",
        "back": "Back to the portal", "again": PORTAL_TEXT["en"]["again"], "login": PORTAL_TEXT["en"]["login"],
        "not_found": "No such dossier.",
        "unavailable": "The platform did not answer; try again in a few minutes.",
        "fee_amount": "Fee to pay", "vnd": "VND", "tz": "Việt Nam time",
        "status_labels": {"submitted": "Submitted", "received": "Received, being processed",
                          "supplement": "Supplement requested", "approved": "Approved",
                          "refused": "Refused", "withdrawn": "Withdrawn",
                          "in_progress": "Linked procedures in progress",
                          "completed": "All linked procedures completed",
                          "partly_refused": "Completed, some procedures refused"},
        "actions": {"file": "Filed", "receive": "Received", "request_supplement": "Supplement requested",
                    "supplement": "Supplemented", "approve": "Approved", "refuse": "Refused",
                    "withdraw": "Withdrawn", "extend": "Extended"},
        "document_kinds": {"result": "Result of the procedure", "receipt": "Receipt with the due date",
                           "supplement_request": "Request to supplement the dossier",
                           "refusal": "Refusal with reasons", "apology": "Apology with a new date"},
        "values": {"male": "Male", "female": "Female", True: "Yes", False: "No"},
    },
}
WITHDRAWABLE = ("submitted", "received", "supplement")  # the states a citizen may withdraw from (API: 409 else)
PROCEDURES_FIELD = "procedures"  # a linked group's choice (the catalogue's group.field names it too)


# ------------------------------------------------------------------------------ the session and the API


class _Expired(Exception):
    """The API no longer takes the access token (401), or it lacks the scope (403): log in again."""


class _Unavailable(Exception):
    """The API did not answer usefully (network, 5xx, a body that is not JSON)."""


class _Session:
    """The logged-in citizen as the portal's cookie holds them, and the API called on their behalf."""

    def __init__(self, request: Request):
        self.request = request
        self.settings = _settings(request)
        self.data = _unpack(self.settings, request.cookies.get(COOKIE))
        self.lang = _lang(request)
        self.t = TEXT[self.lang]
        self.secure = self.settings["issuer"].startswith("https://")
        self.fresh_csrf = False
        if self.logged_in and not isinstance(self.data.get("csrf"), str):
            self.data = {**self.data, "csrf": secrets.token_urlsafe(32)}
            self.fresh_csrf = True

    @property
    def logged_in(self) -> bool:
        return bool(self.data.get("user")) and bool(self.data.get("access_token"))

    def csrf_ok(self, form: FormData) -> bool:
        given = form.get(CSRF_FIELD)
        expected = self.data.get("csrf")
        return (isinstance(given, str) and isinstance(expected, str)
                and hmac.compare_digest(given.encode(), expected.encode()))

    def api(self, method: str, path: str, *, json: Any = None, params: dict | None = None,
            auth: bool = True) -> httpx.Response:
        headers = {"Accept-Language": self.lang, "Accept": "application/json"}
        if auth:
            headers["Authorization"] = f"Bearer {self.data['access_token']}"
        transport = getattr(self.request.app.state, "portal_transport", None)
        try:
            with httpx.Client(transport=transport, timeout=10) as client:
                r = client.request(method, f"{self.settings['issuer']}{path}", json=json, params=params,
                                   headers=headers)
        except httpx.HTTPError as exc:
            raise _Unavailable(str(exc)) from None
        if auth and r.status_code in (401, 403):
            raise _Expired()
        if r.status_code >= 500:
            raise _Unavailable(f"{r.status_code}")
        return r

    def json(self, method: str, path: str, **kw) -> Any:
        r = self.api(method, path, **kw)
        if r.status_code == 404:
            return None
        try:
            r.raise_for_status()
            return r.json()
        except (httpx.HTTPError, ValueError):
            raise _Unavailable(f"{r.status_code}") from None

    def page(self, template: str, status: int = 200, **context) -> HTMLResponse:
        path = self.request.url.path
        html = _env.get_template(template).render(
            t=self.t, lang=self.lang, user=self.data.get("user") or {}, switch=f"{path}?lang={self.t['other']}",
            csrf=self.data.get("csrf"), csrf_field=CSRF_FIELD, **context)
        return self.keep(HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"}))

    def keep(self, response: Response) -> Response:
        """Write the cookie back when a CSRF token was added to it."""
        if self.fresh_csrf:
            _with_cookie(response, self.settings, self.data, self.secure)
        return response

    def home(self) -> Response:
        return RedirectResponse(f"/portal?lang={self.lang}", status_code=303)


def _run(request: Request, handler, *args) -> Response:
    """Not logged in: the portal's home. A token the API refuses: "log in again". No answer: a notice.
    Never a 500 for what the API or the network did. Runs in a worker thread: the API may be this
    very server, and its answer must not wait behind the call."""
    session = _Session(request)
    if not session.logged_in:
        return session.home()
    try:
        return handler(session, *args)
    except _Expired:
        return session.page("portal_dossiers.html", status=401, expired=True, items=[])
    except _Unavailable:
        return session.page("portal_dossiers.html", status=503, unavailable=True, items=[])


# ------------------------------------------------------------------------------ formats


def vn_date(value: str | None) -> str:
    """``YYYY-MM-DD`` as dd/mm/yyyy; an instant, as its day in Việt Nam."""
    if not value:
        return ""
    try:
        if len(str(value)) > 10:
            return _instant(str(value)).strftime("%d/%m/%Y")
        return dt.date.fromisoformat(str(value)).strftime("%d/%m/%Y")
    except ValueError:
        return str(value)


def _instant(value: str) -> dt.datetime:
    at = dt.datetime.fromisoformat(value)
    return (at if at.tzinfo else at.replace(tzinfo=dt.UTC)).astimezone(VIETNAM)


def vn_time(value: str | None) -> str:
    """An ISO instant of the API as dd/mm/yyyy HH:MM in Việt Nam's zone (a naive one is UTC)."""
    if not value:
        return ""
    try:
        return _instant(value).strftime("%d/%m/%Y %H:%M")
    except ValueError:
        return str(value)


def money(amount: int | None) -> str:
    return "" if amount is None else f"{amount:,}".replace(",", ".")


def source_label(t: dict, source: str) -> str:
    return t["sources"].get(source.partition(":")[0], source)


def shown(t: dict, value: Any, schema: dict | None = None) -> str:
    """A pre-filled value as the citizen reads it: an enum's label, a date as dd/mm/yyyy."""
    schema = schema or {}
    labels = schema.get("x-labels") or {}
    if isinstance(value, bool):
        return t["values"][value]
    if isinstance(value, str) and value in labels:
        return labels[value]
    if isinstance(value, str) and value in t["values"]:
        return t["values"][value]
    if schema.get("format") == "date" and isinstance(value, str):
        return vn_date(value)
    if isinstance(value, list):
        return ", ".join(shown(t, v, schema.get("items")) for v in value)
    return "" if value is None else str(value)


_env.filters.setdefault("vn_date", vn_date)
_env.filters.setdefault("vn_time", vn_time)
_env.filters.setdefault("money", money)


# ------------------------------------------------------------------------------ the form from its schema


def _kind(schema: dict) -> str:
    """What a schema node is drawn as."""
    if "const" in schema:
        return "const"
    if "enum" in schema:
        return "enum"
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        return "object"
    if kind == "array":
        items = schema.get("items") or {}
        if "enum" in items:
            return "choices"
        if items.get("type") == "object" or "properties" in items:
            return "rows"
        return "list"
    if kind == "boolean":
        return "boolean"
    if kind == "integer":
        return "integer"
    if kind == "number":
        return "number"
    if schema.get("format") == "date":
        return "date"
    return "text"


def build_fields(schema: dict, prefilled: dict[str, dict], t: dict, group: dict | None = None,
                 prefix: str = "", required: bool = True) -> list[dict]:
    """The form's widgets, recursively: each names its dotted path, title, kind and what it needs
    (options, bounds, pattern); a field the state fills is ``prefilled`` (shown, not typed)."""
    out = []
    needed = set(schema.get("required") or ())
    for name, sub in (schema.get("properties") or {}).items():
        path = f"{prefix}{name}"
        kind = _kind(sub)
        node: dict[str, Any] = {"path": path, "name": name, "title": sub.get("title") or name, "kind": kind,
                                "required": required and name in needed, "schema": sub}
        if path in prefilled:
            entry = prefilled[path]
            node.update(kind="prefilled", value=shown(t, entry["value"], sub), source=source_label(t, entry["source"]))
        elif kind == "object":
            node["children"] = build_fields(sub, prefilled, t, prefix=path + ".", required=node["required"])
        elif kind == "rows":
            items = sub.get("items") or {}
            count = max(1, min(ROW_COUNT, int(sub.get("maxItems") or ROW_COUNT)))
            node["rows"] = [{"path": f"{path}.{i}", "title": f"{items.get('title') or t['row']} {i + 1}",
                             "children": build_fields(items, {}, t, prefix=f"{path}.{i}.",
                                                      required=node["required"] and i < int(sub.get("minItems") or 0))}
                            for i in range(count)]
        elif kind == "list":
            count = max(1, min(LIST_COUNT, int(sub.get("maxItems") or LIST_COUNT)))
            pattern = (sub.get("items") or {}).get("pattern")
            node.update(count=count, pattern=pattern, html_pattern=_html_pattern(pattern) if pattern else None)
        elif kind in ("enum", "choices"):
            values = sub["enum"] if kind == "enum" else sub["items"]["enum"]
            labels = sub.get("x-labels") or (sub.get("items") or {}).get("x-labels") or {}
            mandatory: set[str] = set()
            if kind == "choices" and group and path == group.get("field", PROCEDURES_FIELD):
                for p in group.get("procedures") or ():
                    labels = {**labels, p["key"]: p["name"] if isinstance(p["name"], str) else p["name"].get("vi")}
                    if p.get("mandatory"):
                        mandatory.add(p["key"])
            node["options"] = [{"value": v, "label": labels.get(v) or t["values"].get(v) or v,
                                "mandatory": v in mandatory} for v in values]
            node["radios"] = kind == "enum" and len(values) <= 3
        elif kind == "const":
            node["value"] = shown(t, sub["const"], sub)
        for key in ("pattern", "minLength", "maxLength", "minimum", "maximum", "format"):
            if key in sub:
                node.setdefault(key, sub[key])
        if node.get("pattern"):  # HTML anchors the whole value itself
            node["html_pattern"] = _html_pattern(node["pattern"])
        out.append(node)
    return out


def _html_pattern(pattern: str) -> str:
    if pattern.startswith("^"):
        pattern = pattern[1:]
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1]
    return pattern


def rebuild(schema: dict, form: FormData, prefilled: dict[str, dict], prefix: str = "",
            required: bool = True) -> dict[str, Any] | None:
    """The nested JSON of the form's dotted names, typed per the schema: integers and numbers as
    numbers (what does not parse is kept as typed, for the API to name), checkboxes as booleans,
    arrays as lists; empty optional fields, and optional objects left empty, are omitted. The
    pre-filled values come from the API, never from the browser."""
    out: dict[str, Any] = {}
    needed = set(schema.get("required") or ())
    for name, sub in (schema.get("properties") or {}).items():
        path = f"{prefix}{name}"
        must = required and name in needed
        if path in prefilled:
            out[name] = prefilled[path]["value"]
            continue
        value = _value(sub, form, prefilled, path, must)
        if value is not None:
            out[name] = value
    if not out and not required:
        return None
    for name, sub in (schema.get("properties") or {}).items():  # a fixed value, once its object is there
        if "const" in sub:
            out[name] = sub["const"]
    return out


def _value(sub: dict, form: FormData, prefilled: dict[str, dict], path: str, must: bool) -> Any:
    kind = _kind(sub)
    if kind == "const":
        return None  # added by rebuild with its object
    if kind == "object":
        return rebuild(sub, form, prefilled, path + ".", must)
    if kind == "choices":
        chosen = [v for v in form.getlist(path) if isinstance(v, str) and v]
        allowed = sub["items"]["enum"]
        chosen = [v for v in allowed if v in chosen] + [v for v in chosen if v not in allowed]
        return chosen if chosen or must else None
    if kind == "list":
        items = [v.strip() for v in form.getlist(path) if isinstance(v, str) and v.strip()]
        return [_typed(sub.get("items") or {}, v) for v in items] if items or must else None
    if kind == "rows":
        rows = []
        for i in range(ROW_COUNT):
            row = rebuild(sub.get("items") or {}, form, {}, f"{path}.{i}.", False)
            if row:
                rows.append(row)
        return rows if rows or must else None
    if kind == "boolean":
        return True if form.get(path) in ("on", "true", "1") else (False if must else None)
    raw = form.get(path)
    if not isinstance(raw, str) or not raw.strip():
        return None
    return _typed(sub, raw.strip())


def _typed(sub: dict, raw: str) -> Any:
    kind = _kind(sub)
    try:
        if kind == "integer":
            return int(raw)
        if kind == "number":
            number = float(raw.replace(",", "."))
            return int(number) if number.is_integer() else number
    except ValueError:
        return raw  # kept as typed: the API names the field
    if kind == "enum":
        return next((v for v in sub["enum"] if str(v) == raw), raw)
    return raw


def typed_values(form: FormData) -> dict[str, Any]:
    """What the citizen typed, by dotted name (lists for the multi-valued), to draw the form again."""
    out: dict[str, Any] = {}
    for key in form.keys():
        if key == CSRF_FIELD:
            continue
        values = [v for v in form.getlist(key) if isinstance(v, str)]
        out[key] = values if len(values) != 1 else values[0]
    return out


def problems_of(body: Any) -> list[dict[str, str]]:
    """The API's refusal as (field, message) pairs: every problem it lists, else the one it names."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return [{"field": "", "message": str(body)[:300]}]
    listed = error.get("problems")
    if isinstance(listed, list) and listed:
        return [{"field": str(p.get("field") or ""), "message": str(p.get("message") or error.get("message"))}
                for p in listed if isinstance(p, dict)]
    return [{"field": str(error.get("field") or ""), "message": str(error.get("message") or error.get("code"))}]


def _paths(fields: list[dict]) -> set[str]:
    out = set()
    for f in fields:
        out.add(f["path"])
        out |= _paths(f.get("children") or [])
        for row in f.get("rows") or ():
            out.add(row["path"])
            out |= _paths(row["children"])
    return out


def _where(problem_field: str, paths: set[str]) -> str:
    """The drawn field a problem belongs to: the path itself, else its nearest drawn parent."""
    field = problem_field
    while field:
        if field in paths:
            return field
        field = field.rpartition(".")[0]
    return ""


# ------------------------------------------------------------------------------ the pages


@router.get("/services")
def services(request: Request) -> Response:
    return _run(request, _services)


def _services(session: _Session) -> Response:
    items = session.json("GET", "/api/v1/services", auth=False) or []
    return session.page("portal_services.html", services=items)


def _form_context(session: _Session, code: str) -> dict | None:
    if not CODE_PATTERN.match(code):
        return None
    r = session.api("GET", f"/api/v1/services/{code}", auth=False)
    if r.status_code in (404, 422):  # not in the catalogue, or not in force today
        return None
    service = _body(r)
    r = session.api("GET", f"/api/v1/services/{code}/prefill")
    if r.status_code == 200:
        prefilled, refused = {f["field"]: f for f in _body(r).get("fields") or ()}, []
    else:  # nothing held to show (the API says why): the citizen types it all, filing says the rest
        prefilled, refused = {}, problems_of(_json_or_text(r))
    return {"service": service, "prefilled": prefilled, "schema": service.get("form") or {}, "refused": refused}


def _body(r: httpx.Response) -> dict:
    try:
        r.raise_for_status()
        body = r.json()
    except (httpx.HTTPError, ValueError):
        raise _Unavailable(f"{r.status_code}") from None
    if not isinstance(body, dict):
        raise _Unavailable("not an object")
    return body


def _json_or_text(r: httpx.Response) -> Any:
    try:
        return r.json()
    except ValueError:
        return {"error": {"message": r.text[:300]}}


def _form_page(session: _Session, ctx: dict, *, values: dict, problems: list[dict], status: int = 200) -> Response:
    fields = build_fields(ctx["schema"], ctx["prefilled"], session.t, ctx["service"].get("group"))
    paths = _paths(fields)
    by_field: dict[str, list[str]] = {}
    problems = [*ctx.get("refused", ()), *problems]
    for p in problems:
        by_field.setdefault(_where(p["field"], paths), []).append(p["message"])
    if not values:  # the first draw: a linked group's mandatory procedures ticked
        for f in fields:
            if f["kind"] == "choices" and any(o["mandatory"] for o in f["options"]):
                values[f["path"]] = [o["value"] for o in f["options"] if o["mandatory"]]
    return session.page("portal_file.html", status=status, service=ctx["service"], fields=fields, values=values,
                        errors=by_field, problems=problems, titles=_titles(fields))


def _titles(fields: list[dict], parent: str = "") -> dict[str, str]:
    out = {}
    for f in fields:
        out[f["path"]] = f"{parent} › {f['title']}" if parent else f["title"]
        out.update(_titles(f.get("children") or [], out[f["path"]]))
        for row in f.get("rows") or ():
            out[row["path"]] = row["title"]
            out.update(_titles(row["children"], row["title"]))
    return out


@router.get("/services/{code}/file")
def file_form(request: Request, code: str) -> Response:
    return _run(request, _file_form, code)


def _file_form(session: _Session, code: str) -> Response:
    ctx = _form_context(session, code)
    if ctx is None:
        return session.page("portal_dossiers.html", status=404, missing=True, items=[])
    return _form_page(session, ctx, values={}, problems=[])


@router.post("/services/{code}/file")
async def file_post(request: Request, code: str) -> Response:
    form = await request.form()
    return await run_in_threadpool(_run, request, _file_post, code, form)


def _file_post(session: _Session, code: str, form: FormData) -> Response:
    if not session.csrf_ok(form) or session.fresh_csrf:
        return HTMLResponse("403 Forbidden: the form's CSRF token is missing or wrong.", status_code=403)
    ctx = _form_context(session, code)
    if ctx is None:
        return session.page("portal_dossiers.html", status=404, missing=True, items=[])
    data = rebuild(ctx["schema"], form, ctx["prefilled"]) or {}
    r = session.api("POST", "/api/v1/dossiers", json={"service": ctx["service"]["code"], "data": data})
    if r.status_code == 201:
        try:
            filed = r.json()
            target = f"/portal/dossiers/{int(filed['dossier_id'])}?lang={session.lang}"
        except (ValueError, KeyError, TypeError):
            raise _Unavailable("201 without a dossier") from None
        return RedirectResponse(target, status_code=303)
    return _form_page(session, ctx, values=typed_values(form), problems=problems_of(_json_or_text(r)),
                      status=r.status_code)


@router.get("/dossiers")
def my_dossiers(request: Request) -> Response:
    return _run(request, _my_dossiers)


def _my_dossiers(session: _Session) -> Response:
    page = session.json("GET", "/api/v1/dossiers", params={"limit": 100}) or {}
    items = sorted(page.get("items") or [], key=lambda d: (d.get("filed_at") or "", d.get("dossier_id") or 0),
                   reverse=True)
    return session.page("portal_dossiers.html", items=items, names=_service_names(session))


def _service_names(session: _Session) -> dict[str, str]:
    try:
        return {s["code"]: s["name"] for s in session.json("GET", "/api/v1/services", auth=False) or ()}
    except (_Unavailable, KeyError, TypeError):
        return {}


def _dossier_page(session: _Session, dossier_id: int, *, notice: str | None = None,
                  problems: list[dict] | None = None, status: int = 200) -> Response:
    dossier = session.json("GET", f"/api/v1/dossiers/{dossier_id}")
    if dossier is None:
        return session.page("portal_dossiers.html", status=404, missing=True, items=[])
    return session.page("portal_dossier.html", status=status, d=dossier, names=_service_names(session),
                        notice=notice, problems=problems or [], withdrawable=dossier.get("status") in WITHDRAWABLE
                        or dossier.get("status") == "in_progress")


def _id(value: str) -> int | None:
    return int(value) if value.isascii() and value.isdigit() and 1 <= int(value) <= 2**62 else None


@router.get("/dossiers/{dossier_id}")
def one_dossier(request: Request, dossier_id: str) -> Response:
    return _run(request, _one_dossier, dossier_id)


def _one_dossier(session: _Session, dossier_id: str) -> Response:
    number = _id(dossier_id)
    if number is None:
        return session.page("portal_dossiers.html", status=404, missing=True, items=[])
    done = session.request.query_params.get("withdrawn") == "1"
    return _dossier_page(session, number, notice=session.t["withdrawn_done"] if done else None)


@router.post("/dossiers/{dossier_id}/withdraw")
async def withdraw(request: Request, dossier_id: str) -> Response:
    form = await request.form()
    return await run_in_threadpool(_run, request, _withdraw, dossier_id, form)


def _withdraw(session: _Session, dossier_id: str, form: FormData) -> Response:
    if not session.csrf_ok(form) or session.fresh_csrf:
        return HTMLResponse("403 Forbidden: the form's CSRF token is missing or wrong.", status_code=403)
    number = _id(dossier_id)
    if number is None:
        return session.page("portal_dossiers.html", status=404, missing=True, items=[])
    reason = str(form.get("reason") or "").strip()[:500]
    r = session.api("POST", f"/api/v1/dossiers/{number}/withdraw", json={"reason": reason} if reason else None)
    if r.status_code == 200:
        return RedirectResponse(f"/portal/dossiers/{number}?lang={session.lang}&withdrawn=1", status_code=303)
    if r.status_code == 404:
        return session.page("portal_dossiers.html", status=404, missing=True, items=[])
    return _dossier_page(session, number, problems=problems_of(_json_or_text(r)), status=r.status_code)
