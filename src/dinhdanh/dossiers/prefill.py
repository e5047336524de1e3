"""The prefill of a service's form: what the state already holds about the citizen filing it (issue 12).

Each field of the form with an ``x-source`` (``catalogue.prefill_fields``) is filled from the
logged-in person's data as the register, the card register and their e-ID wallet hold it; the form
then asks only for the rest (``ask``). A field read for another person (``x-source-of``: the
deceased, the partner) names that person by a PID the citizen has not typed yet: it is asked too.

``value_of`` is the pure mapping from a source to a value of a ``person`` view (``person_view``
builds it from the register's own read functions). It is the citizen reading their own data: not
an officer's read, so not written to the access log, and the values are never logged.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from dinhdanh.dossiers import catalogue
from dinhdanh.dossiers.catalogue.forms import (CARD_ITEMS, REGISTER_ITEMS, RELATIVE_ITEMS, RELATIVES, WALLET_ITEMS,
                                              WALLET_KINDS, fields)
from dinhdanh.dossiers.catalogue.model import ServiceVersion
from dinhdanh.registry.errors import NotFound
from dinhdanh.registry.tables import households, persons

__all__ = ["value_of", "prefill", "person_view", "prefill_for"]

# register items read as they stand in the record (records.record_of)
_DIRECT = ("pid", "full_name", "other_names", "date_of_birth", "sex", "place_of_birth", "hometown", "ethnicity",
           "religion", "nationality", "blood_type", "old_id_number", "marital_status", "phone", "email",
           "date_of_death", "current_address")
# the record's name of a relative (``register:representative.*`` is its legal representative)
_RELATIVE_KEY = {"father": "father", "mother": "mother", "spouse": "spouse", "representative": "legal_representative"}


def address_text(residence: Mapping[str, Any] | None) -> str | None:
    """A residence of the record (``records.place``) as one line: address, commune, province."""
    if not residence:
        return None
    parts = [residence.get(k) for k in ("address", "commune_name", "province_name")]
    text = ", ".join(str(p).strip() for p in parts if p and str(p).strip())
    return text or None


def _register(record: Mapping[str, Any], item: str) -> Any:
    if item in _DIRECT:
        return record.get(item)
    household = record.get("household") or {}
    return {
        "permanent_address": lambda: address_text(record.get("permanent_residence")),
        "permanent_commune_code": lambda: (record.get("permanent_residence") or {}).get("commune_code"),
        "temporary_address": lambda: address_text(record.get("temporary_residence")),
        "household_number": lambda: household.get("number"),
        "relation_to_head": lambda: household.get("relation_to_head"),
    }[item]()


def _relative(relative: Mapping[str, Any] | None, item: str) -> Any:
    if not relative:
        return None
    if item == "permanent_address":
        return address_text(relative.get("permanent_residence"))
    return relative.get(item)


def value_of(source: str, person: Mapping[str, Any]) -> Any:
    """The value ``source`` (one of ``forms.SOURCES``) has in ``person`` (``person_view``), None when
    the state holds none (no card yet, no such relative, no document in the wallet). ``KeyError``
    for a source this mapping does not know."""
    area, _, item = source.partition(":")
    if area == "register":
        record = person.get("record") or {}
        if item in REGISTER_ITEMS:
            return _register(record, item)
        who, _, sub = item.partition(".")
        if who in RELATIVES and sub in RELATIVE_ITEMS:
            return _relative((person.get("relatives") or {}).get(who), sub)
    elif area == "card" and item in CARD_ITEMS:
        card = person.get("card")
        return card.get(item) if card else None
    elif area == "wallet":
        kind, _, sub = item.partition(".")
        if kind in WALLET_KINDS and (sub == "" or sub in WALLET_ITEMS):
            document = (person.get("wallet") or {}).get(kind)
            return None if not document else document.get(sub or "number")
    raise KeyError(source)


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def prefill(version: ServiceVersion, person: Mapping[str, Any]) -> dict[str, Any]:
    """The prefill of ``version``'s form for ``person``: the fields the state fills, and those it
    cannot (``ask``): another person's, or a value the state does not hold."""
    titles = {path: sub.get("title") for path, sub in fields(version.form)}
    filled, ask = [], []
    for field in catalogue.prefill_fields(version):
        value = None if field.of is not None else value_of(field.source, person)
        if _empty(value):
            ask.append(field.field)
            continue
        entry = {"field": field.field, "value": value, "source": field.source}
        if titles.get(field.field):
            entry["label"] = titles[field.field]
        filled.append(entry)
    return {"service": version.code, "version": version.version_id, "fields": filled, "ask": ask}


def _iso(value) -> str | None:
    return value.isoformat() if isinstance(value, dt.date | dt.datetime) else value


def person_view(conn: sa.Connection, person_id: int, account_id: int | None = None, *,
                relatives: bool = True) -> dict[str, Any]:
    """What ``value_of`` reads: the person's record (``records.record_of``), their relatives'
    records, their current card and the documents of their e-ID wallet."""
    from dinhdanh.cards import lifecycle
    from dinhdanh.registry.records import find_person, record_of

    row = conn.execute(sa.select(persons).where(persons.c.person_id == person_id)).first()
    if row is None:
        raise NotFound("No person in the register for this account.", field="account")
    record = record_of(conn, row)
    kin: dict[str, Any] = {}
    if relatives:
        for who, key in _RELATIVE_KEY.items():
            brief = (record.get("relatives") or {}).get(key)
            if brief and brief.get("pid"):
                kin[who] = record_of(conn, find_person(conn, brief["pid"]))
    card = lifecycle.current_card(conn, person_id)
    documents: dict[str, Any] = {}
    if account_id is not None:
        from dinhdanh.eid import wallet

        for document in wallet.wallet(conn, account_id)["documents"]:
            data = document.get("data") or {}
            documents.setdefault(document["kind"], {
                "number": document["number"], "issuer": document["issuer"],
                "issued_on": _iso(data.get("issued_on")), "valid_until": document["valid_until"]})
    return {
        "record": record,
        "relatives": kin,
        "card": None if card is None else {"number": card.card_number, "issue_date": _iso(card.issue_date),
                                           "expiry_date": _iso(card.expiry_date)},
        "wallet": documents,
    }


def prefill_for(conn: sa.Connection, code: str, person_id: int, account_id: int | None = None,
                day: dt.date | None = None) -> dict[str, Any]:
    """The prefill of service ``code`` (as in force on ``day``, today by default) for the person;
    ``NotFound`` (field ``code``) for a service not in the catalogue. Only what the form's sources
    read is read (``_view_for``): most forms need the person's own row and nothing else."""
    version = catalogue.service(code, day)
    sources = [f.source for f in catalogue.prefill_fields(version) if f.of is None]
    return prefill(version, _view_for(conn, person_id, account_id, sources))


# The reads of the prefill, built once (it is on every filing's path).
_PERSON = sa.select(persons).where(persons.c.person_id == sa.bindparam("person_id"))
_HOUSEHOLD_NUMBER = sa.select(households.c.number).where(households.c.household_id == sa.bindparam("household_id"))


def _view_for(conn: sa.Connection, person_id: int, account_id: int | None, sources: list[str]) -> dict[str, Any]:
    """``person_view`` reduced to what ``sources`` read: the person's own row (one query) for the
    register's items about them, their household's number if asked; their relatives' records, the
    card and the wallet only when a source names them (then read as ``person_view`` reads them)."""
    areas = {s.partition(":")[0] for s in sources}
    register = [s.partition(":")[2] for s in sources if s.startswith("register:")]
    if any(item.partition(".")[0] in RELATIVES for item in register) or areas - {"register"}:
        return person_view(conn, person_id, account_id, relatives=True)
    row = conn.execute(_PERSON, {"person_id": person_id}).first()
    if row is None:
        raise NotFound("No person in the register for this account.", field="account")
    household = None
    if {"household_number", "relation_to_head"} & set(register) and row.household_id is not None:
        number = conn.execute(_HOUSEHOLD_NUMBER, {"household_id": row.household_id}).scalar()
        if number is not None:
            household = {"number": number, "relation_to_head": row.relation_to_head}
    return {"record": own_record(row, household), "relatives": {}, "card": None, "wallet": {}}


def own_record(row, household: dict[str, Any] | None = None) -> dict[str, Any]:
    """The items of ``records.record_of`` that ``value_of`` reads about the person themselves, from
    their row alone: the record's fields as it shows them, the residences as ``records.place``
    shows them, the household (its number, the relation to its head) as given."""
    from dinhdanh.registry.records import place, to_json

    record: dict[str, Any] = {name: to_json(getattr(row, name)) for name in _DIRECT}
    permanent = place(row.province_code, row.commune_code, row.address)
    if permanent is not None:
        permanent["dossier_number"] = row.residence_dossier
    temporary = place(row.temp_province_code, row.temp_commune_code, row.temp_address)
    if temporary is not None:
        temporary["until"] = to_json(row.temp_until)
    record.update(permanent_residence=permanent, temporary_residence=temporary, household=household)
    return record
