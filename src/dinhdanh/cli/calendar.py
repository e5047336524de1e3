"""``dinhdanh calendar ...``: working days of the civil service, no database."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Annotated

import typer

from dinhdanh.calendar import swaps, working_days
from dinhdanh.cli.common import fail

calendar_app = typer.Typer(help="Việt Nam's working days: deadlines counted in working days.",
                           no_args_is_help=True)

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# a negative count must reach the command (and be refused by name), not be taken for an option
_NUMBERS_AS_ARGUMENTS = {"ignore_unknown_options": True}


def _date(text: str, name: str) -> dt.date:
    if not _ISO_DATE.fullmatch(text):
        fail(f"{name}: must be a date YYYY-MM-DD")
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        fail(f"{name}: {text!r} is not a calendar date")


@calendar_app.command("add-working-days", context_settings=_NUMBERS_AS_ARGUMENTS)
def add_working_days(
    start: Annotated[str, typer.Argument(metavar="START", help="The day the dossier counts as received (YYYY-MM-DD)")],
    n: Annotated[int, typer.Argument(metavar="N", help="Working days to add (0 to 3650)")],
) -> None:
    """Print the N-th working day after START (the due date), as YYYY-MM-DD."""
    day = _date(start, "START")
    try:
        typer.echo(working_days.add_working_days(day, n).isoformat())
    except working_days.CalendarError as exc:
        fail(f"{'START' if exc.field == 'start' else 'N'}: {exc.message}")


@calendar_app.command("working-days")
def working_days_between(
    a: Annotated[str, typer.Argument(metavar="A", help="From this day (not counted), YYYY-MM-DD")],
    b: Annotated[str, typer.Argument(metavar="B", help="To this day (counted), YYYY-MM-DD")],
) -> None:
    """Print how many working days fall after A up to and including B (negative when B is before A)."""
    first, last = _date(a, "A"), _date(b, "B")
    try:
        typer.echo(str(working_days.working_days_between(first, last)))
    except working_days.CalendarError as exc:
        fail(f"{exc.field.upper()}: {exc.message}")


@calendar_app.command("holidays")
def list_holidays(
    year: Annotated[int, typer.Argument(metavar="YEAR", help="The year, e.g. 2026")],
    lang: Annotated[str, typer.Option("--lang", help="Names in vi (default) or en")] = "vi",
) -> None:
    """The weekdays of YEAR that are not worked and the Saturdays that are, one JSON object a line."""
    try:
        days = working_days.year_days(year, lang)
    except working_days.CalendarError as exc:
        fail(f"{'YEAR' if exc.field == 'year' else '--lang'}: {exc.message}")
    if not swaps.decrees_known(year):
        typer.echo(f"note: no decreed swaps recorded for {year}: statutory holidays only", err=True)
    for day in days:
        typer.echo(json.dumps(day.as_dict(lang), ensure_ascii=False))
