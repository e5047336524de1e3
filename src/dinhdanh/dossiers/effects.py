"""What an approved dossier changes in the population register (issue 12).

``EFFECTS`` maps a service code to ``effect(conn, dossier, data, actor, ctx) -> summary`` (``ctx``:
the vault and the approval's time, for the registers that produce documents: cards, passports,
vehicles); the approve path (``service.act``) calls ``apply`` in the approval's unit of work, after the dossier's move and
before its result is issued. Every change goes through the register's own life events
(``registry.events.record_event``: its rules, the ``events``/``changes`` rows, the outbox message
and the other areas' hooks, e.g. a death revokes the card and locks the e-ID account), recorded by
the approving officer (``officer:<id>``, their area) with the reason "Hồ sơ <code>".

A refusal of the register (``RuleViolation``, or an ``InvalidInput``/``NotFound``/``Forbidden`` of
its own about the form's data) refuses the approval: ``RegisterRefused`` (409) keeps the
register's code and names the form's field; the caller's transaction rolls everything back, so the
dossier stays undecided and the register unchanged.

The summary (stored as ``dossiers.effect``, shown in the dossier's view) names the event (``event``,
``event_id``), the person's PID after it (``pid``: for a birth the child's new PID) and the fields
changed; a procedure that changes nothing in the register says so (``event`` null, ``note``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

import pydantic
import sqlalchemy as sa

from dinhdanh.cards import lifecycle
from dinhdanh.registry import commands as cmd
from dinhdanh.registry.errors import Conflict, Forbidden, InvalidInput, NotFound, RuleViolation
from dinhdanh.registry.events import Actor, EventResult, record_event
from dinhdanh.registry.tables import households, persons
from dinhdanh.store.vault import Vault
from dinhdanh.passports import service as passports
from dinhdanh.vehicles import service as vehicles

TEMPORARY_RESIDENCE = "1.004194"
PERMANENT_RESIDENCE = "1.004222"
TEMPORARY_ABSENCE = "1.003677"
BIRTH = "1.001193"
DEATH = "1.000656"
BIRTH_GROUP = "3.000722"  # its procedures without a catalogue code (health insurance, ID card) carry the group's
DEATH_GROUP = "2.002913"
ID_CARD = "2.001195"
PASSPORT = "1.001456"
STAY = "2.001159"
MOTORBIKE = "dd.motorbike-registration"


class RegisterRefused(RuleViolation):
    """The register refuses the change an approval would make (409, the register's code)."""


@dataclasses.dataclass(frozen=True)
class Context:
    """What an effect may need beside the connection: the vault (to sign what it produces) and the
    approval's time (the one clock of the unit of work)."""

    vault: Vault
    now: dt.datetime


Effect = Callable[[sa.Connection, Any, Mapping[str, Any], Actor, Context], dict]


def apply(conn: sa.Connection, dossier, actor: Actor, ctx: Context) -> dict | None:
    """The register's change for an approved ``dossier`` (its row), or None for a service without one."""
    effect = EFFECTS.get(dossier.service_code)
    return None if effect is None else effect(conn, dossier, dossier.data, actor, ctx)


# ------------------------------------------------------------------------------ helpers


def _record(conn: sa.Connection, actor: Actor, dossier, kind: str, fields: dict[str, Any],
            where: Mapping[str, str]) -> EventResult:
    """Record the life event ``kind`` with ``fields``; ``where`` maps the command's fields to the
    form's (to name the form's field when the register refuses)."""
    fields = {k: v for k, v in fields.items() if v is not None} | {"reason": f"Hồ sơ {dossier.code}"}
    try:
        command = cmd.EVENT_KINDS[kind].model_validate(fields)
    except pydantic.ValidationError as exc:
        error = exc.errors()[0]
        name = str(error["loc"][0]) if error["loc"] else ""
        raise RegisterRefused(f"The register cannot take the form's {where.get(name, name)}: {error['msg']}.",
                              code="register_invalid_input", field=where.get(name, "data")) from None
    try:
        return record_event(conn, actor, kind, command)
    except (RuleViolation, InvalidInput, NotFound, Forbidden) as exc:
        raise RegisterRefused(f"The register refuses the {kind.replace('-', ' ')}: {exc.message}",
                              code=exc.code, field=where.get(exc.field or "", exc.field)) from exc


def _summary(result: EventResult, **extra: Any) -> dict:
    return {"event": result.kind, "event_id": result.event_id, "pid": result.pid,
            "fields": sorted({c["field"] for c in result.changes}), **extra}


def _pid(conn: sa.Connection, person_id: int) -> str:
    return conn.execute(sa.select(persons.c.pid).where(persons.c.person_id == person_id)).scalar_one()


def _household_of(conn: sa.Connection, pid: str | None, field: str) -> str:
    """The number of the household ``pid`` lives in (the register's), else the register's refusal."""
    number = conn.execute(sa.select(households.c.number).select_from(
        persons.join(households, persons.c.household_id == households.c.household_id))
        .where(persons.c.pid == pid, households.c.dissolved_at.is_(None))).scalar()
    if number is None:
        raise RegisterRefused("The register has no household for this person to join.",
                              code="household_required", field=field)
    return number


def _first_effect(conn: sa.Connection, dossier) -> dict:
    """The effect of the linked group's first procedure (birth or death registration) ``dossier`` waited for."""
    if dossier.waits_for is None:
        return {}
    from dinhdanh.dossiers.tables import dossiers

    effect = conn.execute(sa.select(dossiers.c.effect).where(dossiers.c.dossier_id == dossier.waits_for)).scalar()
    return effect or {}


# ------------------------------------------------------------------------------ the effects


def temporary_residence(conn: sa.Connection, dossier, data: Mapping[str, Any], actor: Actor, ctx: Context) -> dict:
    """Đăng ký tạm trú: the applicant's temporary residence at ``stay_address`` from ``from`` to ``until``."""
    stay = data["stay_address"]
    result = _record(conn, actor, dossier, "temporary-residence", {
        "pid": _pid(conn, dossier.person_id), "commune_code": stay["commune_code"], "address": stay["street"],
        "until": data["until"], "date": data["from"]},
        {"pid": "applicant.pid", "commune_code": "stay_address.commune_code", "address": "stay_address.street",
         "until": "until", "date": "from"})
    return _summary(result, commune_code=stay["commune_code"], until=data["until"])


def permanent_residence(conn: sa.Connection, dossier, data: Mapping[str, Any], actor: Actor, ctx: Context) -> dict:
    """Đăng ký thường trú: the applicant moves to ``new_address``, joining ``household`` (its number,
    else the head's) or founding a new one. In the birth group the child's residence was registered
    by the birth itself (in the household chosen in ``residence``): nothing more to record."""
    if "child" in data:  # the linked group's sub-dossier
        first = _first_effect(conn, dossier)
        return {"event": None, "pid": first.get("pid"), "household": first.get("household"),
                "note": "Thường trú của trẻ đã được ghi vào Cơ sở dữ liệu quốc gia về dân cư khi đăng ký khai sinh."}
    address, joined = data["new_address"], data.get("household")
    fields: dict[str, Any] = {"pid": _pid(conn, dossier.person_id), "commune_code": address["commune_code"],
                              "address": address["street"], "dossier_number": dossier.code}
    if joined:
        fields |= {"household_number": joined.get("number") or _household_of(conn, joined["head_pid"],
                                                                               "household.head_pid"),
                   "relation_to_head": joined["relation_to_head"]}
    else:
        fields["new_household"] = True
    result = _record(conn, actor, dossier, "permanent-residence", fields, {
        "pid": "applicant.pid", "commune_code": "new_address.commune_code", "address": "new_address.street",
        "household_number": "household.number", "relation_to_head": "household.relation_to_head"})
    return _summary(result, commune_code=address["commune_code"], household=fields.get("household_number"))


def temporary_absence(conn: sa.Connection, dossier, data: Mapping[str, Any], actor: Actor, ctx: Context) -> dict:
    """Khai báo tạm vắng: the register's temporary absence (from, until, the destination's street)."""
    result = _record(conn, actor, dossier, "temporary-absence", {
        "pid": _pid(conn, dossier.person_id), "from_date": data["absent_from"], "until": data["absent_until"],
        "destination": data["destination"]["street"]},
        {"pid": "applicant.pid", "from_date": "absent_from", "until": "absent_until",
         "destination": "destination.street"})
    return _summary(result, until=data["absent_until"])


def stay_notification(conn: sa.Connection, dossier, data: Mapping[str, Any], actor: Actor, ctx: Context) -> dict:
    """Thông báo lưu trú: the guest's stay at ``stay_address`` (their current place of living while it
    lasts), notified by the applicant (the host, a member of the household or a lodging)."""
    stay = data["stay_address"]
    result = _record(conn, actor, dossier, "stay-notification", {
        "pid": data["guest"]["pid"], "commune_code": stay["commune_code"], "address": stay["street"],
        "from_date": data["from"], "until": data["until"], "host_pid": _pid(conn, dossier.person_id)},
        {"pid": "guest.pid", "commune_code": "stay_address.commune_code", "address": "stay_address.street",
         "from_date": "from", "until": "until", "host_pid": "applicant.pid"})
    return _summary(result, commune_code=stay["commune_code"], until=data["until"])


def birth(conn: sa.Connection, dossier, data: Mapping[str, Any], actor: Actor, ctx: Context) -> dict:
    """Đăng ký khai sinh (alone, or first in the birth group): the register's birth gives the child a
    PID at once, linked to the parents (the applicant by ``applicant_role``, ``other_parent``), in
    the household of the parent chosen in the group's ``residence`` (else the mother's, the father's,
    or for another applicant their own)."""
    child, role = data["child"], data["applicant_role"]
    applicant = _pid(conn, dossier.person_id)
    other = (data.get("other_parent") or {}).get("pid")
    parents = {"mother": None, "father": None}
    if role in parents:
        parents[role] = applicant
        parents["father" if role == "mother" else "mother"] = other
    household, relation = None, None
    residence = data.get("residence")
    if residence:  # the group: the child's permanent residence is with the parent chosen
        household = _household_of(conn, parents.get(residence["with"]), "residence.with")
        relation = residence["relation_to_head"]
    elif role not in parents:
        household = _household_of(conn, applicant, "applicant.pid")
    commune = data.get("registration_commune_code") or dossier.place_commune
    result = _record(conn, actor, dossier, "birth", {
        "full_name": child["full_name"], "sex": child["sex"], "date_of_birth": child["date_of_birth"],
        "commune_code": commune, "place_of_birth": child.get("place_of_birth"),
        "father_pid": parents["father"], "mother_pid": parents["mother"], "household_number": household,
        "relation_to_head": relation, "ethnicity": child.get("ethnicity"),
        "nationality": child.get("nationality", "VNM"), "hometown": child.get("hometown")},
        {"full_name": "child.full_name", "sex": "child.sex", "date_of_birth": "child.date_of_birth",
         "commune_code": "registration_commune_code", "place_of_birth": "child.place_of_birth",
         "father_pid": "applicant.pid" if role == "father" else "other_parent.pid",
         "mother_pid": "applicant.pid" if role == "mother" else "other_parent.pid",
         "household_number": "residence.with" if residence else "applicant.pid", "ethnicity": "child.ethnicity",
         "hometown": "child.hometown"})
    number = conn.execute(sa.select(households.c.number).select_from(
        persons.join(households, persons.c.household_id == households.c.household_id))
        .where(persons.c.pid == result.pid)).scalar()
    return {"event": result.kind, "event_id": result.event_id, "pid": result.pid, "household": number,
            "fields": sorted({c["field"] for c in result.changes})}


def death(conn: sa.Connection, dossier, data: Mapping[str, Any], actor: Actor, ctx: Context) -> dict:
    """Đăng ký khai tử (alone, or first in the death group): the register's death (which ends the
    residence registration and marriage; its hooks revoke the card and lock the e-ID account)."""
    deceased = data["deceased"]
    result = _record(conn, actor, dossier, "death",
                     {"pid": deceased["pid"], "date_of_death": deceased["date_of_death"]},
                     {"pid": "deceased.pid", "date_of_death": "deceased.date_of_death"})
    return _summary(result)


# the form's reason -> the card application's kind (cards.tables.APPLICATION_KINDS); None: worked out
# from the person's cards (a first card for one who regained nationality, a renewal otherwise)
CARD_KINDS = {"age_milestone": "renewal", "damaged": "reissue_damaged", "lost": "reissue_lost",
              "data_changed": "reissue_changed", "authority_error": "reissue_changed",
              "administrative_change": "reissue_changed", "gender_or_identity": "reissue_changed",
              "regained_nationality": None}


def id_card(conn: sa.Connection, dossier, data: Mapping[str, Any], actor: Actor, ctx: Context) -> dict:
    """Cấp đổi, cấp lại thẻ căn cước: the approval files the card application and approves it (the
    citizen applied through the dossier, the officer decided); the card area then produces the card
    (``cards.lifecycle.produce_card``, the 2023 "CĂN CƯỚC" model for cards from 1 July 2024) and
    hands it over. A lost card is revoked by the application itself."""
    pid = _pid(conn, dossier.person_id)
    kind = CARD_KINDS.get(data["reason"], "renewal" if data["kind"] == "renewal" else "reissue_changed")
    try:
        applied = lifecycle.submit_application(conn, Actor(f"dossier:{dossier.code}", actor.area), pid, kind,
                                               reason=f"Hồ sơ {dossier.code}")
        approved = lifecycle.approve_application(conn, actor, applied["application_id"])
    except (RuleViolation, InvalidInput, NotFound, Forbidden, Conflict) as exc:
        raise RegisterRefused(f"The card register refuses the application: {exc.message}", code=exc.code,
                              field={"kind": "kind", "pid": "applicant.pid"}.get(exc.field or "", "reason")) from exc
    return {"event": "card_application", "pid": pid, "application_id": approved["application_id"],
            "kind": approved["kind"], "status": approved["status"]}


def linked(conn: sa.Connection, dossier, data: Mapping[str, Any], actor: Actor, ctx: Context) -> dict:
    """A linked group's procedure of another agency (health insurance card, ID card, removal of
    residence, funeral and survivor allowances): nothing to change in the population register; the
    summary carries the PID the group's first procedure gave or concerned (the newborn's)."""
    first = _first_effect(conn, dossier)
    note = ("Việc xóa đăng ký thường trú đã được thực hiện khi đăng ký khai tử." if dossier.procedure ==
            "residence_removal" else "Thủ tục này không thay đổi Cơ sở dữ liệu quốc gia về dân cư.")
    return {"event": None, "pid": first.get("pid"), "note": note}


EFFECTS: dict[str, Effect] = {
    TEMPORARY_RESIDENCE: temporary_residence,
    PERMANENT_RESIDENCE: permanent_residence,
    TEMPORARY_ABSENCE: temporary_absence,
    BIRTH: birth,
    DEATH: death,
    BIRTH_GROUP: linked,
    DEATH_GROUP: linked,
    ID_CARD: id_card,
    STAY: stay_notification,
    MOTORBIKE: vehicles.dossier_effect,
    PASSPORT: passports.dossier_effect,
}
