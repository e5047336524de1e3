"""``dinhdanh services``: the catalogue of online public services (no database needed)."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Annotated

import typer

from dinhdanh.cli.common import emit, fail, fail_registry

services_app = typer.Typer(help="The catalogue of online public services (dịch vụ công trực tuyến).",
                           no_args_is_help=True)

OnOption = Annotated[str | None, typer.Option("--on", help="The day to show (YYYY-MM-DD); today in Vietnam by default",
                                              show_default=False)]
LangOption = Annotated[str, typer.Option("--lang", help="vi or en")]


def _day(on: str | None) -> dt.date | None:
    if on is None:
        return None
    try:
        if re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", on):
            return dt.date.fromisoformat(on)
    except ValueError:
        pass
    fail(f"--on {on!r}: not a date (YYYY-MM-DD)")


def _catalogue():
    from dinhdanh.dossiers import catalogue

    try:
        catalogue.load()
    except catalogue.CatalogueError as exc:
        fail(f"the catalogue's data is wrong: {exc}", 1)
    return catalogue


@services_app.command("list")
def list_services(
    on: OnOption = None,
    lang: LangOption = "vi",
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line instead of a table")] = False,
) -> None:
    """Every service in force: code, name, agency level, online level, processing days, fee (from, VND)."""
    from rich.console import Console
    from rich.table import Table

    from dinhdanh.store.base import vietnam_date

    if lang not in ("vi", "en"):
        fail("--lang is vi or en")
    catalogue, english = _catalogue(), lang == "en"
    day = _day(on) or vietnam_date()
    rows = [{"code": v.code, "version": v.version_id, "name": v.name.in_(english), "sector": v.sector,
             "agency_level": v.agency.level, "level": v.online_level, "processing_days": v.processing_days,
             "fee": catalogue.fee_summary(v, day)} for v in catalogue.services(day)]
    if as_json:
        for row in rows:
            typer.echo(json.dumps(row, ensure_ascii=False))
        return
    table = Table(title=f"Dịch vụ công trực tuyến / online public services ({day.isoformat()})")
    for column in ("mã / code", "tên / name", "cấp / agency level", "mức / online", "ngày / days",
                   "phí trực tuyến / online fee", "phí trực tiếp / counter fee"):
        table.add_column(column)
    for r in rows:
        fee = r["fee"]
        table.add_row(r["code"], r["name"], r["agency_level"], r["level"], str(r["processing_days"]),
                      _amount(fee["online"], fee["varies"]), _amount(fee["counter"], fee["varies"]))
    Console(width=200).print(table)


@services_app.command("show")
def show_service(code: str, on: OnOption = None, lang: LangOption = "vi") -> None:
    """One service as in force on the day, as JSON: agency, legal basis, fees, the form (JSON Schema),
    the fields the state fills in, attachments, the linked group."""
    from dinhdanh.registry.errors import RegistryError

    if lang not in ("vi", "en"):
        fail("--lang is vi or en")
    catalogue, english = _catalogue(), lang == "en"
    day = _day(on)
    try:
        v = catalogue.service(code, day)
    except RegistryError as exc:
        fail_registry(exc)
    emit({"code": v.code, "version": v.version_id, "name": v.name.in_(english), "sector": v.sector,
          "code_source": v.code_source, "former_codes": list(v.former_codes),
          "effective_from": v.effective_from, "effective_to": v.effective_to,
          "agency": v.agency.as_dict(english), "level": v.online_level, "processing_days": v.processing_days,
          "legal_basis": list(v.legal_basis),
          "fee": {"currency": v.fee.currency, "rates": [r.as_dict() for r in v.fee.rates],
                  "exemptions": [e.as_dict(english) for e in v.fee.exemptions]},
          "prefill": [p.as_dict() for p in v.prefill], "form": v.form,
          "attachments": [a.as_dict(english) for a in v.attachments],
          "group": v.group.as_dict(english) if v.group else None})


def _amount(value: int | None, varies: bool) -> str:
    if value is None:
        return "-"
    text = f"{value:,}".replace(",", ".") + " đ"
    return ("từ " + text) if varies else text
