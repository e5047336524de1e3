"""Officers read the register: one record, its history, and search. Every read is logged, with
what was read (``fields``: the whole record, its history, or the columns of the search hits).

With a read replica (``store.replica``) the data is read there and the access-log entry written on
the primary, in the request's unit committed before the answer: a record or its history only from a
replica that has every commit made before the request (``CurrentRead``), a search from one at most
``DINHDANH_REPLICA_MAX_LAG`` behind (``RecentRead``: a list to pick from; the record opened next is
current)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Path, Query

from dinhdanh.audit.service import record_access
from dinhdanh.registry import records
from dinhdanh.registry.search import MAX_PAGE_SIZE, SearchQuery, search
from dinhdanh.web.api.schemas import CitizenRecord, ErrorBody, HistoryEntry, SearchPage
from dinhdanh.web.deps import DEFAULT, Allowed, Conn, CurrentRead, Purpose, RecentRead
from dinhdanh.web.metrics import READS

router = APIRouter(prefix="/api/v1/citizens", tags=["citizens"],
                   responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}, 422: {"model": ErrorBody}})
Reader = Allowed("register.read")
Searcher = Allowed("register.search")

SEARCH_FIELDS = ["pid", "full_name", "date_of_birth", "sex", "status", "province_code", "commune_code"]
PidPath = Annotated[str, Path(pattern=r"^[0-9]{12}$", description="Personal ID number, 12 digits")]
ProvinceCode = Annotated[str | None, Query(pattern=r"^[0-9]{2}$", description="2025 province code")]
CommuneCode = Annotated[str | None, Query(pattern=r"^[0-9]{5}$", description="2025 commune code")]


@router.get("/{pid}", response_model=CitizenRecord, responses={404: {"model": ErrorBody}})
def read_citizen(pid: PidPath, conn: Conn, data: CurrentRead, officer: Reader, purpose: Purpose = DEFAULT,
                 as_of: Annotated[dt.date | None, Query(description="Read the record as it stood at the end of "
                                                        "this day (UTC), YYYY-MM-DD")] = None):
    person = records.find_person(data, pid, officer.area)
    record = records.record_of(data, person, as_of)
    record_access(conn, officer.label, [person.person_id], "read", purpose, fields=["record"], outcome="ok")
    READS.labels("read").inc()
    return record


@router.get("/{pid}/history", response_model=list[HistoryEntry], responses={404: {"model": ErrorBody}})
def read_history(pid: PidPath, conn: Conn, data: CurrentRead, officer: Reader, purpose: Purpose = DEFAULT):
    person = records.find_person(data, pid, officer.area)
    entries = records.history_of(data, person)
    record_access(conn, officer.label, [person.person_id], "history", purpose, fields=["history"], outcome="ok")
    READS.labels("history").inc()
    return entries


@router.get("", response_model=SearchPage)
def search_citizens(
    conn: Conn, data: RecentRead, officer: Searcher, purpose: Purpose = DEFAULT,
    pid: Annotated[str | None, Query(pattern=r"^[0-9]{12}$", description="Personal ID number (current or former)")] = None,
    name: Annotated[str | None, Query(min_length=1, max_length=100, pattern=r"^[^\x00]*$",  # PostgreSQL refuses NUL
                                      description="Name, with or without diacritics; matches from the start")] = None,
    birth_year: Annotated[int | None, Query(ge=1900, le=2399)] = None,
    date_of_birth: Annotated[dt.date | None, Query(description="YYYY-MM-DD")] = None,
    province: ProvinceCode = None,
    commune: CommuneCode = None,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 20,
):
    result = search(data, SearchQuery(pid=pid, name=name, birth_year=birth_year, date_of_birth=date_of_birth,
                                      province=province, commune=commune, page=page, page_size=page_size),
                    officer.area)
    record_access(conn, officer.label, result.person_ids, "search", purpose, fields=SEARCH_FIELDS, outcome="ok")
    READS.labels("search").inc(len(result.person_ids))
    return {"items": result.items, "page": result.page, "page_size": result.page_size,
            "next_page": result.next_page}
