"""DPoP (RFC 9449) end to end over HTTP (TestClient at https://testserver), on SQLite and PostgreSQL:
partners whose policy requires it get DPoP-bound tokens only and use them only with a proof; a
partner without the requirement keeps its bearer tokens and may opt in; relying parties may bind
their tokens for userinfo. Proofs come from tests/dpop_client.py (``cryptography`` and the RFC, not
the server's code)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from dinhdanh.audit.tables import access_log
from dinhdanh.exchange import partners
from dinhdanh.oidc import housekeeping
from dinhdanh.oidc.tables import oidc_dpop_proofs, oidc_tokens
from dinhdanh.registry.errors import InvalidInput
from dinhdanh.store.base import utcnow
from dinhdanh.web.app import create_app
from dinhdanh.web.oidc import set_issuer
from tests.dpop_client import DPoPKey, b64, compact, private_jwk
from tests.oidc_support import BINH, Browser, add_client, add_partner, authorize_url, load_people, pkce, query_of

ISSUER = "https://testserver"
TOKEN_URL = f"{ISSUER}/token"
VERIFY = "/api/v1/verify"
VERIFY_URL = ISSUER + VERIFY
AN = "001085000001"
BODY = {"pid": AN, "full_name": "Nguyễn Văn An", "date_of_birth": "1985-03-04"}


@pytest.fixture
def http(family) -> TestClient:
    return TestClient(create_app(family), base_url=ISSUER, follow_redirects=False)


def dpop_partner(engine, **kw) -> dict:
    partner = add_partner(engine, **kw)
    with engine.begin() as conn:
        partners.update_policy(conn, partner["client_id"], dpop_required=True, actor="test")
    return partner


def token_request(http: TestClient, partner: dict, proof: str | list[str] | None = None):
    headers = [("DPoP", p) for p in ([proof] if isinstance(proof, str) else proof or [])]
    return http.post("/token", data={"grant_type": "client_credentials", "scope": "dinhdanh.verify"},
                     auth=(partner["client_id"], partner["client_secret"]), headers=headers)


def dpop_token(http: TestClient, partner: dict, key: DPoPKey) -> str:
    r = token_request(http, partner, key.proof("POST", TOKEN_URL))
    assert r.status_code == 200, r.text
    assert r.json()["token_type"] == "DPoP"
    return r.json()["access_token"]


def verify(http: TestClient, token: str, proof: str | None = None, scheme: str = "DPoP", **headers):
    sent = {"Authorization": f"{scheme} {token}", **headers}
    if proof is not None:
        sent["DPoP"] = proof
    return http.post(VERIFY, json=BODY, headers=sent)


def claims_of(jwt: str) -> dict:
    payload = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def challenge(response) -> str:
    return response.headers["WWW-Authenticate"]


def logged(engine, client_id: str) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(access_log)
                            .where(access_log.c.actor == f"partner:{client_id}")).scalar_one()


def test_a_partner_that_requires_dpop(family, http):
    meta = http.get("/.well-known/openid-configuration").json()
    assert {"ES256", "RS256", "PS256"} <= set(meta["dpop_signing_alg_values_supported"])
    assert "none" not in meta["dpop_signing_alg_values_supported"]
    bank = dpop_partner(family, kind="bank", name="Ngân hàng DPoP")
    key = DPoPKey("ES256")

    # no bearer token for it, ever
    r = token_request(http, bank)
    assert r.status_code == 400 and r.json()["error"] == "invalid_dpop_proof" and "DPoP" in r.json()["error_description"]
    # with a proof: a DPoP token, bound to the key (the row's jkt, the JWT's cnf.jkt)
    r = token_request(http, bank, key.proof("POST", TOKEN_URL))
    assert r.status_code == 200, r.text
    assert r.json()["token_type"] == "DPoP" and r.headers["cache-control"] == "no-store"
    token = r.json()["access_token"]
    assert claims_of(token)["cnf"] == {"jkt": key.jkt}
    with family.connect() as conn:
        assert conn.execute(sa.select(oidc_tokens.c.jkt).where(oidc_tokens.c.jti == claims_of(token)["jti"])
                            ).scalar_one() == key.jkt

    # used with a proof for this request: served, and logged
    r = verify(http, token, key.proof("POST", VERIFY_URL, access_token=token))
    assert r.status_code == 200, r.text
    assert r.json()["match"] is True
    # the same token as a bearer token: refused with a DPoP challenge (Vietnamese first)
    r = verify(http, token, scheme="Bearer")
    assert r.status_code == 401 and challenge(r).startswith('DPoP error="invalid_token"')
    assert 'algs="ES256' in challenge(r) and r.json()["error"]["code"] == "dpop_required"
    assert "DPoP" in r.json()["error"]["message"] and "khóa" in r.json()["error"]["message"]
    r = verify(http, token, scheme="Bearer", **{"Accept-Language": "en"})
    assert "DPoP-bound" in r.json()["error"]["message"]
    # the DPoP scheme without a proof, or with a bad one
    r = verify(http, token)
    assert r.status_code == 401 and challenge(r).startswith('DPoP error="invalid_dpop_proof"')
    other = DPoPKey("ES256")
    now = time.time()
    bad = {
        "wrong ath": key.proof("POST", VERIFY_URL, access_token=token + "x"),
        "no ath": key.proof("POST", VERIFY_URL),
        "wrong htm": key.proof("GET", VERIFY_URL, access_token=token),
        "wrong path": key.proof("POST", f"{ISSUER}/api/v1/batches", access_token=token),
        "wrong host": key.proof("POST", "https://evil.example/api/v1/verify", access_token=token),
        "old iat": key.proof("POST", VERIFY_URL, access_token=token, iat=now - 120),
        "future iat": key.proof("POST", VERIFY_URL, access_token=token, iat=now + 120),
        "another key": other.proof("POST", VERIFY_URL, access_token=token),
        "private key in the header": key.proof("POST", VERIFY_URL, access_token=token,
                                               header={"jwk": private_jwk(key.key)}),
        "wrong typ": key.proof("POST", VERIFY_URL, access_token=token, header={"typ": "JWT"}),
        "alg none": compact({"typ": "dpop+jwt", "alg": "none", "jwk": key.jwk},
                            {"jti": "n1", "htm": "POST", "htu": VERIFY_URL, "iat": int(now)}),
        "alg HS256": compact({"typ": "dpop+jwt", "alg": "HS256", "jwk": {"kty": "oct", "k": b64(b"k" * 32)}},
                             {"jti": "h1", "htm": "POST", "htu": VERIFY_URL, "iat": int(now)},
                             lambda data: hmac.new(b"k" * 32, data, hashlib.sha256).digest()),
        "not a JWS": "not-a-proof",
    }
    for why, proof in bad.items():
        r = verify(http, token, proof)
        assert r.status_code == 401, (why, r.text)
        assert challenge(r).startswith('DPoP error="invalid_dpop_proof"'), why
        assert r.json()["error"]["code"] == "invalid_dpop_proof", why
    # two proofs at once
    r = http.post(VERIFY, json=BODY, headers=[("Authorization", f"DPoP {token}"),
                                              ("DPoP", key.proof("POST", VERIFY_URL, access_token=token)),
                                              ("DPoP", key.proof("POST", VERIFY_URL, access_token=token))])
    assert r.status_code == 401 and "one DPoP header" in challenge(r)
    # a proof is accepted once
    proof = key.proof("POST", VERIFY_URL, access_token=token)
    assert verify(http, token, proof).status_code == 200
    r = verify(http, token, proof)
    assert r.status_code == 401 and "used already" in challenge(r)
    assert logged(family, bank["client_id"]) == 2  # the two served calls, nothing for the refusals

    # introspection tells a resource server the binding (RFC 9449 s.6.2)
    r = http.post("/introspect", data={"token": token}, auth=(bank["client_id"], bank["client_secret"]))
    assert r.json()["active"] is True and r.json()["token_type"] == "DPoP" and r.json()["cnf"] == {"jkt": key.jkt}


@pytest.mark.parametrize("alg", ["RS256", "PS256", "EdDSA"])
def test_other_algorithms(family, http, alg):
    partner = dpop_partner(family)
    key = DPoPKey(alg)
    token = dpop_token(http, partner, key)
    assert claims_of(token)["cnf"]["jkt"] == key.jkt
    assert verify(http, token, key.proof("POST", VERIFY_URL, access_token=token)).status_code == 200


def test_refusals_at_the_token_endpoint(family, http):
    partner = dpop_partner(family)
    key = DPoPKey()
    cases = {
        "wrong htu": key.proof("POST", f"{ISSUER}/par"),
        "http, not https": key.proof("POST", "http://testserver/token"),
        "wrong htm": key.proof("GET", TOKEN_URL),
        "old iat": key.proof("POST", TOKEN_URL, iat=time.time() - 90),
        "no jti": key.proof("POST", TOKEN_URL, drop=("jti",)),
        "private key": key.proof("POST", TOKEN_URL, header={"jwk": private_jwk(key.key)}),
        "two proofs": [key.proof("POST", TOKEN_URL), key.proof("POST", TOKEN_URL)],
        "empty": "",
    }
    for why, proof in cases.items():
        r = token_request(http, partner, proof)
        assert r.status_code == 400 and r.json()["error"] == "invalid_dpop_proof", (why, r.text)
        assert '"' not in r.json()["error_description"]
    proof = key.proof("POST", TOKEN_URL)
    assert token_request(http, partner, proof).status_code == 200
    r = token_request(http, partner, proof)  # replayed
    assert r.status_code == 400 and "used already" in r.json()["error_description"]
    # a proof for the token endpoint is no proof for a resource
    token = dpop_token(http, partner, key)
    assert verify(http, token, key.proof("POST", TOKEN_URL, access_token=token)).status_code == 401


def test_htu_is_the_configured_issuer_not_the_host_header(family):
    app = create_app(family)
    set_issuer(app, "https://id.example.vn")
    http = TestClient(app, base_url="https://testserver", follow_redirects=False)
    partner = dpop_partner(family)
    key = DPoPKey()
    r = token_request(http, partner, key.proof("POST", "https://testserver/token"))  # the Host the client used
    assert r.status_code == 400 and r.json()["error"] == "invalid_dpop_proof"
    r = token_request(http, partner, key.proof("POST", "https://id.example.vn/token"))
    assert r.status_code == 200 and r.json()["token_type"] == "DPoP"
    token = r.json()["access_token"]
    r = http.post(VERIFY, json=BODY, headers={"Authorization": f"DPoP {token}", "Host": "id.example.vn",
                                              "DPoP": key.proof("POST", "https://evil.example/api/v1/verify",
                                                                access_token=token)})
    assert r.status_code == 401
    r = verify(http, token, key.proof("POST", "https://id.example.vn/api/v1/verify", access_token=token))
    assert r.status_code == 200, r.text


def test_a_partner_without_the_requirement(family, http):
    telco = add_partner(family)
    # bearer tokens as before
    r = token_request(http, telco)
    assert r.status_code == 200 and r.json()["token_type"] == "Bearer" and "cnf" not in claims_of(r.json()["access_token"])
    bearer = r.json()["access_token"]
    assert verify(http, bearer, scheme="Bearer").status_code == 200
    # a bearer token sent with the DPoP scheme is refused: it is bound to no key
    key = DPoPKey()
    r = verify(http, bearer, key.proof("POST", VERIFY_URL, access_token=bearer))
    assert r.status_code == 401 and challenge(r).startswith('DPoP error="invalid_token"')
    # it may opt in by sending a proof; that token is then DPoP-only
    token = dpop_token(http, telco, key)
    assert verify(http, token, key.proof("POST", VERIFY_URL, access_token=token)).status_code == 200
    assert verify(http, token, scheme="Bearer").status_code == 401
    assert verify(http, bearer, scheme="Bearer").status_code == 200  # its bearer token still works

    # the policy changes: its bearer token stops working at once, and no new one is issued
    with family.begin() as conn:
        shown = partners.update_policy(conn, telco["client_id"], dpop_required=True, actor="test")
    assert shown["dpop_required"] is True
    r = verify(http, bearer, scheme="Bearer")
    assert r.status_code == 401 and r.json()["error"]["code"] == "dpop_required"
    assert "policy requires DPoP" in challenge(r)
    assert token_request(http, telco).json()["error"] == "invalid_dpop_proof"
    assert verify(http, token, key.proof("POST", VERIFY_URL, access_token=token)).status_code == 200
    with family.connect() as conn:
        history = partners.partner_history(conn, telco["client_id"])
    assert history[-1]["changes"] == {"dpop_required": {"old": False, "new": True}}
    with family.begin() as conn, pytest.raises(InvalidInput) as refused:
        partners.update_policy(conn, telco["client_id"], dpop_required="yes", actor="test")
    assert refused.value.field == "dpop_required"


def test_other_partner_routes_take_dpop(family, http):
    bank = dpop_partner(family, kind="bank", operations=("verify", "kyc", "batch", "subscribe"))
    key = DPoPKey()
    token = dpop_token(http, bank, key)

    def get(path: str, proof_url: str | None = None):
        proof = key.proof("GET", proof_url or ISSUER + path.split("?")[0], access_token=token)
        return http.get(path, headers={"Authorization": f"DPoP {token}", "DPoP": proof})

    assert get("/api/v1/changes?after=0").status_code == 200
    assert get("/api/v1/follows").status_code == 200
    assert get("/api/v1/changes?after=0", proof_url=f"{ISSUER}/api/v1/follows").status_code == 401
    assert http.get("/api/v1/batches", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_the_same_proof_sent_at_once_is_accepted_once(family, http):
    partner = dpop_partner(family)
    key = DPoPKey()
    token = dpop_token(http, partner, key)
    proof = key.proof("POST", VERIFY_URL, access_token=token)
    gate = threading.Barrier(8)

    def one(_):
        client = TestClient(http.app, base_url=ISSUER, raise_server_exceptions=False)
        gate.wait(timeout=30)
        return verify(client, token, proof).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        codes = list(pool.map(one, range(8)))
    assert sorted(codes) == [200] + [401] * 7, codes
    assert logged(family, partner["client_id"]) == 1


def test_used_proofs_are_forgotten_after_their_window(family, http):
    partner = dpop_partner(family)
    key = DPoPKey()
    token = dpop_token(http, partner, key)
    assert verify(http, token, key.proof("POST", VERIFY_URL, access_token=token)).status_code == 200
    with family.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(oidc_dpop_proofs)).scalar_one() == 2
    with family.begin() as conn:  # as if two minutes had passed
        conn.execute(oidc_dpop_proofs.update().values(expires_at=utcnow() - dt.timedelta(minutes=2)))
    dpop_token(http, partner, key)  # the token endpoint forgets what is out of the window
    with family.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(oidc_dpop_proofs)).scalar_one() == 1
    with family.begin() as conn:
        conn.execute(oidc_dpop_proofs.update().values(expires_at=utcnow() - dt.timedelta(minutes=2)))
    assert housekeeping.purge_expired(family)["dpop_proofs"] == 1


# ------------------------------------------------------------------ relying parties: code flow, userinfo


@pytest.fixture
def rp_http(engine, tmp_path):
    load_people(engine, tmp_path)
    rp = add_client(engine, scopes="openid profile dinhdanh.me")
    return rp, TestClient(create_app(engine), base_url=ISSUER, follow_redirects=False)


def _code(http: TestClient, rp: dict) -> tuple[str, str]:
    browser = Browser(TestClient(http.app, base_url=ISSUER, follow_redirects=False))
    verifier, challenge_ = pkce()
    location = browser.get(authorize_url(rp, challenge=challenge_, scope="openid profile dinhdanh.me"))
    location = location or browser.login(BINH)
    return query_of(location)["code"], verifier


def test_code_flow_userinfo_and_refresh_with_dpop(engine, rp_http):
    rp, http = rp_http
    key = DPoPKey("PS256")
    code, verifier = _code(http, rp)
    r = http.post("/token", data={"grant_type": "authorization_code", "code": code, "code_verifier": verifier,
                                  "redirect_uri": rp["redirect_uris"][0]},
                  auth=(rp["client_id"], rp["client_secret"]), headers={"DPoP": key.proof("POST", TOKEN_URL)})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "DPoP" and claims_of(body["access_token"])["cnf"]["jkt"] == key.jkt
    token = body["access_token"]

    r = http.get("/userinfo", headers={"Authorization": f"DPoP {token}",
                                       "DPoP": key.proof("GET", f"{ISSUER}/userinfo", access_token=token)})
    assert r.status_code == 200 and r.json()["sub"], r.text
    r = http.post("/userinfo", headers={"Authorization": f"DPoP {token}",
                                        "DPoP": key.proof("GET", f"{ISSUER}/userinfo", access_token=token)})
    assert r.status_code == 401 and challenge(r).startswith('DPoP error="invalid_dpop_proof"')
    r = http.get("/userinfo", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401 and challenge(r).startswith('DPoP error="invalid_token"')
    r = http.post("/userinfo", data={"access_token": token})
    assert r.status_code == 401
    # the self-service API takes bearer tokens only: a bound one is refused there
    assert http.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401

    # a confidential client's refresh token is not bound (RFC 9449 s.5); the new access token is
    # bound to the key of the refresh request's proof
    new_key = DPoPKey()
    r = http.post("/token", data={"grant_type": "refresh_token", "refresh_token": body["refresh_token"]},
                  auth=(rp["client_id"], rp["client_secret"]), headers={"DPoP": new_key.proof("POST", TOKEN_URL)})
    assert r.status_code == 200 and r.json()["token_type"] == "DPoP", r.text
    assert claims_of(r.json()["access_token"])["cnf"]["jkt"] == new_key.jkt
    refresh = r.json()["refresh_token"]

    # a refresh token bound to a key (as a public client's is) needs a proof of that key
    with engine.begin() as conn:
        conn.execute(oidc_tokens.update().where(oidc_tokens.c.kind == "refresh", oidc_tokens.c.rotated_at.is_(None))
                     .values(jkt=new_key.jkt))
    for proof in (None, key.proof("POST", TOKEN_URL)):
        r = http.post("/token", data={"grant_type": "refresh_token", "refresh_token": refresh},
                      auth=(rp["client_id"], rp["client_secret"]), headers={"DPoP": proof} if proof else {})
        assert r.status_code == 400 and r.json()["error"] == "invalid_dpop_proof", r.text
    r = http.post("/token", data={"grant_type": "refresh_token", "refresh_token": refresh},
                  auth=(rp["client_id"], rp["client_secret"]), headers={"DPoP": new_key.proof("POST", TOKEN_URL)})
    assert r.status_code == 200 and r.json()["token_type"] == "DPoP", r.text


def test_relying_party_without_dpop_is_unchanged(rp_http):
    rp, http = rp_http
    code, verifier = _code(http, rp)
    r = http.post("/token", data={"grant_type": "authorization_code", "code": code, "code_verifier": verifier,
                                  "redirect_uri": rp["redirect_uris"][0]}, auth=(rp["client_id"], rp["client_secret"]))
    assert r.json()["token_type"] == "Bearer" and "cnf" not in claims_of(r.json()["access_token"])
    token = r.json()["access_token"]
    assert http.get("/userinfo", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert http.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    key = DPoPKey()
    r = http.get("/userinfo", headers={"Authorization": f"DPoP {token}",
                                       "DPoP": key.proof("GET", f"{ISSUER}/userinfo", access_token=token)})
    assert r.status_code == 401 and challenge(r).startswith('DPoP error="invalid_token"')


def test_dpop_costs_one_insert_and_bearer_nothing_more(family, http):
    """The hot path: a bearer call reads nothing for DPoP; a DPoP call adds the proof's INSERT."""
    telco = add_partner(family)
    bearer = token_request(http, telco).json()["access_token"]
    key = DPoPKey()
    token = dpop_token(http, telco, key)
    statements: list[str] = []

    def seen(conn, cursor, statement, *args):
        statements.append(statement)

    def run(call) -> list[str]:
        statements.clear()
        sa.event.listen(family, "before_cursor_execute", seen)
        try:
            assert call().status_code == 200
        finally:
            sa.event.remove(family, "before_cursor_execute", seen)
        return list(statements)

    from dinhdanh.exchange.limits import MemoryLimiter

    http.app.state.limiter = MemoryLimiter()  # no sweeps of a shared limiter's tables in between
    for _ in range(2):  # the second time: each token's signature is checked, the keys are loaded
        as_bearer = run(lambda: verify(http, bearer, scheme="Bearer"))
        as_dpop = run(lambda: verify(http, token, key.proof("POST", VERIFY_URL, access_token=token)))
    assert not any("oidc_dpop_proofs" in s for s in as_bearer)
    extra = [s for s in as_dpop if "oidc_dpop_proofs" in s]
    assert len(extra) == 1 and extra[0].lstrip().upper().startswith("INSERT")
    assert len(as_dpop) == len(as_bearer) + 1


def test_policy_cli(tmp_path):
    from tests.e2e.test_cli import Cli

    cli = Cli(tmp_path)
    db = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    made = cli.json("partner", "add", "--name", "Ngân hàng B", "--kind", "bank", "--operations", "verify",
                    "--fields", "full_name", "--db", db)
    assert made["dpop_required"] is False
    shown = cli.json("partner", "policy", made["client_id"], "--dpop", "--db", db)
    assert shown["dpop_required"] is True
    full = cli.json("partner", "show", made["client_id"], "--db", db)
    assert full["dpop_required"] is True
    assert full["history"][-1]["changes"] == {"dpop_required": {"old": False, "new": True}}
    assert cli.json("partner", "policy", made["client_id"], "--no-dpop", "--db", db)["dpop_required"] is False
