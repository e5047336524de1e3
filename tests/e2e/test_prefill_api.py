"""The prefill over HTTP on SQLite and PostgreSQL: a citizen logs in through our provider (scope
``dinhdanh.dossiers``) and gets what the state holds for three services' forms; the rest is asked.
Refusals: no token (401), a token without the scope (403), an unknown service (404 ``code``)."""

from __future__ import annotations

import logging

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from dinhdanh.audit.tables import access_log
from dinhdanh.web.app import create_app
from tests.e2e.test_oidc_flow import ISSUER, RP_SCOPES, Op
from tests.oidc_support import AN, BINH, add_client, load_people

SCOPE = "openid dinhdanh.dossiers"


def prefill_url(code: str) -> str:
    return f"/api/v1/services/{code}/prefill"


@pytest.fixture
def op(engine, tmp_path) -> Op:
    people = load_people(engine, tmp_path)
    rp = add_client(engine, scopes=RP_SCOPES + " dinhdanh.dossiers")
    http = TestClient(create_app(engine), base_url=ISSUER, follow_redirects=False)
    return Op(engine, people, rp, http)


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def values(body: dict) -> dict:
    return {f["field"]: (f["value"], f["source"]) for f in body["fields"]}


def test_a_citizen_gets_the_prefill_of_three_services(op, caplog):
    http = op.http
    binh = bearer(op.tokens(scope=SCOPE, who=BINH)["access_token"])
    an = bearer(op.tokens(scope=SCOPE, who=AN)["access_token"])
    with op.engine.connect() as conn:
        logged_before = conn.execute(sa.select(sa.func.count()).select_from(access_log)).scalar()

    with caplog.at_level(logging.DEBUG):
        # confirmation of the old ID number: Bình has no card yet and no old number: both asked
        r = http.get(prefill_url("1.000466"), headers=binh)
        assert r.status_code == 200, r.text
        assert r.headers["cache-control"] == "no-store"
        body = r.json()
        assert body["service"] == "1.000466" and body["version"].startswith("1.000466@")
        got = values(body)
        assert got["applicant.pid"] == (BINH, "register:pid")
        assert got["applicant.full_name"] == ("Trần Thị Bình", "register:full_name")
        assert got["applicant.date_of_birth"] == ("1987-05-06", "register:date_of_birth")
        assert got["applicant.sex"] == ("female", "register:sex")
        assert got["applicant.permanent_address"][1] == "register:permanent_address"
        assert "Hà Nội" in got["applicant.permanent_address"][0]
        assert {"card_number", "old_id_number"} <= set(body["ask"])
        assert all(f.get("label") for f in body["fields"])

        # An holds a card: its number is filled
        got = values(http.get(prefill_url("1.000466"), headers=an).json())
        assert got["card_number"][1] == "card:number" and got["card_number"][0]

        # birth registration: the other parent is Bình's spouse, An
        body = http.get(prefill_url("1.001193"), headers=binh).json()
        got = values(body)
        assert got["other_parent.pid"] == (AN, "register:spouse.pid")
        assert got["other_parent.full_name"] == ("Nguyễn Văn An", "register:spouse.full_name")
        assert got["other_parent.date_of_birth"] == ("1985-03-04", "register:spouse.date_of_birth")

        # death registration: the deceased's fields wait for the PID the citizen gives
        body = http.get(prefill_url("1.000656"), headers=binh).json()
        assert {"deceased.full_name", "deceased.date_of_birth", "deceased.sex",
                "deceased.permanent_address"} <= set(body["ask"])
        assert not any(f["field"].startswith("deceased.") for f in body["fields"])
    # the citizen's own read: no officer entry in the access log, and no value in the logs
    with op.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(access_log)).scalar() == logged_before
    assert "Trần Thị Bình" not in caplog.text and "1987-05-06" not in caplog.text


def test_refusals(op):
    http = op.http
    binh = bearer(op.tokens(scope=SCOPE, who=BINH)["access_token"])
    me_only = bearer(op.tokens(scope="openid dinhdanh.me", who=BINH)["access_token"])
    assert http.get(prefill_url("1.000466")).status_code == 401
    assert http.get(prefill_url("1.000466"), headers=bearer("not-a-token")).status_code == 401
    r = http.get(prefill_url("1.000466"), headers=me_only)
    assert r.status_code == 403, r.text
    r = http.get(prefill_url("9.999999"), headers=binh)
    assert r.status_code == 404, r.text
    error = r.json()["error"]
    assert error["code"] == "not_found" and error["field"] == "code"
    assert "danh mục" in error["message"]
    r = http.get(prefill_url("9.999999"), headers={**binh, "Accept-Language": "en"})
    assert "catalogue" in r.json()["error"]["message"]
