"""The life events an officer can record, as validated commands (shared by the API and the CLI).

Input from outside is validated strictly: unknown fields are refused, a number does not pass as
text, dates are ISO ``YYYY-MM-DD`` text only, codes must exist.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, StrictStr

from dinhdanh import places
from dinhdanh.ids import names, pid as pidfmt
from dinhdanh.ids.exceptions import ValidationError

_ISO_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # no control characters (PostgreSQL cannot even store NUL)


def _plain_text(value: str) -> str:
    if CONTROL.search(value):
        raise ValueError("must not contain control characters")
    return value


def _iso_date(value: Any) -> Any:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        value = value.isoformat()
    if not isinstance(value, str) or not _ISO_DATE.match(value):
        raise ValueError("must be a date written YYYY-MM-DD")
    if not "1900" <= value[:4] <= "2399":
        raise ValueError("must be a date between 1900 and 2399")
    return value


def _pid(value: str) -> str:
    try:
        return pidfmt.validate(value, strict=False)
    except ValidationError as exc:
        raise ValueError(str(exc)) from None


def _name(value: str) -> str:
    try:
        return names.validate(value)
    except ValidationError as exc:
        raise ValueError(str(exc)) from None


def _commune(value: str) -> str:
    if value not in places.COMMUNES:
        raise ValueError(f"no commune has code {value!r} (five digits, 2025 codes)")
    return value


IsoDate = Annotated[dt.date, BeforeValidator(_iso_date)]
Pid = Annotated[StrictStr, AfterValidator(_pid)]
PersonName = Annotated[StrictStr, AfterValidator(_name)]
CommuneCode = Annotated[StrictStr, AfterValidator(_commune)]
PlainStr = Annotated[StrictStr, AfterValidator(_plain_text)]
Text = Annotated[PlainStr, Field(min_length=1, max_length=200)]
Sex = Literal["male", "female"]
Relation = Literal["head", "spouse", "child", "parent", "grandchild", "sibling", "other"]


class Command(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    reason: Text | None = None
    legal_basis: Text | None = None


class PersonCommand(Command):
    pid: Pid


class BirthRegistration(Command):
    """Đăng ký khai sinh: the register gives the child a PID at once."""

    full_name: PersonName
    sex: Sex
    date_of_birth: IsoDate
    commune_code: CommuneCode = Field(description="Commune where the birth is registered")
    place_of_birth: Text | None = None
    father_pid: Pid | None = None
    mother_pid: Pid | None = None
    household_number: Annotated[PlainStr, Field(min_length=1, max_length=20)] | None = None
    relation_to_head: Relation | None = None
    ethnicity: Annotated[PlainStr, Field(min_length=1, max_length=40)] | None = None
    religion: Annotated[PlainStr, Field(min_length=1, max_length=40)] | None = None
    nationality: Annotated[StrictStr, Field(pattern=r"^[A-Z]{3}$")] = "VNM"
    hometown: Text | None = None


class DeathRegistration(PersonCommand):
    date_of_death: IsoDate


class MissingDeclaration(PersonCommand):
    """A court's declaration that the person is missing."""

    date_missing: IsoDate


class MarriageRegistration(PersonCommand):
    spouse_pid: Pid
    date: IsoDate


class DivorceRegistration(PersonCommand):
    spouse_pid: Pid
    date: IsoDate


class PermanentResidence(PersonCommand):
    """Đăng ký thường trú: joins a household (or founds one) in a commune."""

    commune_code: CommuneCode
    address: Text
    household_number: Annotated[PlainStr, Field(min_length=1, max_length=20)] | None = None
    new_household: StrictBool = False
    relation_to_head: Relation | None = None
    dossier_number: Annotated[PlainStr, Field(min_length=1, max_length=30)] | None = None
    date: IsoDate | None = None


class TemporaryResidence(PersonCommand):
    commune_code: CommuneCode
    address: Text
    until: IsoDate
    date: IsoDate | None = None


class TemporaryAbsence(PersonCommand):
    from_date: IsoDate
    until: IsoDate
    destination: Text


class StayNotification(PersonCommand):
    """Thông báo lưu trú (Law on Residence 2020, art. 30): ``pid`` stays at ``address`` in
    ``commune_code`` from ``from_date`` to ``until``, notified by the host (``host_pid``) or a lodging."""

    commune_code: CommuneCode
    address: Text
    from_date: IsoDate
    until: IsoDate
    host_pid: Pid | None = None


class NameChange(PersonCommand):
    full_name: PersonName
    reason: Text


class SexChange(PersonCommand):
    """Change of registered sex: the person gets a new PID; the old one is kept in history."""

    sex: Sex
    reason: Text


CORRECTABLE = (
    "full_name", "other_names", "date_of_birth", "place_of_birth", "hometown", "ethnicity",
    "religion", "nationality", "blood_type", "old_id_number", "phone", "email", "address",
    "current_address",
)


class Correction(PersonCommand):
    """Correction of recorded data, with its reason; only the listed fields can be corrected."""

    fields: dict[Literal[CORRECTABLE], Any] = Field(min_length=1)  # type: ignore[valid-type]
    reason: Text


EVENT_KINDS: dict[str, type[Command]] = {
    "birth": BirthRegistration,
    "death": DeathRegistration,
    "missing": MissingDeclaration,
    "marriage": MarriageRegistration,
    "divorce": DivorceRegistration,
    "permanent-residence": PermanentResidence,
    "temporary-residence": TemporaryResidence,
    "temporary-absence": TemporaryAbsence,
    "stay-notification": StayNotification,
    "name-change": NameChange,
    "sex-change": SexChange,
    "correction": Correction,
}
