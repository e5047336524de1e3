"""Officer administration (permission ``officers.admin``): an officer's roles, granted and withdrawn
one at a time, each change recorded (who, when). An administrator manages officers within their
own area, never their own roles (403 ``separation_of_duties``); officers elsewhere are unknown (404)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict

from dinhdanh.officers import service
from dinhdanh.officers.permissions import ROLES
from dinhdanh.web.api.schemas import ErrorBody
from dinhdanh.web.deps import Allowed, Conn

router = APIRouter(prefix="/api/v1/officers", tags=["officers"],
                   responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}, 404: {"model": ErrorBody},
                              409: {"model": ErrorBody}, 422: {"model": ErrorBody}})
Administrator = Allowed("officers.admin")
OfficerId = Annotated[int, Path(ge=1, le=2**62)]
RoleName = Literal[tuple(ROLES)]  # type: ignore[valid-type]


class GrantBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    role: RoleName


@router.get("/roles", summary="Every role, its labels and permissions")
def roles(officer: Administrator) -> dict:
    return {name: {"vi": role.label.vi, "en": role.label.en, "permissions": sorted(role.permissions)}
            for name, role in ROLES.items()}


@router.get("/{officer_id}", summary="An officer: area, roles, permissions and the history of their roles")
def show(officer_id: OfficerId, conn: Conn, officer: Administrator) -> dict:
    return service.show_officer(conn, officer_id, by=officer)


@router.post("/{officer_id}/roles", summary="Grant a role (409 role_held if already held)")
def grant(officer_id: OfficerId, body: GrantBody, conn: Conn, officer: Administrator) -> dict:
    service.grant_role(conn, officer_id, body.role, granted_by=officer.label, by=officer)
    return service.show_officer(conn, officer_id, by=officer)


@router.delete("/{officer_id}/roles/{role}", summary="Withdraw a role (409 role_not_held if not held)")
def withdraw(officer_id: OfficerId, role: Annotated[RoleName, Path()], conn: Conn, officer: Administrator) -> dict:
    service.withdraw_role(conn, officer_id, role, withdrawn_by=officer.label, by=officer)
    return service.show_officer(conn, officer_id, by=officer)
