"""The public catalogue of online public services (issue 12): what each service is, who decides it,
how long it takes, what it costs, and its form. No authentication: it holds no personal data.
The one exception, ``GET /{code}/prefill``, answers a citizen (a provider token with
``dinhdanh.dossiers``) what the state already holds for that service's form.

Names are Vietnamese by default, English with ``Accept-Language: en``. ``?on=YYYY-MM-DD`` shows the
catalogue as it was (or will be) on that day: a dossier is decided under the version it was filed under.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from dinhdanh.dossiers import catalogue, prefill
from dinhdanh.dossiers.catalogue import ServiceVersion
from dinhdanh.registry.errors import InvalidInput, NotFound, RegistryError
from dinhdanh.web import errors
from dinhdanh.web.api.dossiers import CitizenCredentials, citizen_of
from dinhdanh.web.api.schemas import ErrorBody
from dinhdanh.web.deps import in_unit

router = APIRouter(prefix="/api/v1/services", tags=["services"],
                   responses={404: {"model": ErrorBody}, 422: {"model": ErrorBody}})

# Vietnamese wording of this area's refusals, by stable code (English with Accept-Language: en). The
# (not_found, code) wording stays local: places answer the same pair for an unknown province.
VI = {
    ("not_found", "code"): "Không có thủ tục hành chính mang mã này trong danh mục dịch vụ công trực tuyến.",
    ("invalid_input", "on"): "Ngày tra cứu phải có dạng YYYY-MM-DD và là ngày có thật.",
    "service_not_in_force": "Thủ tục này không có phiên bản có hiệu lực vào ngày được hỏi.",
    "fact_required": "Lệ phí phụ thuộc vào một mục của tờ khai chưa được khai.",
    "fee_unknown": "Danh mục chưa có mức lệ phí cho tỉnh, thành phố và hình thức nộp này.",
    "invalid_form": "Tờ khai chưa đúng hoặc chưa đủ; xem từng mục được nêu.",
}
errors.add_messages({k: v for k, v in VI.items() if isinstance(k, str)})

OnDate = Annotated[str | None, Query(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$",
                                     description="The day to show the catalogue for (YYYY-MM-DD); today in Vietnam by default")]


class AgencyOut(BaseModel):
    code: str
    name: str
    level: str  # national | province | commune


class FeeSummary(BaseModel):
    currency: str
    online: int | None  # the lowest amount in force ("from"), VND
    counter: int | None
    varies: bool  # by province or by facts of the dossier
    exemptions: list[str]
    refund_on_refusal: str  # full | none: what a refused dossier's paid fee becomes


class ServiceBrief(BaseModel):
    code: str
    version: str  # code@effective_from: what a dossier keeps
    name: str
    sector: str  # police | commune | other
    agency: AgencyOut
    level: str  # online level: full (toàn trình) | partial (một phần)
    processing_days: int  # working days; 0 = the same working day
    fee: FeeSummary


class ServiceDetail(ServiceBrief):
    code_source: str  # portal | portal-internal | assigned
    former_codes: list[str]
    effective_from: str
    effective_to: str | None
    legal_basis: list[str]
    fee_schedule: dict[str, Any]
    form: dict[str, Any]  # JSON Schema 2020-12; x-source marks what the state fills in
    prefill: list[dict[str, Any]]
    attachments: list[dict[str, Any]]
    group: dict[str, Any] | None


class PrefilledField(BaseModel):
    field: str  # the form's dotted path
    value: Any
    source: str  # x-source: register:..., card:..., wallet:...
    label: str | None = None  # the field's title in the form


class Prefill(BaseModel):
    service: str
    version: str  # code@effective_from
    fields: list[PrefilledField]
    ask: list[str]  # prefill fields the citizen must still fill (another person's, or no value held)


def routes() -> APIRouter:
    """The router, once the catalogue is read and checked: a broken data file stops the server's start."""
    catalogue.load()
    return router


@router.get("", response_model=list[ServiceBrief])
def list_services(request: Request, on: OnDate = None):
    """Every service in force on the day: code, name, agency, online level, processing days, fee."""
    try:
        day = _day(on)
        english = errors._english(request)
        return [_brief(v, day, english) for v in catalogue.services(day)]
    except RegistryError as exc:
        return _refusal(request, exc)


@router.get("/{code}", response_model=ServiceDetail)
def show_service(request: Request, code: Annotated[str, Path(min_length=1, max_length=60)], on: OnDate = None):
    """One service as in force on the day, with its form (JSON Schema), attachments and fee schedule."""
    try:
        day = _day(on)
        return _detail(catalogue.service(code, day), day, errors._english(request))
    except RegistryError as exc:
        return _refusal(request, exc)


@router.get("/{code}/prefill", response_model=Prefill, response_model_exclude_none=True,
            responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}},
            summary="What the state already holds for this service's form (citizen)")
async def prefill_service(request: Request, response: Response, credentials: CitizenCredentials,
                          code: Annotated[str, Path(min_length=1, max_length=60)]):
    """The logged-in citizen's values for the form's prefill fields of the version in force today,
    and the fields the form must still ask. The citizen's own data: not written to the access log.
    One read-only unit (on the event loop on SQLite, ``in_unit``): the token, then the prefill."""
    response.headers["Cache-Control"] = "no-store"

    def work(conn):
        caller = citizen_of(request, conn, credentials)
        try:
            return prefill.prefill_for(conn, code, caller.person_id, caller.account_id)
        except RegistryError as exc:
            return _refusal(request, exc)

    return await in_unit(request, work, read=True, inline=True)


def _day(on: str | None) -> dt.date:
    if on is None:
        return _today()
    try:
        return dt.date.fromisoformat(on)
    except ValueError:
        raise InvalidInput(f"{on!r} is not a date (YYYY-MM-DD).", field="on") from None


def _brief(v: ServiceVersion, day: dt.date, english: bool) -> dict[str, Any]:
    return {"code": v.code, "version": v.version_id, "name": v.name.in_(english), "sector": v.sector,
            "agency": v.agency.as_dict(english), "level": v.online_level, "processing_days": v.processing_days,
            "fee": catalogue.fee_summary(v, day)}


def _detail(v: ServiceVersion, day: dt.date, english: bool) -> dict[str, Any]:
    return {**_brief(v, day, english), "code_source": v.code_source, "former_codes": list(v.former_codes),
            "effective_from": v.effective_from.isoformat(),
            "effective_to": v.effective_to.isoformat() if v.effective_to else None,
            "legal_basis": list(v.legal_basis),
            "fee_schedule": {"currency": v.fee.currency, "rates": [r.as_dict() for r in v.fee.rates],
                             "exemptions": [e.as_dict(english) for e in v.fee.exemptions]},
            "form": v.form, "prefill": [p.as_dict() for p in v.prefill],
            "attachments": [a.as_dict(english) for a in v.attachments],
            "group": v.group.as_dict(english) if v.group else None}


def _today() -> dt.date:
    from dinhdanh.store.base import vietnam_date

    return vietnam_date()


def _refusal(request: Request, exc: RegistryError) -> JSONResponse:
    status = 404 if isinstance(exc, NotFound) else 422
    message = exc.message if errors._english(request) else (
        VI.get((exc.code, exc.field)) or VI.get(exc.code) or errors.message_for(request, exc.code, exc.field, exc.message))
    return errors.error_body(status, exc.code, message, exc.field)
