"""``dinhdanh demo``'s dossiers (issue 12), on a temporary SQLite home: the demo's own setup runs
(its server replaced by nothing) twice; the commune holds dossiers of four services in every state,
at least two overdue, each approved one with its signed result and each refused one with its
reason; the second start files nothing more; the printed dossier officer's token lists the overdue
ones over HTTP, and the demo's other lines are still there."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from dinhdanh.cli import demo_dossiers, serve
from dinhdanh.dossiers import workflow
from dinhdanh.dossiers.tables import dossier_events, dossiers
from dinhdanh.store.base import vietnam_date
from dinhdanh.store.engine import make_engine
from dinhdanh.web.app import create_app

pytest.importorskip("dinhdanh.population.synthetic")


@pytest.fixture
def demo_home(tmp_path, monkeypatch):
    monkeypatch.setenv("DINHDANH_HOME", str(tmp_path))
    monkeypatch.delenv("DINHDANH_DATABASE_URL", raising=False)
    monkeypatch.setattr(serve, "_run", lambda *a, **kw: None)  # set up and print, do not serve
    return f"sqlite:///{tmp_path / 'demo.sqlite'}"


def run_demo(db: str, capsys) -> str:
    serve.demo(population=300, port=8000, cards=5, db=db)
    return capsys.readouterr().out


def test_demo_seeds_dossiers_in_every_state_and_an_officer_who_lists_the_overdue(demo_home, capsys):
    first = run_demo(demo_home, capsys)
    assert "national officer token:" in first and "e-ID level 2: username" in first, first
    engine = make_engine(demo_home)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(dossiers)).all()
        refusals = conn.execute(sa.select(dossier_events.c.reason).where(dossier_events.c.action == "refuse")).all()
    assert {r.status for r in rows} == set(workflow.STATES), [r.status for r in rows]
    assert len(rows) >= 12 and len({r.service_code for r in rows}) >= 4
    assert {r.service_code for r in rows} >= {demo_dossiers.TEMPORARY_RESIDENCE, demo_dossiers.TEMPORARY_ABSENCE,
                                              demo_dossiers.STAY_NOTIFICATION, demo_dossiers.BIRTH_REGISTRATION}
    assert len({r.place_commune for r in rows}) == 1
    today = vietnam_date()
    overdue = {r.dossier_id for r in rows if r.status == "received" and r.due_date < today}
    assert len(overdue) >= 2
    assert all(r.result_code for r in rows if r.status == "approved")
    assert refusals and all(r.reason for r in refusals)

    # the printed lines: the dossier officer's token and how the citizen files one
    token = re.search(r"dossier officer token:\s+(\S+)", first)
    assert token and "/api/v1/dossiers?overdue=true" in first, first
    assert re.search(r"POST \S+/api/v1/dossiers .*dinhdanh\.dossiers", first), first

    # run again on the same home: nothing more is filed, a new token is printed
    again = run_demo(demo_home, capsys)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(dossiers)).scalar_one() == len(rows)
    token = re.search(r"dossier officer token:\s+(\S+)", again)
    assert token and token[1] not in first

    with TestClient(create_app(engine)) as http:
        r = http.get("/api/v1/dossiers", params={"overdue": "true"},
                     headers={"Authorization": f"Bearer {token[1]}"})
        assert r.status_code == 200, r.text
        items = r.json()["items"]
        assert {d["dossier_id"] for d in items} == overdue and all(d["overdue"] for d in items)
        everything = http.get("/api/v1/dossiers", params={"limit": 200},
                              headers={"Authorization": f"Bearer {token[1]}"}).json()["items"]
        assert len(everything) == len(rows)
    engine.dispose()

