"""Data quality, "đúng, đủ, sạch, sống": per province, what is incomplete, duplicated or inconsistent.

Each check is one SQL query over the whole register (or one province), grouped by province, with a
few example PIDs, so an officer can go and fix the records.
"""

from __future__ import annotations

import sqlalchemy as sa

from dinhdanh import places
from dinhdanh.registry.area import NATIONAL, Area
from dinhdanh.registry.tables import persons

EXAMPLES = 5

# "đủ": what every living citizen's record should hold (art. 9 of the 2023 Law)
REQUIRED = ("place_of_birth", "hometown", "ethnicity", "religion", "nationality", "commune_code", "address",
            "household_id")

p = persons.alias("p")
f = persons.alias("f")
m = persons.alias("m")
s = persons.alias("s")

_g = sa.cast(sa.func.substr(p.c.pid, 4, 1), sa.Integer)
_yy = sa.cast(sa.func.substr(p.c.pid, 5, 2), sa.Integer)
_pid_year = (19 + sa.case((_g >= 8, 4), (_g >= 6, 3), (_g >= 4, 2), (_g >= 2, 1), else_=0)) * 100 + _yy
_pid_female = sa.case((_g.in_((1, 3, 5, 7, 9)), "female"), else_="male")


def _checks() -> dict[str, tuple[str, sa.Select]]:
    """name -> (kind, select of (province_code, pid)) for the rows that fail the check."""
    def rows(*where, froms=p):
        return sa.select(p.c.province_code, p.c.pid).select_from(froms).where(*where)

    missing = sa.or_(*(p.c[col].is_(None) for col in REQUIRED), p.c.address == "")
    dup_keys = (
        sa.select(persons.c.name_key, persons.c.date_of_birth, persons.c.birth_registration_code)
        .group_by(persons.c.name_key, persons.c.date_of_birth, persons.c.birth_registration_code)
        .having(sa.func.count() > 1)
        .subquery()
    )
    return {
        "incomplete": ("incomplete", rows(p.c.status == "alive", missing)),
        "duplicate_candidates": ("duplicates", rows(froms=p.join(dup_keys, sa.and_(
            p.c.name_key == dup_keys.c.name_key, p.c.date_of_birth == dup_keys.c.date_of_birth,
            sa.func.coalesce(p.c.birth_registration_code, "") == sa.func.coalesce(dup_keys.c.birth_registration_code, ""),
        )))),
        "pid_birth_year": ("inconsistent", rows(_pid_year != p.c.birth_year)),
        "pid_sex": ("inconsistent", rows(_pid_female != p.c.sex)),
        "pid_place": ("inconsistent", rows(p.c.birth_registration_code.is_not(None),
                                            sa.func.substr(p.c.pid, 1, 3) != p.c.birth_registration_code)),
        "child_not_younger_than_father": ("inconsistent", rows(
            f.c.date_of_birth >= p.c.date_of_birth, froms=p.join(f, f.c.person_id == p.c.father_id))),
        "child_not_younger_than_mother": ("inconsistent", rows(
            m.c.date_of_birth >= p.c.date_of_birth, froms=p.join(m, m.c.person_id == p.c.mother_id))),
        "dead_but_resident": ("inconsistent", rows(p.c.status == "dead", p.c.household_id.is_not(None))),
        "dead_without_date": ("inconsistent", rows(p.c.status == "dead", p.c.date_of_death.is_(None))),
        "death_before_birth": ("inconsistent", rows(p.c.date_of_death < p.c.date_of_birth)),
        "spouse_not_reciprocal": ("inconsistent", rows(
            p.c.status == "alive", s.c.status == "alive",
            sa.or_(s.c.spouse_id.is_(None), s.c.spouse_id != p.c.person_id),
            froms=p.join(s, s.c.person_id == p.c.spouse_id))),
        "married_without_spouse": ("inconsistent", rows(p.c.marital_status == "married", p.c.spouse_id.is_(None),
                                                        p.c.status == "alive")),
    }


def quality_report(conn: sa.Connection, area: Area = NATIONAL, province: str | None = None) -> dict:
    """Counts and examples per province and per check; ``province`` narrows to one province."""
    per_province: dict[str, dict] = {}
    totals: dict[str, int] = {}
    population = sa.select(persons.c.province_code, sa.func.count()).group_by(persons.c.province_code)
    population = population.where(area.clause())
    if province is not None:
        population = population.where(persons.c.province_code == province)
    for code, n in conn.execute(population):
        per_province[code or "unknown"] = {"province_code": code, "population": n, "checks": {}}
    for name, (kind, stmt) in _checks().items():
        stmt = stmt.where(area.clause(p))
        if province is not None:
            stmt = stmt.where(p.c.province_code == province)
        sub = stmt.subquery()
        counts = conn.execute(sa.select(sub.c.province_code, sa.func.count()).group_by(sub.c.province_code)).all()
        for code, n in counts:
            examples = conn.execute(
                sa.select(sub.c.pid).where(sub.c.province_code.is_(None) if code is None else sub.c.province_code == code)
                .order_by(sub.c.pid).limit(EXAMPLES)
            ).scalars().all()
            entry = per_province.setdefault(code or "unknown", {"province_code": code, "population": 0, "checks": {}})
            entry["checks"][name] = {"kind": kind, "count": n, "examples": examples}
            totals[name] = totals.get(name, 0) + n
    for code, entry in per_province.items():
        prov = places.PROVINCES.get(code)
        entry["province_name"] = prov.name if prov else None
    return {"totals": totals, "provinces": [per_province[k] for k in sorted(per_province)]}

