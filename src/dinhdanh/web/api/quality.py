"""Data-quality report ("đúng, đủ, sạch, sống") for the officer's area."""

from __future__ import annotations

from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Query

from dinhdanh.audit.service import record_access
from dinhdanh.registry.quality import quality_report
from dinhdanh.registry.tables import persons
from dinhdanh.web.api.schemas import ErrorBody
from dinhdanh.web.deps import Allowed, Conn

router = APIRouter(prefix="/api/v1/quality", tags=["data quality"],
                   responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}})
Steward = Allowed("quality.read")


@router.get("", response_model=dict[str, Any])
def report(conn: Conn, officer: Steward,
           province: Annotated[str | None, Query(pattern=r"^[0-9]{2}$")] = None):
    result = quality_report(conn, officer.area, province)
    # the examples are PIDs of real people: the officer read them, for the data's quality
    shown = sorted({pid for p in result["provinces"] for check in p["checks"].values() for pid in check["examples"]})
    if shown:
        ids = conn.execute(sa.select(persons.c.person_id).where(persons.c.pid.in_(shown))
                           .order_by(persons.c.person_id)).scalars().all()
        record_access(conn, officer.label, ids, "quality", "data_quality", fields=["pid"], outcome="ok")
    return result
