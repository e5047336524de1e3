"""The provider on a real server (uvicorn on a free port, in a thread), on SQLite and PostgreSQL:
an off-the-shelf client (Authlib's ``OAuth2Client`` for httpx) completes the code flow with PKCE,
the browser's part played by posting the login and consent forms; and the demo portal logs a
person in over HTTP, as a relying party outside the provider would."""

from __future__ import annotations

import warnings

import httpx
import pytest
from authlib.common.security import generate_token
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.oidc_support import BINH, Browser, LiveServer, add_client, load_people

with warnings.catch_warnings():  # Authlib 1.9 prefers the "httpx2" fork; the project pins httpx
    warnings.simplefilter("ignore", DeprecationWarning)
    from authlib.integrations.httpx_client import OAuth2Client

RP_CALLBACK = "http://localhost:8765/callback"  # the relying party's; the browser stops there


@pytest.fixture
def live(engine, tmp_path):
    load_people(engine, tmp_path)
    with LiveServer(engine) as server:
        yield server


def test_authlib_client_completes_the_code_flow_against_a_live_server(live, engine):
    rp = add_client(engine, redirect_uris=[RP_CALLBACK], scopes="openid profile")
    meta = httpx.get(f"{live.url}/.well-known/openid-configuration").json()
    assert meta["issuer"] == live.url
    with OAuth2Client(client_id=rp["client_id"], client_secret=rp["client_secret"], scope="openid profile",
                      redirect_uri=RP_CALLBACK, code_challenge_method="S256",
                      token_endpoint_auth_method="client_secret_basic") as client:
        verifier, nonce = generate_token(48), generate_token(20)
        url, state = client.create_authorization_url(meta["authorization_endpoint"], code_verifier=verifier,
                                                     nonce=nonce, acr_values="urn:dinhdanh:level1")
        assert "code_challenge_method=S256" in url
        with httpx.Client(base_url=live.url, follow_redirects=False, timeout=60) as http:
            browser = Browser(http)
            assert browser.get(url) is None and 'name="password"' in browser.page.text
            location = browser.login(BINH)
        assert location.startswith(RP_CALLBACK)
        token = client.fetch_token(meta["token_endpoint"], authorization_response=location, code_verifier=verifier,
                                   state=state)
        assert token["token_type"] == "Bearer" and token["id_token"]

        jwks = httpx.get(meta["jwks_uri"]).json()
        decoded = jwt.decode(token["id_token"], KeySet.import_key_set(jwks), algorithms=["ES256"])
        assert decoded.header["alg"] == "ES256" and decoded.header["kid"] == jwks["keys"][0]["kid"]
        jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": live.url}, aud={"essential": True, "value": rp["client_id"]},
            nonce={"essential": True, "value": nonce}, exp={"essential": True}, iat={"essential": True},
            sub={"essential": True}, acr={"essential": True, "value": "urn:dinhdanh:level1"},
        ).validate(decoded.claims)

        info = client.get(meta["userinfo_endpoint"]).json()
        assert info["sub"] == decoded.claims["sub"] and info["name"] == "Trần Thị Bình"


def test_demo_portal_logs_in_over_http(live):
    with httpx.Client(base_url=live.url, follow_redirects=False, timeout=60) as http:
        browser = Browser(http)
        assert browser.get("/portal") is None and 'id="login"' in browser.page.text
        assert browser.get("/portal/login") is None and browser.title == "Đăng nhập bằng tài khoản định danh điện tử"
        assert browser.login(BINH) is None  # login, consent, the portal's callback, the portal
        assert browser.page.url.path == "/portal"
        assert 'id="name">Trần Thị Bình<' in browser.page.text and 'id="level">1<' in browser.page.text
        assert 'id="pid">001187000002<' in browser.page.text
        # RP-initiated logout: the provider's session ends and the browser is back at the portal
        assert browser.get("/portal/logout") is None
        assert browser.page.url.path == "/portal" and 'id="login"' in browser.page.text
        assert browser.get("/portal/login") is None and 'name="password"' in browser.page.text
