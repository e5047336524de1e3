"""Scopes and claims (OpenID Connect Core s.5): what each scope releases, the ``claims`` request
parameter (s.5.5), pairwise subject identifiers (s.8.1), and each claim in plain Vietnamese for the
consent page.

>>> sorted(claims_for_scope("openid profile"))[:3]
['birthdate', 'family_name', 'gender']
>>> parse_claims_request('{"id_token": {"acr": {"essential": true, "values": ["urn:dinhdanh:level2"]}}}')
{'id_token': {'acr': {'essential': True, 'values': ['urn:dinhdanh:level2']}}}
>>> parse_claims_request('[1]')
Traceback (most recent call last):
...
ValueError: the claims parameter must be a JSON object
>>> pairwise_subject("dichvucong.gov.vn", "abc", b"salt") == pairwise_subject("dichvucong.gov.vn", "abc", b"salt")
True
"""

from __future__ import annotations

import base64
import hashlib
import json

PID = "urn:dinhdanh:pid"
LEVEL = "urn:dinhdanh:level"
KIND = "urn:dinhdanh:kind"
ACR_LEVEL1 = "urn:dinhdanh:level1"
ACR_LEVEL2 = "urn:dinhdanh:level2"
ACR_LEVELS = {ACR_LEVEL1: 1, ACR_LEVEL2: 2}

# Scopes that release claims about the person (the consent page lists them).
SCOPE_CLAIMS: dict[str, tuple[str, ...]] = {
    "openid": ("sub",),
    "profile": ("name", "family_name", "given_name", "middle_name", "gender", "birthdate", "locale",
                "updated_at", LEVEL, KIND),
    "email": ("email", "email_verified"),
    "phone": ("phone_number", "phone_number_verified"),
    "address": ("address",),
    "dinhdanh.pid": (PID,),
}
# Scopes that are permissions rather than claims. ``dinhdanh.officer``: act as the officer linked to
# the account, for officer clients only and at level 2 (``oidc.officers``).
OFFICER_SCOPE = "dinhdanh.officer"
# ``dinhdanh.dossiers``: file and follow one's own dossiers of public services (web.api.dossiers).
DOSSIERS_SCOPE = "dinhdanh.dossiers"
PERMISSION_SCOPES = ("dinhdanh.me", DOSSIERS_SCOPE, OFFICER_SCOPE)
# Scopes for partner APIs (client credentials; no person involved).
PARTNER_SCOPES = ("dinhdanh.verify",)
SCOPES = (*SCOPE_CLAIMS, *PERMISSION_SCOPES, *PARTNER_SCOPES)
USER_SCOPES = (*SCOPE_CLAIMS, *PERMISSION_SCOPES)
KNOWN_CLAIMS = tuple(dict.fromkeys(c for cs in SCOPE_CLAIMS.values() for c in cs))

# What the consent page says, claim by claim (Vietnamese first). ``sub`` is the pairwise
# identifier; the page explains it once rather than as a claim.
CLAIM_LABELS = {
    "vi": {
        "name": "Họ, chữ đệm và tên", "family_name": "Họ", "given_name": "Tên", "middle_name": "Chữ đệm",
        "gender": "Giới tính", "birthdate": "Ngày, tháng, năm sinh", "locale": "Ngôn ngữ",
        "updated_at": "Thời điểm cập nhật thông tin", LEVEL: "Mức độ tài khoản định danh điện tử (mức 1 hoặc 2)",
        KIND: "Loại tài khoản (công dân, người nước ngoài, tổ chức)",
        "email": "Địa chỉ thư điện tử", "email_verified": "Thư điện tử đã được xác minh hay chưa",
        "phone_number": "Số điện thoại di động", "phone_number_verified": "Số điện thoại đã được xác minh hay chưa",
        "address": "Nơi thường trú", PID: "Số định danh cá nhân (số căn cước)",
        "sub": "Mã định danh riêng của bạn đối với dịch vụ này",
        "dinhdanh.me": "Xem tài khoản, lịch sử đăng nhập, nhật ký khai thác dữ liệu của bạn, các ứng dụng bạn đã "
                       "đồng ý và khóa tài khoản thay bạn",
        DOSSIERS_SCOPE: "Nộp, theo dõi, bổ sung và rút hồ sơ thủ tục hành chính của bạn",
        OFFICER_SCOPE: "Làm việc với tư cách cán bộ được giao tài khoản này (mọi thao tác đều được ghi nhật ký)",
    },
    "en": {
        "name": "Full name", "family_name": "Surname", "given_name": "Given name", "middle_name": "Middle name",
        "gender": "Sex", "birthdate": "Date of birth", "locale": "Language",
        "updated_at": "When your data last changed",
        LEVEL: "Level of your e-ID account (1 or 2)", KIND: "Kind of account (citizen, foreigner, organisation)",
        "email": "E-mail address", "email_verified": "Whether the e-mail address was verified",
        "phone_number": "Mobile number", "phone_number_verified": "Whether the mobile number was verified",
        "address": "Permanent residence", PID: "Personal identification number (ID card number)",
        "sub": "An identifier of you for this service only",
        "dinhdanh.me": "See your account, login history, who used your data and your consents, and lock your "
                       "account on your behalf",
        DOSSIERS_SCOPE: "File, follow, supplement and withdraw your administrative dossiers",
        OFFICER_SCOPE: "Work as the officer this account belongs to (every action is logged)",
    },
}


def claims_for_scope(scope: str | None) -> set[str]:
    names: set[str] = set()
    for s in (scope or "").split():
        names.update(SCOPE_CLAIMS.get(s, ()))
    return names


def parse_claims_request(value) -> dict | None:
    """The ``claims`` parameter, checked for shape: ``{"userinfo": {...}, "id_token": {...}}``, each
    member null or ``{"essential": bool, "value": x, "values": [...]}``. Raises ValueError."""
    if value in (None, ""):
        return None
    if isinstance(value, str):
        if len(value) > 4000:
            raise ValueError("the claims parameter is too long")
        try:
            value = json.loads(value)
        except ValueError:
            raise ValueError("the claims parameter is not JSON") from None
    if not isinstance(value, dict):
        raise ValueError("the claims parameter must be a JSON object")
    out: dict = {}
    for target in ("userinfo", "id_token"):
        members = value.get(target)
        if members is None:
            continue
        if not isinstance(members, dict) or len(members) > 50:
            raise ValueError(f"claims.{target} must be a JSON object")
        checked = {}
        for name, spec in members.items():
            if not isinstance(name, str) or len(name) > 100:
                raise ValueError(f"claims.{target} holds a bad claim name")
            if spec is not None:
                if not isinstance(spec, dict):
                    raise ValueError(f"claims.{target}.{name} must be null or an object")
                if "essential" in spec and not isinstance(spec["essential"], bool):
                    raise ValueError(f"claims.{target}.{name}.essential must be true or false")
                if "values" in spec and not isinstance(spec["values"], list):
                    raise ValueError(f"claims.{target}.{name}.values must be an array")
            checked[name] = spec
        out[target] = checked
    return out


def requested_claim_names(claims_request: dict | None, target: str | None = None) -> set[str]:
    if not claims_request:
        return set()
    targets = (target,) if target else ("userinfo", "id_token")
    return {n for t in targets for n in (claims_request.get(t) or {})}


def required_level(acr_values: str | None, claims_request: dict | None) -> int | None:
    """The level of authentication asked for: the lowest level the ``acr_values`` accept, or the
    lowest among the values of an ``acr`` claim request. None when nothing we know is asked."""
    levels: list[int] = []
    if acr_values:
        known = [ACR_LEVELS[v] for v in acr_values.split() if v in ACR_LEVELS]
        if known:
            levels.append(min(known))
    for target in ("id_token", "userinfo"):
        spec = ((claims_request or {}).get(target) or {}).get("acr")
        if isinstance(spec, dict):
            wanted = spec.get("values") or ([spec["value"]] if "value" in spec else [])
            known = [ACR_LEVELS[v] for v in wanted if isinstance(v, str) and v in ACR_LEVELS]
            if known:
                levels.append(min(known))
    return max(levels) if levels else None


def essential_acr_unknown(claims_request: dict | None) -> bool:
    """An ``acr`` claim asked for as essential whose values are all unknown to this provider: it
    cannot be met, and OpenID Connect says the request then fails (``unmet_authentication_requirements``)
    rather than answering at a level nobody asked for."""
    for target in ("id_token", "userinfo"):
        spec = ((claims_request or {}).get(target) or {}).get("acr")
        if isinstance(spec, dict) and spec.get("essential") is True:
            wanted = spec.get("values") or ([spec["value"]] if "value" in spec else [])
            if wanted and not any(isinstance(v, str) and v in ACR_LEVELS for v in wanted):
                return True
    return False


def acr_of(level: int) -> str:
    return ACR_LEVEL2 if level >= 2 else ACR_LEVEL1


def pairwise_subject(sector: str, subject: str, salt: bytes) -> str:
    """``sub`` = base64url(SHA-256(sector | account subject | salt)): the same person gets a
    different, stable identifier at every sector, so relying parties cannot join their data."""
    digest = hashlib.sha256(sector.encode() + b"|" + subject.encode() + b"|" + salt).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def release(all_claims: dict, names: set[str]) -> dict:
    """The person's claims limited to ``names`` (absent values are left out, never invented)."""
    return {k: v for k, v in all_claims.items() if k in names and v is not None and k != "sub"}
