"""Reading the catalogue's files and checking them, all at once, before anything is served.

A service file is checked against ``service.schema.json``; then each version is resolved (a version
takes what it does not say from the one before it, the first from the service's own keys), its form's
shared parts (``"$ref": "common.json#/$defs/NAME"``) are inlined so every published form stands
alone, the form is checked as a JSON Schema 2020-12 with known sources, and every condition is
checked to read only fields of its form. Any fault stops the load with the file and the place named.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from dinhdanh import places
from dinhdanh.dossiers.catalogue import conditions, forms
from dinhdanh.dossiers.catalogue.model import (Agency, Attachment, Exemption, FeeRate, FeeSchedule, Group,
                                               GroupProcedure, Service, ServiceVersion, Text)

HERE = Path(__file__).parent
SERVICES = HERE / "services"
COMMON = "common.json#/$defs/"
SCHEMA_2020_12 = "https://json-schema.org/draft/2020-12/schema"
INHERITED = ("legal_basis", "agency", "online_level", "processing_days", "fee", "form", "attachments", "group")


class CatalogueError(ValueError):
    """The catalogue's data is wrong; the message names the file and the place."""


def read_services(directory: Path = SERVICES) -> dict[str, Service]:
    """Every service of ``directory`` (``*.json``), checked, by code (former codes not included)."""
    file_schema = Draft202012Validator(json.loads((HERE / "service.schema.json").read_text("utf-8")))
    common = json.loads((HERE / "common.json").read_text("utf-8")).get("$defs", {})
    found: dict[str, Service] = {}
    for path in sorted(directory.glob("*.json")):
        where = path.name
        try:
            raw = json.loads(path.read_text("utf-8"))
        except (OSError, UnicodeError, json.JSONDecodeError) as exc:
            raise CatalogueError(f"{where}: not readable JSON ({exc})") from None
        error = next(iter(sorted(file_schema.iter_errors(raw), key=lambda e: list(e.absolute_path))), None)
        if error is not None:
            at = "/".join(str(p) for p in error.absolute_path) or "(top)"
            raise CatalogueError(f"{where}: {at}: {error.message}")
        service = _service(raw, common, where)
        if service.code in found:
            raise CatalogueError(f"{where}: code {service.code} is already used by another file")
        found[service.code] = service
    if not found:
        raise CatalogueError(f"no service files in {directory}")
    _check_links(found)
    return found


def _service(raw: dict[str, Any], common: Mapping[str, Any], where: str) -> Service:
    defaults = {k: raw[k] for k in INHERITED if k in raw}
    raws = sorted(raw["versions"], key=lambda v: v["effective_from"])
    versions: list[ServiceVersion] = []
    carried: dict[str, Any] = dict(defaults)
    for i, version in enumerate(raws):
        at = f"{where}: version {version['effective_from']}"
        start = _date(version["effective_from"], at)
        end = _date(version["effective_to"], at) if "effective_to" in version else None
        following = _date(raws[i + 1]["effective_from"], at) if i + 1 < len(raws) else None
        if following == start:
            raise CatalogueError(f"{at}: two versions take effect the same day")
        if following is not None and (end is None or end > following):
            end = following  # a version ends where the next begins
        if end is not None and end <= start:
            raise CatalogueError(f"{at}: effective_to must be after effective_from")
        carried.update({k: version[k] for k in INHERITED if k in version})
        if "fee" in version or i == 0:  # a rate's dates default to those of the version that states it
            carried["_fee"] = _fee(carried.get("fee"), start, at)
        missing = [k for k in ("processing_days", "fee", "form") if k not in carried]
        if missing:
            raise CatalogueError(f"{at}: {', '.join(missing)} not given (nor by an earlier version)")
        versions.append(_version(raw, carried, start, end, common, at))
    return Service(raw["code"], tuple(versions))


def _version(raw: dict[str, Any], v: dict[str, Any], start: dt.date, end: dt.date | None,
             common: Mapping[str, Any], at: str) -> ServiceVersion:
    form = _inline(v["form"], common, at)
    form.setdefault("$schema", SCHEMA_2020_12)
    if form["$schema"] != SCHEMA_2020_12:
        raise CatalogueError(f"{at}: form: forms are JSON Schema draft 2020-12")
    form = forms.close_objects(form)
    try:
        prefill = forms.check_form(form)
    except SchemaError as exc:
        raise CatalogueError(f"{at}: form is not a valid JSON Schema: {exc.message}") from None
    except forms.FormError as exc:
        raise CatalogueError(f"{at}: form: {exc}") from None
    paths = dict(forms.fields(form))
    fee: FeeSchedule = v["_fee"]
    attachments = tuple(Attachment(a["code"], _text(a["name"]), a["required"], tuple(a["types"]), a.get("when"))
                        for a in v.get("attachments", ()))
    if len({a.code for a in attachments}) != len(attachments):
        raise CatalogueError(f"{at}: attachment codes repeat")
    for what, condition in ([(f"rate {r.province}/{r.channel}", r.when) for r in fee.rates]
                            + [(f"exemption {e.code}", e.when) for e in fee.exemptions]
                            + [(f"attachment {a.code}", a.when) for a in attachments]):
        if condition is None:
            continue
        try:
            conditions.check(condition)
        except conditions.BadCondition as exc:
            raise CatalogueError(f"{at}: {what}: {exc}") from None
        for path in conditions.paths(condition):
            if path not in paths:
                raise CatalogueError(f"{at}: {what}: {path!r} is not a field of the form")
    group = _group(v["group"], paths, at) if v.get("group") else None
    return ServiceVersion(
        code=raw["code"], name=_text(raw["name"]), sector=raw["sector"], code_source=raw["code_source"],
        former_codes=tuple(raw.get("former_codes", ())), effective_from=start, effective_to=end,
        agency=_agency(v["agency"]), online_level=v["online_level"], legal_basis=tuple(v["legal_basis"]),
        processing_days=v["processing_days"], fee=fee, form=form, attachments=attachments, group=group,
        prefill=prefill, optional=forms.optional_fields(form))


def _fee(raw: dict[str, Any] | None, start: dt.date, at: str) -> FeeSchedule | None:
    if raw is None:
        return None
    rates = []
    for r in raw["rates"]:
        if r["province"] != "*" and r["province"] not in places.PROVINCES:
            raise CatalogueError(f"{at}: fee: no province has code {r['province']} (2025 codes)")
        begin = _date(r["effective_from"], at) if "effective_from" in r else start
        until = _date(r["effective_to"], at) if "effective_to" in r else None
        if until is not None and until <= begin:
            raise CatalogueError(f"{at}: fee: a rate's effective_to must be after its effective_from")
        rates.append(FeeRate(r["province"], r["channel"], r["amount"], begin, until, r.get("when"), r.get("note")))
    exemptions = tuple(Exemption(e["code"], _text(e["reason"]), e["legal_basis"], e["when"])
                       for e in raw.get("exemptions", ()))
    refund = raw.get("refund", {"on_refusal": "full"})
    return FeeSchedule(raw["currency"], tuple(rates), exemptions, refund["on_refusal"], refund.get("legal_basis"))


def _group(raw: dict[str, Any], paths: Mapping[str, Mapping[str, Any]], at: str) -> Group:
    procedures = tuple(GroupProcedure(p["key"], _text(p["name"]), _agency(p["agency"]), p.get("code"), p["mandatory"])
                       for p in raw["procedures"])
    keys = [p.key for p in procedures]
    low, high = raw["choose"]["min"], raw["choose"]["max"]
    if len(set(keys)) != len(keys):
        raise CatalogueError(f"{at}: group: procedure keys repeat")
    if not sum(p.mandatory for p in procedures) <= low <= high <= len(procedures):
        raise CatalogueError(f"{at}: group: need mandatory <= choose.min <= choose.max <= procedures")
    chosen = paths.get(raw["field"])
    items = (chosen or {}).get("items") or {}
    if not chosen or chosen.get("type") != "array" or set(items.get("enum", ())) != set(keys):
        raise CatalogueError(f"{at}: group: form field {raw['field']!r} must be an array of the procedures' keys")
    if chosen.get("minItems") != low or chosen.get("maxItems") != high:
        raise CatalogueError(f"{at}: group: form field {raw['field']!r} must take {low} to {high} procedures")
    return Group(raw["legal_basis"], procedures, low, high, raw["field"])


def _check_links(found: Mapping[str, Service]) -> None:
    former: dict[str, str] = {}
    for service in found.values():
        for old in service.versions[-1].former_codes:
            if old in found or old in former:
                raise CatalogueError(f"former code {old} of {service.code} is used elsewhere")
            former[old] = service.code
        for version in service.versions:
            for p in version.group.procedures if version.group else ():
                if p.code is not None and p.code not in found:
                    raise CatalogueError(f"{version.version_id}: group procedure {p.key} names unknown "
                                         f"service {p.code}")


def _inline(schema: Any, common: Mapping[str, Any], at: str, depth: int = 0) -> Any:
    """A copy of ``schema`` with each shared part (``$ref`` into common.json) put in its place; the
    referring object's other keys (a title) win over the shared part's."""
    if depth > 20:
        raise CatalogueError(f"{at}: form: shared parts nest too deep (a cycle?)")
    if isinstance(schema, list):
        return [_inline(s, common, at, depth) for s in schema]
    if not isinstance(schema, dict):
        return schema
    ref = schema.get("$ref")
    if isinstance(ref, str):
        if not ref.startswith(COMMON) or ref[len(COMMON):] not in common:
            raise CatalogueError(f"{at}: form: {ref!r} is not a shared part of common.json")
        shared = _inline(copy.deepcopy(common[ref[len(COMMON):]]), common, at, depth + 1)
        rest = {k: _inline(v, common, at, depth) for k, v in schema.items() if k != "$ref"}
        return {**shared, **rest}
    return {k: _inline(v, common, at, depth) for k, v in schema.items()}


def _agency(raw: Mapping[str, Any]) -> Agency:
    return Agency(raw["code"], _text(raw["name"]), raw["level"])


def _text(raw: Mapping[str, str]) -> Text:
    return Text(raw["vi"], raw["en"])


def _date(value: str, at: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise CatalogueError(f"{at}: {value!r} is not a date") from None
