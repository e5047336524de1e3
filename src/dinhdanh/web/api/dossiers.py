"""Dossiers over HTTP (issue 12): citizens file, follow, supplement and withdraw their dossiers with
an access token of our provider carrying ``dinhdanh.dossiers``; officers of the area list them and
act on them (``dossiers.read``, ``dossiers.decide``). Thin: parse, call one ``dossiers.service``
function, answer. Every officer view (the worklist page, one dossier) is written to the access log.

``GET /api/v1/dossiers`` and ``GET /api/v1/dossiers/{id}`` answer both: a citizen's token gives
their own dossiers, an officer's credential (a ``ddo_`` token, or a provider token with
``dinhdanh.officer``) the worklist of their area.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from dinhdanh.dossiers import service, workflow
from dinhdanh.officers.credentials import TOKEN_PREFIX
from dinhdanh.officers.service import Officer
from dinhdanh.oidc.claims import DOSSIERS_SCOPE, OFFICER_SCOPE
from dinhdanh.oidc.server import bearer_token
from dinhdanh.web import errors
from dinhdanh.web.api.cards import vault_of
from dinhdanh.web.api.schemas import ErrorBody
from dinhdanh.web.deps import Allowed, Conn, current_officer, in_unit
from dinhdanh.web.errors import Refusal

SCOPE = DOSSIERS_SCOPE
RETURN_PATH = "/api/v1/payments/vnpay/return"  # web.api.payments' return page
bearer = HTTPBearer(auto_error=False, description="A citizen's access token with the scope `dinhdanh.dossiers`, or "
                                                   "an officer's credential (worklist and actions)")
router = APIRouter(prefix="/api/v1/dossiers", tags=["dossiers"],
                   responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}, 404: {"model": ErrorBody},
                              409: {"model": ErrorBody}, 422: {"model": ErrorBody}})
errors.add_messages(workflow.VI)
Id = Annotated[int, Path(ge=1, le=2**62, description="The dossier's id")]


@dataclass(frozen=True)
class Caller:
    person_id: int | None = None  # a citizen
    account_id: int | None = None
    officer: Officer | None = None


def _unauthenticated(message: str, error: str = "invalid_token") -> HTTPException:
    return HTTPException(status_code=401, detail=message,
                         headers={"WWW-Authenticate": f'Bearer error="{error}", scope="{SCOPE}"'})


def _citizen(request: Request, conn, credentials: HTTPAuthorizationCredentials | None) -> Caller | None:
    """The citizen behind a provider token with ``dinhdanh.dossiers``; None for an officer's credential."""
    if credentials is None:
        raise _unauthenticated(f"An access token with the scope {SCOPE} is required (Authorization: Bearer ...).",
                               "invalid_request")
    value = credentials.credentials
    if value.startswith(TOKEN_PREFIX):
        return None
    from dinhdanh.web.oidc import issuer_of

    token = bearer_token(conn, value, issuer_of(request))
    if token is None:
        raise _unauthenticated("The access token is not valid (expired, revoked, or not issued here).")
    scopes = token.scope.split()
    if SCOPE not in scopes:
        if OFFICER_SCOPE in scopes:
            return None
        raise errors.insufficient_scope(SCOPE)
    account_id = token.row.account_id
    person_id = token.person_id  # read with the token; a foreigner's or organisation's account has none
    if person_id is None:
        person_id = service.applicant_of_account(conn, account_id)  # the 403 naming the account
    return Caller(person_id=person_id, account_id=account_id)


def _citizens_own() -> Refusal:
    """403 for an officer's credential on a citizen's own route."""
    return Refusal(403, "forbidden", f"This is the citizen's own action: a token with {SCOPE} is required, not "
                                     "an officer's.", vi=errors.CITIZEN_ONLY_VI)


def citizen_of(request: Request, conn, credentials: HTTPAuthorizationCredentials | None) -> Caller:
    """The citizen behind the credential, read on ``conn``; 401 (no or no valid token), 403 (an
    officer's credential, a token without ``dinhdanh.dossiers``, an account that is not a citizen's)."""
    found = _citizen(request, conn, credentials)
    if found is None:
        raise _citizens_own()
    return found


def citizen(request: Request, conn: Conn, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> Caller:
    return citizen_of(request, conn, credentials)


async def citizen_credentials(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)
                              ) -> HTTPAuthorizationCredentials:
    """The credential of a citizen's route that checks it inside its own unit (``deps.in_unit``):
    what can be refused without the database is refused here, before the body is read, as the
    ``citizen`` dependency refuses it (401 without a token, 403 for an officer's ``ddo_`` token)."""
    if credentials is None:
        raise _unauthenticated(f"An access token with the scope {SCOPE} is required (Authorization: Bearer ...).",
                               "invalid_request")
    if credentials.credentials.startswith(TOKEN_PREFIX):
        raise _citizens_own()
    return credentials


def citizen_or_reader(request: Request, conn: Conn,
                      credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> Caller:
    """A citizen (their own dossiers), or an officer holding ``dossiers.read`` (their area's)."""
    found = _citizen(request, conn, credentials)
    if found is not None:
        return found
    officer = current_officer(request, conn, credentials)
    officer.require("dossiers.read", english=errors._english(request))
    return Caller(officer=officer)


citizen_or_reader.permission = "dossiers.read"  # type: ignore[attr-defined]  (the route check reads it)
Citizen = Annotated[Caller, Depends(citizen)]
CitizenCredentials = Annotated[HTTPAuthorizationCredentials, Depends(citizen_credentials)]
Reader = Annotated[Caller, Depends(citizen_or_reader)]
Decider = Allowed("dossiers.decide")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class FileBody(Strict):
    service: Annotated[str, Field(min_length=1, max_length=60, description="The service's code in the catalogue")]
    data: Annotated[dict[str, Any], Field(description="The filled form (GET /api/v1/services/{code})")]


class SupplementBody(Strict):
    data: Annotated[dict[str, Any], Field(description="The form's fields supplied (they replace those filed)")]


class WithdrawBody(Strict):
    reason: Annotated[str | None, Field(max_length=500)] = None


class ActionBody(Strict):
    action: Literal["receive", "request_supplement", "approve", "refuse", "extend"]
    reason: Annotated[str | None, Field(max_length=500, description="Required to refuse")] = None
    items: Annotated[list[Annotated[str, Field(min_length=1, max_length=500)]] | None,
                     Field(max_length=30, description="What must be supplied (request_supplement)")] = None
    new_due_date: Annotated[dt.date | None, Field(strict=False, description="YYYY-MM-DD (extend)")] = None


class Filed(BaseModel):
    dossier_id: int
    code: str
    status: str
    due_date: str
    fee_amount: int
    children: Annotated[list[dict[str, Any]] | None, Field(
        description="A linked group's sub-dossiers, one per procedure and agency (code, agency, status, "
                    "due date, fee, the sub-dossier it waits for)")] = None


def _base_url(request: Request) -> str:
    from dinhdanh.web.oidc import issuer_of

    return issuer_of(request)


@router.post("", status_code=201, summary="File a dossier (citizen); a linked group's service files its "
                                           "sub-dossiers too", response_model_exclude_none=True)
async def file_dossier(body: FileBody, request: Request, credentials: CitizenCredentials) -> Filed:
    def work(conn) -> Filed:  # one unit (on the loop on SQLite: in_unit): the token, the filing, commit
        caller = citizen_of(request, conn, credentials)
        return Filed(**service.file(conn, caller.person_id, body.service, body.data, account_id=caller.account_id))

    return await in_unit(request, work, inline=True)


@router.get("", summary="My dossiers (citizen), or the worklist of the officer's area")
def list_dossiers(caller: Reader, conn: Conn,
                  status: Annotated[Literal[workflow.STATES] | None, Query()] = None,  # type: ignore[valid-type]
                  service_code: Annotated[str | None, Query(alias="service", min_length=1, max_length=60)] = None,
                  overdue: bool = False, limit: Annotated[int, Query(ge=1, le=service.MAX_PAGE)] = 50,
                  before: Annotated[int | None, Query(ge=1, le=2**62)] = None) -> dict:
    if caller.officer is None:
        return service.citizen_dossiers(conn, caller.person_id, limit=limit, before=before)
    page, person_ids = service.worklist(conn, caller.officer.area, agency=caller.officer.agency_code,
                                        status=status, service=service_code,
                                        overdue=overdue, limit=limit, before=before)
    service.audit_officer_read(conn, caller.officer.label, person_ids, "dossier_list")
    return page


@router.get("/{dossier_id}", summary="One dossier: status history, due date, slips, result")
def get_dossier(dossier_id: Id, caller: Reader, conn: Conn) -> dict:
    if caller.officer is None:
        return service.view(conn, dossier_id, person_id=caller.person_id)
    out = service.view(conn, dossier_id, area=caller.officer.area, agency=caller.officer.agency_code)
    service.audit_officer_read(conn, caller.officer.label, [out["person_id"]], "dossier_read")
    return out


@router.post("/{dossier_id}/supplement", summary="Supply what the officer asked for (citizen)")
def supplement_dossier(dossier_id: Id, body: SupplementBody, caller: Citizen, conn: Conn) -> dict:
    return service.supplement(conn, dossier_id, caller.person_id, body.data)


@router.post("/{dossier_id}/withdraw", summary="Withdraw the dossier before a decision (citizen)")
def withdraw_dossier(dossier_id: Id, caller: Citizen, conn: Conn, body: WithdrawBody | None = None) -> dict:
    return service.withdraw(conn, dossier_id, caller.person_id, reason=body.reason if body else None)


@router.post("/{dossier_id}/payment", status_code=201, summary="Start paying the dossier's fee (citizen): the "
                                                                  "gateway's URL",
             responses={503: {"model": ErrorBody, "description": "No payment gateway is configured"}})
def pay_dossier_fee(dossier_id: Id, request: Request, caller: Citizen, conn: Conn):
    from dinhdanh.web.api.payments import NotConfigured, merchant_of

    try:
        merchant = merchant_of(request)
    except NotConfigured:
        return errors.error_body(503, "payments_not_configured", errors.message_for(
            request, "payments_not_configured", None, "No payment gateway is configured."))
    return service.start_fee_payment(conn, merchant, dossier_id, caller.person_id,
                                     return_url=_base_url(request) + RETURN_PATH,
                                     ip_addr=_client_ip(request))


def _client_ip(request: Request) -> str:
    """The payer's address as VNPAY asks for it (vnp_IpAddr): the connection's, when it is an IP."""
    host = request.client.host if request.client else ""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return "127.0.0.1"


@router.post("/{dossier_id}/actions", summary="An officer's action: receive, request_supplement, approve, refuse, "
                                              "extend")
def act_on_dossier(dossier_id: Id, body: ActionBody, request: Request, conn: Conn, officer: Decider) -> dict:
    out = service.act(conn, vault_of(request), dossier_id, body.action, actor=officer.label, area=officer.area,
                      agency=officer.agency_code,
                      base_url=_base_url(request), reason=body.reason, items=body.items,
                      new_due_date=body.new_due_date)
    service.audit_officer_read(conn, officer.label, [out["person_id"]], "dossier_" + body.action)
    return out


def install(app: FastAPI) -> None:
    """The routes, and the answer to an invalid transition: 409 naming the dossier's state."""
    app.include_router(router)

    @app.exception_handler(workflow.InvalidTransition)
    async def invalid_transition(request: Request, exc: workflow.InvalidTransition):
        english = errors._english(request)
        message = exc.message if english else (
            f"{workflow.VI['invalid_transition']} Trạng thái hiện tại: {workflow.label_of(exc.state)} ({exc.state}).")
        return errors.error_body(409, exc.code, message, exc.field, state=exc.state)
