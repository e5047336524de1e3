"""``dinhdanh pid ...``: the identifier formats, no database."""

from __future__ import annotations

from typing import Annotated

import typer

from dinhdanh.cli.common import emit, fail
from dinhdanh.ids import pid as pidfmt
from dinhdanh.ids.exceptions import ValidationError

pid_app = typer.Typer(help="Personal ID numbers (12 digits).", no_args_is_help=True)


@pid_app.command("parse")
def parse(
    number: Annotated[str, typer.Argument(help="The 12-digit personal ID number")],
    lenient: Annotated[bool, typer.Option("--lenient", help="Only check that there are 12 digits")] = False,
) -> None:
    """Decode a PID into place of birth registration, sex, year of birth and serial (JSON)."""
    try:
        info = pidfmt.parse(number, strict=not lenient)
    except ValidationError as exc:
        fail(str(exc))
    emit(info.as_dict())


@pid_app.command("generate")
def generate(
    place: Annotated[str, typer.Option(help="Three-digit province code (001 Hà Nội ...) or country code")],
    sex: Annotated[str, typer.Option(help="male or female")],
    year: Annotated[int, typer.Option(help="Year of birth")],
) -> None:
    """Make a well-formed PID (random serial); the register checks uniqueness, not this."""
    try:
        typer.echo(pidfmt.generate(place, sex, year))
    except ValidationError as exc:
        fail(str(exc))
