"""Long-running loops that serve and demo run beside the API, each in a thread: the change
notifications' deliverers, the batch-matching runner, ... Each loop is ``loop(engine, stop)``: it
works until ``stop`` is set, and must survive its own errors (log, wait, go on). Everything they do
is recorded in the database (outbox cursors, delivery rows, job checkpoints), so a loop killed with
the process resumes where it was on the next start.

``standard_loops()`` names them all, here and nowhere else (no registration at import);
``create_app(engine, background=True)`` starts them when the app starts and stops them when it stops.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import sqlalchemy as sa

log = logging.getLogger("dinhdanh.background")
Loop = Callable[[sa.Engine, threading.Event], None]


def sequencer_loop(engine: sa.Engine, stop: threading.Event) -> None:
    """The access log's sequencer (``audit.sequencer``), with the log key from the database's vault."""
    from dinhdanh.audit import sequencer
    from dinhdanh.store.unit_of_work import UnitOfWork
    from dinhdanh.store.vault import for_database

    sequencer.sequencer_loop(UnitOfWork(engine), for_database(engine.url.render_as_string(hide_password=False)), stop)


def scheduler_loop(engine: sa.Engine, stop: threading.Event, *, base_url: str | None = None) -> None:
    """The durable scheduler (``scheduler.jobs``): the dossiers' deadlines and automatic refusals,
    refunds of refused dossiers' fees; every server process runs it (a job is claimed by one)."""
    from dinhdanh.scheduler import jobs
    from dinhdanh.scheduler.handlers import arm, handlers

    wired = handlers(engine, base_url)
    arm(engine, wired)
    jobs.loop(engine, wired, stop=stop)


def standard_loops(base_url: str | None = None) -> dict[str, Loop]:
    """Every loop a server runs, by name; ``base_url``: the platform's public address (the issuer),
    which the slips the scheduler issues point to."""
    from functools import partial

    from dinhdanh.changes.loops import deliver_loop, publish_loop
    from dinhdanh.exchange import batches

    return {
        "changes-delivery": deliver_loop,  # change notifications to partners' webhooks
        "changes-nats": publish_loop,  # ... and to NATS JetStream
        "batches": batches.runner_loop,  # batch matching jobs (resumed after a restart)
        "ladder": batches.ladder_loop,  # the telcos' mismatch ladder
        "audit-sequencer": sequencer_loop,  # the transparency log's batches and signed heads
        "scheduler": partial(scheduler_loop, base_url=base_url),  # timers: deadlines, refusals, refunds
    }


class Background:
    def __init__(self, engine: sa.Engine, loops: dict[str, Loop] | None = None, *, base_url: str | None = None):
        self.engine = engine
        self.loops = standard_loops(base_url) if loops is None else dict(loops)
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []

    def start(self) -> None:
        for name, loop in self.loops.items():
            thread = threading.Thread(target=self._guarded, args=(name, loop), name=f"dinhdanh-{name}", daemon=True)
            thread.start()
            self.threads.append(thread)

    def _guarded(self, name: str, loop: Loop) -> None:
        while not self.stop.is_set():
            try:
                loop(self.engine, self.stop)
                return
            except Exception as exc:  # a loop that dies is restarted after a pause
                log.warning("background loop %s failed: %s; restarting", name, type(exc).__name__)
                self.stop.wait(5.0)

    def close(self, timeout: float = 10.0) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout)
