"""Property tests of the partners' verification, e-KYC, batch and ladder routes, with a telco's token (the officer-API
fuzz test reaches them only without a valid token): schemathesis calls every operation with
generated requests, and Hypothesis uploads arbitrary bytes. No response is a server error, every
response conforms to the OpenAPI document, and a refused upload leaves no file behind."""

from __future__ import annotations

import pytest
import schemathesis
import sqlalchemy as sa
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import checks as sc

from dinhdanh.store.unit_of_work import UnitOfWork
from dinhdanh.exchange.tables import match_batches
from dinhdanh.web.app import create_app
from tests.oidc_support import add_partner

APP = create_app(sa.create_engine("sqlite://"))
schema = schemathesis.openapi.from_asgi("/openapi.json", APP).include(
    path_regex=r"^/api/v1/(batches|subscribers|verify|citizens/\{pid\}/kyc)")
CHECKS = [sc.not_a_server_error, sc.status_code_conformance, sc.content_type_conformance,
          sc.response_schema_conformance]


@pytest.fixture
def telco_token(sqlite_engine, tmp_path, monkeypatch):
    monkeypatch.setenv("DINHDANH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DINHDANH_BATCH_MAX_BYTES", "4096")
    partner = add_partner(sqlite_engine, operations=("verify", "kyc", "batch"),
                          fields=("full_name", "date_of_birth", "sex", "status", "card"))
    APP.state.engine = sqlite_engine
    APP.state.uow = UnitOfWork(sqlite_engine)
    http = TestClient(APP, base_url="https://testserver")
    r = http.post("/token", data={"grant_type": "client_credentials", "scope": "dinhdanh.verify"},
                  auth=(partner["client_id"], partner["client_secret"]))
    assert r.status_code == 200, r.text
    yield r.json()["access_token"]
    APP.state.engine = None


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_partner_routes_conform(case, telco_token):
    response = case.call(headers={"Authorization": f"Bearer {telco_token}"}, base_url="https://testserver")
    assert response.status_code < 500, (case.operation.label, response.status_code, response.text[:500])
    case.validate_response(response, checks=CHECKS)


@given(content=st.binary(max_size=600) | st.text(max_size=300).map(lambda t: ("pid,full_name,date_of_birth\n" + t).encode()),
       fmt=st.sampled_from([None, "csv", "parquet", "xml"]))
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_any_upload_is_queued_or_refused_cleanly(telco_token, sqlite_engine, tmp_path, content, fmt):
    http = TestClient(APP, base_url="https://testserver")
    r = http.post("/api/v1/batches", files={"file": ("f", content, "application/octet-stream")},
                  data={"format": fmt} if fmt else {}, headers={"Authorization": f"Bearer {telco_token}"})
    assert r.status_code in (202, 413, 422), r.text
    folder = tmp_path / "home" / "var" / "batches"
    with sqlite_engine.connect() as conn:
        ids = set(conn.execute(sa.select(match_batches.c.batch_id)).scalars())
    on_disk = {p.name for p in folder.iterdir()} if folder.exists() else set()
    assert on_disk == ids  # a refused upload leaves nothing; an accepted one is recorded
    if r.status_code == 202:
        assert r.json()["batch_id"] in ids
