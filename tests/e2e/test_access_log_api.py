"""The citizen's data tracker, end to end on SQLite and PostgreSQL: an officer reads a record
through the officer API, the citizen logs in through our OpenID provider and sees that read (who,
why in Vietnamese, what, outcome) in ``GET /api/v1/me/access-log``, and nobody else's."""

from __future__ import annotations

import base64
import json

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from dinhdanh.audit.service import PURPOSES, record_access
from dinhdanh.officers.service import add_officer
from dinhdanh.registry.tables import persons
from dinhdanh.web.app import create_app
from tests import rfc9162
from tests.e2e.test_oidc_flow import ISSUER, RP_SCOPES, Op
from tests.oidc_support import BINH, HOA, add_client, load_people
from tests.support import log_is_valid

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
        officer, officer_token = add_officer(conn, "Cán bộ Bộ Công an", "national", None, roles=["registrar"])
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
    assert log_is_valid(op.engine)


def test_the_citizen_proves_their_entries_are_in_the_log_auditors_see(op):
    """Once sequenced, each entry carries its leaf index and hash; the public head and inclusion
    proof, checked with an independent RFC 9162 implementation and the log's published key, show
    it is in the same log everyone else sees; a consistency proof links an older head to a newer."""
    from joserfc import jws
    from joserfc.jwk import KeySet

    with op.engine.begin() as conn:
        _, officer_token = add_officer(conn, "Cán bộ Bộ Công an", "national", None, roles=["registrar"])
    assert op.http.get(f"/api/v1/citizens/{HOA}", headers=bearer(officer_token)).status_code == 200
    hoa = bearer(op.tokens(scope="openid dinhdanh.me", who=HOA)["access_token"])
    pending = op.http.get(LOG, headers=hoa).json()["items"][0]
    assert pending["leaf_index"] is None and pending["leaf_hash"] is None  # not sequenced yet
    assert log_is_valid(op.engine)  # the sequencer runs (serve runs it continuously)
    older = op.http.get("/api/v1/audit/head").json()
    assert op.http.get(f"/api/v1/citizens/{BINH}", headers=bearer(officer_token)).status_code == 200
    assert log_is_valid(op.engine)
    head = op.http.get("/api/v1/audit/head").json()
    assert set(head) == {"tree_size", "root_hash", "timestamp", "signature"}
    keys = KeySet.import_key_set(op.http.get("/api/v1/audit/keys").json())
    payload = json.loads(jws.deserialize_compact(head["signature"], keys).payload)
    assert payload == {k: head[k] for k in ("tree_size", "root_hash", "timestamp")}
    root = base64.b64decode(head["root_hash"])
    for entry in op.http.get(LOG, headers=hoa).json()["items"]:
        assert entry["leaf_index"] is not None
        proof = op.http.get("/api/v1/audit/proof/inclusion",
                            params={"leaf_index": entry["leaf_index"], "tree_size": head["tree_size"]}).json()
        assert proof["leaf_hash"] == entry["leaf_hash"]
        path = [base64.b64decode(p) for p in proof["audit_path"]]
        assert rfc9162.verify_inclusion(entry["leaf_index"], head["tree_size"], base64.b64decode(entry["leaf_hash"]),
                                        path, root)
    assert head["tree_size"] > older["tree_size"]
    proof = op.http.get("/api/v1/audit/proof/consistency",
                        params={"first": older["tree_size"], "second": head["tree_size"]}).json()
    assert rfc9162.verify_consistency(older["tree_size"], head["tree_size"], base64.b64decode(older["root_hash"]),
                                      root, [base64.b64decode(p) for p in proof["consistency_path"]])
    for params in ({"leaf_index": head["tree_size"], "tree_size": head["tree_size"]},
                   {"leaf_index": 0, "tree_size": head["tree_size"] + 1},
                   {"leaf_index": -1, "tree_size": 1}, {"leaf_index": 10**30, "tree_size": 1}):
        r = op.http.get("/api/v1/audit/proof/inclusion", params=params)
        assert r.status_code == 422 and r.json()["error"]["field"] in ("leaf_index", "tree_size"), r.text


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
    assert r.json()["error"]["code"] == "forbidden"
    assert r.json()["error"]["message"].startswith("Mã truy cập không có phạm vi")  # Vietnamese first
    r = op.http.get(LOG, headers={**without, "Accept-Language": "en"})
    assert r.json()["error"]["message"] == "The access token lacks the scope dinhdanh.me."
    with op.engine.begin() as conn:  # an officer token is not a citizen's
        _, officer_token = add_officer(conn, "Cán bộ", "national", None, roles=["registrar"])
    assert op.http.get(LOG, headers=bearer(officer_token)).status_code == 401
    json.dumps(op.http.get("/openapi.json").json()["paths"][LOG])  # documented
