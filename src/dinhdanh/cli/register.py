"""Commands on the register: database, population files, officers, records, life events."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError as PydanticError

from dinhdanh.cli.common import DbOption, actor_label, emit, engine_for, fail, fail_registry, stdin_text
from dinhdanh.officers.permissions import ROLES as PERMISSION_ROLES
from dinhdanh.registry.errors import RegistryError
from dinhdanh.store.unit_of_work import UnitOfWork

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
    count: Annotated[int, typer.Option(min=1, max=120_000_000, help="Number of people (made in parts of 500,000 "
                                       "above that: about 0.7 GB of memory whatever the count)")],
    out: Annotated[Path, typer.Option(help="Output file, .parquet or .csv")],
    seed: Annotated[int, typer.Option(min=0, help="Same seed, same file")] = 2025,
) -> None:
    """Make a realistic, reproducible synthetic population."""
    from dinhdanh.population import synthetic

    if out.suffix.lower() not in (".parquet", ".csv"):
        fail(f"unsupported output extension {out.suffix!r}: use .parquet or .csv")
    out.parent.mkdir(parents=True, exist_ok=True)
    if count <= synthetic.CHUNK_ROWS:
        synthetic.write(synthetic.generate(count, seed), out)
    else:  # part by part, households whole, numbers disjoint across parts (see generate_chunks)
        synthetic.write_chunks(count, seed, out)
    typer.echo(f"wrote {count} people to {out}", err=True)


def run_import(engine, file: Path, rejects: Path | None = None, bulk: bool | None = None):
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from dinhdanh.population.importer import import_population

    # the bar goes to stderr: stdout carries only the JSON report (rich wrote a stray newline there)
    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), transient=True, console=Console(stderr=True)) as bar:
        task = bar.add_task(f"import {file.name}", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        return import_population(engine, file, rejects, progress=progress, bulk=bulk)


@population_app.command("import")
def population_import(
    file: Annotated[Path, typer.Argument(help="CSV or Parquet file of people")],
    db: DbOption = None,
    rejects: Annotated[Path | None, typer.Option(help="Where rejected rows go (default FILE.rejects.csv)")] = None,
    bulk: Annotated[bool | None, typer.Option(
        "--bulk/--no-bulk", help="First load of an empty SQLite register in one transaction, search indexes built "
                                 "after (default: chosen when the register is empty and the file has more than "
                                 "50,000 rows)", show_default=False)] = None,
) -> None:
    """Load people from a file; bad rows go to a rejects file; resumable and idempotent."""
    try:
        report = run_import(engine_for(db, upgrade=True), file, rejects, bulk)
    except RegistryError as exc:
        fail_registry(exc)
    emit(report.as_dict())


@officer_app.command("add")
def officer_add(
    name: Annotated[str, typer.Option(help="Officer's name")],
    role: Annotated[str, typer.Option(help="national, province or commune")],
    area: Annotated[str | None, typer.Option(help="Province code (2 digits) or commune code (5 digits)")] = None,
    roles: Annotated[str, typer.Option(help="What the officer may do: roles, comma-separated (at least one): "
                                            + ", ".join(PERMISSION_ROLES))] = "",
    days: Annotated[int, typer.Option(min=1, max=365, help="How many days the API token lives")] = 30,
    agency: Annotated[str | None, typer.Option(help="The agency worked for, whose dossiers the officer decides "
                                                    "(e.g. cong-an-xa, ubnd-xa, bhxh; default: every agency of "
                                                    "the area, a one-stop shop)")] = None,
    db: DbOption = None,
) -> None:
    """Create an officer and print their API token (shown once)."""
    from dinhdanh.officers.service import add_officer

    engine = engine_for(db, upgrade=True)
    try:
        with engine.begin() as conn:
            officer, token = add_officer(conn, name, role, area, days=days, roles=roles, granted_by=actor_label(),
                                         agency=agency)
    except RegistryError as exc:
        fail_registry(exc)
    typer.echo(f"officer {officer.officer_id} ({officer.role}"
               f"{', ' + officer.area_code if officer.area_code else ''}"
               f"{', ' + officer.agency_code if officer.agency_code else ''}; roles {', '.join(sorted(officer.roles))})"
               " created; API token:", err=True)
    typer.echo(token)


@officer_app.command("grant")
def officer_grant(
    officer_id: Annotated[int, typer.Argument(min=1, help="The officer's id")],
    role: Annotated[str, typer.Argument(help="The role: " + ", ".join(PERMISSION_ROLES))],
    db: DbOption = None,
) -> None:
    """Give an officer a role (recorded with who and when); prints the officer's roles as JSON."""
    from dinhdanh.officers.service import grant_role, officer_view

    engine = engine_for(db, upgrade=True)
    try:
        with engine.begin() as conn:
            officer = grant_role(conn, officer_id, role, granted_by=actor_label())
    except RegistryError as exc:
        fail_registry(exc)
    emit(officer_view(officer))


@officer_app.command("withdraw")
def officer_withdraw(
    officer_id: Annotated[int, typer.Argument(min=1, help="The officer's id")],
    role: Annotated[str, typer.Argument(help="The role to take back")],
    db: DbOption = None,
) -> None:
    """Take a role back from an officer (the grant stays on record, closed); prints the officer's roles."""
    from dinhdanh.officers.service import officer_view, withdraw_role

    engine = engine_for(db, upgrade=True)
    try:
        with engine.begin() as conn:
            officer = withdraw_role(conn, officer_id, role, withdrawn_by=actor_label())
    except RegistryError as exc:
        fail_registry(exc)
    emit(officer_view(officer))


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
    with UnitOfWork(engine_for(db, upgrade=True)).read() as conn:
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
    import dinhdanh.passports
    from dinhdanh.registry.commands import EVENT_KINDS
    from dinhdanh.registry.events import Actor, record_event

    dinhdanh.eid.hooks()  # and the e-ID account locks: the same rules as the API's
    dinhdanh.passports.hooks()  # and the passport is revoked

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


# --------------------------------------------------------------- officers' credentials (officers.credentials)

OfficerId = Annotated[int, typer.Argument(min=1, help="The officer's id (dinhdanh officer list)")]
Days = Annotated[int, typer.Option(min=1, max=365, help="How many days the token lives")]


def _credentials_step(db: str | None, fn):
    """Run ``fn(conn)`` in one transaction; a refusal exits 1 (2 for bad input), naming the field."""
    engine = engine_for(db, upgrade=True)
    try:
        with engine.begin() as conn:
            return fn(conn)
    except RegistryError as exc:
        fail_registry(exc)


@officer_app.command("list")
def officer_list(
    db: DbOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the list as JSON")] = False,
) -> None:
    """Every officer: area, roles, e-ID account, tokens with state and expiry (no token material)."""
    from rich.console import Console
    from rich.table import Table

    from dinhdanh.officers.credentials import list_officers

    with UnitOfWork(engine_for(db, upgrade=True)).read() as conn:
        listed = list_officers(conn)
    if as_json:
        emit(listed)
        return
    table = Table(title="Cán bộ / officers")
    for column in ("id", "tên / name", "cấp / level", "địa bàn / area", "vai trò / roles", "tài khoản / e-ID",
                   "mã truy cập / tokens"):
        table.add_column(column)
    for o in listed:
        account = o["account"]
        tokens = "\n".join(f"#{t['token_id']} {t['state']} → {t['expires_at']}"
                           + (f" ({t['label']})" if t["label"] else "") for t in o["tokens"])
        table.add_row(str(o["officer_id"]), o["name"] + ("" if o["active"] else " (inactive)"), o["role"],
                      (o["area_code"] or "") + (f" ({o['agency']})" if o.get("agency") else ""),
                      " ".join(o.get("roles") or ()),
                      f"#{account['account_id']} level {account['level']} {account['state']}" if account else "",
                      tokens)
    Console().print(table)


@officer_app.command("revoke")
def officer_revoke(
    officer_id: OfficerId,
    token_id: Annotated[int | None, typer.Option("--token-id", min=1, help="Only this token")] = None,
    db: DbOption = None,
) -> None:
    """Revoke one token, or (without --token-id) every credential of the officer, at once.

    Every credential: all machine tokens and every sign-in through the provider made until now."""
    from dinhdanh.officers.credentials import revoke

    count = _credentials_step(db, lambda conn: revoke(conn, officer_id, token_id=token_id))
    emit({"officer_id": officer_id, "token_id": token_id, "tokens_revoked": count,
          "sign_ins_ended": token_id is None})


@officer_app.command("rotate")
def officer_rotate(
    officer_id: OfficerId,
    days: Days = 30,
    token_id: Annotated[int | None, typer.Option("--token-id", min=1, help="Replace only this token")] = None,
    overlap_minutes: Annotated[int, typer.Option(
        "--overlap-minutes", min=0, max=60, help="Let the old token work this much longer (0: revoked at once)")] = 0,
    label: Annotated[str | None, typer.Option(help="What the token is for (default: the old one's label)")] = None,
    db: DbOption = None,
) -> None:
    """A new machine token in place of the officer's (printed once); the old ones stop.

    They stop at once, or after --overlap-minutes so a system can switch without a gap."""
    import datetime as dt

    from dinhdanh.officers.credentials import rotate

    issued = _credentials_step(db, lambda conn: rotate(conn, officer_id, token_id=token_id, days=days, label=label,
                                                        overlap=dt.timedelta(minutes=overlap_minutes)))
    _print_token(issued)


@officer_app.command("issue-token")
def officer_issue_token(
    officer_id: OfficerId,
    days: Days = 30,
    label: Annotated[str | None, typer.Option(help="What the token is for (a system's name)")] = None,
    db: DbOption = None,
) -> None:
    """One more machine token for the officer (another system), printed once; the others stay."""
    from dinhdanh.officers.credentials import issue_token

    _print_token(_credentials_step(db, lambda conn: issue_token(conn, officer_id, days=days, label=label)))


def _print_token(issued) -> None:
    typer.echo(f"officer {issued.officer_id}: token #{issued.token_id} valid until {issued.as_dict()['expires_at']}"
               " (shown once):", err=True)
    typer.echo(issued.token)


@officer_app.command("link")
def officer_link(
    officer_id: OfficerId,
    pid: Annotated[str, typer.Option(help="The officer's own personal ID number: their e-ID account")],
    db: DbOption = None,
) -> None:
    """Link the officer to their e-ID account, with which they sign in through the provider.

    Sign-in: an officer client, scope dinhdanh.officer, level 2."""
    from dinhdanh.officers.credentials import link_account

    linked = _credentials_step(db, lambda conn: link_account(conn, officer_id, pid, actor=actor_label()))
    emit(linked)
    if linked["account_level"] != 2:
        typer.echo("the account holds level 1: the officer can sign in once it is level 2", err=True)


@officer_app.command("unlink")
def officer_unlink(officer_id: OfficerId, db: DbOption = None) -> None:
    """The officer no longer signs in with an e-ID account (their sign-ins stop at once)."""
    from dinhdanh.officers.credentials import unlink_account

    emit(_credentials_step(db, lambda conn: unlink_account(conn, officer_id)))
