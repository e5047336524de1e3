"""Dossiers: filing, the officers' actions, the citizen's supplement and withdrawal, the slips,
the legal clock and the timers (issue 12).

Every function runs in the caller's unit of work: the move, its ``dossier_events`` row, its outbox
message (``dossier.status_changed``: the dossier's code and status, no personal data), the slip
and its access-log entry, and the timers scheduled or cancelled, commit together or not at all.

**Routing** follows the place of the procedure (Decree 118/2025), not the applicant's residence:
the first of ``PLACE_FIELDS`` the form holds (an address object with ``province_code`` and
``commune_code``, or a commune code), else the applicant's permanent residence in the register.
An officer sees and acts on a dossier only when its place is in their area (national: all;
province: ``place_province``; commune: ``place_commune``); another is answered as unknown (404).

**The clock**: at filing, ``due_date`` is what it would be if received now; ``receive`` fixes it
from the working day of receipt (``calendar.due_date``). A supplement request stops it (the day
of the request is the last counted) and gives the citizen 7 working days; the supplement starts
it again with the working days that were left (``calendar.due_after_supplement``). A dossier is
overdue when it is ``received`` and its due date is before today (Việt Nam); only an overdue one
can be extended, with an apology slip naming the new date.

**Linked groups** (Decree 63/2024; the catalogue's ``Group``): filing a group's service makes a
parent (``kind`` ``group``, never moved, its status derived from its sub-dossiers by
``workflow.group_status``, absent from the officers' worklists, acted on only through its
sub-dossiers) and one sub-dossier per chosen procedure, in the catalogue's order, each routed to
its own agency at the place (the procedure's catalogue service's agency, else the group's
``GroupProcedure.agency``) with its own code, fee, clock, slips and result. The first (birth or
death registration) carries the group's fee and its same-day clock; the others ``wait_for`` it:
they stay ``submitted`` (shown with ``waiting_for``) and no officer may act on them (409
``waiting_for_linked``) until it is approved; when it is refused (or withdrawn) they are refused
with it, reason "Thủ tục liên thông bị từ chối: <procedure>", each with its refusal slip.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from dinhdanh import places
from dinhdanh.audit.service import record_access
from dinhdanh.calendar import working_days as calendar
from dinhdanh.calendar.clock import VIETNAM
from dinhdanh.documents import results
from dinhdanh.documents.model import Agency as DocumentAgency
from dinhdanh.dossiers import catalogue, effects, workflow
from dinhdanh.dossiers.catalogue import ServiceVersion
from dinhdanh.dossiers.catalogue.forms import UNSAFE_TEXT
from dinhdanh.dossiers.catalogue.model import Agency as CatalogueAgency
from dinhdanh.dossiers.catalogue.model import GroupProcedure
from dinhdanh.dossiers.tables import dossier_documents, dossier_events, dossier_sequences, dossiers
from dinhdanh.dossiers.workflow import APPROVED, OPEN, RECEIVED, SUBMITTED, SUPPLEMENT, InvalidTransition
from dinhdanh.eid.tables import eid_accounts
from dinhdanh.registry.area import NATIONAL, Area
from dinhdanh.registry.errors import Conflict, Forbidden, InvalidInput, NotFound, RuleViolation
from dinhdanh.registry.events import Actor
from dinhdanh.registry.tables import persons
from dinhdanh.store.base import utcnow, vietnam_date
from dinhdanh.store.outbox import enqueue
from dinhdanh.store.vault import Vault

TOPIC = "dossier.status_changed"
SUPPLEMENT_EXPIRED = "dossiers.supplement_expired"  # scheduler job kinds (dossiers.timers)
OVERDUE = "dossiers.overdue"
SYSTEM = "system:scheduler"
AUTOMATIC_REFUSAL = "Quá thời hạn bổ sung hồ sơ"
LINKED = "system:linked_group"  # the actor of a sub-dossier's automatic refusal with the first one
LINKED_REFUSAL = "Thủ tục liên thông bị từ chối: {}"
SINGLE, GROUP = "single", "group"
CHANNEL = "online"  # every dossier here is filed online (the fee schedules' channel)
PLACE_FIELDS = ("new_address", "stay_address", "residence_address", "supply_address", "parcel.address",
                "registration_commune_code", "ceremony_commune_code")
MAX_PAGE = 200
MAX_EXTENSION = dt.timedelta(days=365)  # an overdue dossier's new date: within a year (the apology slip's)


class DossierNotFound(NotFound):
    code = "dossier_not_found"


# ------------------------------------------------------------------------------ helpers


def _schedule(conn: sa.Connection, kind: str, key: str, day: dt.date, payload: dict) -> None:
    """A timer for the start of the day after ``day`` (Việt Nam): the day itself is still in time."""
    from dinhdanh.scheduler import jobs

    due_at = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=VIETNAM).astimezone(dt.UTC)
    jobs.schedule(conn, kind, key, due_at, payload)


def _cancel(conn: sa.Connection, kind: str, key: str) -> None:
    from dinhdanh.scheduler import jobs

    jobs.cancel(conn, kind, key)


def applicant_of_account(conn: sa.Connection, account_id: int) -> int:
    """The person an e-ID account belongs to (a citizen in the register), else 403."""
    person_id = conn.execute(sa.select(eid_accounts.c.person_id)
                             .where(eid_accounts.c.account_id == account_id)).scalar()
    if person_id is None:
        raise Forbidden("This account is not a citizen's of the register.", code="no_citizen_account",
                        field="account")
    return person_id


def _lookup(data: Mapping[str, Any], path: str) -> Any:
    value: Any = data
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def place_of(conn: sa.Connection, data: Mapping[str, Any], person_id: int,
             residence=None) -> tuple[str, str | None]:
    """(province, commune) where the procedure is carried out: the form's place, else the
    applicant's permanent residence (``residence``: the person's row with ``province_code`` and
    ``commune_code`` when the caller has read it already)."""
    for path in PLACE_FIELDS:
        value = _lookup(data, path)
        if isinstance(value, Mapping) and isinstance(value.get("commune_code"), str):
            value = value["commune_code"]
        if isinstance(value, str) and value:
            commune = places.COMMUNES.get(value)
            if commune is None:
                raise InvalidInput(f"No commune has code {value!r} (five digits, 2025 codes).",
                                   code="place_unknown", field=path)
            return commune.province_code, commune.code
    row = residence if residence is not None else conn.execute(
        sa.select(persons.c.province_code, persons.c.commune_code).where(persons.c.person_id == person_id)).first()
    if row is None or not row.province_code:
        raise InvalidInput("The form names no place and the applicant has no residence in the register.",
                           code="place_unknown", field="data")
    return row.province_code, row.commune_code


def document_agency(version: ServiceVersion, province: str, commune: str | None) -> DocumentAgency:
    """The agency that signs the dossier's slips: the catalogue's agency at the dossier's place
    (code ``CONG-AN-XA.00070``: one signing key per agency and place)."""
    return _document_agency(version.agency, version.sector, province, commune)


def _document_agency(agency: CatalogueAgency, sector: str, province: str, commune: str | None) -> DocumentAgency:
    level, where = agency.level, None
    if level == "commune" and commune:
        where = places.COMMUNES[commune].name
        code = f"{agency.code.upper()}.{commune}"
    elif level == "national":
        code = agency.code.upper()
    else:
        where = places.PROVINCES[province].name
        code = f"{agency.code.upper()}.{province}"
    name = agency.name.vi + (f" – {where}" if where else "")
    parent = "Bộ Công an" if sector == "police" else (
        places.PROVINCES[province].name if level != "national" else "Chính phủ")
    return DocumentAgency(code=code[:30], name=name[:120], parent=parent, place=places.PROVINCES[province].short_name)


def new_code(conn: sa.Connection, version: ServiceVersion, province: str, commune: str | None, day: dt.date) -> str:
    return _new_code(conn, version.agency.level, province, commune, day)


def _new_code(conn: sa.Connection, level: str, province: str, commune: str | None, day: dt.date) -> str:
    """The national dossier code: ``G{area}-{YYMMDD}-{NNNNNN}``, the area being the commune (5
    digits) for a commune-level agency, the province (2 digits) for a province-level one, ``00``
    for a ministry; the day of filing (Việt Nam); a sequence per area and day, claimed with one
    ``UPDATE ... RETURNING`` (concurrent filings wait for each other's row, never share a number)."""
    area = commune if level == "commune" and commune else ("00" if level == "national" else province)
    prefix = f"G{area}-{day:%y%m%d}"
    number = conn.execute(_CLAIM, {"area_day": prefix}).scalar()
    if number is None:
        try:
            with conn.begin_nested():
                conn.execute(dossier_sequences.insert().values(prefix=prefix, last=1))
            number = 1
        except sa.exc.IntegrityError:  # another filing made the row first: take the next number
            number = conn.execute(_CLAIM, {"area_day": prefix}).scalar_one()
    if number > 999_999:
        raise Conflict("No dossier numbers are left for this area today.", code="sequence_exhausted")
    return f"{prefix}-{number:06d}"


# the next number of a prefix (built once: every filing claims one)
_CLAIM = (dossier_sequences.update().where(dossier_sequences.c.prefix == sa.bindparam("area_day"))
          .values(last=dossier_sequences.c.last + 1).returning(dossier_sequences.c.last))


@dataclass(frozen=True)
class Rules:
    """What a dossier is decided under: its procedure's name, agency, sector and processing days
    (the catalogue version's, or for a sub-dossier its group procedure's)."""

    name: str
    agency: CatalogueAgency
    sector: str
    processing_days: int


def _procedure_rules(version: ServiceVersion, procedure: GroupProcedure, day: dt.date) -> Rules:
    """A group procedure's rules: the first (birth, death registration) is decided on the group's
    clock (the same working day); one with a catalogue service takes that service's agency and
    processing days in force on ``day``; another agency's procedure (no code) takes its
    ``GroupProcedure.agency`` and the group's processing days."""
    assert version.group is not None
    first = procedure.key == version.group.procedures[0].key
    own = None
    if procedure.code is not None:
        try:
            own = catalogue.service(procedure.code, day)
        except NotFound:
            own = None
    if own is not None:
        return Rules(procedure.name.vi, own.agency, own.sector,
                     version.processing_days if first else own.processing_days)
    sector = "police" if procedure.agency.code.startswith("cong-an") else "other"
    return Rules(procedure.name.vi, procedure.agency, sector, version.processing_days)


def _rules(row) -> Rules:
    version = catalogue.version(row.version_id)
    if row.procedure is None:
        return Rules(version.name.vi, version.agency, version.sector, version.processing_days)
    assert version.group is not None
    procedure = next(p for p in version.group.procedures if p.key == row.procedure)
    return _procedure_rules(version, procedure, vietnam_date(row.created_at))


def _row(conn: sa.Connection, dossier_id: object, *, person_id: int | None = None, area: Area | None = None,
         agency: str | None = None):
    """The dossier if the caller may see it: the applicant (``person_id``) or an officer whose
    ``area`` covers its place and who works for its agency (``agency``; None: the area's one-stop
    shop, every agency); otherwise the same 404 as an unknown id."""
    if not isinstance(dossier_id, int) or isinstance(dossier_id, bool):
        raise InvalidInput("dossier_id is a number.", field="dossier_id")
    row = conn.execute(sa.select(dossiers).where(dossiers.c.dossier_id == dossier_id)).first()
    visible = row is not None and (
        (person_id is not None and row.person_id == person_id)
        or (area is not None and area.covers_place(row.place_province, row.place_commune or "")
            and (agency is None or row.agency_code == agency)))
    if not visible:
        raise DossierNotFound("No dossier with this id.", field="dossier_id")
    return row


def _area_clause(area: Area):
    if area.commune is not None:
        return dossiers.c.place_commune == area.commune
    if area.province is not None:
        return dossiers.c.place_province == area.province
    return sa.true()


def _move(conn: sa.Connection, row, action: str, actor: str, now: dt.datetime, *, reason: str | None = None,
          **values) -> str:
    """Move the dossier by ``action``: one conditional UPDATE from the states it may come from and
    the version read, its history row and its outbox message. Of concurrent movers one wins; the
    others get ``invalid_transition`` naming the state it is in now (or ``conflict`` if it still
    allows the action: retry)."""
    to = workflow.target(action, row.status)
    froms = workflow.TRANSITIONS[action][0]
    moved = conn.execute(dossiers.update()
                         .where(dossiers.c.dossier_id == row.dossier_id, dossiers.c.status.in_(froms),
                                dossiers.c.version == row.version)
                         .values(status=to, version=row.version + 1, updated_at=now, **values)).rowcount
    if moved != 1:
        state = conn.execute(sa.select(dossiers.c.status).where(dossiers.c.dossier_id == row.dossier_id)).scalar_one()
        if state in froms:
            raise Conflict("The dossier changed meanwhile; read it again and retry.", field="dossier_id")
        raise InvalidTransition(action, state)
    conn.execute(dossier_events.insert().values(
        dossier_id=row.dossier_id, seq=row.version + 1, from_status=row.status, to_status=to, action=action,
        actor=actor[:80], reason=reason, at=now))
    enqueue(conn, TOPIC, row.person_id, {"dossier": row.code, "status": to, "action": action,
                                         "at": now.isoformat()})
    return to


def _issue(conn: sa.Connection, vault: Vault, row, kind: str, *, base_url: str, actor: str, now: dt.datetime,
           **fields) -> str:
    rules = _rules(row)
    issued = results.issue_document(conn, vault, kind, row.person_id,
                                    agency=_document_agency(rules.agency, rules.sector, row.place_province,
                                                            row.place_commune),
                                    base_url=base_url, actor=actor, dossier=row.code, procedure=rules.name,
                                    now=now, **fields)
    conn.execute(dossier_documents.insert().values(dossier_id=row.dossier_id, code=issued.code, kind=kind,
                                                   issued_at=now))
    return issued.code


def _text(value: object, field: str, *, required: bool, code: str = "reason_required") -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise InvalidInput(f"{field} is required.", code=code, field=field)
        return None
    if not isinstance(value, str) or len(value) > 500:
        raise InvalidInput(f"{field} is a text of at most 500 characters.", field=field)
    if UNSAFE_TEXT.search(value):  # a NUL (PostgreSQL cannot store it), escapes, invisible characters
        raise InvalidInput(f"{field} holds a control or invisible character.", field=field)
    return value.strip()


# ------------------------------------------------------------------------------ the citizen


def file(conn: sa.Connection, person_id: int, service_code: str, data: object, *, account_id: int | None = None,
         now: dt.datetime | None = None) -> dict:
    """File a dossier for ``service_code`` with the form ``data``: checked against the version in
    force today, routed to its place, its fee computed; ``submitted`` with its estimated due date."""
    now = now or utcnow()
    today = vietnam_date(now)
    if not isinstance(service_code, str):
        raise InvalidInput("service is a service code of the catalogue.", field="service")
    try:
        version = catalogue.service(service_code, today)
    except NotFound as exc:
        exc.field = "service" if exc.field == "code" else exc.field
        raise
    catalogue.require_valid_form(version, data)
    assert isinstance(data, dict)
    own = _applicant(conn, data, person_id)
    province, commune = place_of(conn, data, person_id, residence=own)
    fee = catalogue.fee_for(version, province, CHANNEL, today, data)
    if version.group is not None:
        return _file_group(conn, person_id, version, data, province, commune, fee.amount, account_id=account_id,
                           now=now)
    due = calendar.due_date(now, version.processing_days)
    code = new_code(conn, version, province, commune, today)
    dossier_id = conn.execute(_INSERT_DOSSIER, dict(
        code=code, service_code=version.code, version_id=version.version_id, person_id=person_id,
        account_id=account_id, place_province=province, place_commune=commune, agency_code=version.agency.code,
        agency_level=version.agency.level, status=SUBMITTED, data=data, fee_amount=fee.amount, due_date=due,
        version=1, created_at=now, updated_at=now)).scalar_one()
    conn.execute(_INSERT_EVENT, dict(dossier_id=dossier_id, seq=1, from_status=None, to_status=SUBMITTED,
                                     action="file", actor=f"citizen:{person_id}", at=now))
    enqueue(conn, TOPIC, person_id, {"dossier": code, "status": SUBMITTED, "action": "file", "at": now.isoformat()})
    return {"dossier_id": dossier_id, "code": code, "status": SUBMITTED, "due_date": due.isoformat(),
            "fee_amount": fee.amount}


def _applicant(conn: sa.Connection, data: Mapping[str, Any], person_id: int):
    """The logged-in citizen's row (number, residence); ``applicant_mismatch`` when the form names
    someone else: the applicant is whoever logged in, never someone they name (filing, supplement)."""
    applicant = data.get("applicant")
    given = applicant.get("pid") if isinstance(applicant, Mapping) else None
    own = conn.execute(_APPLICANT, {"person_id": person_id}).first()
    if given is not None and given != (own.pid if own is not None else None):
        raise InvalidInput("applicant.pid is not the logged-in citizen's number.", code="applicant_mismatch",
                           field="applicant.pid")
    return own


# The filing's statements, built once (a filing is the busiest write of the season).
_APPLICANT = sa.select(persons.c.pid, persons.c.province_code, persons.c.commune_code).where(
    persons.c.person_id == sa.bindparam("person_id"))
_INSERT_DOSSIER = dossiers.insert().returning(dossiers.c.dossier_id)
_INSERT_EVENT = dossier_events.insert()


def _chosen(version: ServiceVersion, data: Mapping[str, Any]) -> list[GroupProcedure]:
    """The group's procedures the applicant chose (the form's field), in the catalogue's order;
    every mandatory one must be there (422 ``mandatory_procedure_missing`` naming the field)."""
    group = version.group
    assert group is not None
    keys = data.get(group.field)
    known = {p.key: p for p in group.procedures}
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys) or len(set(keys)) != len(keys):
        raise InvalidInput(f"{group.field} lists the procedures' keys, each once.", field=group.field)
    unknown = [k for k in keys if k not in known]
    if unknown:
        raise InvalidInput(f"{group.field}: unknown procedure {unknown[0]!r}.", field=group.field)
    missing = [p.key for p in group.procedures if p.mandatory and p.key not in keys]
    if missing:
        raise InvalidInput(f"{group.field} must include the mandatory procedures: {', '.join(missing)}.",
                           code="mandatory_procedure_missing", field=group.field)
    if not group.choose_min <= len(keys) <= group.choose_max:
        raise InvalidInput(f"{group.field}: choose {group.choose_min} to {group.choose_max} procedures.",
                           field=group.field)
    return [p for p in group.procedures if p.key in keys]


def _file_group(conn: sa.Connection, person_id: int, version: ServiceVersion, data: dict, province: str,
                commune: str | None, fee: int, *, account_id: int | None, now: dt.datetime) -> dict:
    """A linked group: the parent, then one sub-dossier per chosen procedure (the first carries the
    group's fee; the others wait for it), each with its own code, agency, due date, event and notice."""
    chosen = _chosen(version, data)
    today = vietnam_date(now)
    actor = f"citizen:{person_id}"
    common = {"version_id": version.version_id, "person_id": person_id, "account_id": account_id,
              "place_province": province, "place_commune": commune, "status": SUBMITTED, "data": data,
              "version": 1, "created_at": now, "updated_at": now}
    plans = [(p, _procedure_rules(version, p, today)) for p in chosen]
    dues = [calendar.due_date(now, rules.processing_days) for _, rules in plans]
    code = _new_code(conn, version.agency.level, province, commune, today)
    parent_id = conn.execute(dossiers.insert().values(
        code=code, service_code=version.code, agency_code=version.agency.code, agency_level=version.agency.level,
        kind=GROUP, fee_amount=0, due_date=max(dues), **common).returning(dossiers.c.dossier_id)).scalar_one()
    conn.execute(dossier_events.insert().values(dossier_id=parent_id, seq=1, from_status=None, to_status=SUBMITTED,
                                                action="file", actor=actor, at=now))
    enqueue(conn, TOPIC, person_id, {"dossier": code, "status": workflow.IN_PROGRESS, "action": "file",
                                     "at": now.isoformat()})
    children, first_id = [], None
    for (procedure, rules), due in zip(plans, dues, strict=True):
        child_code = _new_code(conn, rules.agency.level, province, commune, today)
        amount = fee if first_id is None else 0
        child_id = conn.execute(dossiers.insert().values(
            code=child_code, service_code=procedure.code or version.code, agency_code=rules.agency.code,
            agency_level=rules.agency.level, kind=SINGLE, parent_id=parent_id, procedure=procedure.key,
            waits_for=first_id, fee_amount=amount, due_date=due, **common).returning(dossiers.c.dossier_id)).scalar_one()
        conn.execute(dossier_events.insert().values(dossier_id=child_id, seq=1, from_status=None,
                                                    to_status=SUBMITTED, action="file", actor=actor, at=now))
        enqueue(conn, TOPIC, person_id, {"dossier": child_code, "status": SUBMITTED, "action": "file",
                                         "at": now.isoformat()})
        children.append({"dossier_id": child_id, "code": child_code, "procedure": procedure.key,
                         "agency": rules.agency.code, "status": SUBMITTED, "due_date": due.isoformat(),
                         "fee_amount": amount, "waits_for": first_id})
        first_id = first_id or child_id
    return {"dossier_id": parent_id, "code": code, "status": workflow.IN_PROGRESS, "due_date": max(dues).isoformat(),
            "fee_amount": fee, "children": children}


def supplement(conn: sa.Connection, dossier_id: int, person_id: int, data: object, *,
               now: dt.datetime | None = None) -> dict:
    """The citizen's supplement: the form's fields given replace those filed (the whole checked
    again); the dossier is ``received`` again and its clock runs with the working days it had left."""
    now = now or utcnow()
    row = _row(conn, dossier_id, person_id=person_id)
    workflow.target("supplement", row.status)
    if not isinstance(data, dict) or not data:
        raise InvalidInput("data is an object with the fields supplied.", field="data")
    merged = {**row.data, **data}
    catalogue.require_valid_form(catalogue.version(row.version_id), merged)
    own = _applicant(conn, merged, person_id)  # checked as at the filing
    moved = [path for path in PLACE_FIELDS if _lookup(data, path) is not None]
    if moved and place_of(conn, merged, person_id, residence=own) != place_of(conn, row.data, person_id,
                                                                               residence=own):
        # the dossier was routed by its place: the agency there holds it, and its decision applies there
        raise InvalidInput("A supplement cannot move the procedure to another place: withdraw the dossier and "
                           "file it again there.", code="place_changed", field=moved[0])
    supplied_on = calendar.received_on(now)
    due = calendar.due_after_supplement(row.due_date, row.paused_since, supplied_on)
    _move(conn, row, "supplement", f"citizen:{person_id}", now, data=merged, due_date=due, paused_since=None,
          supplement_due=None)
    _cancel(conn, SUPPLEMENT_EXPIRED, row.code)
    _schedule(conn, OVERDUE, row.code, due, {"dossier_id": row.dossier_id})
    return view(conn, dossier_id, person_id=person_id)


def withdraw(conn: sa.Connection, dossier_id: int, person_id: int, *, reason: str | None = None,
             now: dt.datetime | None = None) -> dict:
    """The citizen withdraws their dossier before a decision; its timers stop. Withdrawing a group
    (or its first procedure, which the others wait for) withdraws every undecided sub-dossier."""
    now = now or utcnow()
    row = _row(conn, dossier_id, person_id=person_id)
    why = _text(reason, "reason", required=False)
    actor = f"citizen:{person_id}"
    if row.kind == GROUP or (row.status in OPEN and _waiters(conn, row)):
        parent_id = row.dossier_id if row.kind == GROUP else row.parent_id
        open_ = [c for c in _children(conn, parent_id) if c.status in OPEN]
        if not open_:
            raise InvalidTransition("withdraw", workflow.group_status(c.status for c in _children(conn, parent_id)))
        for child in open_:
            _withdraw(conn, child, actor, now, why)
        _settle(conn, open_[0], now)
    else:
        _withdraw(conn, row, actor, now, why)
        _settle(conn, row, now)
    return view(conn, dossier_id, person_id=person_id)


def _withdraw(conn, row, actor: str, now: dt.datetime, reason: str | None) -> None:
    _move(conn, row, "withdraw", actor, now, reason=reason, decided_at=now)
    _cancel(conn, SUPPLEMENT_EXPIRED, row.code)
    _cancel(conn, OVERDUE, row.code)


def _children(conn: sa.Connection, parent_id: int) -> list:
    return conn.execute(sa.select(dossiers).where(dossiers.c.parent_id == parent_id)
                        .order_by(dossiers.c.dossier_id)).all()


def _waiters(conn: sa.Connection, row) -> list:
    """The sub-dossiers that wait for ``row`` (the first procedure of its group)."""
    if row.parent_id is None:
        return []
    return conn.execute(sa.select(dossiers).where(dossiers.c.waits_for == row.dossier_id)
                        .order_by(dossiers.c.dossier_id)).all()


def _waiting_for(conn: sa.Connection, row):
    """The sub-dossier ``row`` still waits for (not approved yet), else None."""
    if row.waits_for is None:
        return None
    first = conn.execute(sa.select(dossiers.c.dossier_id, dossiers.c.code, dossiers.c.procedure, dossiers.c.status)
                         .where(dossiers.c.dossier_id == row.waits_for)).one()
    return None if first.status == APPROVED else first


def _settle(conn: sa.Connection, row, now: dt.datetime) -> None:
    """After a sub-dossier's decision: once none of its group is undecided, the citizen is notified
    of the group's derived status (the parent itself is never moved)."""
    if row.parent_id is None:
        return
    states = [c.status for c in _children(conn, row.parent_id)]
    status = workflow.group_status(states)
    if status != workflow.IN_PROGRESS:
        parent = conn.execute(sa.select(dossiers.c.code, dossiers.c.person_id)
                              .where(dossiers.c.dossier_id == row.parent_id)).one()
        enqueue(conn, TOPIC, parent.person_id, {"dossier": parent.code, "status": status, "action": "group_decided",
                                                "at": now.isoformat()})


def start_fee_payment(conn: sa.Connection, merchant, dossier_id: int, person_id: int, *, return_url: str,
                      ip_addr: str, now: dt.datetime | None = None) -> dict:
    """The citizen starts paying their dossier's fee (``fees.payments``, keyed by the dossier's code;
    the amount is the dossier's, from the catalogue): the gateway URL to go to. Only a ``submitted``
    dossier that owes a fee is paid; receiving it waits for the payment."""
    from dinhdanh.fees import payments

    row = _row(conn, dossier_id, person_id=person_id)
    if row.fee_amount <= 0:
        raise RuleViolation("This dossier owes no fee.", code="no_fee_due", field="dossier_id")
    if row.status != SUBMITTED:
        raise InvalidTransition("pay", row.status)
    started = payments.start_payment(conn, merchant, row.code, row.fee_amount, return_url=return_url,
                                     ip_addr=ip_addr, order_info=f"Le phi ho so {row.code}",
                                     actor=f"citizen:{person_id}", now=now)
    return started.as_dict() | {"dossier": row.code}


# ------------------------------------------------------------------------------ the officer


def act(conn: sa.Connection, vault: Vault, dossier_id: int, action: str, *, actor: str, area: Area = NATIONAL,
        base_url: str, reason: str | None = None, items: list[str] | None = None,
        new_due_date: dt.date | None = None, now: dt.datetime | None = None, agency: str | None = None) -> dict:
    """An officer's action on a dossier in their area (and of their ``agency``): ``receive`` (once the fee is paid; the
    receipt with the due date), ``request_supplement`` (``items``; the request slip; the clock
    stops), ``approve`` (the signed result), ``refuse`` (``reason``; the refusal slip), ``extend``
    (an overdue dossier, ``new_due_date``; the apology slip)."""
    now = now or utcnow()
    action = workflow.check_action(action, workflow.OFFICER_ACTIONS)
    row = _row(conn, dossier_id, area=area, agency=agency)
    today = vietnam_date(now)
    if row.kind == GROUP:
        raise RuleViolation("A linked group is decided through its sub-dossiers, one per agency.",
                            code="group_dossier", field="dossier_id")
    workflow.target(action, row.status)  # before the inputs: a wrong state is named first
    first = _waiting_for(conn, row)
    if first is not None:
        raise RuleViolation(f"This sub-dossier waits for {first.procedure} ({first.code}) to be approved.",
                            code="waiting_for_linked", field="action")
    if action == "receive":
        _receive(conn, vault, row, actor=actor, base_url=base_url, now=now)
    elif action == "request_supplement":
        if isinstance(items, str) or not items or not all(isinstance(i, str) and i.strip() for i in items):
            raise InvalidInput("items lists what must be supplied (at least one text).", code="items_required",
                               field="items")
        if any(UNSAFE_TEXT.search(i) for i in items):  # as ``_text``: a NUL, escapes, invisible characters
            raise InvalidInput("items holds a control or invisible character.", field="items")
        asked = _text(reason, "reason", required=False)
        if row.due_date < today:  # the clock cannot stop after it ran out: extend (apologise) first
            raise RuleViolation(f"The dossier was due on {row.due_date.isoformat()}: extend it first.",
                                code="overdue_extend_first", field="action")
        deadline = calendar.supplement_deadline(today)
        _move(conn, row, action, actor, now, reason="; ".join(items)[:2000] if asked is None else asked,
              paused_since=today, supplement_due=deadline)
        _issue(conn, vault, row, "supplement_request", base_url=base_url, actor=actor, now=now,
               reasons=[i.strip() for i in items], due_date=deadline)
        _cancel(conn, OVERDUE, row.code)
        _schedule(conn, SUPPLEMENT_EXPIRED, row.code, deadline, {"dossier_id": row.dossier_id})
    elif action == "approve":
        note = _text(reason, "reason", required=False)
        _move(conn, row, action, actor, now, reason=note, decided_at=now)
        # the register changes in this unit of work, through its life events; its refusal (409) undoes the move
        effect = effects.apply(conn, row, Actor(actor, area), effects.Context(vault, now))
        text = (f"Chấp thuận hồ sơ {row.code} đề nghị giải quyết thủ tục {_rules(row).name}."
                + (f"\nSố định danh cá nhân được cấp: {effect['pid']}." if effect and effect["event"] == "birth"
                   else "")
                + (f"\n{note}" if note else ""))
        code = _issue(conn, vault, row, "result", base_url=base_url, actor=actor, now=now, text=text)
        conn.execute(dossiers.update().where(dossiers.c.dossier_id == row.dossier_id)
                     .values(result_code=code, effect=effect))
        _cancel(conn, OVERDUE, row.code)
        _settle(conn, row, now)
    elif action == "refuse":
        why = _text(reason, "reason", required=True)
        _refuse(conn, vault, row, why, actor=actor, base_url=base_url, now=now)
    else:  # extend
        if not (row.status == RECEIVED and row.due_date < today):
            raise RuleViolation(f"The dossier is due on {row.due_date.isoformat()}: not overdue.", code="not_overdue",
                                field="action")
        if not isinstance(new_due_date, dt.date) or isinstance(new_due_date, dt.datetime) \
                or not today < new_due_date <= today + MAX_EXTENSION:
            raise InvalidInput("new_due_date is a date after today, at most a year away.",
                               code="new_due_date_invalid", field="new_due_date")
        note = _text(reason, "reason", required=False)
        _move(conn, row, action, actor, now, reason=note, due_date=new_due_date, overdue_at=None)
        _issue(conn, vault, row, "apology", base_url=base_url, actor=actor, now=now, due_date=new_due_date,
               reasons=[note] if note else [])
        _schedule(conn, OVERDUE, row.code, new_due_date, {"dossier_id": row.dossier_id})
    return view(conn, dossier_id, area=area, agency=agency)


def _receive(conn, vault, row, *, actor: str, base_url: str, now: dt.datetime) -> None:
    from dinhdanh.fees import payments

    if row.fee_amount > 0 and not payments.is_paid(conn, row.code):
        raise RuleViolation(f"The dossier owes {row.fee_amount} VND, not paid yet.", code="fee_unpaid", field="fee")
    received = calendar.received_on(now)
    due = calendar.add_working_days(received, _rules(row).processing_days)
    _move(conn, row, "receive", actor, now, received_on=received, due_date=due)
    _issue(conn, vault, row, "receipt", base_url=base_url, actor=actor, now=now, due_date=due)
    _schedule(conn, OVERDUE, row.code, due, {"dossier_id": row.dossier_id})


def _refuse(conn, vault, row, reason: str, *, actor: str, base_url: str, now: dt.datetime,
            settle: bool = True) -> None:
    """Refuse with the refusal slip; a group's first procedure takes the sub-dossiers waiting for
    it with it (each refused with the linked reason and its own slip, by its own agency)."""
    _move(conn, row, "refuse", actor, now, reason=reason, decided_at=now, paused_since=None)
    _issue(conn, vault, row, "refusal", base_url=base_url, actor=actor, now=now, reasons=[reason])
    _cancel(conn, SUPPLEMENT_EXPIRED, row.code)
    _cancel(conn, OVERDUE, row.code)
    fee = catalogue.version(row.version_id).fee
    if row.fee_amount > 0 and fee is not None and fee.refund_on_refusal == "full":
        from dinhdanh.fees import refunds

        refunds.schedule_refund(conn, row.code, f"Hồ sơ {row.code} bị từ chối: {reason}", now)
    linked = LINKED_REFUSAL.format(_rules(row).name)
    for waiter in _waiters(conn, row):
        if waiter.status in OPEN:
            _refuse(conn, vault, waiter, linked, actor=LINKED, base_url=base_url, now=now, settle=False)
    if settle:
        _settle(conn, row, now)


# ------------------------------------------------------------------------------ timers


def refuse_unsupplied(conn: sa.Connection, vault: Vault, dossier_id: int, *, base_url: str,
                      now: dt.datetime | None = None) -> bool:
    """The scheduler's automatic refusal of a dossier whose supplement did not come in time.
    Nothing happens (False) when the dossier moved on or its deadline is not past."""
    now = now or utcnow()
    row = conn.execute(sa.select(dossiers).where(dossiers.c.dossier_id == dossier_id)).first()
    if row is None or row.status != SUPPLEMENT or row.supplement_due is None \
            or row.supplement_due >= vietnam_date(now):
        return False
    _refuse(conn, vault, row, AUTOMATIC_REFUSAL, actor=SYSTEM, base_url=base_url, now=now)
    return True


def flag_overdue(conn: sa.Connection, dossier_id: int, *, now: dt.datetime | None = None) -> bool:
    """The deadline timer: mark when a dossier was found undecided past its due date (the
    worklist's ``overdue`` filter computes from the due date; this records the moment)."""
    now = now or utcnow()
    return conn.execute(dossiers.update().where(
        dossiers.c.dossier_id == dossier_id, dossiers.c.status == RECEIVED,
        dossiers.c.due_date < vietnam_date(now), dossiers.c.overdue_at.is_(None)).values(overdue_at=now)).rowcount == 1


# ------------------------------------------------------------------------------ reading


def _summary(conn: sa.Connection, row, today: dt.date) -> dict:
    out = {"dossier_id": row.dossier_id, "code": row.code, "service": row.service_code, "version": row.version_id,
           "kind": row.kind, "status": row.status, "status_label": workflow.LABELS[row.status],
           "due_date": row.due_date.isoformat(),
           "overdue": row.status == RECEIVED and row.due_date < today, "fee_amount": row.fee_amount,
           "place": {"province": row.place_province, "commune": row.place_commune},
           "agency": {"code": row.agency_code, "level": row.agency_level},
           "filed_at": row.created_at.isoformat(), "updated_at": row.updated_at.isoformat()}
    if row.kind == GROUP:  # derived from the sub-dossiers
        children = _children(conn, row.dossier_id)
        status = workflow.group_status(c.status for c in children)
        out.update(status=status, status_label=workflow.GROUP_LABELS[status],
                   fee_amount=sum(c.fee_amount for c in children))
    if row.parent_id is not None:
        first = _waiting_for(conn, row)
        out.update(parent_id=row.parent_id, procedure=row.procedure, procedure_name=_rules(row).name,
                   waiting_for=None if first is None else {"dossier_id": first.dossier_id, "code": first.code,
                                                           "procedure": first.procedure})
        if first is not None:
            out["status_label"] = workflow.WAITING_LABEL
    return out


def view(conn: sa.Connection, dossier_id: int, *, person_id: int | None = None, area: Area | None = None,
         now: dt.datetime | None = None, agency: str | None = None) -> dict:
    """One dossier with its form, status history, slips and result (the caller audits an officer's read)."""
    row = _row(conn, dossier_id, person_id=person_id, area=area, agency=agency)
    today = vietnam_date(now or utcnow())
    out = _summary(conn, row, today)
    events = conn.execute(sa.select(dossier_events).where(dossier_events.c.dossier_id == row.dossier_id)
                          .order_by(dossier_events.c.seq)).all()
    docs = conn.execute(sa.select(dossier_documents).where(dossier_documents.c.dossier_id == row.dossier_id)
                        .order_by(dossier_documents.c.issued_at, dossier_documents.c.code)).all()
    out.update({
        "person_id": row.person_id, "data": row.data, "received_on": _iso(row.received_on),
        "paused_since": _iso(row.paused_since), "supplement_due": _iso(row.supplement_due),
        "result_code": row.result_code, "decided_at": row.decided_at.isoformat() if row.decided_at else None,
        "effect": row.effect,
        "history": [{"seq": e.seq, "from": e.from_status, "to": e.to_status, "action": e.action, "actor": e.actor,
                     "reason": e.reason, "at": e.at.isoformat()} for e in events],
        "documents": [{"kind": d.kind, "code": d.code, "issued_at": d.issued_at.isoformat()} for d in docs],
    })
    if row.kind == GROUP:
        out["children"] = [_child(conn, c, today) for c in _children(conn, row.dossier_id)]
    return out


def _child(conn: sa.Connection, row, today: dt.date) -> dict:
    docs = conn.execute(sa.select(dossier_documents).where(dossier_documents.c.dossier_id == row.dossier_id)
                        .order_by(dossier_documents.c.issued_at, dossier_documents.c.code)).all()
    return _summary(conn, row, today) | {
        "result_code": row.result_code, "decided_at": row.decided_at.isoformat() if row.decided_at else None,
        "effect": row.effect,
        "documents": [{"kind": d.kind, "code": d.code, "issued_at": d.issued_at.isoformat()} for d in docs]}


def _iso(day: dt.date | None) -> str | None:
    return day.isoformat() if day is not None else None


def _limit(limit: object) -> int:
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit is 1 to {MAX_PAGE}.", field="limit")
    return limit


def citizen_dossiers(conn: sa.Connection, person_id: int, *, limit: int = 50, before: int | None = None,
                     now: dt.datetime | None = None) -> dict:
    """The citizen's own dossiers, newest first, a page of ``limit`` before the id ``before``."""
    limit = _limit(limit)
    query = sa.select(dossiers).where(dossiers.c.person_id == person_id)
    if before is not None:
        query = query.where(dossiers.c.dossier_id < before)
    rows = conn.execute(query.order_by(dossiers.c.dossier_id.desc()).limit(limit + 1)).all()
    today = vietnam_date(now or utcnow())
    return {"items": [_summary(conn, r, today) for r in rows[:limit]],
            "next_before": rows[limit - 1].dossier_id if len(rows) > limit else None}


def worklist(conn: sa.Connection, area: Area, *, status: str | None = None, service: str | None = None,
             overdue: bool = False, limit: int = 50, before: int | None = None,
             now: dt.datetime | None = None, agency: str | None = None) -> tuple[dict, list[int]]:
    """The dossiers in an officer's area (of their ``agency``, when they work for one), newest
    first, filtered; and the persons to audit. ``overdue``: received and due before today (Việt Nam)."""
    limit = _limit(limit)
    today = vietnam_date(now or utcnow())
    query = sa.select(dossiers).where(_area_clause(area), dossiers.c.kind != GROUP)  # officers act on sub-dossiers
    if agency is not None:
        query = query.where(dossiers.c.agency_code == agency)
    if status is not None:
        if status not in workflow.STATES:
            raise InvalidInput(f"status is one of {', '.join(workflow.STATES)}.", field="status")
        query = query.where(dossiers.c.status == status)
    if service is not None:
        query = query.where(dossiers.c.service_code == service)
    if overdue:
        query = query.where(dossiers.c.status == RECEIVED, dossiers.c.due_date < today)
    if before is not None:
        query = query.where(dossiers.c.dossier_id < before)
    rows = conn.execute(query.order_by(dossiers.c.dossier_id.desc()).limit(limit + 1)).all()
    page = rows[:limit]
    return ({"items": [_summary(conn, r, today) for r in page],
             "next_before": page[-1].dossier_id if len(rows) > limit else None},
            list(dict.fromkeys(r.person_id for r in page)))


def audit_officer_read(conn: sa.Connection, actor: str, person_ids: list[int], action: str) -> None:
    """An officer's view of dossiers, in the access log (purpose: settling administrative procedures)."""
    record_access(conn, actor, person_ids, action, "public_service", fields=["dossier"])


__all__ = ["OPEN", "act", "applicant_of_account", "citizen_dossiers", "file", "flag_overdue", "new_code",
           "refuse_unsupplied", "supplement", "view", "withdraw", "worklist"]
