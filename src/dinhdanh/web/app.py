"""The web application: officer API, OpenAPI at /docs, metrics, and the landing page."""

from __future__ import annotations

from contextlib import asynccontextmanager

import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.responses import HTMLResponse, JSONResponse

import dinhdanh.eid
import dinhdanh.passports
from dinhdanh import __version__
from dinhdanh.web import body_limits, errors, observability, officer_console, oidc, portal, portal_dossiers, protocol
from dinhdanh.exchange.limits import limiter_for
from dinhdanh.oidc.keys import PublishedKeys, SigningKeys
from dinhdanh.store.checkpoint import Checkpointer
from dinhdanh.store.checkpoint import applies as checkpoint_applies
from dinhdanh.store.replica import router_from_config
from dinhdanh.store.unit_of_work import UnitOfWork
from dinhdanh.web.api import audit, batches
from dinhdanh.web.api import cards, citizens, eid, events, kyc, me, places, quality, verify
from dinhdanh.web.api import changes as change_notifications
from dinhdanh.web.api import attachments as dossier_attachments
from dinhdanh.web.api import dossiers as citizen_dossiers
from dinhdanh.web.api import payments as fee_payments
from dinhdanh.web.api import services as public_services
from dinhdanh.web.api import results as result_documents
from dinhdanh.web.api import officers as officer_administration
from dinhdanh.web.api import partners as partner_administration
from dinhdanh.web.pages import landing


def settle_heap() -> None:
    """Collect once, then move every object alive now out of the collector's sight (``gc.freeze``).

    A server process keeps what it loaded at start for its whole life (the app, the places, the
    compiled statements). Left to the collector, each full collection walks all of it: under load
    that was a pause of 70-95 ms every few seconds, and the slowest 1% of partner verifications
    waited behind it (p99 41-58 ms; frozen, 11 ms). Call it in a server process once the app is
    made, not in a process that makes many apps (tests): what it freezes is never collected.
    """
    import gc

    gc.collect()
    gc.freeze()


class _App(FastAPI):
    """FastAPI with ``web.observability`` outside everything, FastAPI's own error middleware
    included: an unexpected exception's 500 (written by that middleware, outside every middleware
    added with ``add_middleware``) carries its request id like any other answer and is counted as
    the 500 the client got."""

    back_channel = None  # the provider's back-channel endpoints in their own stack (create_app, ``__call__``)

    def build_middleware_stack(self):
        return observability.Observability(super().build_middleware_stack())

    async def __call__(self, scope, receive, send) -> None:
        """The provider's back-channel endpoints (``web.protocol``: ``/token`` and the like, called by
        machines many times a second) by exact path, with the request id, the metrics and the body
        limit as any route has, but outside FastAPI; everything else through FastAPI."""
        if scope["type"] == "http" and scope["path"] in protocol.ENDPOINTS:
            if self.root_path:
                scope["root_path"] = self.root_path
            scope["app"] = self
            await self.back_channel(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def create_app(engine: sa.Engine, *, background: bool = False) -> FastAPI:
    """The app; with ``background`` (serve, demo) it also runs the loops of ``web.background``."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        from dinhdanh.web.background import Background

        loops = Background(engine, base_url=getattr(app.state, "oidc_issuer", None)) if background else None
        if loops is not None:
            loops.start()
        app.state.background = loops
        # SQLite's log checkpointed beside the serving, not in a request's commit (store.checkpoint)
        checkpoints = Checkpointer(engine) if checkpoint_applies(engine) else None
        if checkpoints is not None:
            checkpoints.start()
        try:
            yield
        finally:
            if loops is not None:
                loops.close()
            if checkpoints is not None:
                checkpoints.close()
            if app.state.replica is not None:
                app.state.replica.close()
            close = getattr(app.state.limiter, "close", None)
            if close is not None:
                close()  # leased quota units go back (exchange.limits.DatabaseLimiter)

    app = _App(
        lifespan=lifespan,
        title="dinhdanh",
        version=__version__,
        description="Cơ sở dữ liệu quốc gia về dân cư: API cho cán bộ (national population register: officer API).",
    )
    app.state.engine = engine
    app.state.uow = UnitOfWork(engine)  # every request's transaction (web.deps.transaction)
    # reads on a streaming replica when DINHDANH_REPLICA_URL is set (store.replica, web.deps.CurrentRead)
    app.state.replica = replica = router_from_config(engine)
    if replica is not None:
        app.state.uow, app.state.replica_lag = replica.unit_of_work(), replica.lag  # writes noted: read your writes
    errors.install(app)
    # per-partner rate limits and quotas (exchange.limits): Redis when DINHDANH_REDIS_URL is set, otherwise
    # the database; either way every API worker shares them and a restart keeps them
    app.state.limiter = limiter_for(engine)
    app.state.published_keys = PublishedKeys()  # the /jwks this process serves (oidc.keys)
    app.state.signing_keys = SigningKeys()  # ... and the keys it signs with, read again every few seconds
    # verify first: the exchange's hot path (routes are matched in order); kyc before citizens
    # (/citizens/{pid}/kyc)
    app.include_router(verify.router)
    # the citizens' hot path, filing a dossier (prefill + submit), next: every route before a request's
    # own is tried in turn (with 150 routes, matching cost a tenth of a filing's CPU)
    app.include_router(public_services.routes())  # the catalogue of online public services (read, checked)
    citizen_dossiers.install(app)  # dossiers: citizens file and follow, officers of the area decide
    # then the provider's metadata and key set (its token, userinfo, revocation, introspection and PAR
    # endpoints are served outside FastAPI: _App.__call__, web.protocol)
    app.include_router(oidc.endpoints)
    for module in (kyc, citizens, events, quality, places, cards, eid, audit):
        app.include_router(module.router)
    app.include_router(change_notifications.router)  # partners' change notifications
    app.include_router(officer_administration.router)  # officers' roles (officers.admin)
    app.include_router(partner_administration.router)  # the partner registry (partners.admin)
    for module in (oidc, me, portal, portal_dossiers):  # the OpenID Connect provider, self-service, the demo portal
        app.include_router(module.router)
    app.include_router(officer_console.router)  # the officers' console for dossiers (/officer)
    app.include_router(batches.router)  # batch matching and the telcos' mismatch ladder (partners)
    fee_payments.install(app)  # VNPAY's IPN and return; the local gateway with DINHDANH_PAYMENTS_LOCAL_GATEWAY=1
    app.include_router(result_documents.router)  # public checks of signed result documents, the documents CA
    app.include_router(dossier_attachments.router)  # dossiers' attachments: uploaded, checked, sealed at rest
    max_bytes = body_limits.max_body_bytes()
    app.add_middleware(body_limits.BodyLimit, max_bytes=max_bytes)  # every body limited
    # ... the back-channel endpoints' too, in the stack they are served in outside FastAPI (_App.__call__)
    app.back_channel = observability.Observability(body_limits.BodyLimit(protocol.serve, max_bytes=max_bytes))
    body_limits.document(app)  # ... and every operation with a body says so (413)
    eid.install(app)
    dinhdanh.eid.hooks()  # a death or a revoked card locks the e-ID account, in the same transaction
    dinhdanh.passports.hooks()  # ... and revokes the passport
    # outermost (``_App``): every request gets its id and is counted, by route template (web.observability)
    observability.install_metrics(app)  # /metrics, with the scrape-time gauges of the database

    @app.get("/healthz", include_in_schema=False)
    def healthz():
        """Liveness: the process answers and reaches its database."""
        with app.state.uow.read() as conn:
            conn.execute(sa.text("SELECT 1"))
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    def readyz():
        """Readiness: the database answers, its migrations are at head, Redis and NATS answer when
        configured; 503 naming the failing checks otherwise."""
        from dinhdanh import config

        ready, checks = observability.readiness(engine, redis_url=config.redis_url(), nats_url=config.nats_url())
        return JSONResponse({"status": "ready" if ready else "not ready", "checks": checks},
                            status_code=200 if ready else 503)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def home(lang: str = "vi"):
        return landing(lang)

    return app
