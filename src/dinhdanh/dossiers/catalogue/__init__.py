"""The catalogue of online public services, as data (issue 12).

One JSON file per service under ``services/`` (see ``service.schema.json``): code, names, agency,
online level, legal basis, and versions dated by legal effect, each with processing days, fees, the
form (JSON Schema 2020-12 whose fields name their source in the state's data) and attachments.
Nothing is read at import: ``load()`` reads and checks everything once (cached); the server calls it
as it starts, so a broken file stops the start instead of a request.

>>> import datetime as dt
>>> birth = service("1.001193", on=dt.date(2026, 1, 5))
>>> birth.version_id, birth.online_level, birth.processing_days
('1.001193@2016-01-01', 'full', 0)
>>> fee_for(birth, "01", "online", dt.date(2026, 1, 5), {"child": {"date_of_birth": "2025-12-20"}}).amount
0
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from dinhdanh.dossiers.catalogue.fees import Fee, FactRequired, FeeUnknown, fee_for, fee_summary
from dinhdanh.dossiers.catalogue.forms import SOURCES, FormProblem, validate_form
from dinhdanh.dossiers.catalogue.loading import SERVICES, CatalogueError, read_services
from dinhdanh.dossiers.catalogue.model import PrefillField, Service, ServiceVersion
from dinhdanh.registry.errors import InvalidInput, NotFound

__all__ = [
    "Catalogue", "CatalogueError", "Fee", "FactRequired", "FeeUnknown", "FormProblem", "NotInForce",
    "PrefillField", "SOURCES", "Service", "ServiceVersion", "fee_for", "fee_summary", "load", "prefill_fields",
    "service", "services", "validate_form", "version",
]
SECTORS = ("police", "commune", "other")


class NotInForce(NotFound):
    """The service exists but no version of it is in force on the day asked about."""

    code = "service_not_in_force"


@dataclass(frozen=True)
class Catalogue:
    by_code: dict[str, Service]
    former: dict[str, str]  # a former portal code -> the service's code

    def services(self, on: dt.date) -> list[ServiceVersion]:
        """Every service in force on ``on``, as its version of that day (police, commune, others)."""
        found = [v for s in self.by_code.values() if (v := s.on(on)) is not None]
        return sorted(found, key=lambda v: (SECTORS.index(v.sector), v.code))

    def service(self, code: str, on: dt.date) -> ServiceVersion:
        """The version of service ``code`` (or a former code of it) in force on ``on``."""
        found = self.by_code.get(code) or self.by_code.get(self.former.get(code, ""))
        if found is None:
            raise NotFound(f"No service in the catalogue has code {code!r}.", field="code")
        chosen = found.on(on)
        if chosen is None:
            raise NotInForce(f"Service {found.code} is not in force on {on.isoformat()}.", field="on")
        return chosen

    def version(self, version_id: str) -> ServiceVersion:
        """A version by its id (``code@effective_from``), as a dossier keeps it."""
        code, _, start = version_id.partition("@")
        found = self.by_code.get(code)
        chosen = next((v for v in found.versions if v.effective_from.isoformat() == start), None) if found else None
        if chosen is None:
            raise NotFound(f"No service version {version_id!r} in the catalogue.", field="version")
        return chosen


def load(directory: Path | None = None) -> Catalogue:
    """Read and check the catalogue (``CatalogueError`` names the first fault); cached per directory."""
    return _load(str(directory or SERVICES))


@lru_cache(maxsize=8)
def _load(directory: str) -> Catalogue:
    by_code = read_services(Path(directory))
    former = {old: s.code for s in by_code.values() for old in s.versions[-1].former_codes}
    return Catalogue(by_code, former)


def _today() -> dt.date:
    from dinhdanh.store.base import vietnam_date

    return vietnam_date()


def services(on: dt.date | None = None) -> list[ServiceVersion]:
    """Every service in force on ``on`` (Vietnam's today by default)."""
    return load().services(on or _today())


def service(code: str, on: dt.date | None = None) -> ServiceVersion:
    """The version of ``code`` in force on ``on`` (Vietnam's today by default); ``NotFound`` field
    ``code`` for an unknown code, ``NotInForce`` field ``on`` for a day with no version in force."""
    return load().service(code, on or _today())


def version(version_id: str) -> ServiceVersion:
    return load().version(version_id)


def prefill_fields(version: ServiceVersion) -> tuple[PrefillField, ...]:
    """The form's fields whose value the state holds, with their source: the prefill fills these and
    the form asks only for the rest."""
    return version.prefill


def require_valid_form(version: ServiceVersion, data: object) -> None:
    """``InvalidInput`` (code ``invalid_form``, the first field named, all problems attached) unless
    ``data`` fills the version's form."""
    problems = validate_form(version, data)
    if problems:
        exc = InvalidInput("; ".join(f"{p.field}: {p.message_en}" for p in problems[:5]), code="invalid_form",
                           field=problems[0].field)
        exc.problems = problems  # type: ignore[attr-defined]
        raise exc
