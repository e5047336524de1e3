"""What the catalogue holds, as frozen values: a service, and the version of it in force on a date.

Texts people read come in pairs (``Text``: Vietnamese, English). A dossier keeps ``version_id``
(``code@effective_from``), so it is decided under the rules it was filed under even after a new
version takes effect.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Literal

OnlineLevel = Literal["full", "partial"]  # Decree 42/2022: "toàn trình", "một phần"
AgencyLevel = Literal["national", "province", "commune"]
Channel = Literal["online", "counter"]
CHANNELS: tuple[str, ...] = ("online", "counter")


@dataclass(frozen=True)
class Text:
    vi: str
    en: str

    def in_(self, english: bool) -> str:
        return self.en if english else self.vi

    def as_dict(self) -> dict[str, str]:
        return {"vi": self.vi, "en": self.en}


@dataclass(frozen=True)
class Agency:
    code: str
    name: Text
    level: AgencyLevel

    def as_dict(self, english: bool | None = None) -> dict[str, Any]:
        name = self.name.as_dict() if english is None else self.name.in_(english)
        return {"code": self.code, "name": name, "level": self.level}


@dataclass(frozen=True)
class FeeRate:
    """One line of a fee schedule: ``amount`` VND for ``province`` ("*" = any) and ``channel``
    ("*" = both), between two dates, when the optional condition ``when`` holds."""

    province: str
    channel: str
    amount: int
    effective_from: dt.date
    effective_to: dt.date | None = None  # exclusive
    when: dict[str, Any] | None = None
    note: str | None = None

    def in_force(self, on: dt.date) -> bool:
        return self.effective_from <= on and (self.effective_to is None or on < self.effective_to)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"province": self.province, "channel": self.channel, "amount": self.amount,
                               "effective_from": self.effective_from.isoformat()}
        if self.effective_to:
            out["effective_to"] = self.effective_to.isoformat()
        if self.when:
            out["when"] = self.when
        if self.note:
            out["note"] = self.note
        return out


@dataclass(frozen=True)
class Exemption:
    """No fee when ``when`` holds (e.g. a birth registered within 60 days of the birth)."""

    code: str
    reason: Text
    legal_basis: str
    when: dict[str, Any]

    def as_dict(self, english: bool | None = None) -> dict[str, Any]:
        reason = self.reason.as_dict() if english is None else self.reason.in_(english)
        return {"code": self.code, "reason": reason, "legal_basis": self.legal_basis, "when": self.when}


REFUND_RULES = ("full", "none")  # what a refused dossier's paid fee becomes: given back whole, or kept


@dataclass(frozen=True)
class FeeSchedule:
    currency: str
    rates: tuple[FeeRate, ...]
    exemptions: tuple[Exemption, ...] = ()
    refund_on_refusal: str = "full"  # REFUND_RULES: a fee for a decision not made is given back unless the law keeps it
    refund_basis: str | None = None  # the legal basis of the rule, when the catalogue names one


@dataclass(frozen=True)
class Attachment:
    code: str
    name: Text
    required: bool
    types: tuple[str, ...]  # media types accepted
    when: dict[str, Any] | None = None  # required only when this holds (with ``required``)

    def as_dict(self, english: bool | None = None) -> dict[str, Any]:
        name = self.name.as_dict() if english is None else self.name.in_(english)
        out: dict[str, Any] = {"code": self.code, "name": name, "required": self.required, "types": list(self.types)}
        if self.when:
            out["when"] = self.when
        return out


@dataclass(frozen=True)
class GroupProcedure:
    """One procedure of a linked group (Decree 63/2024): a catalogue service (``code``) or a procedure
    of another agency that the group carries out (health insurance, funeral allowance)."""

    key: str
    name: Text
    agency: Agency
    code: str | None
    mandatory: bool

    def as_dict(self, english: bool | None = None) -> dict[str, Any]:
        name = self.name.as_dict() if english is None else self.name.in_(english)
        return {"key": self.key, "code": self.code, "name": name, "agency": self.agency.as_dict(english),
                "mandatory": self.mandatory}


@dataclass(frozen=True)
class Group:
    """A linked group: its procedures and how many the applicant picks (``choose_min``..``choose_max``)
    in the form field ``field``."""

    legal_basis: str
    procedures: tuple[GroupProcedure, ...]
    choose_min: int
    choose_max: int
    field: str

    def as_dict(self, english: bool | None = None) -> dict[str, Any]:
        return {"legal_basis": self.legal_basis, "field": self.field,
                "choose": {"min": self.choose_min, "max": self.choose_max},
                "procedures": [p.as_dict(english) for p in self.procedures]}


@dataclass(frozen=True)
class PrefillField:
    """A form field whose value the state holds: ``source`` (``register:full_name``, ``card:number``,
    ``wallet:driving_licence``...) of the applicant, or of the person whose PID is in field ``of``."""

    field: str
    source: str
    of: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"field": self.field, "source": self.source, "of": self.of}


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: one object per version per load
class ServiceVersion:
    """A service as in force from ``effective_from`` (to ``effective_to``, exclusive, if set)."""

    code: str
    name: Text
    sector: str  # police | commune | other: who carries it among the 25 essential services
    code_source: str  # portal: the national portal's procedure code; assigned: ours, stable
    former_codes: tuple[str, ...]
    effective_from: dt.date
    effective_to: dt.date | None
    agency: Agency
    online_level: OnlineLevel
    legal_basis: tuple[str, ...]
    processing_days: int  # working days; 0 = decided the same working day
    fee: FeeSchedule
    form: dict[str, Any] = field(compare=False, repr=False)  # JSON Schema 2020-12, self-contained
    attachments: tuple[Attachment, ...] = ()
    group: Group | None = None
    prefill: tuple[PrefillField, ...] = ()
    optional: frozenset[str] = frozenset()  # form fields that may be left out (conditions treat them as absent)

    @property
    def version_id(self) -> str:
        return f"{self.code}@{self.effective_from.isoformat()}"

    def in_force(self, on: dt.date) -> bool:
        return self.effective_from <= on and (self.effective_to is None or on < self.effective_to)


@dataclass(frozen=True)
class Service:
    code: str
    versions: tuple[ServiceVersion, ...]  # oldest first, never overlapping

    def on(self, day: dt.date) -> ServiceVersion | None:
        return next((v for v in reversed(self.versions) if v.in_force(day)), None)
