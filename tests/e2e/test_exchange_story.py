"""The data exchange as one partner lives it, end to end over HTTP on SQLite and PostgreSQL (the
issue's acceptance story): a bank gets a token from the provider, verifies a customer, is refused
a field outside its policy, runs a batch whose every row has a known right answer (each person it checked is told), follows two
people, receives a death notification on a webhook that was down for a while, reads a customer's
e-KYC with her consent, and the citizen sees every access to her data in her data tracker, while
the transparency log stays valid."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import unicodedata

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from joserfc import jws
from joserfc.jwk import KeySet

from tests.support import log_is_valid
from dinhdanh.changes import routing, webhooks
from dinhdanh.exchange import batches
from dinhdanh.exchange.tables import match_jobs
from dinhdanh.officers.service import add_officer
from dinhdanh.web.app import create_app
from tests.e2e.test_oidc_flow import ISSUER, Op
from tests.integration.test_changes import Clock, Receiver, vault_of
from tests.oidc_support import AN, BINH, DUC, HOA, add_client, add_partner, load_people

CHAU, DUNG = "001212000003", "001215000004"
# the batch: (pid, full_name, date_of_birth, sex) -> (full_name, date_of_birth, sex results, outcome)
BATCH = [
    ((AN, "Nguyễn Văn An", "1985-03-04", "male"), ("match", "match", "match", "match")),
    ((BINH, unicodedata.normalize("NFD", "Trần Thị Bình"), "1987-05-06", "female"), ("match", "match", "match", "match")),
    ((HOA, "  phạm   THỊ hoa ", "1993-11-12", "nữ"), ("match", "match", "match", "match")),
    ((CHAU, "Nguyen Minh Chau", "2012-01-02", "male"), ("match_folded", "match", "match", "mismatch")),
    ((DUNG, "Nguyễn Thị Dung", "2015-07-09", "female"), ("match", "mismatch", "match", "mismatch")),
    (("001099123456", "Ai Đó", "1999-01-01", "male"), ("", "", "", "not_found")),
    (("12345", "Lê Văn Đức", "1990-09-10", "male"), ("", "", "", "invalid")),
    ((DUC, "Lê Văn Đức", "1990-13-45", "male"), ("", "", "", "invalid")),
]


@pytest.fixture
def world(engine, tmp_path, monkeypatch):
    monkeypatch.setenv("DINHDANH_HOME", str(tmp_path / "home"))
    people = load_people(engine, tmp_path)
    rp = add_client(engine, scopes="openid profile dinhdanh.me")
    http = TestClient(create_app(engine), base_url=ISSUER, follow_redirects=False)
    with engine.begin() as conn:
        _, officer = add_officer(conn, "Cán bộ Công an", "national", None, roles=["registrar"])
    bank = add_partner(engine, name="Ngân hàng Thử nghiệm", kind="bank",
                       operations=("verify", "kyc", "batch", "subscribe"),
                       fields=("full_name", "date_of_birth", "sex", "status"))
    return Op(engine, people, rp, http), officer, bank


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def test_a_partners_day_and_the_citizens_data_tracker(world):
    op, officer, bank = world
    http, engine = op.http, op.engine

    # 1. a token from the provider's client-credentials grant
    r = http.post("/token", data={"grant_type": "client_credentials", "scope": "dinhdanh.verify"},
                  auth=(bank["client_id"], bank["client_secret"]))
    assert r.status_code == 200, r.text
    auth = bearer(r.json()["access_token"])

    # 2. verify a customer: yes/no per field, never the register's values
    r = http.post("/api/v1/verify", json={"pid": HOA, "full_name": "Phạm Thị Hoa", "date_of_birth": "1993-11-12"},
                  headers=auth)
    assert r.status_code == 200, r.text
    assert r.json() == {"found": True, "match": True, "status": "alive",
                        "fields": {"full_name": "match", "date_of_birth": "match"}}
    # ... and a field outside the bank's policy is refused, naming the field
    r = http.post("/api/v1/verify", json={"pid": HOA, "full_name": "Phạm Thị Hoa", "phone": "0987654006"},
                  headers=auth)
    assert r.status_code == 403 and r.json()["error"]["field"] == "phone", r.text

    # 3. a batch whose every row has a known answer
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["pid", "full_name", "date_of_birth", "sex"])
    writer.writerows(row for row, _ in BATCH)
    r = http.post("/api/v1/batches", files={"file": ("customers.csv", buf.getvalue().encode(), "text/csv")},
                  data={"purpose": "customer_verification"}, headers=auth)
    assert r.status_code == 202, r.text
    batch_id = r.json()["batch_id"]
    assert batch_id in [b["batch_id"] for b in batches.run_pending(engine)]
    status = http.get(f"/api/v1/batches/{batch_id}", headers=auth).json()
    assert status["status"] == "done" and status["rows_done"] == len(BATCH), status
    result = http.get(f"/api/v1/batches/{batch_id}/result", headers=auth)
    assert result.status_code == 200, result.text
    rows = list(csv.DictReader(io.StringIO(result.text)))
    assert [r["pid"] for r in rows] == [row[0] for row, _ in BATCH]  # one row per input row, in order
    for got, (_, want) in zip(rows, BATCH, strict=True):
        assert (got["full_name_result"], got["date_of_birth_result"], got["sex_result"], got["outcome"]) == want, got
    with engine.connect() as conn:  # the batch's own audit record: who, why, how much, what came out
        job = conn.execute(sa.select(match_jobs).where(match_jobs.c.partner == bank["client_id"])).one()
    assert (job.purpose, job.matched, job.mismatched, job.not_found, job.invalid) == (
        "customer_verification", 3, 2, 1, 2)

    # 4. follow two customers, with a webhook that is down for a while
    receiver = Receiver()
    r = http.post("/api/v1/subscriptions", json={"kinds": ["person.died", "person.moved"], "scope": "follows",
                                                 "webhook_url": receiver.url}, headers=auth)
    assert r.status_code in (200, 201), r.text
    receiver.secret = r.json()["webhook_secret"]
    r = http.post("/api/v1/follows", json={"pids": [HOA, DUC], "days": 30}, headers=auth)
    assert r.status_code in (200, 201) and all(i["status"] == "following" for i in r.json()["items"]), r.text
    # the register changes, through the officer API
    r = http.post("/api/v1/events/temporary-residence", headers=bearer(officer), json={
        "pid": HOA, "commune_code": "00070", "address": "12 Hàng Bài",
        "until": (dt.date.today() + dt.timedelta(days=180)).isoformat()})
    assert r.status_code == 201, r.text
    r = http.post("/api/v1/events/death", headers=bearer(officer),
                  json={"pid": DUC, "date_of_death": dt.date.today().isoformat()})
    assert r.status_code == 201, r.text
    routing.route_all(engine)
    clock = Clock()
    deliverer = webhooks.Deliverer(engine, vault_of(engine), clock=clock, rand=lambda: 0.5, timeout=2)
    try:
        assert deliverer.run()["retry"] >= 1  # nobody listening
        receiver.start()
        for _ in range(4):
            clock.advance(3600)
            deliverer.run()
    finally:
        deliverer.close()
        receiver.stop()
    arrived = [(e["type"], e["data"]["pid"]) for _, e in receiver.first_arrivals()]
    assert arrived == [("person.moved", HOA), ("person.died", DUC)]
    assert receiver.bad == 0  # every signature verified (Standard Webhooks)
    # the pull feed has the same events
    feed = http.get("/api/v1/changes", params={"after": 0}, headers=auth).json()
    assert [(e["type"], e["data"]["pid"]) for e in feed["events"]] == arrived

    # 5. e-KYC: refused without the citizen's consent, signed once she gives it
    r = http.get(f"/api/v1/citizens/{HOA}/kyc", params={"purpose": "customer_verification",
                                                         "fields": "full_name,date_of_birth"}, headers=auth)
    assert r.status_code == 403 and r.json()["error"]["code"] == "consent_required", r.text
    hoa = bearer(op.tokens(scope="openid dinhdanh.me", who=HOA)["access_token"])
    r = http.post("/api/v1/me/consents", json={"client_id": bank["client_id"],
                                               "fields": ["full_name", "date_of_birth"]}, headers=hoa)
    assert r.status_code in (200, 201), r.text
    r = http.get(f"/api/v1/citizens/{HOA}/kyc", params={"purpose": "customer_verification",
                                                         "fields": "full_name,date_of_birth"}, headers=auth)
    assert r.status_code == 200, r.text
    signed = jws.deserialize_compact(r.json()["jws"], KeySet.import_key_set(http.get("/jwks").json()),
                                     algorithms=["ES256"])
    claims = json.loads(signed.payload)
    assert claims["aud"] == bank["client_id"] and claims["sub"] == HOA
    assert claims["fields"]["full_name"]["value"] == "Phạm Thị Hoa"
    assert set(claims["fields"]) == {"full_name", "date_of_birth"}

    # 6. the citizen's data tracker shows every access by the bank, with its purpose and outcome
    r = http.get("/api/v1/me/access-log", params={"limit": 100}, headers=hoa)
    assert r.status_code == 200, r.text
    mine = [e for e in r.json()["items"] if e["who"]["kind"] == "partner"]
    assert all(e["who"]["name"] == "Ngân hàng Thử nghiệm" for e in mine), mine
    seen = sorted((e["action"], e["outcome"]) for e in mine)
    assert seen == sorted([("verify", "match"), ("verify", "refused"), ("batch_match", "match"), ("follow", "ok"),
                           ("notify", "ok"), ("kyc", "refused"), ("kyc", "ok")]), seen
    batch = next(e for e in mine if e["action"] == "batch_match")
    assert batch["fields"] == ["full_name", "date_of_birth", "sex"]
    assert batch["purpose"]["code"] == "customer_verification"
    kyc = next(e for e in mine if e["action"] == "kyc" and e["outcome"] == "ok")
    assert kyc["fields"] == ["full_name", "date_of_birth"]
    assert kyc["purpose"]["code"] == "customer_verification" and kyc["purpose"]["text"]
    assert log_is_valid(engine)
