"""Service forms: JSON Schema 2020-12 objects whose fields say where the state already holds their
value (``x-source``), so the prefill is generic and the citizen is asked only for the rest.

- ``x-source``: ``register:<item>`` (the population register, art. 9 of the 2023 Law; relatives as
  ``register:father.full_name``), ``card:<item>`` (the person's current ID card), ``wallet:<kind>``
  or ``wallet:<kind>.<item>`` (documents of other registries, e.g. the driving licence).
- ``x-source-of``: the dotted path of a field of the same form holding a PID; the source is then that
  person's (the deceased in a death registration), not the applicant's. Only register items.
"""

from __future__ import annotations

import copy
import datetime as dt
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError

from dinhdanh.dossiers.catalogue.model import PrefillField, ServiceVersion

REGISTER_ITEMS = frozenset({
    "pid", "full_name", "other_names", "date_of_birth", "sex", "place_of_birth", "hometown", "ethnicity",
    "religion", "nationality", "blood_type", "old_id_number", "permanent_address", "permanent_commune_code",
    "temporary_address", "current_address", "household_number", "relation_to_head", "marital_status",
    "phone", "email", "date_of_death",
})
RELATIVES = ("father", "mother", "spouse", "representative")
RELATIVE_ITEMS = frozenset({"pid", "full_name", "date_of_birth", "nationality", "permanent_address"})
CARD_ITEMS = frozenset({"number", "issue_date", "expiry_date"})
# eid.tables.WALLET_KINDS (a test keeps the two equal) and what the issuing registry answers for each
WALLET_KINDS = ("driving_licence", "vehicle_registration", "health_insurance", "social_insurance")
WALLET_ITEMS = frozenset({"number", "issuer", "issued_on", "valid_until"})


def known_sources() -> frozenset[str]:
    """Every ``x-source`` a form may name (the prefill must know how to fetch each)."""
    register = {f"register:{i}" for i in REGISTER_ITEMS}
    register |= {f"register:{r}.{i}" for r in RELATIVES for i in RELATIVE_ITEMS}
    card = {f"card:{i}" for i in CARD_ITEMS}
    wallet = {f"wallet:{k}" for k in WALLET_KINDS} | {f"wallet:{k}.{i}" for k in WALLET_KINDS for i in WALLET_ITEMS}
    return frozenset(register | card | wallet)


SOURCES = known_sources()


class FormError(ValueError):
    """A form in the data is not usable (caught when the catalogue is loaded)."""


def close_objects(schema: dict[str, Any]) -> dict[str, Any]:
    """A copy where every object with ``properties`` refuses unknown fields unless it says otherwise:
    forms are closed by default, as the register's commands are."""
    schema = copy.deepcopy(schema)

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "properties" in node and "additionalProperties" not in node:
                node["additionalProperties"] = False
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    return schema


def fields(schema: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Every property of a form as (dotted path, its schema), nested objects included."""
    for name, sub in (schema.get("properties") or {}).items():
        path = f"{prefix}{name}"
        yield path, sub
        if sub.get("type") == "object":
            yield from fields(sub, path + ".")


def optional_fields(schema: Mapping[str, Any], prefix: str = "") -> frozenset[str]:
    """The dotted paths of fields a filled form may leave out (a field inside an optional object too)."""
    out: set[str] = set()
    required = set(schema.get("required", ()))
    for name, sub in (schema.get("properties") or {}).items():
        path = f"{prefix}{name}"
        inner = set(dict(fields(sub, path + "."))) if sub.get("type") == "object" else set()
        if name not in required:
            out |= {path} | inner
        elif inner:
            out |= optional_fields(sub, path + ".")
    return frozenset(out)


def check_form(schema: dict[str, Any]) -> tuple[PrefillField, ...]:
    """Check a form beyond JSON Schema's own meta-schema; answer its prefill fields."""
    Draft202012Validator.check_schema(schema)
    if schema.get("type") != "object" or not schema.get("properties"):
        raise FormError("a form is an object schema with properties")
    paths = dict(fields(schema))
    prefill = []
    for path, sub in paths.items():
        if not isinstance(sub.get("title"), str) or not sub["title"].strip():
            raise FormError(f"field {path}: every field has a Vietnamese 'title'")
        for required in sub.get("required", ()):
            if required not in (sub.get("properties") or {}):
                raise FormError(f"field {path}: required {required!r} is not one of its properties")
        source, of = sub.get("x-source"), sub.get("x-source-of")
        if source is None:
            if of is not None:
                raise FormError(f"field {path}: 'x-source-of' without 'x-source'")
            continue
        if source not in SOURCES:
            raise FormError(f"field {path}: unknown source {source!r}")
        if of is not None:
            if not source.startswith("register:"):
                raise FormError(f"field {path}: only register items can be read for another person")
            if of not in paths or paths[of].get("type") != "string":
                raise FormError(f"field {path}: 'x-source-of' {of!r} is not a text field of this form")
        prefill.append(PrefillField(path, source, of))
    for required in schema.get("required", ()):
        if required not in schema["properties"]:
            raise FormError(f"required {required!r} is not one of the form's properties")
    return tuple(prefill)


@dataclass(frozen=True)
class FormProblem:
    """One thing wrong with a form's data: the field (dotted path), a stable code, messages."""

    field: str
    code: str
    message: str  # Vietnamese
    message_en: str

    def as_dict(self, english: bool = False) -> dict[str, str]:
        return {"field": self.field, "code": self.code, "message": self.message_en if english else self.message}


MAX_PROBLEMS = 50  # told at most: a body of sixty thousand unknown keys is not answered with as many


# Characters no form's text holds: C0 and C1 controls but tab and line breaks (PostgreSQL cannot
# store a NUL; an escape sequence paints an officer's terminal), and the invisible format
# characters that make a text read otherwise than it is stored (bidirectional overrides and
# isolates, zero-width spaces and joiners, the word joiner, the byte order mark).
UNSAFE_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2064"
                         "\u2066-\u2069\ufeff]")


def validate_form(version: ServiceVersion, data: Any) -> list[FormProblem]:
    """Every problem with ``data`` against the version's form (the first ``MAX_PROBLEMS``), in field
    order; empty when valid. Whatever the schema says: a number that is not finite (JSON's NaN and
    Infinity, which Python's parser takes; ``minimum`` does not stop NaN) and a text holding a
    character of ``UNSAFE_TEXT`` are problems."""
    validator = _validator(version)
    problems: dict[tuple[str, str], FormProblem] = {}
    for problem in _unsafe_values(data, ""):
        problems.setdefault((problem.field, problem.code), problem)
    for error in validator.iter_errors(data):
        for problem in _problems(error):  # one "required" error per missing field, each listing all
            problems.setdefault((problem.field, problem.code), problem)
        if len(problems) >= MAX_PROBLEMS:
            break
    return sorted(problems.values(), key=lambda p: (p.field, p.code))[:MAX_PROBLEMS]


def _unsafe_values(value: Any, where: str) -> Iterator[FormProblem]:
    if isinstance(value, str):
        if UNSAFE_TEXT.search(value):
            yield FormProblem(where or "data", "unsafe_character", "Không được chứa ký tự điều khiển hoặc ký tự ẩn.",
                              "holds a control or invisible character")
    elif isinstance(value, float):
        if not math.isfinite(value):
            yield FormProblem(where or "data", "not_finite", "Giá trị số không hợp lệ.", "is not a finite number")
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _unsafe_values(item, f"{where}.{key}" if where else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _unsafe_values(item, f"{where}.{i}" if where else str(i))


@lru_cache(maxsize=256)
def _validator(version: ServiceVersion) -> Draft202012Validator:
    return Draft202012Validator(version.form, format_checker=_FORMATS)


_FORMATS = FormatChecker(formats=("date", "email"))


@_FORMATS.checks("date", raises=ValueError)
def _iso_date(value: object) -> bool:
    # strictly YYYY-MM-DD (Python 3.11 would also take "20260101" and week dates)
    return not isinstance(value, str) or (len(value) == 10 and bool(dt.date.fromisoformat(value)))


def _title(error: ValidationError, name: str | None = None) -> str:
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    if name is not None:
        schema = (schema.get("properties") or {}).get(name, {})
    return schema.get("title") or name or ""


def _problems(error: ValidationError) -> Iterator[FormProblem]:
    where = ".".join(str(p) for p in error.absolute_path)
    prefix = f"{where}." if where else ""
    kind = error.validator
    if kind == "required":
        present = error.instance if isinstance(error.instance, Mapping) else {}
        for name in error.validator_value:
            if name not in present:
                yield FormProblem(prefix + name, "required", f"Cần khai {_title(error, name)}.",
                                  f"{prefix}{name} is required.")
        return
    if kind == "additionalProperties":
        known = set((error.schema.get("properties") or {}) if isinstance(error.schema, Mapping) else ())
        for name in sorted(set(error.instance) - known):
            yield FormProblem(prefix + name, "unknown_field", f"Tờ khai không có mục {name}.",
                              f"{prefix}{name} is not a field of this form.")
        return
    title = _title(error) or where
    vi = {
        "type": f"{title}: sai kiểu dữ liệu.",
        "format": f"{title}: không đúng định dạng ({error.validator_value}).",
        "enum": f"{title}: giá trị không nằm trong các lựa chọn cho phép.",
        "const": f"{title}: giá trị không đúng.",
    }.get(kind, f"{title}: giá trị không hợp lệ.")
    en = {"type": "wrong type of value", "format": f"not a valid {error.validator_value}",
          "enum": "not one of the allowed values"}.get(kind, f"fails the {kind} rule")
    # our own words, not jsonschema's message, which quotes the value given (a PID, a name)
    yield FormProblem(where or "form", str(kind), vi, f"{where or 'form'}: {en}.")
