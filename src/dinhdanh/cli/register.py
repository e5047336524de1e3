"""Commands on the register: database, population files, officers, records, life events."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError as PydanticError

from dinhdanh.cli.common import DbOption, actor_label, emit, engine_for, fail, fail_registry, stdin_text
from dinhdanh.registry.errors import RegistryError

db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
population_app = typer.Typer(help="Synthetic populations and bulk import.", no_args_is_help=True)
officer_app = typer.Typer(help="Officers and their API tokens.", no_args_is_help=True)
registry_app = typer.Typer(help="Read the register and check its quality.", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade(db: DbOption = None) -> None:
    """Apply the migrations (creates the schema on an empty database)."""
    from dinhdanh.store.engine import current_revision

    engine = engine_for(db, upgrade=True)
    typer.echo(f"database at revision {current_revision(engine)}")


@population_app.command("generate")
def population_generate(
    count: Annotated[int, typer.Option(min=1, max=20_000_000, help="Number of people (up to 20 million per file: about 0.9 GB of memory a million)")],
    out: Annotated[Path, typer.Option(help="Output file, .parquet or .csv")],
    seed: Annotated[int, typer.Option(min=0, help="Same seed, same file")] = 2025,
) -> None:
    """Make a realistic, reproducible synthetic population."""
    from dinhdanh.population import synthetic

    if out.suffix.lower() not in (".parquet", ".csv"):
        fail(f"unsupported output extension {out.suffix!r}: use .parquet or .csv")
    table = synthetic.generate(count, seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    synthetic.write(table, out)
    typer.echo(f"wrote {table.num_rows} people to {out}", err=True)


def run_import(engine, file: Path, rejects: Path | None = None):
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from dinhdanh.population.importer import import_population

    # the bar goes to stderr: stdout carries only the JSON report (rich wrote a stray newline there)
    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), transient=True, console=Console(stderr=True)) as bar:
        task = bar.add_task(f"import {file.name}", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        return import_population(engine, file, rejects, progress=progress)


@population_app.command("import")
def population_import(
    file: Annotated[Path, typer.Argument(help="CSV or Parquet file of people")],
    db: DbOption = None,
    rejects: Annotated[Path | None, typer.Option(help="Where rejected rows go (default FILE.rejects.csv)")] = None,
) -> None:
    """Load people from a file; bad rows go to a rejects file; resumable and idempotent."""
    try:
        report = run_import(engine_for(db, upgrade=True), file, rejects)
    except RegistryError as exc:
        fail_registry(exc)
    emit(report.as_dict())


@officer_app.command("add")
def officer_add(
    name: Annotated[str, typer.Option(help="Officer's name")],
    role: Annotated[str, typer.Option(help="national, province or commune")],
    area: Annotated[str | None, typer.Option(help="Province code (2 digits) or commune code (5 digits)")] = None,
    db: DbOption = None,
) -> None:
    """Create an officer and print their API token (shown once)."""
    from dinhdanh.officers.service import add_officer

    engine = engine_for(db, upgrade=True)
    try:
        with engine.begin() as conn:
            officer, token = add_officer(conn, name, role, area)
    except RegistryError as exc:
        fail_registry(exc)
    typer.echo(f"officer {officer.officer_id} ({officer.role}"
               f"{', ' + officer.area_code if officer.area_code else ''}) created; API token:", err=True)
    typer.echo(token)


@registry_app.command("quality")
def registry_quality(
    db: DbOption = None,
    province: Annotated[str | None, typer.Option(help="Only this 2025 province code")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the full report as JSON")] = False,
) -> None:
    """Per province: incomplete records, likely duplicates, inconsistencies ("đúng, đủ, sạch, sống")."""
    from rich.console import Console
    from rich.table import Table

    from dinhdanh import places
    from dinhdanh.registry.quality import quality_report

    if province is not None and province not in places.PROVINCES:
        fail(f"no province has code {province!r} (two digits, 2025 codes)")
    with engine_for(db, upgrade=True).connect() as conn:
        report = quality_report(conn, province=province)
    if as_json:
        emit(report)
        return
    checks = sorted({name for p in report["provinces"] for name in p["checks"]})
    table = Table(title="Chất lượng dữ liệu dân cư (đúng, đủ, sạch, sống)")
    table.add_column("Tỉnh / province")
    table.add_column("dân số", justify="right")
    for name in checks:
        table.add_column(name.replace("_", " "), justify="right")
    for p in report["provinces"]:
        table.add_row(p["province_name"] or p["province_code"] or "?", str(p["population"]),
                      *(str(p["checks"].get(n, {}).get("count", 0)) for n in checks))
    Console().print(table)
    if not checks:
        typer.echo("Không phát hiện vấn đề về chất lượng dữ liệu / no data-quality problems found.")
    for name in checks:
        examples = [e for p in report["provinces"] for e in p["checks"].get(name, {}).get("examples", [])][:5]
        typer.echo(f"{name}: {report['totals'].get(name, 0)} (e.g. {', '.join(examples)})")


def _read(db: str | None, fn, pid: str, *, purpose: str, action: str):
    """Run ``fn(conn, row)`` on the person's row and log the read, in one transaction."""
    from dinhdanh.audit.service import PURPOSES, record_access
    from dinhdanh.registry.records import find_person

    if purpose not in PURPOSES:
        fail(f"unknown purpose {purpose!r}: use one of {', '.join(PURPOSES)}")
    engine = engine_for(db, upgrade=True)
    try:
        with engine.begin() as conn:
            row = find_person(conn, pid)
            result = fn(conn, row)
            record_access(conn, actor_label(), [row.person_id], action, purpose)
    except RegistryError as exc:
        fail_registry(exc)
    emit(result)


Purpose = Annotated[str, typer.Option(help="Why the record is read (logged)")]


@registry_app.command("show")
def registry_show(
    pid: Annotated[str, typer.Argument(help="Personal ID number")],
    db: DbOption = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="YYYY-MM-DD: the record as it stood then")] = None,
    purpose: Purpose = "administration",
) -> None:
    """Print a person's full record (JSON)."""
    from dinhdanh.registry.records import record_of

    day = None
    if as_of is not None:
        try:
            day = dt.date.fromisoformat(as_of)
        except ValueError:
            fail(f"--as-of must be a date written YYYY-MM-DD, not {as_of!r}")
    _read(db, lambda conn, row: record_of(conn, row, as_of=day), pid, purpose=purpose, action="read")


@registry_app.command("history")
def registry_history(pid: Annotated[str, typer.Argument()], db: DbOption = None,
                     purpose: Purpose = "administration") -> None:
    """Print every change to a person's record, with who, when, why and the legal basis."""
    from dinhdanh.registry.records import history_of

    _read(db, history_of, pid, purpose=purpose, action="history")


def event(
    kind: Annotated[str, typer.Argument(help="birth, death, missing, marriage, divorce, permanent-residence, "
                                             "temporary-residence, temporary-absence, name-change, sex-change, "
                                             "correction")],
    data: Annotated[str, typer.Option(help="The event as JSON (same fields as the API); '-' reads stdin")],
    db: DbOption = None,
) -> None:
    """Record a life event (the same rules and checks as POST /api/v1/events/KIND)."""
    import dinhdanh.cards.lifecycle  # noqa: F401  (its hook revokes the card on death or changed identity)
    import dinhdanh.eid
    from dinhdanh.registry.commands import EVENT_KINDS
    from dinhdanh.registry.events import Actor, record_event

    dinhdanh.eid.hooks()  # and the e-ID account locks: the same rules as the API's

    model = EVENT_KINDS.get(kind)
    if model is None:
        fail(f"no life event is called {kind!r}: use one of {', '.join(EVENT_KINDS)}")
    text = stdin_text() if data == "-" else data
    try:
        command = model.model_validate_json(text)
    except PydanticError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"]) or "data"
        fail(f"{where}: {first['msg']}")
    except json.JSONDecodeError as exc:
        fail(f"--data is not JSON: {exc}")
    engine = engine_for(db, upgrade=True)
    try:
        with engine.begin() as conn:
            outcome = record_event(conn, Actor(actor_label()), kind, command)
    except RegistryError as exc:
        fail_registry(exc)
    emit(outcome.as_dict())
