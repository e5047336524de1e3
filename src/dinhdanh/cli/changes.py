"""Commands of the change notifications: deliver (route + webhooks), publish to NATS, dead letters."""

from __future__ import annotations

import signal
import threading
from typing import Annotated

import typer

from dinhdanh.cli.common import DbOption, emit, engine_for, fail, fail_registry
from dinhdanh.registry.errors import RegistryError
from dinhdanh.store.unit_of_work import UnitOfWork

changes_app = typer.Typer(help="Change notifications to partners: webhooks, NATS, dead letters.",
                          no_args_is_help=True)


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop


@changes_app.command("deliver")
def deliver(once: Annotated[bool, typer.Option("--once", help="Route and deliver until nothing is due now, "
                                                             "then exit (else: loop until stopped)")] = False,
            db: DbOption = None) -> None:
    """Route the outbox to partners' subscriptions and send the signed webhooks that are due."""
    from dinhdanh.changes.loops import deliver_loop, deliver_once
    from dinhdanh.store.vault import VaultError

    engine = engine_for(db, upgrade=True, serving=True)
    try:
        if once:
            emit(deliver_once(engine))
        else:
            deliver_loop(engine, _stop_on_signals())
    except VaultError as exc:
        fail(str(exc))


@changes_app.command("publish-nats")
def publish_nats(once: Annotated[bool, typer.Option("--once", help="Publish what is there, then exit")] = False,
                 db: DbOption = None) -> None:
    """Publish partner-relevant outbox events to NATS JetStream (DINHDANH_NATS_URL)."""
    from dinhdanh.changes import jetstream
    from dinhdanh.changes.loops import publish_loop

    url = jetstream.nats_url()
    if url is None:
        fail(f"set {jetstream.ENV} (e.g. nats://127.0.0.1:4222)")
    engine = engine_for(db, upgrade=True, serving=True)
    if once:
        try:
            emit(jetstream.publish(engine, url))
        except OSError as exc:
            fail(f"cannot reach NATS at {url}: {exc}", 1)
    else:
        publish_loop(engine, _stop_on_signals())


@changes_app.command("dead-letters")
def dead_letters(partner: Annotated[str | None, typer.Option(help="Only this partner's (client id)")] = None,
                 db: DbOption = None) -> None:
    """List the messages that could not be delivered."""
    from dinhdanh.changes import service

    with UnitOfWork(engine_for(db, upgrade=True)).read() as conn:
        emit(service.dead_letters(conn, client_id=partner))


@changes_app.command("retry")
def retry(subscription_id: Annotated[int, typer.Argument(help="The subscription whose dead letters "
                                                                     "are sent again")],
          db: DbOption = None) -> None:
    """Put a subscription's dead letters back in the queue."""
    from dinhdanh.changes import service

    if subscription_id < 1:
        fail("the subscription id is a positive number (subscription_id)")
    try:
        with engine_for(db, upgrade=True).begin() as conn:
            emit({"subscription_id": subscription_id, "requeued": service.requeue(conn, subscription_id)})
    except RegistryError as exc:
        fail_registry(exc)
