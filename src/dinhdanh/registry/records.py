"""Reading a person's record: as it stands, as it stood on a past date, and its history."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from dinhdanh import places
from dinhdanh.ids import names
from dinhdanh.registry.area import NATIONAL, Area
from dinhdanh.registry.errors import NotFound
from dinhdanh.registry.tables import changes, events, former_pids, households, persons

# Columns that make up the record as the law defines it; the rest are keys and bookkeeping.
INTERNAL = {"person_id", "name_key", "birth_year", "created_at", "updated_at", "version"}
RECORD_FIELDS = tuple(c.name for c in persons.columns if c.name not in INTERNAL)
_DATE_FIELDS = {c.name for c in persons.columns if isinstance(c.type, sa.Date)}


def to_json(value: Any) -> Any:
    """Column value -> the JSON form kept in ``changes`` (dates as ISO text)."""
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value


def find_person(conn: sa.Connection, pid: str, area: Area = NATIONAL):
    """The person's current row, by current or former PID; ``NotFound`` when absent or out of area.

    Out-of-area persons look exactly like absent ones, so an officer learns nothing of them.
    """
    row = conn.execute(_BY_PID, {"pid": pid}).first()
    if row is None:
        row = conn.execute(_BY_FORMER_PID, {"pid": pid}).first()
    if row is None or not area.covers(row):
        raise NotFound("No person with this personal ID number.", field="pid")
    return row


# built once: partners' checks read a person per request (building a statement costs more than running it)
_BY_PID = sa.select(persons).where(persons.c.pid == sa.bindparam("pid"))
_BY_FORMER_PID = sa.select(persons).join(former_pids, former_pids.c.person_id == persons.c.person_id) \
    .where(former_pids.c.pid == sa.bindparam("pid"))


def _person_brief(conn: sa.Connection, person_id: int | None) -> dict | None:
    if person_id is None:
        return None
    r = conn.execute(
        sa.select(persons.c.pid, persons.c.full_name, persons.c.nationality, persons.c.old_id_number)
        .where(persons.c.person_id == person_id)
    ).first()
    return None if r is None else {"pid": r.pid, "full_name": r.full_name, "nationality": r.nationality,
                                   "old_id_number": r.old_id_number}


def place(province_code: str | None, commune_code: str | None, address: str | None) -> dict | None:
    """A residence as the record shows it: codes with their names, and the address."""
    if province_code is None and commune_code is None and address is None:
        return None
    prov = places.PROVINCES.get(province_code or "")
    com = places.COMMUNES.get(commune_code or "")
    return {
        "province_code": province_code, "province_name": prov.name if prov else None,
        "commune_code": commune_code, "commune_name": com.name if com else None,
        "address": address,
    }


def _rollback(record: dict, conn: sa.Connection, person_id: int, after: dt.datetime) -> dict:
    """Undo, newest first, every change recorded after ``after``."""
    rows = conn.execute(
        sa.select(changes.c.field, changes.c.old_value)
        .join(events, events.c.event_id == changes.c.event_id)
        .where(changes.c.person_id == person_id, events.c.recorded_at > after)
        .order_by(changes.c.change_id.desc())
    )
    for field, old in rows:
        record[field] = old
    return record


def read_record(conn: sa.Connection, pid: str, area: Area = NATIONAL, as_of: dt.date | None = None) -> dict:
    """The full record (art. 9 of the 2023 Law), optionally as it stood at the end of ``as_of`` (UTC)."""
    return record_of(conn, find_person(conn, pid, area), as_of)


def record_of(conn: sa.Connection, row, as_of: dt.date | None = None) -> dict:
    """The full record of a person's row (from ``find_person``)."""
    flat = {name: to_json(getattr(row, name)) for name in RECORD_FIELDS}
    for name in ("father_id", "mother_id", "spouse_id", "representative_id", "household_id"):
        flat[name] = getattr(row, name)
    if as_of is not None:
        end = dt.datetime.combine(as_of, dt.time.max, tzinfo=dt.UTC)
        if row.created_at > end:
            raise NotFound(f"The person was not in the register on {as_of.isoformat()}.", field="as_of")
        flat = _rollback(flat, conn, row.person_id, end)

    household = None
    if flat["household_id"] is not None:
        h = conn.execute(sa.select(households).where(households.c.household_id == flat["household_id"])).first()
        if h is not None:
            household = {"number": h.number, "relation_to_head": flat["relation_to_head"],
                         "head": _person_brief(conn, h.head_id)}
    children_q = (
        sa.select(persons.c.pid, persons.c.full_name, persons.c.nationality, persons.c.old_id_number)
        .where(sa.or_(persons.c.father_id == row.person_id, persons.c.mother_id == row.person_id))
        .order_by(persons.c.date_of_birth)
    )
    if as_of is not None:
        children_q = children_q.where(persons.c.created_at <= end)
    children = conn.execute(children_q).all()
    former = conn.execute(
        sa.select(former_pids.c.pid, former_pids.c.retired_at, former_pids.c.retired_reason)
        .where(former_pids.c.person_id == row.person_id)
        .order_by(former_pids.c.retired_at)
    ).all()
    temp = place(flat["temp_province_code"], flat["temp_commune_code"], flat["temp_address"])
    if temp is not None:
        temp["until"] = flat["temp_until"]
    absence = None
    if flat["absent_from"] is not None:
        absence = {"from": flat["absent_from"], "until": flat["absent_until"], "destination": flat["absent_to"]}
    reg_code = flat["birth_registration_code"]
    reg_name = places.OLD_PROVINCES[reg_code].name if reg_code in places.OLD_PROVINCES else None
    permanent = place(flat["province_code"], flat["commune_code"], flat["address"])
    if permanent is not None:
        permanent["dossier_number"] = flat["residence_dossier"]
    parts = names.split(flat["full_name"])  # derived, so they follow the name as it stood
    return {
        "pid": flat["pid"],
        "full_name": flat["full_name"],
        "surname": parts.surname, "middle_name": parts.middle, "given_name": parts.given,
        "other_names": flat["other_names"],
        "date_of_birth": flat["date_of_birth"],
        "sex": flat["sex"],
        "status": flat["status"],
        "date_of_death": flat["date_of_death"],
        "date_missing": flat["date_missing"],
        "place_of_birth": flat["place_of_birth"],
        "birth_registration": {"code": reg_code, "name": reg_name} if reg_code else None,
        "hometown": flat["hometown"],
        "ethnicity": flat["ethnicity"],
        "religion": flat["religion"],
        "nationality": flat["nationality"],
        "blood_type": flat["blood_type"],
        "old_id_number": flat["old_id_number"],
        "marital_status": flat["marital_status"],
        "relatives": {
            "father": _person_brief(conn, flat["father_id"]),
            "mother": _person_brief(conn, flat["mother_id"]),
            "spouse": _person_brief(conn, flat["spouse_id"]),
            "legal_representative": _person_brief(conn, flat["representative_id"]),
            "children": [dict(c._mapping) for c in children],
        },
        "household": household,
        "permanent_residence": permanent,
        "temporary_residence": temp,
        "current_address": flat["current_address"],
        "temporary_absence": absence,
        "phone": flat["phone"],
        "email": flat["email"],
        "former_pids": [{"pid": f.pid, "retired_at": f.retired_at.isoformat(), "reason": f.retired_reason}
                        for f in former if as_of is None or f.retired_at <= end],
        "as_of": as_of.isoformat() if as_of else None,
    }


def history(conn: sa.Connection, pid: str, area: Area = NATIONAL) -> list[dict]:
    """Every event that changed the record, oldest first, with each field's old and new value."""
    return history_of(conn, find_person(conn, pid, area))


def history_of(conn: sa.Connection, row) -> list[dict]:
    evs = conn.execute(
        sa.select(events).where(
            events.c.event_id.in_(sa.select(changes.c.event_id).where(changes.c.person_id == row.person_id))
        ).order_by(events.c.event_id)
    ).all()
    by_event: dict[int, list[dict]] = {e.event_id: [] for e in evs}
    for c in conn.execute(
        sa.select(changes).where(changes.c.person_id == row.person_id).order_by(changes.c.change_id)
    ):
        by_event[c.event_id].append({"field": c.field, "old": c.old_value, "new": c.new_value})
    out = []
    if not evs or evs[0].kind != "birth":
        # Records loaded in bulk start without an event per person: their first state is the load.
        out.append({"event_id": None, "kind": "imported", "recorded_at": row.created_at.isoformat(),
                    "effective_date": None, "actor": "import", "reason": None, "legal_basis": None,
                    "changes": []})
    for e in evs:
        out.append({
            "event_id": e.event_id, "kind": e.kind, "recorded_at": e.recorded_at.isoformat(),
            "effective_date": to_json(e.effective_date), "actor": e.actor, "reason": e.reason,
            "legal_basis": e.legal_basis, "changes": by_event[e.event_id],
        })
    return out
