"""Registering motorbikes to their owners, with plates identified by the owner (Circular 24/2023/TT-BCA,
kept by Circular 79/2024/TT-BCA from 1 January 2025).

- ``register_vehicle``: the owner's first held plate (from a vehicle deregistered before) goes on
  the new vehicle; else a new plate is made from the registering province's code and series, its
  order number taken from ``plate_counters`` by one atomic upsert (see ``tables``). A frame or
  engine number already on a registered vehicle is a ``Conflict`` naming the field; a dead person is
  refused. The registration is also an event in the person's history (kind ``vehicle.registered``,
  field ``vehicle``), the way the card area records a card's steps.
- ``deregister``: the vehicle leaves the register; its plate is ``held`` by the owner for their next.
  ``retire_plate``: a held plate taken out of use for good.
- ``dossier_effect``: what approving the online service "Đăng ký, cấp biển số xe mô tô, xe gắn máy
  lần đầu" (``dd.motorbike-registration``) changes: the dossier's vehicle registered to its applicant
  in the dossier's province, by the approving officer; a refusal becomes the dossier area's
  ``RegisterRefused`` naming the form's field (``vehicle.frame_number``).

Simplifications: the series and the plate code new plates take are the caller's (configurable per
commune police); by default the province's first code and series ``AA`` onwards (``plates``). The
certificate number is the plate code and the registration's id (``29-00000042``), not the printed
certificate's own series. Order numbers are never given out twice, even after a plate is retired.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from dinhdanh import places
from dinhdanh.registry.errors import Conflict, Forbidden, InvalidInput, NotFound, RuleViolation
from dinhdanh.registry.events import Actor, document_event
from dinhdanh.registry.records import find_person
from dinhdanh.registry.tables import persons
from dinhdanh.store.base import utcnow, vietnam_date
from dinhdanh.vehicles import plates as fmt
from dinhdanh.vehicles.tables import KINDS, plate_counters, plates, vehicles

__all__ = ["register_vehicle", "deregister", "retire_plate", "vehicles_of", "plates_of", "allocate_number",
           "dossier_effect", "vehicle_view", "LEGAL_BASIS"]

LEGAL_BASIS = "Thông tư 79/2024/TT-BCA"
MOPED_MAX_CC = 50  # xe gắn máy: at most 50 cm³ (Luật Trật tự, an toàn giao thông đường bộ 2024)


# ------------------------------------------------------------------------------ the form's vehicle


def _text(vehicle: Mapping[str, Any], name: str, limit: int, *, required: bool) -> str | None:
    value = vehicle.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise InvalidInput(f"The vehicle's {name.replace('_', ' ')} is required.", field=name)
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"The vehicle's {name.replace('_', ' ')} is text.", field=name)
    value = " ".join(value.split())
    if len(value) > limit:
        raise InvalidInput(f"The vehicle's {name.replace('_', ' ')} has at most {limit} characters.", field=name)
    return value


def _serial(vehicle: Mapping[str, Any], name: str) -> str:
    """A frame or engine number, compacted: capitals, no spaces, dots or hyphens (as stamped)."""
    value = _text(vehicle, name, 40, required=True)
    compact = "".join(c for c in value.upper() if c not in " .-")
    if not compact.isascii() or not compact.isalnum() or len(compact) > 30:
        raise InvalidInput(f"The {name.replace('_', ' ')} is letters and digits (at most 30).", field=name)
    return compact


def _integer(vehicle: Mapping[str, Any], name: str, low: int, high: int) -> int | None:
    value = vehicle.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput(f"The {name.replace('_', ' ')} is a whole number from {low} to {high}.", field=name)
    return value


def _vehicle_fields(vehicle: Mapping[str, Any], today: dt.date) -> dict:
    """The registered fields of the form's ``vehicle``, checked; ``InvalidInput`` names the field."""
    if not isinstance(vehicle, Mapping):
        raise InvalidInput("The vehicle is an object of its fields.", field="vehicle")
    kind = vehicle.get("kind")
    if kind not in KINDS:
        raise InvalidInput(f"The vehicle's kind is one of {', '.join(KINDS)}.", field="kind")
    fields = {
        "kind": kind,
        "brand": _text(vehicle, "brand", 60, required=True),
        "model": _text(vehicle, "model", 60, required=False),
        "colour": _text(vehicle, "colour", 40, required=False),
        "frame_number": _serial(vehicle, "frame_number"),
        "engine_number": _serial(vehicle, "engine_number"),
        "capacity_cc": _integer(vehicle, "capacity_cc", 0, 3000),
        "manufacture_year": _integer(vehicle, "manufacture_year", 1950, today.year + 1),
    }
    if kind == "moped" and (fields["capacity_cc"] or 0) > MOPED_MAX_CC:
        raise RuleViolation(f"A moped (xe gắn máy) has at most {MOPED_MAX_CC} cm³: register it as a motorbike.",
                            code="moped_capacity", field="capacity_cc")
    return fields


# ------------------------------------------------------------------------------ plates


def allocate_number(conn: sa.Connection, plate_code: str, series: str) -> tuple[str, int]:
    """The next free order number of ``plate_code`` from ``series`` on: one upsert that increments
    the counter row and returns it, so concurrent callers never get the same number; a full series
    (999.99 given out) moves on to the next. Returns (series, number)."""
    insert = _insert(conn)
    # the first series from ``series`` on that is not full, else the one after the last full one
    # (a full series is never tried again). Both come from one statement, so from one snapshot: read
    # in two (PostgreSQL's read committed takes one per statement), a series another caller created
    # and committed between them looked full. Other callers may move on meanwhile: the upsert decides
    c = plate_counters.c
    later = sa.and_(c.plate_code == plate_code, c.series >= series, sa.func.length(c.series) == 2)
    open_, last = conn.execute(sa.select(
        sa.func.min(sa.case((c.last_number < fmt.MAX_NUMBER, c.series))), sa.func.max(c.series)).where(later)).one()
    if open_ is not None:
        series = open_
    elif last is not None:
        series = fmt.next_series(last)
    while True:
        statement = insert(plate_counters).values(plate_code=plate_code, series=series, last_number=1)
        statement = statement.on_conflict_do_update(
            index_elements=[plate_counters.c.plate_code, plate_counters.c.series],
            set_={"last_number": plate_counters.c.last_number + 1}).returning(plate_counters.c.last_number)
        number = conn.execute(statement).scalar_one()
        if number <= fmt.MAX_NUMBER:
            return series, number
        series = fmt.next_series(series)  # raises when ZZ is full


def _insert(conn: sa.Connection):
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


def _held_plate(conn: sa.Connection, person_id: int):
    """The owner's first held plate, locked against a concurrent registration (PostgreSQL; SQLite's
    writer lock serialises the units already)."""
    return conn.execute(sa.select(plates).where(plates.c.person_id == person_id, plates.c.status == "held")
                        .order_by(plates.c.plate_id).limit(1).with_for_update()).first()


def _new_plate(conn: sa.Connection, province: str, plate_code: str | None, series: str | None) -> fmt.Plate:
    codes = fmt.plate_codes(province)
    code = plate_code or codes[0]
    if code not in codes:
        raise InvalidInput(f"The plate code {code} is not one of the province's ({', '.join(codes)}).",
                           field="plate_code")
    series = series or fmt.FIRST_SERIES
    if not fmt.is_current_series(series):
        raise InvalidInput(f"A new plate's series is two of the letters {fmt.LETTERS}.", field="series")
    try:
        series, number = allocate_number(conn, code, series)
    except fmt.InvalidSeries:
        raise RuleViolation(f"Every series of the plate code {code} is used up.", code="series_exhausted",
                            field="series") from None
    return fmt.compose(code, series, number)


# ------------------------------------------------------------------------------ history


def _history(conn: sa.Connection, person_id: int, actor: Actor, kind: str, now: dt.datetime,
             old: dict | None, new: dict | None, reason: str | None) -> int:
    """The step as a register event of the person (kind ``vehicle.<step>``, field ``vehicle``)."""
    return document_event(conn, person_id, actor, f"vehicle.{kind}", "vehicle", old, new, reason=reason,
                          legal_basis=LEGAL_BASIS, now=now)


def _brief(vehicle_id: int, plate: str, fields: Mapping[str, Any]) -> dict:
    return {"vehicle_id": vehicle_id, "plate": plate, "kind": fields["kind"], "brand": fields["brand"],
            "frame_number": fields["frame_number"], "engine_number": fields["engine_number"]}


def vehicle_view(row) -> dict:
    return {
        "vehicle_id": row.vehicle_id, "plate": row.plate, "kind": row.kind, "brand": row.brand,
        "model": row.model, "colour": row.colour, "frame_number": row.frame_number,
        "engine_number": row.engine_number, "capacity_cc": row.capacity_cc,
        "manufacture_year": row.manufacture_year, "registered_at": row.registered_at.isoformat(),
        "deregistered_at": row.deregistered_at.isoformat() if row.deregistered_at else None,
        "status": "deregistered" if row.deregistered_at else "registered",
        "dossier_code": row.dossier_code, "certificate_number": row.certificate_number,
    }


# ------------------------------------------------------------------------------ the service


def _check_area(actor: Actor, province: str) -> None:
    area = actor.area
    if area.province is not None and area.province != province:
        raise Forbidden("The officer registers vehicles in their own province only.", field="province")
    if area.commune is not None:
        commune = places.COMMUNES.get(area.commune)
        if commune is None or commune.province_code != province:
            raise Forbidden("The officer registers vehicles in their own commune's province only.", field="province")


_DUPLICATE = {"frame_number": "frame_number_registered", "engine_number": "engine_number_registered"}


def _refuse_duplicates(conn: sa.Connection, fields: Mapping[str, Any]) -> None:
    # both numbers in one statement, so from one snapshot: read in two (PostgreSQL's read committed),
    # a registration committed between them showed as an engine number taken though its frame was too
    taken = conn.execute(sa.select(vehicles.c.plate, vehicles.c.frame_number, vehicles.c.engine_number).where(
        sa.or_(*(vehicles.c[name] == fields[name] for name in _DUPLICATE)),
        vehicles.c.deregistered_at.is_(None))).all()
    for name, code in _DUPLICATE.items():  # the frame first
        same = next((row for row in taken if row._mapping[name] == fields[name]), None)
        if same is not None:
            raise Conflict(f"A registered vehicle ({same.plate}) already has this {name.replace('_', ' ')}.",
                           code=code, field=name)


def register_vehicle(conn: sa.Connection, actor: Actor, pid: str, vehicle: Mapping[str, Any], *, province: str,
                     dossier_code: str | None = None, now: dt.datetime | None = None, plate_code: str | None = None,
                     series: str | None = None) -> dict:
    """Register ``vehicle`` (the form's fields) to the person ``pid`` in ``province`` (2025 code)
    and put a plate on it: the owner's held identified plate if they have one, else a new one of
    ``plate_code`` (default the province's first) from ``series`` on (default ``AA``)."""
    now = now or utcnow()
    if not isinstance(province, str) or province not in places.PROVINCES:
        raise InvalidInput("The registering province is a two-digit 2025 province code.", field="province")
    _check_area(actor, province)
    fields = _vehicle_fields(vehicle, vietnam_date(now))
    person = find_person(conn, pid, actor.area)
    if person.status != "alive":
        raise RuleViolation(f"The person is recorded as {person.status}: no vehicle is registered to them.",
                            code=f"person_{person.status}", field="pid")
    _refuse_duplicates(conn, fields)

    held = _held_plate(conn, person.person_id)
    plate = held.plate if held is not None else str(_new_plate(conn, province, plate_code, series))
    try:
        with conn.begin_nested():  # a concurrent registration of the same frame: the index decides
            vehicle_id = conn.execute(vehicles.insert().values(
                person_id=person.person_id, registered_at=now, plate=plate, dossier_code=dossier_code, **fields,
            ).returning(vehicles.c.vehicle_id)).scalar_one()
    except sa.exc.IntegrityError as exc:
        text = str(exc.orig)
        name = next((n for n in ("frame_number", "engine_number") if n in text), None)
        if name is None:
            raise Conflict("The plate was taken by another registration at the same time; try again.",
                           code="plate_taken", field="plate") from None
        raise Conflict(f"A registered vehicle already has this {name.replace('_', ' ')}.", code=_DUPLICATE[name],
                       field=name) from None
    certificate = f"{plate[:2]}-{vehicle_id:08d}"
    conn.execute(vehicles.update().where(vehicles.c.vehicle_id == vehicle_id).values(certificate_number=certificate))
    if held is not None:
        done = conn.execute(plates.update().where(plates.c.plate_id == held.plate_id, plates.c.status == "held")
                            .values(status="assigned", vehicle_id=vehicle_id, changed_at=now))
        if done.rowcount != 1:
            raise Conflict("The held plate was assigned by another registration at the same time; try again.",
                           code="plate_taken", field="plate")
    else:
        parts = fmt.parse(plate)
        conn.execute(plates.insert().values(
            plate=plate, person_id=person.person_id, province_code=province, plate_code=parts.code,
            series=parts.series, number=parts.number, status="assigned", vehicle_id=vehicle_id, issued_at=now,
            changed_at=now))
    new = _brief(vehicle_id, plate, fields) | {"certificate_number": certificate, "reused_plate": held is not None}
    event_id = _history(conn, person.person_id, actor, "registered", now, None, new,
                        f"Hồ sơ {dossier_code}" if dossier_code else None)
    row = conn.execute(sa.select(vehicles).where(vehicles.c.vehicle_id == vehicle_id)).one()
    return vehicle_view(row) | {"pid": person.pid, "event_id": event_id, "reused_plate": held is not None}


def deregister(conn: sa.Connection, actor: Actor, plate: str, *, now: dt.datetime | None = None,
               reason: str | None = None) -> dict:
    """Take the vehicle carrying ``plate`` off the register; the plate is held by its owner."""
    now = now or utcnow()
    try:
        text = fmt.validate(plate)
    except fmt.PlateError as exc:
        raise InvalidInput(exc.message, field="plate") from None
    row = conn.execute(sa.select(vehicles, plates.c.plate_id).select_from(
        vehicles.join(plates, plates.c.vehicle_id == vehicles.c.vehicle_id))
        .where(plates.c.plate == text, plates.c.status == "assigned")).first()
    owner = None if row is None else conn.execute(sa.select(persons).where(persons.c.person_id == row.person_id)).one()
    if row is None or not actor.area.covers(owner):
        raise NotFound(f"No registered vehicle carries the plate {text}.", field="plate")
    gone = conn.execute(vehicles.update().where(vehicles.c.vehicle_id == row.vehicle_id,
                                                vehicles.c.deregistered_at.is_(None)).values(deregistered_at=now))
    held = conn.execute(plates.update().where(plates.c.plate_id == row.plate_id, plates.c.status == "assigned",
                                              plates.c.vehicle_id == row.vehicle_id)
                        .values(status="held", vehicle_id=None, changed_at=now))
    if gone.rowcount != 1 or held.rowcount != 1:
        raise Conflict("The vehicle was deregistered by another officer at the same time.", code="deregistered",
                       field="plate")
    old = _brief(row.vehicle_id, text, row._mapping)
    _history(conn, row.person_id, actor, "deregistered", now, old, None, reason)
    return vehicle_view(conn.execute(sa.select(vehicles).where(vehicles.c.vehicle_id == row.vehicle_id)).one())


def retire_plate(conn: sa.Connection, actor: Actor, plate: str, *, now: dt.datetime | None = None,
                 reason: str | None = None) -> dict:
    """Take a held plate out of use (its owner's request, or the registering office's decision): it
    is never assigned again. An assigned plate is deregistered first. When an office may do so on
    its own (a plate held unused for years) is not decided here."""
    now = now or utcnow()
    try:
        text = fmt.validate(plate)
    except fmt.PlateError as exc:
        raise InvalidInput(exc.message, field="plate") from None
    row = conn.execute(sa.select(plates).where(plates.c.plate == text)).first()
    owner = None if row is None else conn.execute(sa.select(persons).where(persons.c.person_id == row.person_id)).one()
    if row is None or not actor.area.covers(owner):
        raise NotFound(f"No plate {text} was given out.", field="plate")
    done = conn.execute(plates.update().where(plates.c.plate_id == row.plate_id, plates.c.status == "held")
                        .values(status="retired", changed_at=now))
    if done.rowcount != 1:
        raise Conflict(f"The plate {text} is {row.status}, not held: only a held plate is retired.",
                       code=f"plate_{row.status}", field="plate")
    _history(conn, row.person_id, actor, "plate_retired", now, {"plate": text, "status": "held"},
             {"plate": text, "status": "retired"}, reason)
    return {"plate": text, "status": "retired", "changed_at": now.isoformat()}


def vehicles_of(conn: sa.Connection, actor: Actor, pid: str) -> list[dict]:
    """The person's vehicles, registered and deregistered, newest first."""
    person = find_person(conn, pid, actor.area)
    rows = conn.execute(sa.select(vehicles).where(vehicles.c.person_id == person.person_id)
                        .order_by(vehicles.c.vehicle_id.desc())).all()
    return [vehicle_view(r) for r in rows]


def plates_of(conn: sa.Connection, actor: Actor, pid: str) -> list[dict]:
    """The person's identified plates and what they are on."""
    person = find_person(conn, pid, actor.area)
    rows = conn.execute(sa.select(plates).where(plates.c.person_id == person.person_id)
                        .order_by(plates.c.plate_id)).all()
    return [{"plate": r.plate, "status": r.status, "vehicle_id": r.vehicle_id, "province_code": r.province_code,
             "issued_at": r.issued_at.isoformat()} for r in rows]


# ------------------------------------------------------------------------------ the dossier's effect

# the register's field -> the form's
_FORM_FIELDS = {"pid": "applicant.pid", "province": "vehicle", "plate": "vehicle", "plate_code": "vehicle",
                "series": "vehicle", "vehicle": "vehicle"}


def dossier_effect(conn: sa.Connection, dossier, data: Mapping[str, Any], actor: Actor, ctx) -> dict:
    """Đăng ký, cấp biển số xe mô tô, xe gắn máy lần đầu: the form's ``vehicle`` registered to the
    applicant in the dossier's province (``place_province``), with a plate, at the approval's time."""
    from dinhdanh.dossiers.effects import RegisterRefused  # dossiers call this area: no import cycle at load

    pid = conn.execute(sa.select(persons.c.pid).where(persons.c.person_id == dossier.person_id)).scalar_one()
    try:
        done = register_vehicle(conn, actor, pid, data.get("vehicle") or {}, province=dossier.place_province,
                                dossier_code=dossier.code, now=ctx.now)
    except (RuleViolation, InvalidInput, NotFound, Forbidden, Conflict) as exc:
        field = _FORM_FIELDS.get(exc.field or "", f"vehicle.{exc.field}" if exc.field else "vehicle")
        raise RegisterRefused(f"The vehicle register refuses the registration: {exc.message}", code=exc.code,
                              field=field) from exc
    return {"event": "vehicle_registered", "event_id": done["event_id"], "pid": pid, "plate": done["plate"],
            "vehicle_id": done["vehicle_id"], "certificate_number": done["certificate_number"],
            "reused_plate": done["reused_plate"]}
