"""The long-running work of the change notifications: route, deliver, publish (``web.background``
runs these beside the API; ``dinhdanh changes deliver`` and ``publish-nats`` run them alone)."""

from __future__ import annotations

import logging
import threading

import sqlalchemy as sa

from dinhdanh.changes import jetstream
from dinhdanh.changes.routing import Gaps, route_all
from dinhdanh.changes.webhooks import Deliverer
from dinhdanh.store.vault import for_database

log = logging.getLogger("dinhdanh.changes")
PAUSE = 1.0  # seconds between rounds when there was nothing to do


def vault_for(engine: sa.Engine):
    return for_database(engine.url.render_as_string(hide_password=False))


def deliver_once(engine: sa.Engine, deliverer: Deliverer | None = None, gaps: Gaps | None = None) -> dict:
    """Route everything routable, then send everything due, until nothing is left to do now."""
    own = deliverer is None
    deliverer = deliverer or Deliverer(engine, vault_for(engine))
    try:
        routed = route_all(engine, gaps)
        sent = deliverer.run()
        total = {"routed_events": routed["events"], "deliveries": routed["deliveries"], **sent}
        while True:  # what was routed while sending
            more = route_all(engine, gaps)
            if not more["events"]:
                return {**total, "waiting_for_gap": more["waiting"]}
            again = deliverer.run()
            total["routed_events"] += more["events"]
            total["deliveries"] += more["deliveries"]
            for k, v in again.items():
                total[k] += v
    finally:
        if own:
            deliverer.close()


def deliver_loop(engine: sa.Engine, stop: threading.Event) -> None:
    """Route and deliver until ``stop``; errors are logged and the loop goes on."""
    gaps = Gaps()
    deliverer = Deliverer(engine, vault_for(engine))
    try:
        while not stop.is_set():
            try:
                done = deliver_once(engine, deliverer, gaps)
                busy = done["routed_events"] or done["delivered"] or done["retry"] or done["dead"]
            except Exception as exc:  # noqa: BLE001 - the database or network may come back
                log.warning("change delivery failed: %s", type(exc).__name__)
                busy = False
            stop.wait(0 if busy else PAUSE)
    finally:
        deliverer.close()


def publish_loop(engine: sa.Engine, stop: threading.Event) -> None:
    """Publish to NATS JetStream until ``stop`` (does nothing without ``DINHDANH_NATS_URL``)."""
    url = jetstream.nats_url()
    if url is None:
        return
    gaps = Gaps()
    while not stop.is_set():
        try:
            done = jetstream.publish(engine, url, gaps)
            busy = bool(done["published"] or done["duplicates"])
        except Exception as exc:  # noqa: BLE001
            log.warning("NATS publishing failed: %s", type(exc).__name__)
            busy = False
        stop.wait(0 if busy else PAUSE)
