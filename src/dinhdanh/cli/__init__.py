"""The ``dinhdanh`` command. Entrypoints stay thin: parse, call one service function, print."""

from __future__ import annotations

import os

import typer

from dinhdanh.cli import audit, calendar, cards, changes, clients, eid, exchange, formats, partners, register, serve
from dinhdanh.cli import documents
from dinhdanh.cli import services
from dinhdanh.cli import payments
from dinhdanh.cli import scheduler
from dinhdanh.cli import backup

app = typer.Typer(
    name="dinhdanh",
    help="dinhdanh: national population register, e-ID and e-authentication (Project 06).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(formats.pid_app, name="pid")
app.add_typer(cards.mrz_app, name="mrz")
app.add_typer(cards.qr_app, name="qr")
app.add_typer(cards.pki_app, name="pki")
app.add_typer(cards.card_app, name="card")
app.add_typer(register.db_app, name="db")
app.add_typer(register.population_app, name="population")
app.add_typer(register.officer_app, name="officer")
app.add_typer(register.registry_app, name="registry")
app.add_typer(eid.eid_app, name="eid")
app.add_typer(eid.notify_app, name="notify")
app.add_typer(clients.client_app, name="client")
app.add_typer(clients.oidc_app, name="oidc")
app.add_typer(audit.audit_app, name="audit")
app.add_typer(partners.partner_app, name="partner")
app.add_typer(changes.changes_app, name="changes")
app.add_typer(exchange.batches_app, name="batches")
app.add_typer(exchange.ladder_app, name="ladder")
app.add_typer(services.services_app, name="services")
app.add_typer(documents.documents_app, name="documents")
app.add_typer(calendar.calendar_app, name="calendar")
app.add_typer(payments.payments_app, name="payments")
app.add_typer(scheduler.scheduler_app, name="scheduler")
app.command("event")(register.event)
app.command("match")(exchange.match)
app.command("serve")(serve.serve)
app.command("demo")(serve.demo)
app.command("backup")(backup.backup)
app.command("restore")(backup.restore)


def main() -> None:
    # Everything the platform writes is personal data or keys (the SQLite database, its WAL and
    # journal, batch uploads and results, match snapshots, card exports, the demo population, the
    # vault's key file, audit anchors): owner-only, whatever wrote it (SQLite, pyarrow, Pillow, our
    # own code). store.files makes the files we know of private explicitly; the umask covers the
    # rest, including files libraries create on their own (files 0600, folders 0700).
    os.umask(0o077)
    app()
