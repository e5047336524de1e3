"""The provider against an attacker: the issuer is configuration (a forged Host header changes
nothing), key rotation publishes before it signs, retired keys keep verifying what they signed,
e-KYC answers verify from the published key archive after any number of rotations, RS256 ID tokens
for the clients registered for them, request objects refused, and where userinfo takes its token."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import KeySet

from dinhdanh.exchange import kyc
from dinhdanh.oidc import keys
from dinhdanh.store.base import utcnow
from dinhdanh.web.app import create_app
from tests.e2e.test_oidc_flow import ISSUER, RP_SCOPES, Op
from tests.oidc_support import BINH, Browser, add_client, authorize_url, load_people, pkce, query_of

CONFIGURED = "https://id.dinhdanh.example"


@pytest.fixture
def op(engine, tmp_path) -> Op:
    people = load_people(engine, tmp_path)
    rp = add_client(engine, scopes=RP_SCOPES)
    return Op(engine, people, rp, TestClient(create_app(engine), base_url=ISSUER, follow_redirects=False))


def _header(token: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))


def _b64(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


# ------------------------------------------------------------------------------------- the issuer


def test_a_forged_host_header_does_not_change_the_issuer(op):
    forged = {"Host": "evil.example"}
    meta = op.http.get("/.well-known/openid-configuration", headers=forged).json()
    assert meta["issuer"] == ISSUER and meta["token_endpoint"] == f"{ISSUER}/token"
    # a whole login with the forged header on every request: the tokens carry the real issuer
    browser = Browser(TestClient(op.http.app, base_url=ISSUER, headers=forged, follow_redirects=False))
    query, verifier = op.login(browser=browser)
    assert query["iss"] == ISSUER
    r = op.http.post("/token", headers=forged, auth=(op.rp["client_id"], op.rp["client_secret"]),
                     data={"grant_type": "authorization_code", "code": query["code"], "code_verifier": verifier,
                           "redirect_uri": op.rp["redirect_uris"][0]})
    assert r.status_code == 200, r.text
    assert op.claims(r.json()["id_token"])["iss"] == ISSUER
    assert jwt.decode(r.json()["access_token"], KeySet.import_key_set(op.jwks())).claims["iss"] == ISSUER


def test_the_configured_issuer_wins_over_the_request(op, monkeypatch):
    from dinhdanh.web.oidc import set_issuer

    monkeypatch.setenv("DINHDANH_OIDC_ISSUER", CONFIGURED + "/")
    app = create_app(op.engine)
    http = TestClient(app, base_url="http://evil.example", headers={"Host": "evil.example"})
    assert http.get("/.well-known/openid-configuration").json()["issuer"] == CONFIGURED
    set_issuer(app, "https://other.example")  # an explicit issuer (serve, demo) overrides the environment
    assert http.get("/.well-known/openid-configuration").json()["issuer"] == "https://other.example"


def test_serve_uses_issuer_option_then_environment_then_its_address(monkeypatch):
    from dinhdanh import config
    from dinhdanh.cli.serve import issuer_for

    monkeypatch.delenv("DINHDANH_OIDC_ISSUER", raising=False)
    assert issuer_for(None, "127.0.0.1", 8000) == "http://127.0.0.1:8000"
    assert issuer_for(None, "::1", 8443) == "http://[::1]:8443"
    monkeypatch.setenv("DINHDANH_OIDC_ISSUER", CONFIGURED)
    assert issuer_for(None, "127.0.0.1", 8000) == CONFIGURED
    assert issuer_for("https://id.gov.example/", "127.0.0.1", 8000) == "https://id.gov.example"
    with pytest.raises(ValueError):
        config.oidc_issuer("https://id.example/?a=b")


# ---------------------------------------------------------------------------------- rotation


def test_rotation_publishes_the_new_key_before_it_signs(op, monkeypatch):
    before = op.tokens()
    old = _header(before["id_token"])["kid"]
    with op.engine.begin() as conn:
        new = keys.rotate_all(conn, op.people.vault)  # what `dinhdanh oidc rotate-keys` does
    published = {k["kid"] for k in op.jwks()["keys"]}
    assert {old, *(k.kid for k in new)} <= published  # the new keys are published at once...
    during = op.tokens()
    assert _header(during["id_token"])["kid"] == old  # ...but do not sign yet
    assert jwt.decode(during["access_token"], KeySet.import_key_set(op.jwks())).header["kid"] == old
    assert op.http.get("/jwks").headers["cache-control"] == f"public, max-age={keys.JWKS_CACHE_LIFETIME.seconds}"

    # one JWKS cache lifetime (and the skew) later, by the provider's clock: the new key signs
    later = utcnow() + keys.PUBLISH_AHEAD + dt.timedelta(seconds=1)
    monkeypatch.setattr("dinhdanh.oidc.server.utcnow", lambda: later)
    after = op.tokens()
    assert _header(after["id_token"])["kid"] == new[0].kid
    # a token the retired key signed still verifies while it lives (ID token and access token)
    assert op.claims(after["id_token"], now=int(later.timestamp()))
    assert op.claims(during["id_token"], nonce=None, now=int(later.timestamp()))["iss"] == ISSUER
    r = op.http.get("/userinfo", headers={"Authorization": f"Bearer {during['access_token']}"})
    assert r.status_code == 200, r.text
    with op.engine.connect() as conn:
        retired = next(k for k in keys.list_keys(conn, later) if k["kid"] == old)
    assert retired["state"] == "retired" and retired["published"]
    assert retired["published_until"] - retired["retired_at"] >= max(keys.OVERLAP, dt.timedelta(minutes=10))


def test_each_process_serves_its_copy_of_the_key_set_for_a_few_seconds(op):
    """/jwks is not read from the database per request: each process keeps what it read for
    SERVED_JWKS_LIFETIME, and a rotated key signs only after that, the relying parties' cache
    lifetime and the clock skew (PUBLISH_AHEAD)."""
    published = op.http.app.state.published_keys
    clock = [1000.0]
    published.clock = lambda: clock[0]
    first = op.http.get("/jwks")
    assert first.status_code == 200 and first.headers["content-type"] == "application/json"
    with op.engine.begin() as conn:
        new = keys.rotate_all(conn, op.people.vault)
    clock[0] += keys.SERVED_JWKS_LIFETIME.total_seconds() - 0.5
    assert op.http.get("/jwks").content == first.content  # this process's copy
    clock[0] += 0.5
    assert {k.kid for k in new} <= {k["kid"] for k in op.http.get("/jwks").json()["keys"]}
    assert keys.PUBLISH_AHEAD >= keys.JWKS_CACHE_LIFETIME + keys.SERVED_JWKS_LIFETIME + keys.CLOCK_SKEW
    with op.engine.connect() as conn:  # the new keys do not sign until every cache can hold them
        assert keys.signing_key(conn, op.people.vault, utcnow() + keys.JWKS_CACHE_LIFETIME
                                + keys.SERVED_JWKS_LIFETIME).kid != new[0].kid


def test_an_ekyc_answer_verifies_with_the_archive_after_three_rotations(op):
    start = utcnow() - dt.timedelta(days=3)
    claims = {"iss": ISSUER, "aud": "bank", "iat": int(start.timestamp()), "jti": "j1", "purpose": "kyc",
              "sub": BINH, "fields": {"full_name": {"value": "Trần Thị Bình"}}}
    with op.engine.begin() as conn:
        keys.signing_key(conn, op.people.vault, start)
        answer = keys.sign_json(conn, op.people.vault, claims, kyc.TYP, now=start)  # what kyc.disclose signs with
        for day in range(3):
            keys.rotate_all(conn, op.people.vault, start + dt.timedelta(days=day, hours=1))
    kid = _header(answer)["kid"]
    assert kid not in {k["kid"] for k in op.jwks()["keys"]}  # long gone from /jwks
    archive = op.http.get("/.well-known/dinhdanh/keys-archive").json()
    assert op.http.get("/.well-known/openid-configuration").json()["dinhdanh_keys_archive_uri"].endswith(
        "/.well-known/dinhdanh/keys-archive")
    assert len([k for k in archive["keys"] if k["alg"] == "ES256"]) == 4 and archive["audit_log_keys"]
    assert keys.verify_with_archive(answer, archive, typ=kyc.TYP) == claims
    entry = next(k for k in archive["keys"] if k["kid"] == kid)
    assert entry["signs_from"] <= claims["iat"] < entry["signs_until"]
    # a document dated after its key stopped signing is refused, as is a tampered one
    with op.engine.connect() as conn:
        late = keys.sign_json(conn, op.people.vault, {**claims, "iat": entry["signs_until"] + 86400}, kyc.TYP,
                              now=start)
    with pytest.raises(keys.ArchiveError):
        keys.verify_with_archive(late, archive)
    head, body, sig = answer.split(".")
    with pytest.raises(keys.ArchiveError):
        keys.verify_with_archive(f"{head}.{body[:-2]}AA.{sig}", archive)


# ----------------------------------------------------------------------------------- RS256


def test_an_rs256_client_gets_id_tokens_another_library_verifies(op):
    meta = op.http.get("/.well-known/openid-configuration").json()
    assert {"ES256", "RS256"} <= set(meta["id_token_signing_alg_values_supported"])
    rs = add_client(op.engine, name="Dịch vụ RS256", scopes="openid profile", id_token_alg="RS256",
                    redirect_uris=("https://rs.example/cb",))
    query, verifier = op.login(client=rs)
    token = op.token(query["code"], verifier, client=rs)
    assert token.status_code == 200, token.text
    id_token = token.json()["id_token"]
    header = _header(id_token)
    assert header["alg"] == "RS256"
    jwk = next(k for k in op.jwks()["keys"] if k["kid"] == header["kid"])
    assert jwk["kty"] == "RSA" and jwk["alg"] == "RS256" and "d" not in jwk
    # verified with `cryptography` alone, from the JWKS
    public = rsa.RSAPublicNumbers(int.from_bytes(_b64(jwk["e"]), "big"), int.from_bytes(_b64(jwk["n"]), "big"))
    key = public.public_key()
    assert key.key_size >= 2048
    signing_input, signature = id_token.rsplit(".", 1)
    key.verify(_b64(signature), signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    claims = json.loads(_b64(id_token.split(".")[1]))
    assert claims["iss"] == ISSUER and claims["aud"] == rs["client_id"] and claims["nonce"] == op.nonce
    # the ES256 client keeps ES256
    assert _header(op.tokens()["id_token"])["alg"] == "ES256"


# --------------------------------------------------------------------- request objects, userinfo


def test_request_objects_are_not_supported(op):
    assert op.http.get("/.well-known/openid-configuration").json()["request_parameter_supported"] is False
    browser = op.browser()
    _, challenge = pkce()
    location = browser.get(authorize_url(op.rp, challenge=challenge, request="eyJhbGciOiJub25lIn0.e30."))
    query = query_of(location)
    assert query["error"] == "request_not_supported" and query["iss"] == ISSUER
    assert browser.get(authorize_url(op.rp, challenge=challenge, request_uri="https://rp.example/r.jwt")) is None
    assert 'data-error="request_uri_not_supported"' in browser.page.text


def test_userinfo_takes_the_token_from_the_header_or_a_form_body_never_the_query(op):
    access = op.tokens()["access_token"]
    by_body = op.http.post("/userinfo", data={"access_token": access})
    assert by_body.status_code == 200, by_body.text
    assert by_body.json() == op.http.get("/userinfo", headers={"Authorization": f"Bearer {access}"}).json()
    by_query = op.http.get("/userinfo", params={"access_token": access})
    assert by_query.status_code == 400 and by_query.json()["error"] == "invalid_request"
    assert "sub" not in by_query.json()
    by_post_query = op.http.post(f"/userinfo?access_token={access}")
    assert by_post_query.status_code == 400 and "sub" not in by_post_query.json()
    both = op.http.post("/userinfo", data={"access_token": access}, headers={"Authorization": f"Bearer {access}"})
    assert both.status_code == 400 and both.json()["error"] == "invalid_request"
