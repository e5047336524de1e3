"""The citizen's data tracker, end to end on SQLite and PostgreSQL: an officer reads a record
through the officer API, the citizen logs in through our OpenID provider and sees that read (who,
why in Vietnamese, what, outcome) in ``GET /api/v1/me/access-log``, and nobody else's."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from dinhdanh.audit.chain import verify
from dinhdanh.audit.service import PURPOSES, record_access
from dinhdanh.officers.service import add_officer
from dinhdanh.registry.tables import persons
from dinhdanh.web.app import create_app
from tests.e2e.test_oidc_flow import ISSUER, RP_SCOPES, Op
from tests.oidc_support import BINH, HOA, add_client, load_people

LOG = "/api/v1/me/access-log"


@pytest.fixture
def op(engine, tmp_path) -> Op:
    people = load_people(engine, tmp_path)
    rp = add_client(engine, scopes=RP_SCOPES)
    http = TestClient(create_app(engine), base_url=ISSUER, follow_redirects=False)
    return Op(engine, people, rp, http)


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def person_id(engine, pid: str) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(persons.c.person_id).where(persons.c.pid == pid)).scalar_one()


def test_the_citizen_sees_an_officers_read_of_their_record(op):
    with op.engine.begin() as conn:
        officer, officer_token = add_officer(conn, "Cán bộ Bộ Công an", "national", None)
    r = op.http.get(f"/api/v1/citizens/{HOA}", params={"purpose": "residence"}, headers=bearer(officer_token))
    assert r.status_code == 200, r.text
    r = op.http.get(f"/api/v1/citizens/{BINH}", headers=bearer(officer_token))  # someone else's record
    assert r.status_code == 200, r.text

    hoa = bearer(op.tokens(scope="openid dinhdanh.me", who=HOA)["access_token"])
    r = op.http.get(LOG, headers=hoa)
    assert r.status_code == 200, r.text
    page = r.json()
    reads = [e for e in page["items"] if e["action"] == "read"]
    assert len(reads) == 1, page
    (entry,) = reads
    assert entry["who"] == {"kind": "officer", "label": officer.label, "name": None}
    assert entry["purpose"] == {"code": "residence", "text": PURPOSES["residence"]}
    assert entry["purpose"]["text"] == "Đăng ký, quản lý cư trú"
    assert entry["outcome"] == "ok" and entry["fields"] == ["record"] and entry["at"].endswith("+00:00")
    # only HOA's own entries
    hoa_id = person_id(op.engine, HOA)
    with op.engine.connect() as conn:
        own = conn.execute(sa.text("SELECT access_id FROM access_log WHERE person_id = :p ORDER BY access_id DESC"),
                           {"p": hoa_id}).scalars().all()
    assert [e["access_id"] for e in page["items"]] == own

    binh = bearer(op.tokens(scope="openid dinhdanh.me", who=BINH)["access_token"])
    binh_reads = [e for e in op.http.get(LOG, headers=binh).json()["items"] if e["action"] == "read"]
    assert len(binh_reads) == 1 and not {e["access_id"] for e in binh_reads} & set(own)
    assert verify(op.engine).valid


def test_newest_first_paged_with_fields_outcome_and_partner_names(op):
    hoa_id = person_id(op.engine, HOA)
    partner = op.rp["client_id"]
    with op.engine.begin() as conn:
        record_access(conn, "officer:7", [hoa_id], "history", "civil_status")
        record_access(conn, f"partner:{partner}", [hoa_id], "match", "public_service",
                      fields=["full_name", "date_of_birth"])
        record_access(conn, "partner:gone", [hoa_id], "match", "public_service", outcome="refused")
    hoa = bearer(op.tokens(scope="openid dinhdanh.me", who=HOA)["access_token"])
    everything = op.http.get(LOG, headers=hoa, params={"limit": 100}).json()
    assert everything["next_before"] is None
    ids = [e["access_id"] for e in everything["items"]]
    assert ids == sorted(ids, reverse=True) and len(ids) >= 3
    newest, second, third = everything["items"][:3]
    assert newest["who"] == {"kind": "partner", "label": "partner:gone", "name": None}
    assert newest["outcome"] == "refused"
    assert second["who"] == {"kind": "partner", "label": f"partner:{partner}", "name": "Dịch vụ thử nghiệm"}
    assert second["fields"] == ["full_name", "date_of_birth"]
    assert second["purpose"]["text"] == PURPOSES["public_service"]
    assert third["action"] == "history"

    seen, before = [], None
    while True:
        params = {"limit": 2} | ({"before": before} if before else {})
        page = op.http.get(LOG, headers=hoa, params=params).json()
        assert len(page["items"]) <= 2
        seen += [e["access_id"] for e in page["items"]]
        before = page["next_before"]
        if before is None:
            break
    assert seen == ids
    assert op.http.get(LOG, headers=hoa, params={"limit": 0}).status_code == 422
    assert op.http.get(LOG, headers=hoa, params={"limit": 101}).status_code == 422


def test_refusals(op):
    r = op.http.get(LOG)
    assert r.status_code == 401 and "invalid_request" in r.headers["www-authenticate"]
    assert op.http.get(LOG, headers=bearer("not-a-token")).status_code == 401
    without = bearer(op.tokens(scope="openid profile", who=HOA)["access_token"])
    r = op.http.get(LOG, headers=without)
    assert r.status_code == 403 and "insufficient_scope" in r.headers["www-authenticate"]
    with op.engine.begin() as conn:  # an officer token is not a citizen's
        _, officer_token = add_officer(conn, "Cán bộ", "national", None)
    assert op.http.get(LOG, headers=bearer(officer_token)).status_code == 401
    json.dumps(op.http.get("/openapi.json").json()["paths"][LOG])  # documented
