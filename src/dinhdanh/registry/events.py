"""Life events: each checks the register's rules, then changes the record in one transaction.

Every function takes a connection inside a transaction (the caller owns it), the acting officer
and a validated command; it writes an ``events`` row, one ``changes`` row per field it changes,
and an outbox message for relying parties, or raises and changes nothing.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from dinhdanh import places
from dinhdanh.ids import names
from dinhdanh.ids import pid as pidfmt
from dinhdanh.ids.exceptions import ValidationError
from dinhdanh.registry import commands as cmd
from dinhdanh.registry.area import NATIONAL, Area
from dinhdanh.registry.errors import Conflict, Forbidden, InvalidInput, NotFound, RuleViolation
from dinhdanh.registry.records import INTERNAL, find_person, to_json
from dinhdanh.registry.tables import changes, events, former_pids, households, persons
from dinhdanh.store.base import utcnow, vietnam_date
from dinhdanh.store.outbox import enqueue

MIN_PARENT_AGE = 12  # years between a parent's birth and a child's; below it the link is refused
MARRIAGE_AGE = {"male": 20, "female": 18}  # Law on Marriage and Family 2014, art. 8
MAX_TEMPORARY_RESIDENCE = dt.timedelta(days=2 * 366)  # Law on Residence 2020: up to two years


@dataclass(frozen=True, slots=True)
class Actor:
    """Who records the event: ``label`` goes into history ("officer:12"), ``area`` limits them."""

    label: str
    area: Area = NATIONAL


@dataclass(frozen=True, slots=True)
class EventResult:
    event_id: int
    kind: str
    pid: str  # the person's PID after the event (new for a birth or a change of sex)
    changes: list[dict]

    def as_dict(self) -> dict:
        return {"event_id": self.event_id, "kind": self.kind, "pid": self.pid, "changes": self.changes}


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def _age_on(born: dt.date, day: dt.date) -> int:
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def _not_future(day: dt.date, field: str) -> None:
    if day > _today():
        raise RuleViolation(f"The {field.replace('_', ' ')} {day.isoformat()} is in the future.",
                            code="date_in_future", field=field)


def _alive(row, what: str = "The person") -> None:
    if row.status != "alive":
        raise RuleViolation(f"{what} is recorded as {row.status}.", code=f"person_{row.status}", field="pid")


def document_event(conn, person_id: int, actor: Actor, kind: str, field: str, old: dict | None,
                   new: dict | None, *, reason: str | None, legal_basis: str, now: dt.datetime | None = None) -> int:
    """A step of a document the state issued to the person (a card, a passport, a vehicle's
    registration) as an event of their record, so the record's history shows it: the event
    ``kind`` (``card.issued``, ``passport.revoked``, ...) and one change of ``field`` from ``old``
    to ``new``. Written in the caller's unit of work; returns the event's id."""
    now = now or utcnow()
    event_id = conn.execute(events.insert().values(
        kind=kind, person_id=person_id, recorded_at=now, effective_date=vietnam_date(now), actor=actor.label,
        reason=reason, legal_basis=legal_basis, payload=new or old,
    ).returning(events.c.event_id)).scalar_one()
    conn.execute(changes.insert().values(event_id=event_id, person_id=person_id, field=field,
                                         old_value=old, new_value=new))
    return event_id


def _new_event(conn, kind: str, person_id: int | None, actor: Actor, command: cmd.Command,
               effective: dt.date | None) -> int:
    return conn.execute(
        events.insert().values(
            kind=kind, person_id=person_id, recorded_at=utcnow(), effective_date=effective,
            actor=actor.label, reason=command.reason, legal_basis=command.legal_basis,
            payload=command.model_dump(mode="json"),
        ).returning(events.c.event_id)
    ).scalar_one()


def _derived(values: dict) -> dict:
    """Search columns that follow from the record's fields."""
    out = dict(values)
    if "full_name" in values:
        out["name_key"] = names.fold(values["full_name"])
    if "date_of_birth" in values:
        out["birth_year"] = values["date_of_birth"].year
    return out


def _update(conn, row, values: dict, event_id: int) -> list[dict]:
    """Apply ``values`` to the person's row, logging each changed field; optimistic on ``version``."""
    values = _derived(values)
    diff = []
    for field, new in values.items():
        old = getattr(row, field)
        if old != new and field not in INTERNAL:
            diff.append({"field": field, "old": to_json(old), "new": to_json(new)})
    if diff:
        conn.execute(changes.insert(), [
            {"event_id": event_id, "person_id": row.person_id, "field": d["field"],
             "old_value": d["old"], "new_value": d["new"]} for d in diff
        ])
    done = conn.execute(
        persons.update()
        .where(persons.c.person_id == row.person_id, persons.c.version == row.version)
        .values(**values, updated_at=utcnow(), version=row.version + 1)
    )
    if done.rowcount != 1:
        raise Conflict("The record was changed by someone else meanwhile; read it again and retry.")
    return diff


def _reload(conn, person_id: int):
    return conn.execute(sa.select(persons).where(persons.c.person_id == person_id)).one()


def _pid_taken(conn, number: str) -> bool:
    return (conn.execute(sa.select(persons.c.person_id).where(persons.c.pid == number)).first() is not None
            or conn.execute(sa.select(former_pids.c.pid).where(former_pids.c.pid == number)).first() is not None)


def allocate_pid(conn, place_code: str, sex: str, birth_year: int) -> str:
    """A fresh PID, never held by anyone before (current or former numbers)."""
    for _ in range(50):
        number = pidfmt.generate(place_code, sex, birth_year)
        if not _pid_taken(conn, number):
            return number
    raise RuleViolation(f"No free personal ID number left for {place_code}/{sex}/{birth_year}.",
                        code="pid_exhausted")


def _registration_code(commune_code: str) -> str:
    """The three-digit place code of a birth registered in a 2025 commune.

    A 2025 province kept the code of the old province hosting its headquarters, so the old
    three-digit code is that code with a leading zero. (Which code new numbers carry after the
    reform is not published; this is the one place to change if it turns out otherwise.)
    """
    return "0" + places.COMMUNES[commune_code].province_code


# A household's row is locked (PostgreSQL) by whoever joins it or leaves it: a member joining (a
# birth, a move) and the last member leaving (which dissolves it) run one after the other, so no
# one joins a household dissolved meanwhile, and its head is chosen among the members as they are.
def _household(conn, number: str):
    h = conn.execute(sa.select(households).where(households.c.number == number).with_for_update()).first()
    if h is None or h.dissolved_at is not None:
        raise InvalidInput(f"No current household has number {number!r}.", field="household_number")
    return h


def _lock_in_order(conn, household_id: int | None, number: str | None) -> None:
    """Lock the household a person leaves and the one they join, in one order (their ids), before
    either is touched: two moves in opposite directions (A to B, B to A) each held the household
    they left and waited for the other's (a deadlock on PostgreSQL, one of them refused with 503)."""
    ids = {household_id} if household_id is not None else set()
    if number is not None:
        ids |= set(conn.execute(sa.select(households.c.household_id).where(households.c.number == number)).scalars())
    if len(ids) > 1:  # one household alone is locked where it is read (``_household``, ``_leave_household``)
        conn.execute(sa.select(households.c.household_id).where(households.c.household_id.in_(sorted(ids)))
                     .order_by(households.c.household_id).with_for_update()).all()


def _new_household(conn, commune_code: str, address: str | None, head_id: int):
    province = places.COMMUNES[commune_code].province_code
    for _ in range(50):
        number = f"{province}{secrets.randbelow(10**8):08d}"
        if conn.execute(sa.select(households.c.household_id).where(households.c.number == number)).first() is None:
            break
    hid = conn.execute(households.insert().values(
        number=number, head_id=head_id, province_code=province, commune_code=commune_code,
        address=address, created_at=utcnow(),
    ).returning(households.c.household_id)).scalar_one()
    return conn.execute(sa.select(households).where(households.c.household_id == hid)).one()


def _leave_household(conn, row, event_id: int) -> None:
    """When the head leaves (moves, dies), the spouse or else the eldest member becomes head."""
    if row.household_id is None:
        return
    h = conn.execute(sa.select(households).where(households.c.household_id == row.household_id)
                     .with_for_update()).one()
    if h.head_id != row.person_id:
        return
    members = conn.execute(
        sa.select(persons).where(persons.c.household_id == h.household_id, persons.c.person_id != row.person_id)
        .order_by((persons.c.person_id == row.spouse_id).desc(), persons.c.date_of_birth, persons.c.person_id)
    ).all()
    if not members:
        conn.execute(households.update().where(households.c.household_id == h.household_id)
                     .values(head_id=None, dissolved_at=utcnow()))
        return
    heir = members[0]
    conn.execute(households.update().where(households.c.household_id == h.household_id).values(head_id=heir.person_id))
    _update(conn, heir, {"relation_to_head": "head"}, event_id)


def _relation_for_child(conn, household, father, mother) -> str:
    head_id = household.head_id
    parents = [p for p in (father, mother) if p is not None]
    if any(p.person_id == head_id for p in parents):
        return "child"
    if any(p.household_id == household.household_id and p.relation_to_head == "child" for p in parents):
        return "grandchild"
    return "other"


def _parent(conn, number: str | None, sex: str, field: str, child_dob: dt.date):
    if number is None:
        return None
    row = conn.execute(sa.select(persons).where(persons.c.pid == number)).first()
    if row is None:
        raise InvalidInput(f"No person with the {field.replace('_', ' ')} given.", field=field)
    if row.sex != sex:
        raise RuleViolation(f"The {field.split('_')[0]} must be recorded as {sex}.", code="parent_sex", field=field)
    if row.date_of_birth >= child_dob:
        raise RuleViolation(f"A child cannot be born before the {field.split('_')[0]}.",
                            code="child_before_parent", field=field)
    if _age_on(row.date_of_birth, child_dob) < MIN_PARENT_AGE:
        raise RuleViolation(f"The {field.split('_')[0]} would be under {MIN_PARENT_AGE} at the birth.",
                            code="parent_too_young", field=field)
    # a father may die before the birth (up to ten months), a mother not
    grace = dt.timedelta(days=300 if sex == "male" else 0)
    if row.date_of_death is not None and row.date_of_death + grace < child_dob:
        raise RuleViolation(f"The {field.split('_')[0]} died before the birth.", code="parent_dead", field=field)
    return row


def register_birth(conn, actor: Actor, c: cmd.BirthRegistration) -> EventResult:
    _not_future(c.date_of_birth, "date_of_birth")
    if c.date_of_birth.year < 1900:
        raise InvalidInput("The date of birth is before 1900.", field="date_of_birth")
    commune = places.COMMUNES[c.commune_code]
    if not actor.area.covers_place(commune.province_code, commune.code):
        raise Forbidden("Births can only be registered in your own area.", field="commune_code")
    father = _parent(conn, c.father_pid, "male", "father_pid", c.date_of_birth)
    mother = _parent(conn, c.mother_pid, "female", "mother_pid", c.date_of_birth)
    if c.household_number is not None:
        household = _household(conn, c.household_number)
    else:
        home = next((p for p in (mother, father) if p is not None and p.household_id is not None), None)
        if home is None:
            raise RuleViolation("Give a household number: no parent has a household to join.",
                                code="household_required", field="household_number")
        household = conn.execute(sa.select(households).where(households.c.household_id == home.household_id)
                                 .with_for_update()).one()
        if household.dissolved_at is not None:  # its last member left meanwhile
            raise RuleViolation("Give a household number: the parent's household no longer exists.",
                                code="household_required", field="household_number")
    lineage = father or mother
    now = utcnow()
    number = allocate_pid(conn, _registration_code(c.commune_code), c.sex, c.date_of_birth.year)
    values: dict[str, Any] = {
        "pid": number, "full_name": c.full_name, "date_of_birth": c.date_of_birth, "sex": c.sex,
        "place_of_birth": c.place_of_birth or f"{commune.name}, {places.PROVINCES[commune.province_code].name}",
        "birth_registration_code": number[:3],
        "hometown": c.hometown or (lineage.hometown if lineage else None),
        "ethnicity": c.ethnicity or (lineage.ethnicity if lineage else None),
        "religion": c.religion,
        "nationality": c.nationality,
        "father_id": father.person_id if father else None,
        "mother_id": mother.person_id if mother else None,
        "household_id": household.household_id,
        "relation_to_head": c.relation_to_head or _relation_for_child(conn, household, father, mother),
        "province_code": household.province_code, "commune_code": household.commune_code,
        "address": household.address,
    }
    person_id = conn.execute(persons.insert().values(
        **_derived(values), marital_status="single", status="alive", created_at=now, updated_at=now, version=1,
    ).returning(persons.c.person_id)).scalar_one()
    event_id = _new_event(conn, "birth", person_id, actor, c, c.date_of_birth)
    diff = [{"field": k, "old": None, "new": to_json(v)} for k, v in values.items() if v is not None]
    conn.execute(changes.insert(), [{"event_id": event_id, "person_id": person_id, "field": d["field"],
                                     "old_value": None, "new_value": d["new"]} for d in diff])
    enqueue(conn, "person.born", person_id, {"event_id": event_id, "pid": number})
    return EventResult(event_id, "birth", number, diff)


def register_death(conn, actor: Actor, c: cmd.DeathRegistration) -> EventResult:
    row = find_person(conn, c.pid, actor.area)
    if row.status == "dead":
        raise RuleViolation("The person's death is already registered.", code="person_dead", field="pid")
    _not_future(c.date_of_death, "date_of_death")
    if c.date_of_death < row.date_of_birth:
        raise RuleViolation("The date of death is before the date of birth.", code="death_before_birth",
                            field="date_of_death")
    event_id = _new_event(conn, "death", row.person_id, actor, c, c.date_of_death)
    _leave_household(conn, row, event_id)
    if row.spouse_id is not None:
        spouse = _reload(conn, row.spouse_id)
        if spouse.status == "alive" and spouse.spouse_id == row.person_id:
            _update(conn, spouse, {"marital_status": "widowed", "spouse_id": None}, event_id)
    # Death ends residence registration (Law on Residence 2020, art. 24); the last address stays.
    # The row as read above, version included (none of the above writes it): a death registered by
    # another transaction since is a Conflict here, not a second death over the first
    diff = _update(conn, row, {
        "status": "dead", "date_of_death": c.date_of_death, "household_id": None, "relation_to_head": None,
        "temp_province_code": None, "temp_commune_code": None, "temp_address": None, "temp_until": None,
    }, event_id)
    enqueue(conn, "person.died", row.person_id, {"event_id": event_id, "pid": row.pid,
                                                 "date_of_death": c.date_of_death.isoformat()})
    return EventResult(event_id, "death", row.pid, diff)


def declare_missing(conn, actor: Actor, c: cmd.MissingDeclaration) -> EventResult:
    row = find_person(conn, c.pid, actor.area)
    _alive(row)
    _not_future(c.date_missing, "date_missing")
    event_id = _new_event(conn, "missing", row.person_id, actor, c, c.date_missing)
    diff = _update(conn, row, {"status": "missing", "date_missing": c.date_missing}, event_id)
    enqueue(conn, "person.missing", row.person_id, {"event_id": event_id, "pid": row.pid})
    return EventResult(event_id, "missing", row.pid, diff)


def _close_kin(conn, a, b) -> bool:
    """Direct line (parent, grandparent) or siblings: marriage between them is prohibited."""
    def parents(r):
        return {p for p in (r.father_id, r.mother_id) if p is not None}
    pa, pb = parents(a), parents(b)
    if a.person_id in pb or b.person_id in pa or pa & pb:
        return True
    grand_a = {g for p in pa for g in parents(_reload(conn, p))}
    grand_b = {g for p in pb for g in parents(_reload(conn, p))}
    return a.person_id in grand_b or b.person_id in grand_a


def register_marriage(conn, actor: Actor, c: cmd.MarriageRegistration) -> EventResult:
    a = find_person(conn, c.pid, actor.area)
    b = find_person(conn, c.spouse_pid)  # the spouse may live in another area
    if a.person_id == b.person_id:
        raise InvalidInput("A person cannot marry themselves.", field="spouse_pid")
    _not_future(c.date, "date")
    for who, field in ((a, "pid"), (b, "spouse_pid")):
        if who.status != "alive":
            raise RuleViolation(f"The person given as {field} is recorded as {who.status}.",
                                code=f"person_{who.status}", field=field)
        if who.marital_status == "married":
            raise RuleViolation(f"The person given as {field} is already married.", code="already_married",
                                field=field)
        if _age_on(who.date_of_birth, c.date) < MARRIAGE_AGE[who.sex]:
            raise RuleViolation(f"The person given as {field} is under the marriage age "
                                f"({MARRIAGE_AGE[who.sex]} for {who.sex}).", code="under_marriage_age", field=field)
    if a.sex == b.sex:
        raise RuleViolation("Marriage is registered between a man and a woman (Law on Marriage and Family "
                            "2014, art. 8).", code="same_sex", field="spouse_pid")
    if _close_kin(conn, a, b):
        raise RuleViolation("Marriage between relatives in the direct line or siblings is prohibited.",
                            code="close_kin", field="spouse_pid")
    event_id = _new_event(conn, "marriage", a.person_id, actor, c, c.date)
    diff = _update(conn, a, {"marital_status": "married", "spouse_id": b.person_id}, event_id)
    _update(conn, b, {"marital_status": "married", "spouse_id": a.person_id}, event_id)
    for who, other in ((a, b), (b, a)):
        enqueue(conn, "person.married", who.person_id, {"event_id": event_id, "pid": who.pid, "spouse_pid": other.pid})
    return EventResult(event_id, "marriage", a.pid, diff)


def register_divorce(conn, actor: Actor, c: cmd.DivorceRegistration) -> EventResult:
    a = find_person(conn, c.pid, actor.area)
    b = find_person(conn, c.spouse_pid)
    if a.spouse_id != b.person_id or a.marital_status != "married":
        raise RuleViolation("The two persons are not married to each other.", code="not_married",
                            field="spouse_pid")
    _not_future(c.date, "date")
    event_id = _new_event(conn, "divorce", a.person_id, actor, c, c.date)
    diff = _update(conn, a, {"marital_status": "divorced", "spouse_id": None}, event_id)
    _update(conn, b, {"marital_status": "divorced", "spouse_id": None}, event_id)
    for who in (a, b):
        enqueue(conn, "person.divorced", who.person_id, {"event_id": event_id, "pid": who.pid})
    return EventResult(event_id, "divorce", a.pid, diff)


def register_permanent_residence(conn, actor: Actor, c: cmd.PermanentResidence) -> EventResult:
    row = find_person(conn, c.pid)  # a newcomer lives elsewhere until this event
    _alive(row)
    commune = places.COMMUNES[c.commune_code]
    if not actor.area.covers_place(commune.province_code, commune.code):
        raise Forbidden("Permanent residence is registered by the officers of the destination.",
                        field="commune_code")
    if (c.household_number is None) == (not c.new_household):
        raise InvalidInput("Give either household_number (to join) or new_household: true.",
                           field="household_number")
    if c.date is not None:
        _not_future(c.date, "date")
    event_id = _new_event(conn, "permanent-residence", row.person_id, actor, c, c.date)
    _lock_in_order(conn, row.household_id, c.household_number)
    _leave_household(conn, row, event_id)  # (writes the household and the heir, not ``row``: its version
    # stays the one read, so a move or a death committed since is a Conflict at the update below)
    if c.new_household:
        household = _new_household(conn, c.commune_code, c.address, row.person_id)
        relation = "head"
    else:
        household = _household(conn, c.household_number)
        if household.commune_code != c.commune_code:
            raise InvalidInput("The household is registered in another commune.", field="household_number")
        if household.household_id == row.household_id:
            raise RuleViolation("The person already lives in this household.", code="same_household",
                                field="household_number")
        relation = c.relation_to_head or "other"
        if relation == "head":
            raise InvalidInput("The household already has a head.", field="relation_to_head")
    diff = _update(conn, row, {
        "province_code": commune.province_code, "commune_code": commune.code, "address": c.address,
        "household_id": household.household_id, "relation_to_head": relation,
        "residence_dossier": c.dossier_number or row.residence_dossier,
    }, event_id)
    enqueue(conn, "person.moved", row.person_id, {"event_id": event_id, "pid": row.pid,
                                                  "commune_code": commune.code})
    return EventResult(event_id, "permanent-residence", row.pid, diff)


def register_temporary_residence(conn, actor: Actor, c: cmd.TemporaryResidence) -> EventResult:
    row = find_person(conn, c.pid)
    _alive(row)
    commune = places.COMMUNES[c.commune_code]
    if not actor.area.covers_place(commune.province_code, commune.code):
        raise Forbidden("Temporary residence is registered by the officers of that commune.", field="commune_code")
    start = c.date or _today()
    if c.until <= start:
        raise InvalidInput("The end of temporary residence must come after its start.", field="until")
    if c.until - start > MAX_TEMPORARY_RESIDENCE:
        raise InvalidInput("Temporary residence is registered for at most two years at a time.", field="until")
    if commune.code == row.commune_code:
        raise RuleViolation("The person already has permanent residence in this commune.",
                            code="same_commune", field="commune_code")
    event_id = _new_event(conn, "temporary-residence", row.person_id, actor, c, start)
    diff = _update(conn, row, {"temp_province_code": commune.province_code, "temp_commune_code": commune.code,
                               "temp_address": c.address, "temp_until": c.until}, event_id)
    enqueue(conn, "person.moved", row.person_id, {"event_id": event_id, "pid": row.pid,
                                                  "temporary_commune_code": commune.code})
    return EventResult(event_id, "temporary-residence", row.pid, diff)


def declare_temporary_absence(conn, actor: Actor, c: cmd.TemporaryAbsence) -> EventResult:
    row = find_person(conn, c.pid, actor.area)
    _alive(row)
    if c.until < c.from_date:
        raise InvalidInput("The absence must end on or after its start.", field="until")
    event_id = _new_event(conn, "temporary-absence", row.person_id, actor, c, c.from_date)
    diff = _update(conn, row, {"absent_from": c.from_date, "absent_until": c.until, "absent_to": c.destination},
                   event_id)
    return EventResult(event_id, "temporary-absence", row.pid, diff)


MAX_STAY = dt.timedelta(days=29)  # 30 days or more is temporary residence (Law on Residence 2020, art. 27)


def notify_stay(conn, actor: Actor, c: cmd.StayNotification) -> EventResult:
    """The guest's stay becomes their current place of living while it lasts; the event keeps the
    stay (where, from, until, the host). A stay of 30 days or more is refused: it is a temporary
    residence to register."""
    row = find_person(conn, c.pid)
    _alive(row)
    commune = places.COMMUNES[c.commune_code]
    if not actor.area.covers_place(commune.province_code, commune.code):
        raise Forbidden("A stay is notified to the police of the commune where it is.", field="commune_code")
    if c.until < c.from_date:
        raise InvalidInput("The stay must end on or after its start.", field="until")
    if c.until - c.from_date > MAX_STAY:
        raise RuleViolation("A stay of 30 days or more is a temporary residence: register it instead.",
                            code="stay_too_long", field="until")
    if c.host_pid is not None and c.host_pid != row.pid:
        find_person(conn, c.host_pid)  # the host is in the register (NotFound names host_pid otherwise)
    event_id = _new_event(conn, "stay-notification", row.person_id, actor, c, c.from_date)
    province = places.PROVINCES[commune.province_code]
    where = f"{c.address}, {commune.name}, {province.name}"
    diff = _update(conn, row, {"current_address": where[:200]}, event_id)
    return EventResult(event_id, "stay-notification", row.pid, diff)


def change_name(conn, actor: Actor, c: cmd.NameChange) -> EventResult:
    row = find_person(conn, c.pid, actor.area)
    if row.status == "dead":
        raise RuleViolation("The name of a dead person is not changed; correct the record instead.",
                            code="person_dead", field="pid")
    if c.full_name == row.full_name:
        raise RuleViolation("The new name is the name already recorded.", code="no_change", field="full_name")
    event_id = _new_event(conn, "name-change", row.person_id, actor, c, None)
    diff = _update(conn, row, {"full_name": c.full_name}, event_id)
    enqueue(conn, "person.renamed", row.person_id, {"event_id": event_id, "pid": row.pid})
    return EventResult(event_id, "name-change", row.pid, diff)


def _reassign_pid(conn, row, values: dict, event_id: int, reason: str) -> tuple[str, list[dict]]:
    """Give a new PID consistent with the new sex / birth year; the old one is retired, never reused."""
    sex = values.get("sex", row.sex)
    year = values.get("date_of_birth", row.date_of_birth).year
    place = row.pid[:3]
    if place not in places.OLD_PROVINCES and int(place) not in pidfmt.FOREIGN_CODES:
        place = "0" + (row.province_code or "01")  # a number from before the structure was enforced
    number = allocate_pid(conn, place, sex, year)
    conn.execute(former_pids.insert().values(pid=row.pid, person_id=row.person_id, retired_at=utcnow(),
                                             retired_reason=reason))
    diff = _update(conn, row, {**values, "pid": number}, event_id)
    enqueue(conn, "person.pid_changed", row.person_id, {"event_id": event_id, "old_pid": row.pid, "pid": number})
    return number, diff


def change_sex(conn, actor: Actor, c: cmd.SexChange) -> EventResult:
    row = find_person(conn, c.pid, actor.area)
    _alive(row)
    if c.sex == row.sex:
        raise RuleViolation(f"The person is already recorded as {c.sex}.", code="no_change", field="sex")
    event_id = _new_event(conn, "sex-change", row.person_id, actor, c, None)
    number, diff = _reassign_pid(conn, row, {"sex": c.sex}, event_id, "change of sex")
    return EventResult(event_id, "sex-change", number, diff)


_PHONE = re.compile(r"^0\d{9}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_BLOOD = {"O+", "O-", "A+", "A-", "B+", "B-", "AB+", "AB-"}


def _corrected(field: str, value: Any) -> Any:
    """Validate one corrected value; ``InvalidInput`` names ``fields.<name>``."""
    where = f"fields.{field}"
    if value is None:
        if field in ("full_name", "date_of_birth", "nationality"):
            raise InvalidInput(f"{field} cannot be removed.", field=where)
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be text.", field=where)
    if cmd.CONTROL.search(value):
        raise InvalidInput(f"{field} contains a control character.", field=where)
    try:
        if field == "full_name":
            return names.validate(value)
        if field == "date_of_birth":
            day = dt.date.fromisoformat(cmd._iso_date(value))
            _not_future(day, where)
            if day.year < 1900:
                raise InvalidInput("date_of_birth is before 1900.", field=where)
            return day
    except (ValueError, ValidationError) as exc:
        raise InvalidInput(f"{field}: {exc}", field=where) from None
    checks = {
        "nationality": (lambda v: re.fullmatch(r"[A-Z]{3}", v), "three capital letters (ISO 3166 alpha-3)"),
        "blood_type": (lambda v: v in _BLOOD, "one of " + ", ".join(sorted(_BLOOD))),
        "old_id_number": (lambda v: re.fullmatch(r"\d{9}|\d{12}", v), "9 or 12 digits"),
        "phone": (lambda v: _PHONE.match(v), "10 digits starting with 0"),
        "email": (lambda v: _EMAIL.match(v) and len(v) <= 254, "an e-mail address"),
    }
    if field in checks and not checks[field][0](value):
        raise InvalidInput(f"{field} must be {checks[field][1]}.", field=where)
    if not value.strip() or len(value) > 200:
        raise InvalidInput(f"{field} must be 1 to 200 characters.", field=where)
    return value.strip()


def _check_generations(conn, row, born: dt.date) -> None:
    """A corrected date of birth must keep parents older, and children younger, by MIN_PARENT_AGE."""
    for kin_id in (row.father_id, row.mother_id):
        if kin_id is not None and _age_on(_reload(conn, kin_id).date_of_birth, born) < MIN_PARENT_AGE:
            raise RuleViolation("A child cannot be born before a parent (or to a parent under "
                                f"{MIN_PARENT_AGE}).", code="child_before_parent", field="fields.date_of_birth")
    eldest = conn.execute(sa.select(sa.func.min(persons.c.date_of_birth)).where(
        sa.or_(persons.c.father_id == row.person_id, persons.c.mother_id == row.person_id))).scalar()
    if eldest is not None and _age_on(born, eldest) < MIN_PARENT_AGE:
        raise RuleViolation(f"The person would be younger than {MIN_PARENT_AGE} at the birth of a child.",
                            code="child_before_parent", field="fields.date_of_birth")


def correct_record(conn, actor: Actor, c: cmd.Correction) -> EventResult:
    row = find_person(conn, c.pid, actor.area)
    values = {field: _corrected(field, value) for field, value in c.fields.items()}
    if all(getattr(row, f) == v for f, v in values.items()):
        raise RuleViolation("The corrected values are the values already recorded.", code="no_change",
                            field="fields")
    if "date_of_birth" in values:
        _check_generations(conn, row, values["date_of_birth"])
    event_id = _new_event(conn, "correction", row.person_id, actor, c, None)
    if "date_of_birth" in values and values["date_of_birth"].year != row.date_of_birth.year:
        number, diff = _reassign_pid(conn, row, values, event_id, "correction of the year of birth")
        return EventResult(event_id, "correction", number, diff)
    diff = _update(conn, row, values, event_id)
    enqueue(conn, "person.corrected", row.person_id, {"event_id": event_id, "pid": row.pid,
                                                      "fields": sorted(values)})
    return EventResult(event_id, "correction", row.pid, diff)


RECORDERS = {
    "birth": register_birth,
    "death": register_death,
    "missing": declare_missing,
    "marriage": register_marriage,
    "divorce": register_divorce,
    "permanent-residence": register_permanent_residence,
    "temporary-residence": register_temporary_residence,
    "temporary-absence": declare_temporary_absence,
    "stay-notification": notify_stay,
    "name-change": change_name,
    "sex-change": change_sex,
    "correction": correct_record,
}


# Other areas follow life events in the same transaction (the card area revokes the card of a
# person who died or whose printed data changed): ``hook(conn, actor, kind, result)``.
AFTER_EVENT: list[Callable[[sa.Connection, Actor, str, EventResult], None]] = []


def record_event(conn, actor: Actor, kind: str, command: cmd.Command) -> EventResult:
    """Record a life event of ``kind`` (see ``commands.EVENT_KINDS``)."""
    try:
        recorder = RECORDERS[kind]
    except KeyError:
        raise NotFound(f"No life event is called {kind!r}.", field="kind") from None
    result = recorder(conn, actor, command)
    for hook in AFTER_EVENT:
        hook(conn, actor, kind, result)
    return result
