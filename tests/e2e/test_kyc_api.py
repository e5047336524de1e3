"""e-KYC end to end on SQLite and PostgreSQL (TestClient at https://testserver): a bank partner
gets a client-credentials token; without the citizen's consent it is refused (and learns nothing
of whether the PID exists); the citizen logs in through our OpenID provider and consents with
``POST /api/v1/me/consents``; the partner then receives a JWS that verifies against ``/jwks``,
with only the fields allowed, their sources and times; withdrawing the consent refuses again, and
the citizen's access log shows every call."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from joserfc import jws
from joserfc.errors import BadSignatureError
from joserfc.jwk import KeySet

from tests.support import log_is_valid
from dinhdanh.cards.tables import cards
from dinhdanh.exchange import partners
from dinhdanh.oidc import consent
from dinhdanh.registry.tables import changes, events, persons
from dinhdanh.web.app import create_app
from tests.e2e.test_oidc_flow import ISSUER, RP_SCOPES, Op
from tests.e2e.test_verify_api import bearer as partner_bearer
from tests.e2e.test_verify_api import log_rows
from tests.eid_support import record
from tests.oidc_support import AN, BINH, HOA, add_client, add_partner, load_people

UNKNOWN = "001099999999"
POLICY = ("full_name", "date_of_birth", "sex", "address", "hometown", "card", "status")
ASKED = ["full_name", "date_of_birth", "sex", "address", "card"]


def kyc_url(pid: str) -> str:
    return f"/api/v1/citizens/{pid}/kyc"


@pytest.fixture
def op(engine, tmp_path) -> Op:
    people = load_people(engine, tmp_path)
    rp = add_client(engine, scopes=RP_SCOPES)
    http = TestClient(create_app(engine), base_url=ISSUER, follow_redirects=False)
    return Op(engine, people, rp, http)


@pytest.fixture
def bank(op) -> dict:
    return add_partner(op.engine, name="Ngân hàng thử nghiệm", kind="bank", operations=("verify", "kyc"),
                       fields=POLICY, purposes=["customer_verification", "identity_verification"])


def citizen(op: Op, who: str) -> dict:
    return {"Authorization": f"Bearer {op.tokens(scope='openid dinhdanh.me', who=who)['access_token']}"}


def person_row(engine, pid: str):
    with engine.connect() as conn:
        return conn.execute(sa.select(persons).where(persons.c.pid == pid)).one()


def test_kyc_with_consent_signed_minimal_and_logged(op, bank):
    auth = partner_bearer(op.http, bank)
    fields = ",".join(ASKED)

    # no consent: refused, and an unknown PID gets the very same answer
    r = op.http.get(kyc_url(AN), params={"fields": fields}, headers=auth)
    assert r.status_code == 403 and r.json()["error"]["code"] == "consent_required", r.text
    assert r.json()["error"]["field"] == "consent" and "jws" not in r.json()
    unknown = op.http.get(kyc_url(UNKNOWN), params={"fields": fields}, headers=auth)
    assert (unknown.status_code, unknown.json()) == (r.status_code, r.json())
    en = op.http.get(kyc_url(AN), params={"fields": fields}, headers={**auth, "Accept-Language": "en"})
    assert "consent" in en.json()["error"]["message"] and en.json()["error"]["message"] != r.json()["error"]["message"]

    # the citizen consents through self-service
    me = citizen(op, AN)
    given = op.http.post("/api/v1/me/consents", json={"client_id": bank["client_id"], "fields": ASKED}, headers=me)
    assert given.status_code == 201, given.text
    assert given.json()["client_id"] == bank["client_id"] and set(given.json()["claims"]) == set(ASKED)
    listed = op.http.get("/api/v1/me/consents", headers=me).json()
    assert [c["client_id"] for c in listed if c["client_id"] == bank["client_id"]] == [bank["client_id"]]

    r = op.http.get(kyc_url(AN), params={"fields": fields}, headers=auth)
    assert r.status_code == 200, r.text
    answer = r.json()
    claims = answer["claims"]
    assert claims["iss"] == ISSUER and claims["aud"] == bank["client_id"] and claims["sub"] == AN
    assert claims["purpose"] == "customer_verification" and claims["jti"] and isinstance(claims["iat"], int)
    assert list(claims["fields"]) == ASKED  # only what was asked: no hometown, no status

    # the JWS verifies against the published keys, and is exactly the claims
    keyset = KeySet.import_key_set(op.http.get("/jwks").json())
    signed = jws.deserialize_compact(answer["jws"], keyset, algorithms=["ES256"])
    assert signed.headers()["typ"] == "kyc+jwt" and signed.headers()["alg"] == "ES256"
    assert signed.headers()["kid"] in {k["kid"] for k in op.http.get("/jwks").json()["keys"]}
    assert json.loads(signed.payload) == claims
    head, body, sig = answer["jws"].split(".")
    tampered_body = body[:10] + ("A" if body[10] != "A" else "B") + body[11:]
    with pytest.raises(BadSignatureError):
        jws.deserialize_compact(f"{head}.{tampered_body}.{sig}", keyset, algorithms=["ES256"])
    tampered_sig = sig[:5] + ("A" if sig[5] != "A" else "B") + sig[6:]
    with pytest.raises(BadSignatureError):
        jws.deserialize_compact(f"{head}.{body}.{tampered_sig}", keyset, algorithms=["ES256"])

    # values, sources and times as the register holds them
    an = person_row(op.engine, AN)
    got = claims["fields"]
    assert got["full_name"] == {"value": "Nguyễn Văn An", "source": "population_register",
                                "updated_at": an.created_at.isoformat()}
    assert got["date_of_birth"]["value"] == "1985-03-04" and got["sex"]["value"] == "male"
    assert got["address"]["value"]["commune_code"] == "00070" and got["address"]["value"]["province_code"] == "01"
    assert got["address"]["value"]["commune_name"]
    with op.engine.connect() as conn:
        card = conn.execute(sa.select(cards).where(cards.c.person_id == an.person_id)).one()
    assert got["card"]["source"] == "card_register"
    assert got["card"]["value"]["number"] == card.card_number and got["card"]["value"]["state"] == "current"
    assert got["card"]["updated_at"] == (card.issued_at or card.produced_at).isoformat()

    # the whole policy (no fields given) includes fields not consented to: refused
    r = op.http.get(kyc_url(AN), headers=auth)
    assert r.status_code == 403 and r.json()["error"]["code"] == "consent_required"

    # withdrawal: refused again
    assert op.http.delete(f"/api/v1/me/consents/{bank['client_id']}", headers=me).status_code == 204
    r = op.http.get(kyc_url(AN), params={"fields": "full_name"}, headers=auth)
    assert r.status_code == 403 and r.json()["error"]["code"] == "consent_required"

    # the access log, for the partner and for the citizen
    an_id = an.person_id
    rows = [(r.person_id, r.action, r.purpose, json.loads(r.fields), r.outcome)
            for r in log_rows(op.engine, bank["client_id"])]
    assert rows == [
        (an_id, "kyc", "customer_verification", ASKED, "refused"),
        (an_id, "kyc", "customer_verification", ASKED, "refused"),  # the English one
        (an_id, "kyc", "customer_verification", ASKED, "ok"),
        (an_id, "kyc", "customer_verification",  # the whole policy, in the register's order
         ["full_name", "date_of_birth", "sex", "hometown", "address", "status", "card"], "refused"),
        (an_id, "kyc", "customer_verification", ["full_name"], "refused"),
    ]  # the unknown PID: no person, no entry
    seen = op.http.get("/api/v1/me/access-log", headers=me).json()["items"]
    kyc_seen = [(e["who"]["label"], e["who"]["name"], e["fields"], e["outcome"]) for e in seen if e["action"] == "kyc"]
    assert kyc_seen[0] == (f"partner:{bank['client_id']}", "Ngân hàng thử nghiệm", ["full_name"], "refused")
    assert [o for *_, o in kyc_seen] == ["refused", "refused", "ok", "refused", "refused"]
    assert log_is_valid(op.engine)

    # a correction of the name (which also revokes the card and locks the e-ID account, hence
    # last): its time becomes the name's last update, the others stay
    with op.engine.begin() as conn:
        consent.grant(conn, op.people.accounts[AN], bank["client_id"], "", {"full_name", "sex"})
    record(op.engine, "correction", pid=AN, fields={"full_name": "Nguyễn Văn Ân"}, reason="Sai chính tả")
    with op.engine.connect() as conn:
        corrected_at = conn.execute(sa.select(events.c.recorded_at)
                                    .join(changes, changes.c.event_id == events.c.event_id)
                                    .where(changes.c.person_id == an.person_id,
                                           changes.c.field == "full_name")).scalar_one()
    later = op.http.get(kyc_url(AN), params={"fields": "full_name,sex"}, headers=auth).json()["claims"]["fields"]
    assert later["full_name"] == {"value": "Nguyễn Văn Ân", "source": "population_register",
                                  "updated_at": corrected_at.isoformat()}
    assert later["sex"]["updated_at"] == an.created_at.isoformat()


def test_policy_refusals(op, bank):
    auth = partner_bearer(op.http, bank)
    with op.engine.begin() as conn:
        account = op.people.accounts[AN]
        consent.grant(conn, account, bank["client_id"], "", {"full_name", "phone"})
    r = op.http.get(kyc_url(AN), params={"fields": "full_name,phone"}, headers=auth)
    assert r.status_code == 403 and r.json()["error"]["code"] == "field_not_allowed"
    assert r.json()["error"]["field"] == "phone" and "phone" in r.json()["error"]["message"]
    r = op.http.get(kyc_url(AN), params={"fields": "full_name", "purpose": "subscriber_standardisation"}, headers=auth)
    assert r.status_code == 403 and r.json()["error"]["code"] == "purpose_not_allowed"
    assert r.json()["error"]["field"] == "purpose"
    r = op.http.get(kyc_url(AN), params={"fields": "full_name", "purpose": "identity_verification"}, headers=auth)
    assert r.status_code == 200 and r.json()["claims"]["purpose"] == "identity_verification"
    for params in ({"fields": "salary"}, {"purpose": "BAD PURPOSE"}, {"fields": "full_name;drop"}):
        r = op.http.get(kyc_url(AN), params=params, headers=auth)
        assert r.status_code == 422, (params, r.text)
    assert op.http.get(kyc_url("12345"), headers=auth).status_code == 422
    assert op.http.get(kyc_url(AN)).status_code == 401
    # a partner without the kyc operation; a verify token is not enough
    verify_only = add_partner(op.engine, name="Chỉ xác minh", fields=("full_name",))
    r = op.http.get(kyc_url(AN), params={"fields": "full_name"}, headers=partner_bearer(op.http, verify_only))
    assert r.status_code == 403 and r.json()["error"]["code"] == "operation_not_allowed"
    rows = [(json.loads(r.fields), r.purpose, r.outcome) for r in log_rows(op.engine, bank["client_id"])]
    assert rows == [(["full_name", "phone"], "customer_verification", "refused"),
                    (["full_name"], "subscriber_standardisation", "refused"),
                    (["full_name"], "identity_verification", "ok")]
    assert log_rows(op.engine, verify_only["client_id"]) == []


def test_consent_through_the_login_provider_counts(op, bank):
    """A consent remembered by the provider's consent page names OpenID claims (``name``,
    ``birthdate``, ...): they count for the matching KYC fields, nothing more."""
    auth = partner_bearer(op.http, bank)
    with op.engine.begin() as conn:
        consent.grant(conn, op.people.accounts[BINH], bank["client_id"], "openid profile", {"sub", "name", "birthdate"})
    r = op.http.get(kyc_url(BINH), params={"fields": "full_name,date_of_birth"}, headers=auth)
    assert r.status_code == 200, r.text
    assert r.json()["claims"]["fields"]["full_name"]["value"] == "Trần Thị Bình"
    r = op.http.get(kyc_url(BINH), params={"fields": "full_name,sex"}, headers=auth)
    assert r.status_code == 403 and r.json()["error"]["code"] == "consent_required"
    # self-service adds to that consent, it does not replace it
    given = op.http.post("/api/v1/me/consents", json={"client_id": bank["client_id"], "fields": ["sex"]},
                         headers=citizen(op, BINH))
    assert given.status_code == 201 and {"name", "birthdate", "sex"} <= set(given.json()["claims"])
    assert given.json()["scope"] == "openid profile"
    assert op.http.get(kyc_url(BINH), params={"fields": "full_name,sex"}, headers=auth).status_code == 200


def test_self_service_consent_refusals(op, bank):
    me = citizen(op, HOA)
    url = "/api/v1/me/consents"
    r = op.http.post(url, json={"client_id": bank["client_id"], "fields": ["phone"]}, headers=me)
    assert r.status_code == 422 and r.json()["error"]["field"] == "fields" and "phone" in r.json()["error"]["message"]
    r = op.http.post(url, json={"client_id": bank["client_id"], "fields": ["salary"]}, headers=me)
    assert r.status_code == 422 and "salary" in r.json()["error"]["message"]
    r = op.http.post(url, json={"client_id": op.rp["client_id"], "fields": ["full_name"]}, headers=me)
    assert r.status_code == 403 and r.json()["error"]["code"] == "not_a_partner"
    verify_only = add_partner(op.engine, name="Chỉ xác minh", fields=("full_name",))
    r = op.http.post(url, json={"client_id": verify_only["client_id"], "fields": ["full_name"]}, headers=me)
    assert r.status_code == 403 and r.json()["error"]["code"] == "operation_not_allowed"
    with op.engine.begin() as conn:
        partners.suspend_partner(conn, bank["client_id"], actor="test")
    r = op.http.post(url, json={"client_id": bank["client_id"], "fields": ["full_name"]}, headers=me)
    assert r.status_code == 403 and r.json()["error"]["code"] == "partner_inactive"
    for body in ({"client_id": bank["client_id"], "fields": []}, {"client_id": bank["client_id"]},
                 {"client_id": "", "fields": ["sex"]}, {"client_id": bank["client_id"], "fields": "sex"},
                 {"client_id": bank["client_id"], "fields": ["sex"], "extra": 1}):
        assert op.http.post(url, json=body, headers=me).status_code == 422, body
    assert op.http.post(url, json={"client_id": bank["client_id"], "fields": ["sex"]}).status_code == 401
    assert [c["client_id"] for c in op.http.get("/api/v1/me/consents", headers=me).json()] == [op.rp["client_id"]]


def test_without_consent_by_law_and_the_area_served(op):
    """A partner answering under a law (no consent needed) and serving one province: a person
    outside it looks exactly like an unknown PID (404)."""
    with op.engine.begin() as conn:
        made = partners.add_partner(conn, name="Sở Tư pháp TP.HCM", kind="locality", operations="kyc",
                                    fields="full_name,status", purposes="public_service", area_code="79",
                                    kyc_consent_required=False, actor="test")
        partners.approve_partner(conn, made["client_id"], agreement="QĐ-1", legal_basis="Luật Căn cước 2023",
                                 expires=dt.date(2099, 1, 1), security_level=3,
                                 actor="test")
    auth = partner_bearer(op.http, made)
    r = op.http.get(kyc_url(HOA), headers=auth)  # HOA lives in province 79
    assert r.status_code == 200, r.text
    assert r.json()["claims"]["fields"]["status"]["value"] == "alive"
    assert list(r.json()["claims"]["fields"]) == ["full_name", "status"]
    outside = op.http.get(kyc_url(AN), headers=auth)  # Hà Nội
    unknown = op.http.get(kyc_url(UNKNOWN), headers=auth)
    assert outside.status_code == unknown.status_code == 404 and outside.json() == unknown.json()
    assert [json.loads(r.fields) for r in log_rows(op.engine, made["client_id"])] == [["full_name", "status"]]


def test_officer_routes_are_unchanged(op):
    from dinhdanh.officers.service import add_officer

    with op.engine.begin() as conn:
        _, token = add_officer(conn, "Cán bộ", "national", None, roles=["registrar"])
    officer = {"Authorization": f"Bearer {token}"}
    assert op.http.get(f"/api/v1/citizens/{AN}", headers=officer).json()["pid"] == AN
    assert op.http.get(f"/api/v1/citizens/{AN}/history", headers=officer).status_code == 200
    # an officer token is no partner token
    assert op.http.get(kyc_url(AN), headers=officer).status_code == 401
