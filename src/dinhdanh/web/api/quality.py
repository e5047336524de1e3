"""Data-quality report ("đúng, đủ, sạch, sống") for the officer's area."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from dinhdanh.registry.quality import quality_report
from dinhdanh.web.api.schemas import ErrorBody
from dinhdanh.web.deps import Conn, CurrentOfficer

router = APIRouter(prefix="/api/v1/quality", tags=["data quality"], responses={401: {"model": ErrorBody}})


@router.get("", response_model=dict[str, Any])
def report(conn: Conn, officer: CurrentOfficer,
           province: Annotated[str | None, Query(pattern=r"^[0-9]{2}$")] = None):
    return quality_report(conn, officer.area, province)
