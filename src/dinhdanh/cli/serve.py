"""``dinhdanh serve`` and ``dinhdanh demo``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dinhdanh.cli.common import DbOption, engine_for, fail

DEMO_SEED = 2025


def _run(engine, host: str, port: int) -> None:
    import uvicorn

    from dinhdanh.web.app import create_app

    uvicorn.run(create_app(engine), host=host, port=port, log_level="info", access_log=False)


def serve(
    db: DbOption = None,
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
) -> None:
    """Serve the API (OpenAPI at /docs)."""
    _run(engine_for(db, upgrade=True), host, port)


def demo(
    population: Annotated[int, typer.Option(min=100, max=5_000_000, help="People in the synthetic register")] = 50_000,
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    db: DbOption = None,
) -> None:
    """Create the database if missing, load a synthetic population, make an officer, and serve."""
    import sqlalchemy as sa

    from dinhdanh.cli.register import run_import
    from dinhdanh.config import home
    from dinhdanh.officers.service import ensure_demo_officer
    from dinhdanh.population import synthetic
    from dinhdanh.registry.tables import persons

    engine = engine_for(db, upgrade=True)
    with engine.connect() as conn:
        present = conn.execute(sa.select(sa.func.count()).select_from(persons)).scalar_one()
    if present == 0:
        file = Path(home()) / f"demo-population-{population}-{DEMO_SEED}.parquet"
        if not file.exists():
            typer.echo(f"generating {population} people ...", err=True)
            file.parent.mkdir(parents=True, exist_ok=True)
            synthetic.write(synthetic.generate(population, DEMO_SEED), file)
        report = run_import(engine, file)
        typer.echo(f"imported {report.loaded} people in {report.seconds:.1f} s", err=True)
    else:
        typer.echo(f"the register already holds {present} people", err=True)
    with engine.begin() as conn:
        token = ensure_demo_officer(conn)
        sample = conn.execute(sa.select(persons.c.pid, persons.c.full_name).order_by(persons.c.person_id).limit(1)).first()
    base = f"http://127.0.0.1:{port}"
    typer.echo(f"""
dinhdanh demo
  trang chủ / home:        {base}/
  API (OpenAPI):           {base}/docs
  national officer token:  {token}
  try:  curl -H "Authorization: Bearer {token}" {base}/api/v1/citizens/{sample.pid if sample else 'PID'}
        curl -H "Authorization: Bearer {token}" "{base}/api/v1/citizens?name=nguyen%20van&birth_year=1990"
""")
    _run(engine, "127.0.0.1", port)
