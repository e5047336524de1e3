"""Electronic identification (Decree 69/2024): the app's registration, activation and session, the
owner's account (``/eid/me``), and the officers' work (reviews, level 2 in person, locks, lock
requests from other authorities, foreigners, organisations, the identity QR check).

Three kinds of caller: nobody (registration, activation, login: as the app calls them), the
account's owner (an app session token from ``POST /eid/sessions``), and officers (officer token).
Every read of a person's data by an officer is written to the access log.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, model_validator

from dinhdanh.audit.service import record_access
from dinhdanh.eid import (accounts, attempts, auth, chip_registration, counter, factors, locks, registration,
                          sessions, wallet)
from dinhdanh.eid.tables import LOCK_CAUSES, WALLET_KINDS
from dinhdanh.registry.commands import IsoDate as _IsoDate, PersonName, PlainStr, Sex
from dinhdanh.registry.errors import Forbidden, InvalidInput, NotFound
from dinhdanh.registry.records import find_person
from dinhdanh.web import errors
from dinhdanh.web.api.cards import vault_of
from dinhdanh.web.api.partner_auth import limiter_of
from dinhdanh.web.api.schemas import ErrorBody
from dinhdanh.web.deps import Allowed, Conn, uow_of

router = APIRouter(prefix="/api/v1/eid", tags=["eid"],
                   responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}, 404: {"model": ErrorBody},
                              409: {"model": ErrorBody}, 422: {"model": ErrorBody}})
LOGIN_RESPONSES: dict[int | str, dict[str, Any]] = {429: {"model": ErrorBody, "description": "Too many wrong passcodes"}}

# Vietnamese wording of this area's refusals, by stable code (English with Accept-Language: en).
VI = {
    "registration_refused": "Thông tin khai báo không khớp với dữ liệu của chúng tôi, hoặc không thể đăng ký trực "
                            "tuyến; vui lòng đến cơ quan Công an hoặc đăng ký bằng thẻ căn cước gắn chíp.",
    # the registration by chip's one refusal of a failed proof (field None: not the counter's chip_verdict)
    ("chip_not_verified", None): "Không xác thực được thẻ căn cước gắn chíp là của bạn (chíp, chữ ký của chíp với "
                                 "chuỗi thử thách, hiệu lực của thẻ hoặc ảnh khuôn mặt); hãy đọc lại thẻ hoặc đến "
                                 "cơ quan Công an.",
    ("rate_limited", "registration"): "Đã đăng ký thử quá nhiều lần; hãy thử lại sau, đăng ký bằng thẻ căn cước gắn "
                                      "chíp hoặc đến cơ quan Công an.",
    ("rate_limiter_unavailable", "registration"): "Bộ đếm số lần đăng ký tạm thời không hoạt động nên chưa đăng ký "
                                                  "được; hãy thử lại sau ít phút.",
    "not_in_register": "Không có người mang số định danh cá nhân này trong Cơ sở dữ liệu quốc gia về dân cư.",
    "register_mismatch": "Thông tin khai báo không khớp với Cơ sở dữ liệu quốc gia về dân cư.",
    ("register_mismatch", "full_name"): "Họ, chữ đệm và tên không khớp với Cơ sở dữ liệu quốc gia về dân cư.",
    ("register_mismatch", "date_of_birth"): "Ngày sinh không khớp với Cơ sở dữ liệu quốc gia về dân cư.",
    ("register_mismatch", "sex"): "Giới tính không khớp với Cơ sở dữ liệu quốc gia về dân cư.",
    "no_valid_card": "Công dân chưa có thẻ căn cước còn hiệu lực (đã cấp, chưa bị thu hồi, chưa hết hạn).",
    "msisdn_not_owned": "Số thuê bao di động không đứng tên công dân này hoặc không còn hoạt động.",
    "face_mismatch": "Ảnh chân dung không khớp với ảnh trên thẻ căn cước.",
    "face_unreadable": "Ảnh chân dung không đọc được (cần ảnh JPEG, tối đa 2 MB, có khuôn mặt).",
    "guardian_required": "Trẻ em dưới 6 tuổi được đăng ký qua tài khoản định danh mức độ 2 của người đại diện.",
    "guardian_not_level2": "Người đại diện cần có tài khoản định danh điện tử mức độ 2 đang hoạt động.",
    "not_guardian": "Chủ tài khoản không phải cha, mẹ hoặc người đại diện hợp pháp của trẻ.",
    "level2_under_6": "Trẻ em dưới 6 tuổi chỉ được cấp tài khoản định danh điện tử mức độ 1.",
    "account_exists": "Công dân đã có tài khoản định danh điện tử ở mức độ này.",
    "account_locked": "Tài khoản định danh điện tử đang bị khóa.",
    "account_not_active": "Tài khoản định danh điện tử chưa hoạt động.",
    "account_not_found": "Không tìm thấy tài khoản định danh điện tử.",
    "registration_not_found": "Không tìm thấy hồ sơ đăng ký tài khoản.",
    "not_pending_review": "Hồ sơ không ở trạng thái chờ xét duyệt.",
    "not_awaiting_activation": "Hồ sơ không ở trạng thái chờ kích hoạt.",
    "invalid_code": "Mã kích hoạt không đúng.",
    "code_expired": "Mã kích hoạt đã hết hiệu lực (15 phút); hãy đăng ký lại.",
    "code_attempts_exceeded": "Đã nhập sai mã kích hoạt quá 5 lần; hãy đăng ký lại.",
    "invalid_passcode": "Mật mã gồm 6 chữ số.",
    "weak_passcode": "Mật mã quá dễ đoán (một chữ số lặp lại, dãy số liên tiếp, ngày sinh hoặc 6 số cuối của số "
                     "định danh); hãy chọn mật mã khác.",
    "step_up_required": "Thay đổi yếu tố xác thực thứ hai cần phiên đăng nhập mức độ 2 (đăng nhập bằng yếu tố "
                        "xác thực hiện có) hoặc thực hiện tại cơ quan Công an.",
    "no_totp": "Tài khoản chưa có mã xác thực TOTP.",
    "last_second_factor": "Tài khoản mức độ 2 phải luôn có ít nhất một yếu tố xác thực thứ hai.",
    "invalid_device_key": "Khóa thiết bị phải là khóa công khai EC P-256 (JWK, ES256).",
    "device_key_taken": "Khóa thiết bị này đã được đăng ký.",
    "card_mismatch": "Thẻ xuất trình không phải thẻ căn cước hiện hành của công dân.",
    "chip_not_verified": "Chíp của thẻ chưa được xác thực là hợp lệ.",
    ("consent_required", "consent"): "Cần có sự đồng ý của công dân.",
    "fingerprint_mismatch": "Vân tay không khớp.",
    "contact_required": "Cần số điện thoại di động hoặc thư điện tử để gửi mã kích hoạt.",
    "foreigner_exists": "Người nước ngoài có số định danh này đã được ghi nhận.",
    "residence_card_expired": "Thẻ thường trú hoặc tạm trú của người nước ngoài không còn hiệu lực.",
    "passport_expired": "Hộ chiếu của người nước ngoài đã hết hạn.",
    "too_young": "Người nước ngoài từ đủ 6 tuổi mới được cấp tài khoản định danh điện tử.",
    "representative_not_level2": "Tổ chức được đăng ký bởi người đại diện theo pháp luật có tài khoản mức độ 2.",
    "already_dissolved": "Tổ chức đã giải thể.",
    "not_locked": "Tài khoản không bị khóa vì lý do này.",
    "cause_persists": "Lý do khóa tài khoản vẫn còn; chưa thể mở khóa.",
    "not_owner_lock": "Trong ứng dụng chỉ mở được khóa do chính chủ tài khoản yêu cầu.",
    "already_revoked": "Tài khoản đã bị thu hồi.",
    "already_decided": "Yêu cầu đã được xử lý.",
    "not_a_citizen": "Chỉ tài khoản của công dân Việt Nam tích hợp được giấy tờ này.",
    "document_not_found": "Cơ quan cấp không có giấy tờ mang số này.",
    "document_not_holders": "Giấy tờ không đứng tên chủ tài khoản.",
    "document_revoked": "Giấy tờ đã bị thu hồi.",
    "document_expired": "Giấy tờ đã hết hạn.",
    "already_in_wallet": "Giấy tờ đã có trong ví giấy tờ.",
    "qr_invalid": "Mã QR không hợp lệ.",
    "qr_used": "Mã QR đã được sử dụng.",
    "qr_expired": "Mã QR đã hết hiệu lực (60 giây).",
    "challenge_invalid": "Chuỗi thử thách không hợp lệ, đã hết hạn hoặc đã được dùng.",
    "second_factor_failed": "Yếu tố xác thực thứ hai không đúng.",
    ("not_found", "number"): "Không tìm thấy người nước ngoài hoặc giấy tờ có số này.",
    ("not_found", "code"): "Không tìm thấy tổ chức có mã định danh này.",
    ("not_found", "request_id"): "Không tìm thấy yêu cầu khóa tài khoản.",
}
errors.add_messages(VI)

NUMERIC_STATUS = {"bad_credentials": 401, "not_active": 403, "account_locked": 403, "temporarily_locked": 429}


def install(app: FastAPI) -> None:
    """The area's error bodies: every failed registration check, and refused logins."""

    @app.exception_handler(registration.RegistrationRefused)
    async def registration_refused(request: Request, exc: registration.RegistrationRefused):
        english = errors._english(request)
        problems = [{**p, "message": p["message"] if english else
                     (VI.get((p["code"], p["field"])) or VI.get(p["code"]) or p["message"])} for p in exc.problems]
        message = "; ".join(p["message"] for p in problems)
        return errors.error_body(exc.status, exc.code, message, exc.field, problems=problems)

    @app.exception_handler(attempts.AttemptsRefused)
    async def attempts_refused(request: Request, exc: attempts.AttemptsRefused):
        message = errors._message(request, exc.code, "registration", exc.message)
        response = errors.error_body(exc.status, exc.code, message, None)
        response.headers["Retry-After"] = exc.retry_after
        return response

    @app.exception_handler(sessions.SecondFactorRefused)
    async def second_factor_refused(request: Request, exc: sessions.SecondFactorRefused):
        return errors.error_body(401, exc.code, errors._message(request, exc.code, exc.field, exc.message), exc.field)

    @app.exception_handler(auth.LoginRefused)
    async def login_refused(request: Request, exc: auth.LoginRefused):
        status = NUMERIC_STATUS.get(exc.code, 401)
        response = errors.error_body(status, exc.code, exc.message_en if errors._english(request) else exc.message,
                                     "passcode" if exc.code == "bad_credentials" else None,
                                     retry_after=exc.retry_after)
        if exc.retry_after:
            response.headers["Retry-After"] = str(exc.retry_after)
        return response


# ------------------------------------------------------------------------------------ inputs


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


IsoDate = Annotated[_IsoDate, Field(strict=False)]  # ISO text only (checked before), then a date
PidStr = Annotated[StrictStr, Field(pattern=r"^[0-9]{12}$", description="Personal ID number, 12 digits")]
PidPath = Annotated[str, Path(pattern=r"^[0-9]{12}$", description="Personal ID number, 12 digits")]
UsernamePath = Annotated[str, Path(pattern=r"^[0-9A-Z]{6,20}$",
                                   description="PID, foreigner number or organisation e-ID code")]
Msisdn = Annotated[StrictStr, Field(pattern=r"^0[0-9]{9}$", description="Mobile number, 10 digits from 0")]
Email = Annotated[StrictStr, Field(max_length=254, pattern=r"^[^@\s\x00-\x1f]{1,64}@[^@\s\x00-\x1f]+\.[^@\s\x00-\x1f]+$")]
Passcode = Annotated[StrictStr, Field(pattern=r"^[0-9]{6}$", description="6 digits")]
Code = Annotated[StrictStr, Field(pattern=r"^[0-9]{6}$", description="The activation code (6 digits)")]
Image = Annotated[StrictStr, Field(min_length=4, max_length=2_800_000, description="JPEG, base64")]
Reason = Annotated[PlainStr, Field(min_length=1, max_length=500)]
Number = Annotated[StrictStr, Field(pattern=r"^[0-9A-Z]{6,20}$")]
Id = Annotated[int, Path(ge=1, le=2**62)]


def _b64(value: str, field: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(f"{field} is not valid base64.", field=field) from None


class JWK(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)
    kty: Literal["EC"]
    crv: Literal["P-256"]
    x: Annotated[StrictStr, Field(max_length=64)]
    y: Annotated[StrictStr, Field(max_length=64)]


class RegistrationBody(Strict):
    pid: PidStr
    full_name: PersonName
    date_of_birth: IsoDate
    sex: Sex
    msisdn: Msisdn
    email: Email | None = None
    face_image: Image


def _chip_file(most: int, what: str):
    return Annotated[StrictStr, Field(min_length=4, max_length=most, description=f"{what}, base64 as read")]


class ChipRegistrationBody(Strict):
    challenge_id: Annotated[StrictStr, Field(pattern=r"^[A-Za-z0-9_-]{16,64}$",
                                             description="From POST /api/v1/eid/registrations/challenges")]
    sod: _chip_file(64_000, "EF.SOD")
    dg1: _chip_file(400, "DG1 (the MRZ)")
    dg2: _chip_file(400_000, "DG2 (the portrait)")
    dg13: _chip_file(16_000, "DG13 (Vietnamese personal data)")
    dg14: _chip_file(16_000, "DG14 (security infos)") | None = None
    dg15: _chip_file(4_000, "DG15 (the Active Authentication key)")
    aa_signature: _chip_file(2_000, "The chip's Active Authentication response to the challenge")
    face_image: Image
    msisdn: Msisdn
    email: Email | None = None


class DependantBody(Strict):
    pid: PidStr
    full_name: PersonName
    date_of_birth: IsoDate
    sex: Sex
    face_image: Image


class ReviewBody(Strict):
    decision: Literal["approve", "refuse"]
    reason: Reason


class ActivationBody(Strict):
    registration_id: Annotated[StrictInt, Field(ge=1, le=2**62)] | None = None
    pid: PidStr | None = None
    code: Code
    passcode: Passcode
    device_key: JWK | None = None
    totp: StrictBool = False

    @model_validator(mode="after")
    def _one_reference(self):
        if self.registration_id is None and self.pid is None:
            raise ValueError("give registration_id or pid")
        return self


class SessionBody(Strict):
    username: Annotated[StrictStr, Field(pattern=r"^[0-9A-Z]{6,20}$")]
    passcode: Annotated[StrictStr, Field(min_length=1, max_length=64)]
    totp: Annotated[StrictStr, Field(pattern=r"^[0-9]{6}$")] | None = None
    device_proof: Annotated[StrictStr, Field(max_length=4096)] | None = None
    challenge: Annotated[StrictStr, Field(max_length=100)] | None = None


class Level2Body(Strict):
    card_number: Annotated[StrictStr, Field(pattern=r"^[0-9]{12}$")]
    chip_verdict: Literal["valid", "untrusted", "invalid", "not_read"]
    face_image: Image
    fingerprint: Annotated[StrictStr, Field(min_length=4, max_length=2_800_000, description="base64")]
    face_match: Literal["match", "no_match"]
    fingerprint_match: Literal["match", "no_match"]
    consent: StrictBool
    msisdn: Msisdn | None = None
    email: Email | None = None


class LockBody(Strict):
    reason: Reason


class OfficerLockBody(Strict):
    cause: Literal["breach"] = "breach"
    reason: Reason


class UnlockBody(Strict):
    reason: Reason
    causes: Annotated[list[Literal[LOCK_CAUSES]], Field(max_length=len(LOCK_CAUSES))] | None = None  # type: ignore[valid-type]


class OwnerUnlockBody(SessionBody):
    reason: Reason = "unlocked by the owner"


class LockRequestBody(Strict):
    username: Number
    authority: Annotated[PlainStr, Field(min_length=1, max_length=200)]
    reason: Reason


class DecisionBody(Strict):
    approve: StrictBool
    reason: Reason


class WalletBody(Strict):
    kind: Literal[WALLET_KINDS]  # type: ignore[valid-type]
    number: Annotated[StrictStr, Field(pattern=r"^[0-9A-Za-z.-]{1,30}$")]


class QrVerifyBody(Strict):
    token: Annotated[StrictStr, Field(min_length=1, max_length=100)]


class DeviceBody(Strict):
    device_key: JWK


class ForeignerBody(Strict):
    number: Number
    full_name: PersonName
    date_of_birth: IsoDate
    sex: Sex
    nationality: Annotated[StrictStr, Field(pattern=r"^[A-Z]{3}$")]
    passport_number: Number
    passport_expiry: IsoDate
    residence_card_number: Number | None = None
    residence_card_expiry: IsoDate | None = None
    phone: Msisdn | None = None
    email: Email | None = None
    address: Annotated[PlainStr, Field(min_length=1, max_length=200)] | None = None


class ForeignerDocumentsBody(Strict):
    passport_number: Number | None = None
    passport_expiry: IsoDate | None = None
    residence_card_number: Number | None = None
    residence_card_expiry: IsoDate | None = None


class ForeignerEnrolBody(Strict):
    level: Literal[1, 2]
    passcode: Passcode
    face_image: Image | None = None
    fingerprint: Annotated[StrictStr, Field(min_length=4, max_length=2_800_000)] | None = None


class OrganisationBody(Strict):
    name: Annotated[PlainStr, Field(min_length=1, max_length=200)]
    founding_date: IsoDate
    address: Annotated[PlainStr, Field(min_length=1, max_length=300)]
    passcode: Passcode
    email: Email | None = None


class DissolveBody(Strict):
    date: IsoDate
    reason: Reason


# --------------------------------------------------------------------------- the app's session

app_bearer = HTTPBearer(auto_error=False, scheme_name="eidSession",
                        description="e-ID app session token (POST /api/v1/eid/sessions)")


@dataclass(frozen=True, slots=True)
class AppSession:
    account_id: int
    level: int


def current_session(conn: Conn, credentials: HTTPAuthorizationCredentials | None = Depends(app_bearer)) -> AppSession:
    found = sessions.session_of(conn, credentials.credentials) if credentials else None
    if found is None:
        raise HTTPException(status_code=401, detail="A valid e-ID app session is required (POST /api/v1/eid/sessions).",
                            headers={"WWW-Authenticate": "Bearer"})
    account_id, level = found
    auth.principal(conn, account_id)  # LoginRefused when the account was locked meanwhile
    return AppSession(account_id, level)


Session = Annotated[AppSession, Depends(current_session)]


def _ip(request: Request) -> str | None:
    return request.client.host if request.client else None


# ------------------------------------------------------------------------------ the app (public)


REGISTRATION_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {"description": "Waiting for an officer's review"},
    429: {"model": ErrorBody, "description": "Too many attempts (Retry-After)"},
    503: {"model": ErrorBody, "description": "The attempt counters are unavailable"}}


@router.post("/registrations", status_code=201, summary="Register a level-1 account in the app with typed data "
             "(every refusal is one generic answer; limited per address and per PID)",
             responses=REGISTRATION_RESPONSES)
def register(body: RegistrationBody, request: Request):
    face, vault = _b64(body.face_image, "face_image"), vault_of(request)
    attempts.count_attempt(limiter_of(request), vault, source=_ip(request), pid=body.pid)
    # the access-log entry of a refused check is kept: committed with the refusal
    out = _committed(request, lambda conn: registration.register(
        conn, vault, pid=body.pid, full_name=body.full_name, date_of_birth=body.date_of_birth, sex=body.sex,
        msisdn=body.msisdn, email=body.email, face_image=face), refusals=(registration.RegistrationRefused,))
    return JSONResponse(out, status_code=201 if out["status"] == "approved" else 202)


@router.post("/registrations/challenges", status_code=201,
             summary="A challenge for the chip card's Active Authentication (8 bytes, base64url; 120 s, once)",
             responses=REGISTRATION_RESPONSES)
def registration_challenge(request: Request) -> dict:
    # each challenge is a row until it expires: limited per address like the registrations it serves
    # (counted in its own short transaction first, then the challenge in the route's unit of work)
    vault = vault_of(request)
    attempts.count_attempt(limiter_of(request), vault, source=_ip(request), path="challenge")
    with uow_of(request).begin() as conn:
        return chip_registration.new_challenge(conn, vault)


@router.post("/registrations/chip", status_code=201, summary="Register a level-1 account with the chip card read "
             "over NFC (passive and active authentication, the card in the register, the face against DG2)",
             responses=REGISTRATION_RESPONSES)
def register_by_chip(body: ChipRegistrationBody, request: Request):
    files = {-1: _b64(body.sod, "sod"), 1: _b64(body.dg1, "dg1"), 2: _b64(body.dg2, "dg2"),
             13: _b64(body.dg13, "dg13"), 15: _b64(body.dg15, "dg15")}
    if body.dg14 is not None:
        files[14] = _b64(body.dg14, "dg14")
    signature, face, vault = _b64(body.aa_signature, "aa_signature"), _b64(body.face_image, "face_image"), \
        vault_of(request)
    attempts.count_attempt(limiter_of(request), vault, source=_ip(request), path="chip")
    # the challenge is spent, and the access-log entry kept, whatever the answer
    out = _committed(request, lambda conn: chip_registration.register_by_chip(
        conn, vault, challenge_id=body.challenge_id, files=files, aa_signature=signature, face_image=face,
        msisdn=body.msisdn, email=body.email), refusals=(registration.RegistrationRefused, InvalidInput))
    return JSONResponse(out, status_code=201 if out["status"] == "approved" else 202)


def _committed(request: Request, work, refusals: tuple = ()):
    """Run ``work(conn)`` in a transaction that commits even when it refuses (attempt counters,
    spent challenges, the access log): ``refusals`` adds to the refusals that commit."""
    refused = None
    with uow_of(request).begin() as conn:
        try:
            return work(conn)
        except (registration.ActivationRefused, auth.LoginRefused, sessions.SecondFactorRefused, *refusals) as exc:
            refused = exc
    raise refused


@router.post("/activations", summary="Activate an account with the code received; set the passcode",
             responses=REGISTRATION_RESPONSES)
def activate(body: ActivationBody, request: Request) -> dict:
    # limited per address before anything is read (a registration's own code allows 5 tries)
    attempts.count_attempt(limiter_of(request), vault_of(request), source=_ip(request), path="activation")
    return _committed(request, lambda conn: registration.activate(
        conn, code=body.code, passcode=body.passcode, registration_id=body.registration_id, pid=body.pid,
        device_key=body.device_key.model_dump() if body.device_key else None, totp=body.totp))


@router.post("/challenges", status_code=201, summary="A challenge for the device key to sign (120 s, once)")
def challenge(conn: Conn) -> dict:
    return sessions.new_challenge(conn)


@router.post("/sessions", status_code=201, summary="Log in to the app (passcode; device proof or TOTP for level 2)",
             responses=LOGIN_RESPONSES)
def login(body: SessionBody, request: Request) -> dict:
    # the passcode is checked, and counted, before the transaction and outside any (auth.check_login)
    check = auth.check_login(_transactions(request), body.username, body.passcode)
    return _committed(request, lambda conn: sessions.open_session(
        conn, check, totp=body.totp, device_proof=body.device_proof,
        challenge=body.challenge, ip=_ip(request), user_agent=request.headers.get("user-agent")))


def _transactions(request: Request):
    """What ``auth.check_login`` opens its short transactions with: the app's unit of work, else the engine."""
    return getattr(request.app.state, "uow", None) or request.app.state.engine


@router.post("/unlock", summary="The owner lifts their own lock (passcode, and the second factor if any)",
             responses=LOGIN_RESPONSES)
def owner_unlock(body: OwnerUnlockBody, request: Request) -> dict:
    check = auth.check_login(_transactions(request), body.username, body.passcode)
    return _committed(request, lambda conn: sessions.owner_unlock(
        conn, check, totp=body.totp, device_proof=body.device_proof,
        challenge=body.challenge, reason=body.reason))


# ---------------------------------------------------------------------------------- the owner


@router.get("/me", summary="My account: state, level, locks, identity card")
def me(conn: Conn, session: Session) -> dict:
    return {**auth.account_view(conn, session.account_id), "session_level": session.level}


@router.get("/me/history", summary="Every change of my account")
def my_history(conn: Conn, session: Session) -> list[dict]:
    return accounts.history(conn, session.account_id)


@router.get("/me/logins", summary="My recent logins")
def my_logins(conn: Conn, session: Session, limit: Annotated[int, Query(ge=1, le=500)] = 50) -> list[dict]:
    return auth.login_history(conn, session.account_id, limit)


@router.post("/me/lock", summary="Lock my account (lost phone, suspected misuse)")
def lock_me(body: LockBody, conn: Conn, session: Session) -> dict:
    return auth.lock_by_owner(conn, session.account_id, body.reason)


@router.post("/me/totp", status_code=201,
             summary="Set or replace my TOTP second factor (level-2 session only; returns the otpauth URI)")
def totp_on(request: Request, conn: Conn, session: Session) -> dict:
    factors.require_step_up(session.level)  # 403 step_up_required for a passcode-only session
    return {"otpauth_uri": factors.set_totp(conn, session.account_id, source="owner", actor="owner")}


@router.delete("/me/totp", summary="Remove my TOTP second factor (level-2 session only; never the last one "
                                   "of a level-2 account)")
def totp_off(conn: Conn, session: Session) -> dict:
    factors.require_step_up(session.level)
    factors.remove_totp(conn, session.account_id, source="owner", actor="owner")
    return auth.account_view(conn, session.account_id)


@router.post("/me/devices", status_code=201, summary="Register this device's ES256 public key (level-2 session only)")
def add_device(body: DeviceBody, conn: Conn, session: Session) -> dict:
    factors.require_step_up(session.level)
    return {"thumbprint": auth.register_device(conn, session.account_id, body.device_key.model_dump())}


@router.get("/me/wallet", summary="My document wallet (and the electronic identity card at level 2)")
def my_wallet(conn: Conn, session: Session) -> dict:
    return wallet.wallet(conn, session.account_id)


@router.post("/me/wallet", status_code=201, summary="Integrate a document, checked with its issuing registry")
def add_to_wallet(body: WalletBody, conn: Conn, session: Session) -> dict:
    return wallet.add_document(conn, session.account_id, body.kind, body.number)


@router.post("/me/identity-qr", status_code=201, summary="A QR token for an in-person check (60 s, once)")
def identity_qr(conn: Conn, session: Session) -> dict:
    return wallet.issue_identity_qr(conn, session.account_id, level=session.level)


@router.post("/me/dependants", status_code=201, summary="Register my child's account (from my level-2 account)",
             responses={202: {"description": "Waiting for an officer's review"}})
def register_dependant(body: DependantBody, request: Request,
                       credentials: HTTPAuthorizationCredentials | None = Depends(app_bearer)):
    face, vault = _b64(body.face_image, "face_image"), vault_of(request)

    def work(conn):
        session = current_session(conn, credentials)
        if session.level != 2:
            raise InvalidInput("This needs a level-2 login (device key or TOTP).", code="guardian_not_level2",
                               field="session")
        guardian = accounts.get_account(conn, session.account_id)
        return registration.register(conn, vault, pid=body.pid, full_name=body.full_name,
                                     date_of_birth=body.date_of_birth, sex=body.sex, msisdn=guardian.msisdn or "",
                                     email=None, face_image=face, guardian_account_id=session.account_id)

    # one unit of work for the session and the registration, kept when refused (the access log)
    out = _committed(request, work, refusals=(registration.RegistrationRefused,))
    return JSONResponse(out, status_code=201 if out["status"] == "approved" else 202)


@router.post("/me/organisations", status_code=201, summary="Register an organisation I legally represent")
def register_organisation(body: OrganisationBody, conn: Conn, session: Session) -> dict:
    if session.level != 2:
        raise InvalidInput("This needs a level-2 login (device key or TOTP).", code="representative_not_level2",
                           field="session")
    return counter.register_organisation(conn, session.account_id, name=body.name, founding_date=body.founding_date,
                                         address=body.address, passcode=body.passcode, email=body.email)


# ----------------------------------------------------------------------------------- officers
# Each route requires its permission (officers.permissions); the area applies to every person's
# data: out of the area is answered exactly as unknown (404), so no route tells what exists elsewhere.

Reviewer = Allowed("eid.registrations.review")
Enroller = Allowed("eid.level2.enrol")
AccountReader = Allowed("eid.accounts.read")
FactorGiver = Allowed("eid.accounts.factors")
Locker = Allowed("eid.accounts.lock")
AccountRevoker = Allowed("eid.accounts.revoke")
RequestFiler = Allowed("eid.lock_requests.file")
RequestDecider = Allowed("eid.lock_requests.decide")
Checker = Allowed("identity.check")
Sweeper = Allowed("eid.sweep")
ForeignersOfficer = Allowed("eid.foreigners")
OrganisationsOfficer = Allowed("eid.organisations")


def _national_only(officer) -> None:
    """Foreigners and organisations are recorded with no place code, and the sweep runs over the whole
    country: national officers only (the refusal does not depend on the data asked for)."""
    if not officer.area.national:
        raise Forbidden("Only national officers may do this (foreigners, organisations and the sweep have no area).",
                        field="area")


def _account_for(conn, officer, username: str):
    """The account a username names (citizens within the officer's area), and the person_id to audit."""
    if len(username) == 12 and username.isdigit():
        person = find_person(conn, username, officer.area)
        account = accounts.account_of_person(conn, person.person_id)
        if account is None:
            raise NotFound("This person has no e-ID account.", code="account_not_found", field="username")
        return account, person.person_id
    account = auth.find_login(conn, username) if officer.area.national else None
    if account is None:  # foreigners and organisations have no area: national officers only
        raise NotFound("No e-ID account has this username.", code="account_not_found", field="username")
    return account, None


def _audited_view(conn, officer, account_id: int, person_id: int | None) -> dict:
    if person_id is not None:
        record_access(conn, officer.label, [person_id], "eid_account", "identity_check")
    return auth.account_view(conn, account_id)


@router.get("/registrations", summary="Registrations, by default those waiting for review")
def registrations(conn: Conn, officer: Reviewer,
                  status: Literal["pending_review", "approved", "refused", "activated"] = "pending_review",
                  limit: Annotated[int, Query(ge=1, le=500)] = 100) -> list[dict]:
    return registration.list_registrations(conn, status=status, limit=limit, area=officer.area)


@router.get("/registrations/{registration_id}", summary="A registration with the captured face and the card photo")
def registration_detail(registration_id: Id, request: Request, conn: Conn, officer: Reviewer) -> dict:
    view, person_id = registration.registration_detail(conn, vault_of(request), registration_id, area=officer.area)
    if person_id is not None:
        record_access(conn, officer.label, [person_id], "eid_registration", "identity_check")
    return view


@router.post("/registrations/{registration_id}/review", summary="Approve or refuse a registration under review")
def review(registration_id: Id, body: ReviewBody, conn: Conn, officer: Reviewer) -> dict:
    return registration.review(conn, registration_id, approve=body.decision == "approve", reason=body.reason,
                               actor=officer.label, area=officer.area)


@router.post("/accounts/{pid}/level2", summary="Level 2 in person: card, face, fingerprints, consent")
def level2(pid: PidPath, body: Level2Body, request: Request, conn: Conn, officer: Enroller) -> dict:
    out, person_id = counter.enrol_level2(
        conn, vault_of(request), pid, actor=officer.label, area=officer.area, card_number=body.card_number,
        chip_verdict=body.chip_verdict, face_image=_b64(body.face_image, "face_image"),
        fingerprint=_b64(body.fingerprint, "fingerprint"), face_match=body.face_match,
        fingerprint_match=body.fingerprint_match, consent=body.consent, msisdn=body.msisdn, email=body.email)
    record_access(conn, officer.label, [person_id], "eid_level2", "identity_card")
    return out


@router.get("/accounts/{username}", summary="An account, its locks and history")
def account(username: UsernamePath, conn: Conn, officer: AccountReader) -> dict:
    row, person_id = _account_for(conn, officer, username)
    if person_id is not None:
        record_access(conn, officer.label, [person_id], "eid_account", "identity_check")
    return {**auth.account_view(conn, row.account_id), "history": accounts.history(conn, row.account_id)}


@router.post("/accounts/{username}/totp", status_code=201,
             summary="At the counter: give the account a new TOTP second factor (the otpauth URI, shown once)")
def officer_totp(username: UsernamePath, conn: Conn, officer: FactorGiver) -> dict:
    row, person_id = _account_for(conn, officer, username)
    uri = factors.set_totp(conn, row.account_id, source="officer", actor=officer.label)
    return {**_audited_view(conn, officer, row.account_id, person_id), "totp_uri": uri}


@router.post("/accounts/{username}/lock", summary="Lock an account for breach of the terms of use")
def officer_lock(username: UsernamePath, body: OfficerLockBody, conn: Conn, officer: Locker) -> dict:
    row, person_id = _account_for(conn, officer, username)
    locks.lock(conn, row.account_id, body.cause, source="officer", actor=officer.label, reason=body.reason)
    return _audited_view(conn, officer, row.account_id, person_id)


@router.post("/accounts/{username}/unlock", summary="Unlock (automatic causes only once they are gone)")
def officer_unlock(username: UsernamePath, body: UnlockBody, conn: Conn, officer: Locker) -> dict:
    row, person_id = _account_for(conn, officer, username)
    locks.unlock(conn, row.account_id, actor=officer.label, reason=body.reason, causes=body.causes)
    return _audited_view(conn, officer, row.account_id, person_id)


@router.post("/accounts/{username}/revoke", summary="Revoke an account")
def officer_revoke(username: UsernamePath, body: LockBody, conn: Conn, officer: AccountRevoker) -> dict:
    row, person_id = _account_for(conn, officer, username)
    locks.revoke(conn, row.account_id, actor=officer.label, reason=body.reason)
    return _audited_view(conn, officer, row.account_id, person_id)


@router.post("/lock-requests", status_code=201, summary="Another authority asks for a lock (due in 2 working days)")
def lock_request(body: LockRequestBody, conn: Conn, officer: RequestFiler) -> dict:
    row, _ = _account_for(conn, officer, body.username)
    return locks.request_lock(conn, row.account_id, authority=body.authority, reason=body.reason,
                              actor=officer.label)


@router.get("/lock-requests", summary="Lock requests; ?overdue=true: pending past their deadline")
def lock_requests_list(conn: Conn, officer: RequestDecider, overdue: bool = False,
                       status: Literal["pending", "approved", "refused"] | None = None,
                       limit: Annotated[int, Query(ge=1, le=500)] = 100) -> list[dict]:
    return locks.list_lock_requests(conn, overdue=overdue, status=status, limit=limit, area=officer.area)


@router.post("/lock-requests/{request_id}/decision",
             summary="Approve (lock) or refuse a lock request (not the officer who filed it: 403 separation_of_duties)")
def lock_decision(request_id: Id, body: DecisionBody, conn: Conn, officer: RequestDecider) -> dict:
    return locks.decide_lock_request(conn, request_id, approve=body.approve, reason=body.reason, actor=officer.label,
                                     area=officer.area)


@router.post("/identity-qr/verify", summary="Check a holder's identity QR (once, within 60 s)")
def identity_qr_verify(body: QrVerifyBody, conn: Conn, officer: Checker) -> dict:
    out, person_id = wallet.verify_identity_qr(conn, body.token, actor=officer.label)
    if person_id is not None:
        record_access(conn, officer.label, [person_id], "identity_qr", "identity_check")
    return out


@router.post("/sweep", summary="Lock and unlock accounts as the data say (card expiry, death, foreign documents)")
def sweep(conn: Conn, officer: Sweeper) -> dict:
    _national_only(officer)
    return locks.sweep(conn, actor=officer.label)


@router.post("/foreigners", status_code=201, summary="Record a foreigner (passport, residence card)")
def add_foreigner(body: ForeignerBody, conn: Conn, officer: ForeignersOfficer) -> dict:
    _national_only(officer)
    return counter.add_foreigner(conn, **body.model_dump(), actor=officer.label)


@router.post("/foreigners/{number}/documents", summary="A renewed passport or residence card")
def renew_documents(number: UsernamePath, body: ForeignerDocumentsBody, conn: Conn,
                    officer: ForeignersOfficer) -> dict:
    _national_only(officer)
    return counter.renew_foreigner_documents(conn, number, **body.model_dump())


@router.post("/foreigners/{number}/accounts", status_code=201, summary="Enrol a foreigner at the counter")
def enrol_foreigner(number: UsernamePath, body: ForeignerEnrolBody, request: Request, conn: Conn,
                    officer: ForeignersOfficer) -> dict:
    _national_only(officer)
    return counter.enroll_foreigner(
        conn, vault_of(request), number, level=body.level, passcode=body.passcode, actor=officer.label,
        face=_b64(body.face_image, "face_image") if body.face_image else None,
        fingerprint=_b64(body.fingerprint, "fingerprint") if body.fingerprint else None)


@router.post("/organisations/{code}/dissolve", summary="An organisation is dissolved: its account is locked")
def dissolve(code: UsernamePath, body: DissolveBody, conn: Conn, officer: OrganisationsOfficer) -> dict:
    _national_only(officer)
    return locks.dissolve_organisation(conn, code, on=body.date, actor=officer.label, reason=body.reason)

