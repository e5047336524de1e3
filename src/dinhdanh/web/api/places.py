"""Administrative units (public reference data)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel

from dinhdanh import places
from dinhdanh.web.api.schemas import ErrorBody

router = APIRouter(prefix="/api/v1/places", tags=["places"])


class ProvinceOut(BaseModel):
    code: str
    name: str
    short_name: str
    kind: str
    predecessors: list[str]


class CommuneOut(BaseModel):
    code: str
    name: str
    kind: str
    province_code: str


@router.get("/provinces", response_model=list[ProvinceOut])
def provinces():
    return [ProvinceOut(code=p.code, name=p.name, short_name=p.short_name, kind=p.kind,
                        predecessors=list(p.predecessors)) for p in places.PROVINCES.values()]


@router.get("/provinces/{code}/communes", response_model=list[CommuneOut], responses={404: {"model": ErrorBody}})
def communes(code: Annotated[str, Path(pattern=r"^[0-9]{2}$")]):
    from dinhdanh.registry.errors import NotFound

    if code not in places.PROVINCES:
        raise NotFound(f"No province has code {code}.", field="code")
    return [CommuneOut(code=c.code, name=c.name, kind=c.kind, province_code=c.province_code)
            for c in places.communes_of(code)]
