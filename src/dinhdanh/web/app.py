"""The web application: officer API, OpenAPI at /docs, metrics, and the landing page."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from prometheus_client import make_asgi_app

from dinhdanh import __version__
from dinhdanh.web import errors
from dinhdanh.web.api import cards, citizens, events, places, quality
from dinhdanh.web.pages import landing


def create_app(engine: sa.Engine) -> FastAPI:
    app = FastAPI(
        title="dinhdanh",
        version=__version__,
        description="Cơ sở dữ liệu quốc gia về dân cư: API cho cán bộ (national population register: officer API).",
    )
    app.state.engine = engine
    errors.install(app)
    for module in (citizens, events, quality, places, cards):
        app.include_router(module.router)
    app.mount("/metrics", make_asgi_app())

    @app.get("/healthz", include_in_schema=False)
    def healthz():
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        return {"status": "ok"}

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def home(lang: str = "vi"):
        return landing(lang)

    return app
