"""``dinhdanh serve --workers N``: N server processes on one port, the background loops run once.

uvicorn's supervisor (the parent process) starts N worker processes that each build the app with
``app()`` below from the environment the parent set (``DINHDANH_DATABASE_URL``,
``DINHDANH_OIDC_ISSUER``, ``DINHDANH_LOG_FORMAT``; the vault's key as the parent has it), and
restarts a worker that dies. The workers run no background loop: the parent runs
``web.background``'s loops (the outbox's deliverers, the batch runner, the access log's sequencer,
the scheduler) once, in threads beside the supervisor. What the workers must share is in the
database or Redis already: rate limits and quotas (``exchange.limits``), sessions and tokens (the
provider's tables), the sequencer's lease.
"""

from __future__ import annotations

from fastapi import FastAPI


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
