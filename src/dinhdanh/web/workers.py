"""``dinhdanh serve --workers N``: N server processes on one port, the background loops run once.

uvicorn's supervisor (the parent process) starts N worker processes that each build the app with
``app()`` below from the environment the parent set (``DINHDANH_DATABASE_URL``,
``DINHDANH_OIDC_ISSUER``, ``DINHDANH_LOG_FORMAT``; the vault's key as the parent has it), and
restarts a worker that dies. The workers run no background loop: the parent runs
``web.background``'s loops (the outbox's deliverers, the batch runner, the access log's sequencer,
the scheduler) once, in threads beside the supervisor. What the workers must share is in the
database or Redis already: rate limits and quotas (``exchange.limits``), sessions and tokens (the
provider's tables), the sequencer's lease. Metrics: ``metrics_directory`` (below).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from fastapi import FastAPI

from dinhdanh.web.observability import MULTIPROCESS_ENV


@contextmanager
def metrics_directory():
    """``PROMETHEUS_MULTIPROC_DIR`` for the workers, set before they start (prometheus_client picks
    its multiprocess mode when its first metric is made): the operator's directory, emptied of a
    previous run's files (its counters would be added to this run's), or a private one (0700) made
    here and removed at the end."""
    given = os.environ.get(MULTIPROCESS_ENV)
    if given:
        folder = Path(given)
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        for stale in folder.glob("*.db"):
            stale.unlink(missing_ok=True)
        yield folder
        return
    folder = Path(tempfile.mkdtemp(prefix="dinhdanh-metrics-"))
    os.environ[MULTIPROCESS_ENV] = str(folder)
    try:
        yield folder
    finally:
        os.environ.pop(MULTIPROCESS_ENV, None)
        shutil.rmtree(folder, ignore_errors=True)


def app() -> FastAPI:
    """The app of one worker process (uvicorn's ``factory``)."""
    from dinhdanh import config, logs
    from dinhdanh.store.engine import make_engine
    from dinhdanh.web.app import create_app, settle_heap
    from dinhdanh.web.oidc import set_issuer

    logs.configure(json=config.log_format(None, "json") == "json", level=config.log_level())
    engine = make_engine(config.database_url())
    made = create_app(engine, background=False)
    issuer = config.oidc_issuer()
    if issuer:
        set_issuer(made, issuer)
    settle_heap()
    return made
