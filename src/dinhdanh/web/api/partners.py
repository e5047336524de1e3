"""The partner registry for partner administrators (permission ``partners.admin``): partners, their
policy and its history, and suspension. Partners are approved by the Ministry for the whole
country: national officers only (``dinhdanh partner`` keeps the operator's full set of commands)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from dinhdanh.exchange import partners
from dinhdanh.registry.errors import Forbidden
from dinhdanh.web.api.schemas import ErrorBody
from dinhdanh.web.deps import Allowed, Conn

router = APIRouter(prefix="/api/v1/partners", tags=["partners"],
                   responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}, 404: {"model": ErrorBody},
                              422: {"model": ErrorBody}})
PartnerAdmin = Allowed("partners.admin")
ClientId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._~-]+$")]


def _national(officer) -> None:
    if not officer.area.national:
        raise Forbidden("Partners are administered by national officers.", field="area")


@router.get("", summary="Every partner and its policy")
def list_partners(conn: Conn, officer: PartnerAdmin) -> list[dict]:
    _national(officer)
    return partners.list_partners(conn)


@router.get("/{client_id}", summary="A partner's policy, state and history")
def show_partner(client_id: ClientId, conn: Conn, officer: PartnerAdmin) -> dict:
    _national(officer)
    return partners.show_partner(conn, client_id)


@router.post("/{client_id}/suspend", summary="Suspend a partner: every exchange operation stops at once")
def suspend_partner(client_id: ClientId, conn: Conn, officer: PartnerAdmin) -> dict:
    _national(officer)
    return partners.suspend_partner(conn, client_id, actor=officer.label)
