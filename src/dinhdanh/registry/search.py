"""Finding people: by PID (current or former), or by name typed with or without diacritics,
narrowed by date or year of birth, province and commune, and paged.

A name query is folded like the stored key (``names.fold``) and matched as a prefix of the whole
name, so "nguyen van" finds every Nguyễn Văn ..., and "NGUYỄN  văn AN" finds Nguyễn Văn An. The
index (name_key, birth_year) answers it directly; PostgreSQL compares the key byte-wise (collation
"C") so the prefix range uses the index there too.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa

from dinhdanh.ids import names
from dinhdanh.registry.area import NATIONAL, Area
from dinhdanh.registry.errors import InvalidInput
from dinhdanh.registry.tables import former_pids, persons

MAX_PAGE_SIZE = 100

_COLUMNS = (persons.c.person_id, persons.c.pid, persons.c.full_name, persons.c.date_of_birth, persons.c.sex,
            persons.c.status, persons.c.province_code, persons.c.commune_code)


@dataclass(frozen=True, slots=True)
class SearchQuery:
    pid: str | None = None  # current or former number
    name: str | None = None
    birth_year: int | None = None
    date_of_birth: dt.date | None = None
    province: str | None = None
    commune: str | None = None
    page: int = 1
    page_size: int = 20


@dataclass(frozen=True, slots=True)
class Page:
    items: list[dict]
    page: int
    page_size: int
    next_page: int | None
    person_ids: list[int]  # for the access log; not shown


def search(conn: sa.Connection, q: SearchQuery, area: Area = NATIONAL) -> Page:
    if q.page < 1:
        raise InvalidInput("page starts at 1.", field="page")
    if not 1 <= q.page_size <= MAX_PAGE_SIZE:
        raise InvalidInput(f"page_size must be between 1 and {MAX_PAGE_SIZE}.", field="page_size")
    stmt = sa.select(*_COLUMNS).where(area.clause())
    if q.pid is not None:
        former = sa.select(former_pids.c.person_id).where(former_pids.c.pid == q.pid)
        stmt = stmt.where(sa.or_(persons.c.pid == q.pid, persons.c.person_id.in_(former)))
    if q.name is not None:
        key = names.fold(q.name)
        if not key:
            raise InvalidInput("The name has no letters to search for.", field="name")
        # prefix range on the folded key: every key starting with it sorts between the two bounds
        stmt = stmt.where(persons.c.name_key >= key, persons.c.name_key < key + "\x7f")
    if q.birth_year is not None:
        stmt = stmt.where(persons.c.birth_year == q.birth_year)
    if q.date_of_birth is not None:
        stmt = stmt.where(persons.c.date_of_birth == q.date_of_birth,
                          persons.c.birth_year == q.date_of_birth.year)
    if q.province is not None:
        stmt = stmt.where(persons.c.province_code == q.province)
    if q.commune is not None:
        stmt = stmt.where(persons.c.commune_code == q.commune)
    if q.pid is None and q.name is None and q.date_of_birth is None and q.commune is None:
        raise InvalidInput("Search needs a PID, a name, a date of birth or a commune.", field="name")
    stmt = (stmt.order_by(persons.c.name_key, persons.c.birth_year, persons.c.person_id)
            .limit(q.page_size + 1).offset((q.page - 1) * q.page_size))
    rows = conn.execute(stmt).all()
    more = len(rows) > q.page_size
    rows = rows[: q.page_size]
    items = [{"pid": r.pid, "full_name": r.full_name, "date_of_birth": r.date_of_birth.isoformat(),
              "sex": r.sex, "status": r.status, "province_code": r.province_code,
              "commune_code": r.commune_code} for r in rows]
    return Page(items, q.page, q.page_size, q.page + 1 if more else None, [r.person_id for r in rows])
