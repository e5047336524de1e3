"""``dinhdanh serve`` and ``dinhdanh demo``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dinhdanh.cli.common import DbOption, engine_for, fail

DEMO_SEED = 2025


IssuerOption = Annotated[str | None, typer.Option(
    "--issuer", help="The OpenID provider's issuer URL, as relying parties reach it (behind a proxy: its "
                     "https URL) [env DINHDANH_OIDC_ISSUER; default: http://HOST:PORT of this server]")]


def issuer_for(explicit: str | None, host: str, port: int) -> str:
    """``--issuer``, else ``DINHDANH_OIDC_ISSUER``, else ``http://<host>:<port>`` of the listening
    address: configuration, never a request's Host header."""
    from dinhdanh.config import oidc_issuer

    try:
        configured = oidc_issuer(explicit)
    except ValueError as exc:
        fail(str(exc))
    if configured:
        return configured
    return f"http://{f'[{host}]' if ':' in host else host}:{port}"


LogFormatOption = Annotated[str | None, typer.Option(
    "--log-format", help="json (one JSON object per line) or text [env DINHDANH_LOG_FORMAT; default: json for "
                         "serve, text for demo]", show_default=False)]


def log_format_for(explicit: str | None, default: str) -> str:
    from dinhdanh.config import log_format

    try:
        return log_format(explicit, default)
    except ValueError as exc:
        fail(str(exc))


def _configure_logs(log_format: str) -> None:
    """The process's logs (``dinhdanh.logs``): the root logger on stderr, masked, with request ids;
    uvicorn's loggers go through it (``log_config=None`` below)."""
    from dinhdanh import logs
    from dinhdanh.config import log_level

    try:
        level = log_level()
    except ValueError as exc:
        fail(str(exc))
    logs.configure(json=log_format == "json", level=level)


def _run(engine, host: str, port: int, issuer: str, log_format: str = "json", workers: int = 1) -> None:
    import uvicorn

    from dinhdanh.web.app import create_app, settle_heap
    from dinhdanh.web.oidc import set_issuer

    _configure_logs(log_format)
    from dinhdanh.population.bulk import refuse_incomplete
    from dinhdanh.registry.errors import RegistryError

    try:
        refuse_incomplete(engine)  # never serve a register whose bulk load did not finish
    except RegistryError as exc:
        fail(str(exc))
    if workers > 1:
        _run_workers(engine, host, port, issuer, log_format, workers)
        return
    app = create_app(engine, background=True)
    set_issuer(app, issuer)
    settle_heap()
    # log_config=None: uvicorn leaves logging as _configure_logs made it; its access log is off,
    # web.observability writes one line per request (dinhdanh.access) with the route template
    uvicorn.run(app, host=host, port=port, log_config=None, log_level=None, access_log=False)


def _run_workers(engine, host: str, port: int, issuer: str, log_format: str, workers: int) -> None:
    """``workers`` processes (``web.workers``), the background loops once, in this process."""
    import os

    import uvicorn

    from dinhdanh.web.background import Background
    from dinhdanh.web.workers import metrics_directory

    # what each worker builds its app from (the vault's key: the same file or variable as ours)
    os.environ.update(DINHDANH_DATABASE_URL=engine.url.render_as_string(hide_password=False),
                      DINHDANH_OIDC_ISSUER=issuer, DINHDANH_LOG_FORMAT=log_format)
    loops = Background(engine, base_url=issuer)
    with metrics_directory():  # the workers' metrics, summed by whichever answers a scrape
        loops.start()
        try:
            uvicorn.run("dinhdanh.web.workers:app", factory=True, workers=workers, host=host, port=port,
                        log_config=None, log_level=None, access_log=False)
        finally:
            loops.close()


def serve(
    db: DbOption = None,
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    issuer: IssuerOption = None,
    log_format: LogFormatOption = None,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Server processes on the port (the background "
                                                             "loops run once, in the parent)")] = 1,
) -> None:
    """Serve the API (OpenAPI at /docs; metrics at /metrics, liveness /healthz, readiness /readyz)."""
    log_format = log_format_for(log_format, "json")
    issuer = issuer_for(issuer, host, port)
    if issuer.startswith(("http://0.0.0.0:", "http://[::]:")):
        typer.echo(f"the OpenID issuer is {issuer}: set --issuer (or DINHDANH_OIDC_ISSUER) to the URL relying "
                   "parties use", err=True)
    _run(engine_for(db, upgrade=True, serving=True), host, port, issuer, log_format, workers)


def demo(
    population: Annotated[int, typer.Option(min=100, max=5_000_000, help="People in the synthetic register")] = 50_000,
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    cards: Annotated[int, typer.Option(min=0, max=100_000, help="Chip cards to issue to the demo population")] = 500,
    db: DbOption = None,
    log_format: LogFormatOption = None,
) -> None:
    """Create the database if missing, load a synthetic population, issue chip cards, make an officer, serve."""
    log_format = log_format_for(log_format, "text")
    import os

    import sqlalchemy as sa

    from dinhdanh.cli.register import run_import
    from dinhdanh.config import home
    from dinhdanh.officers.service import ensure_demo_officer
    from dinhdanh.population import synthetic
    from dinhdanh.registry.tables import persons
    from dinhdanh.store.files import private_dir, private_file

    os.environ.setdefault("DINHDANH_PAYMENTS_LOCAL_GATEWAY", "1")  # fees: the demo plays VNPAY at /_gateway/vnpay/
    engine = engine_for(db, upgrade=True, serving=True)
    with engine.connect() as conn:
        present = conn.execute(sa.select(sa.func.count()).select_from(persons)).scalar_one()
    if present == 0:
        file = Path(home()) / f"demo-population-{population}-{DEMO_SEED}.parquet"
        if not file.exists():
            typer.echo(f"generating {population} people ...", err=True)
            private_dir(file.parent)  # the data home: owner-only
            synthetic.write(synthetic.generate(population, DEMO_SEED), file)
            private_file(file)  # a population, even a synthetic one, is kept like the real one
        report = run_import(engine, file)
        typer.echo(f"imported {report.loaded} people in {report.seconds:.1f} s", err=True)
    else:
        typer.echo(f"the register already holds {present} people", err=True)
    with engine.begin() as conn:
        token = ensure_demo_officer(conn)
        sample = conn.execute(sa.select(persons.c.pid, persons.c.full_name).order_by(persons.c.person_id).limit(1)).first()
    holder = _demo_cards(engine, cards)
    base = f"http://127.0.0.1:{port}"
    logins = _demo_eid(engine, base)
    bank = _demo_partner(engine)
    dossiers = _demo_dossiers(engine, base, logins[0]["pid"] if logins else (sample.pid if sample else None))
    typer.echo(f"""
dinhdanh demo
  trang chủ / home:        {base}/
  API (OpenAPI):           {base}/docs
  national officer token:  {token}
  try:  curl -H "Authorization: Bearer {token}" {base}/api/v1/citizens/{sample.pid if sample else 'PID'}
        curl -H "Authorization: Bearer {token}" "{base}/api/v1/citizens?name=nguyen%20van&birth_year=1990"
  chip cards: {base}/api/v1/citizens/{holder or 'PID'}/cards  (CSCA: {base}/api/v1/pki/csca.pem)
        dinhdanh card export {holder or 'PID'} --out card && dinhdanh card verify card --active-authentication
  single sign-on: {base}/portal  (Cổng dịch vụ công mẫu, logs in through {base}/.well-known/openid-configuration)
""" + "".join(_demo_login_lines(a) for a in logins) + dossiers + f"""  data exchange: partner "{bank['name']}" (verify, kyc, batch, subscribe)
        client_id {bank['client_id']}  client_secret {bank['client_secret']}
        TOKEN=$(curl -s -u {bank['client_id']}:{bank['client_secret']} -d grant_type=client_credentials \\
                -d scope=dinhdanh.verify {base}/token | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
        curl -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \\
             -d '{{"pid": "{sample.pid if sample else 'PID'}", "full_name": "{sample.full_name if sample else ''}"}}' {base}/api/v1/verify
        curl -H "Authorization: Bearer $TOKEN" "{base}/api/v1/changes?after=0"
  access log (RFC 9162 transparency log): {base}/api/v1/audit/head   (dinhdanh audit head --out head.json; later dinhdanh audit verify --head head.json)
""")
    _run(engine, "127.0.0.1", port, base, log_format)  # the demo's issuer is its own address


def _demo_cards(engine, count: int) -> str | None:
    """Set up the national PKI and issue cards to the first ``count`` living people aged 14 or more."""
    import datetime as dt

    import sqlalchemy as sa

    from dinhdanh.cards import batch, pki
    from dinhdanh.cards.tables import cards, pki_keys
    from dinhdanh.registry.events import Actor
    from dinhdanh.registry.tables import persons
    from dinhdanh.store.vault import for_database

    vault = for_database(engine.url.render_as_string(hide_password=False))
    actor = Actor("demo")
    with engine.begin() as conn:
        if conn.execute(sa.select(pki_keys.c.key_id).where(pki_keys.c.role == "csca").limit(1)).first() is None:
            pki.init_pki(conn, vault)
        have = conn.execute(sa.select(sa.func.count()).select_from(cards)).scalar_one()
        adult = dt.date.today().replace(year=dt.date.today().year - 14, day=1)
        todo = conn.execute(
            sa.select(persons.c.pid).where(persons.c.status == "alive", persons.c.date_of_birth < adult,
                                           ~sa.exists().where(cards.c.person_id == persons.c.person_id))
            .order_by(persons.c.person_id).limit(max(0, count - have))).scalars().all()
    if todo:
        typer.echo(f"issuing {len(todo)} chip cards ...", err=True)
        with engine.begin() as conn:
            batch.issue_first_cards(conn, vault, actor, todo)
    with engine.connect() as conn:
        return conn.execute(sa.select(cards.c.card_number).where(cards.c.status == "issued")
                            .order_by(cards.c.card_id).limit(1)).scalar()


def _demo_dossiers(engine, base: str, citizen_pid: str | None) -> str:
    """Dossiers of several services in every state (some overdue) and their commune's dossier
    officer (``cli.demo_dossiers``); the lines the demo prints about them. A failure here is
    reported and the demo goes on without them."""
    if citizen_pid is None:
        return ""
    from dinhdanh.cli import demo_dossiers
    from dinhdanh.store.vault import for_database

    vault = for_database(engine.url.render_as_string(hide_password=False))
    try:
        made = demo_dossiers.seed(engine, vault, base, citizen_pid)
    except Exception as exc:  # the rest of the demo does not depend on its dossiers
        typer.echo(f"demo dossiers not seeded: {type(exc).__name__}: {exc}", err=True)
        return ""
    if made.seeded:
        typer.echo(f"filed {sum(made.counts.values())} demo dossiers in {made.commune_name}", err=True)
    return demo_dossiers.summary_lines(made, base, None)


DEMO_PASSCODE = "246810"


def _demo_totp(conn, pid: str) -> dict:
    """The demo level-2 account's TOTP secret and URI (opened from the vault; given one if it has none)."""
    import pyotp

    from dinhdanh.eid import accounts, factors
    from dinhdanh.store.vault import of_bind

    account = accounts.account_by_pid(conn, pid)
    if account.totp_secret is None:
        factors.set_totp(conn, account.account_id, source="officer", actor="demo")
        account = accounts.account_by_pid(conn, pid)
    secret = of_bind(conn).open(account.totp_secret, "eid-totp").decode()
    return {"totp_secret": secret, "totp_uri": factors.totp_uri(secret, pid)}
DEMO_PARTNER = "Ngân hàng mẫu (demo)"


def _demo_partner(engine) -> dict:
    """An approved bank that may verify, read e-KYC, send batches and subscribe, nationally; its
    client secret is new on every start (shown once, as for any client)."""
    import datetime as dt

    import sqlalchemy as sa

    from dinhdanh.exchange import partners
    from dinhdanh.exchange.tables import partners as partners_table
    from dinhdanh.oidc import clients

    with engine.begin() as conn:
        client_id = conn.execute(sa.select(partners_table.c.client_id)
                                 .where(partners_table.c.name == DEMO_PARTNER)).scalar()
        if client_id is None:
            made = partners.add_partner(conn, name=DEMO_PARTNER, kind="bank",
                                        operations=["verify", "kyc", "batch", "subscribe"],
                                        fields=["full_name", "date_of_birth", "sex", "address", "status", "card"],
                                        actor="demo")
            partners.approve_partner(conn, made["client_id"], agreement="DEMO-01/2026",
                                     legal_basis="Nghị định 69/2024/NĐ-CP (demo)",
                                     expires=dt.date.today() + dt.timedelta(days=365), security_level=3,
                                     actor="demo")
            return {"name": DEMO_PARTNER, "client_id": made["client_id"], "client_secret": made["client_secret"]}
        return {"name": DEMO_PARTNER, "client_id": client_id, "client_secret": clients.reset_secret(conn, client_id)}


def _demo_login_lines(account: dict) -> str:
    """How to log in to a demo account; for the level-2 one, its TOTP secret and how to get codes.
    (Printing a TOTP secret is for the demo's synthetic account only: a real one is shown once, at
    enrolment, and never again.)"""
    lines = (f"        e-ID level {account['level']}: username {account['pid']}  passcode {account['passcode']}  "
             f"({account['full_name']})\n")
    if account.get("totp_uri"):
        lines += (f"          second factor (TOTP, demo only): {account['totp_uri']}\n"
                  f"          a code now:  python3 -c \"import pyotp; print(pyotp.TOTP('{account['totp_secret']}')"
                  f".now())\"\n")
    return lines


def _demo_eid(engine, base: str) -> list[dict]:
    """Subscriber data and wallet sources for the e-ID checks, two active demo accounts (a card
    holder at level 2, with its TOTP second factor, someone at level 1), and the demo portal as an
    approved relying party."""
    import sqlalchemy as sa

    from dinhdanh.cards.tables import cards
    from dinhdanh.eid import auth
    from dinhdanh.eid.registration import seed_subscriptions_from_register
    from dinhdanh.eid.tables import eid_accounts
    from dinhdanh.eid.wallet import seed_source_documents
    from dinhdanh.registry.tables import persons
    from dinhdanh.store.vault import for_database
    from dinhdanh.web.portal import ensure_demo_client

    vault = for_database(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        seed_subscriptions_from_register(conn)
        seed_source_documents(conn, limit=5_000)
        ensure_demo_client(conn, base)
        holders = conn.execute(
            sa.select(persons.c.pid, persons.c.full_name).join(cards, cards.c.person_id == persons.c.person_id)
            .where(cards.c.status == "issued").order_by(cards.c.card_id).limit(2)).all()
        made = []
        for (pid, name), level in zip(holders, (2, 1)):
            exists = conn.execute(sa.select(eid_accounts.c.account_id)
                                  .join(persons, persons.c.person_id == eid_accounts.c.person_id)
                                  .where(persons.c.pid == pid)).first()
            if exists is None:
                auth.enroll(conn, vault, pid, level=level, passcode=DEMO_PASSCODE, actor="demo")
            made.append({"pid": pid, "full_name": name, "level": level, "passcode": DEMO_PASSCODE,
                         **(_demo_totp(conn, pid) if level == 2 else {})})
    return made
