"""Response shapes of the officer API, as published in its OpenAPI document."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class PersonBrief(BaseModel):
    pid: str
    full_name: str
    nationality: str | None = None
    old_id_number: str | None = None


class Relatives(BaseModel):
    father: PersonBrief | None
    mother: PersonBrief | None
    spouse: PersonBrief | None
    legal_representative: PersonBrief | None
    children: list[PersonBrief]


class Place(BaseModel):
    province_code: str | None
    province_name: str | None
    commune_code: str | None
    commune_name: str | None
    address: str | None
    dossier_number: str | None = None
    until: str | None = None


class Household(BaseModel):
    number: str
    relation_to_head: str | None
    head: PersonBrief | None


class BirthRegistrationPlace(BaseModel):
    code: str
    name: str | None


class FormerPid(BaseModel):
    pid: str
    retired_at: str
    reason: str


class CitizenRecord(BaseModel):
    pid: str
    full_name: str
    surname: str
    middle_name: str
    given_name: str
    other_names: str | None
    date_of_birth: str
    sex: str
    status: str
    date_of_death: str | None
    date_missing: str | None
    place_of_birth: str | None
    birth_registration: BirthRegistrationPlace | None
    hometown: str | None
    ethnicity: str | None
    religion: str | None
    nationality: str
    blood_type: str | None
    old_id_number: str | None
    marital_status: str
    relatives: Relatives
    household: Household | None
    permanent_residence: Place | None
    temporary_residence: Place | None
    current_address: str | None
    temporary_absence: dict[str, Any] | None
    phone: str | None
    email: str | None
    former_pids: list[FormerPid]
    as_of: str | None


class CitizenSummary(BaseModel):
    pid: str
    full_name: str
    date_of_birth: str
    sex: str
    status: str
    province_code: str | None
    commune_code: str | None


class SearchPage(BaseModel):
    items: list[CitizenSummary]
    page: int
    page_size: int
    next_page: int | None


class FieldChange(BaseModel):
    field: str
    old: Any = None
    new: Any = None


class HistoryEntry(BaseModel):
    event_id: int | None
    kind: str
    recorded_at: str
    effective_date: str | None
    actor: str
    reason: str | None
    legal_basis: str | None
    changes: list[FieldChange]


class EventOutcome(BaseModel):
    event_id: int
    kind: str
    pid: str
    changes: list[FieldChange]


class ErrorDetail(BaseModel):
    code: str
    title: str
    message: str
    field: str | None
    problems: list[dict[str, Any]] | None = None


class ErrorBody(BaseModel):
    error: ErrorDetail
