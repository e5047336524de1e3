"""The OpenID provider end to end through HTTP (FastAPI TestClient at https://testserver), on
SQLite and PostgreSQL: a browser logs in by posting the provider's forms, a relying party redeems
the code with PKCE, and every refusal the issue lists is tried.

People (tests/oidc_support.py): An holds a level-2 account with TOTP, Bình, Đức and Hoa level 1.
The relying party ``rp`` authenticates with client_secret_basic and redirects to
https://rp.example/cb.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import time
from dataclasses import dataclass
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa
from authlib.oauth2.rfc7523 import private_key_jwt_sign
from fastapi.testclient import TestClient
from joserfc import jws, jwt
from joserfc.jwk import ECKey, KeySet

from dinhdanh.eid import auth
from dinhdanh.eid.tables import eid_accounts, eid_logins
from dinhdanh.oidc import keys
from dinhdanh.oidc.relying_party import IdTokenError, validate_id_token
from dinhdanh.oidc.tables import oidc_clients, oidc_codes, oidc_keys, oidc_requests, oidc_tokens
from dinhdanh.web import errors
from dinhdanh.web.app import create_app
from tests.oidc_support import (AN, BINH, DUC, HOA, PASSCODE, Browser, People, add_client, authorize_url, hidden,
                                load_people, pkce, query_of)

ISSUER = "https://testserver"
RP_SCOPES = "openid profile email phone address dinhdanh.pid dinhdanh.me"


@dataclass
class Op:
    engine: sa.Engine
    people: People
    rp: dict
    http: TestClient
    nonce: str | None = None

    def browser(self) -> Browser:
        """A browser of its own (its own cookies) on the same app."""
        return Browser(TestClient(self.http.app, base_url=ISSUER, follow_redirects=False))

    def token(self, code: str, verifier: str | None, client: dict | None = None, **extra):
        client = client or self.rp
        data = {"grant_type": "authorization_code", "code": code, "redirect_uri": client["redirect_uris"][0], **extra}
        if verifier is not None:
            data["code_verifier"] = verifier
        return self.http.post("/token", data=data, auth=(client["client_id"], client["client_secret"]))

    def post(self, path: str, client: dict | None = None, **data):
        client = client or self.rp
        return self.http.post(path, data=data, auth=(client["client_id"], client["client_secret"]))

    def jwks(self) -> dict:
        """/jwks as a relying party fetching it now reads it: after the provider's own copy (kept
        ``keys.SERVED_JWKS_LIFETIME``, oidc.keys.PublishedKeys) has expired, by its clock."""
        published = self.http.app.state.published_keys
        now = published.clock()
        published.clock = lambda: now + keys.SERVED_JWKS_LIFETIME.total_seconds()
        return self.http.get("/jwks").json()

    def login(self, browser: Browser | None = None, who: str = BINH, client: dict | None = None, scope="openid profile",
              **params) -> tuple[dict, str]:
        """A whole login in a browser; returns the redirect's query and the PKCE verifier (the
        nonce sent is ``self.nonce``)."""
        browser = browser or self.browser()
        verifier, challenge = pkce()
        self.nonce = params.pop("nonce", None) or secrets.token_urlsafe(12)
        location = browser.get(authorize_url(client or self.rp, challenge=challenge, scope=scope, nonce=self.nonce,
                                             **params))
        if location is None:
            location = browser.login(who, totp=self.people.totp() if who == AN else None)
        assert location is not None, browser.page.text[:2000]
        return query_of(location), verifier

    def tokens(self, **kw) -> dict:
        query, verifier = self.login(**kw)
        r = self.token(query["code"], verifier)
        assert r.status_code == 200, r.text
        return r.json()

    def claims(self, id_token: str, client: dict | None = None, **kw) -> dict:
        """The ID token checked as a relying party would (nonce: the last one sent)."""
        return validate_id_token(id_token, self.jwks(), issuer=ISSUER, client_id=(client or self.rp)["client_id"],
                                 nonce=kw.pop("nonce", self.nonce), **kw)

    def sql(self, statement):
        with self.engine.begin() as conn:
            return conn.execute(statement)


@pytest.fixture
def op(engine, tmp_path) -> Op:
    people = load_people(engine, tmp_path)
    rp = add_client(engine, scopes=RP_SCOPES, post_logout_redirect_uris=["https://rp.example/bye"])
    http = TestClient(create_app(engine), base_url=ISSUER, follow_redirects=False)
    return Op(engine, people, rp, http)


def _bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def test_discovery_and_jwks(op):
    meta = op.http.get("/.well-known/openid-configuration").json()
    assert meta["issuer"] == ISSUER
    assert meta["token_endpoint"] == f"{ISSUER}/token" and meta["jwks_uri"] == f"{ISSUER}/jwks"
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["acr_values_supported"] == ["urn:dinhdanh:level1", "urn:dinhdanh:level2"]
    assert set(meta["token_endpoint_auth_methods_supported"]) == {"client_secret_basic", "private_key_jwt"}
    assert meta["subject_types_supported"] == ["pairwise"]
    jwks = op.jwks()
    assert [k["kty"] for k in jwks["keys"]] == ["EC", "RSA"] and all("d" not in k for k in jwks["keys"])
    assert jwks["keys"][0]["alg"] == "ES256" and jwks["keys"][0]["kid"]
    answer = op.http.get("/jwks")
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["cache-control"].startswith("public, max-age=") and "x-request-id" in answer.headers
    refused = op.http.post("/jwks")  # served outside FastAPI (web.protocol), with the project's 405
    assert refused.status_code == 405 and refused.headers["allow"] == "GET"
    assert refused.json()["error"]["code"] == "method_not_allowed"


def test_code_flow_pkce_id_token_userinfo_and_remembered_consent(op):
    browser = op.browser()
    verifier, challenge = pkce()
    assert browser.get(authorize_url(op.rp, challenge=challenge, nonce="n-0S6_WzA2Mj")) is None
    assert browser.title == "Đăng nhập bằng tài khoản định danh điện tử"
    page = browser.page.text
    assert 'name="username" autocomplete="username"' in page
    assert 'name="password" autocomplete="current-password"' in page
    assert f'href="?i={hidden(page, "i")}&amp;lang=en"' in page  # the same page in English
    assert browser.submit(username=BINH, password=PASSCODE) is None
    assert browser.title == "Đồng ý chia sẻ thông tin"  # consent: each claim in plain Vietnamese
    assert "Họ, chữ đệm và tên" in browser.page.text and "Ngày, tháng, năm sinh" in browser.page.text
    location = browser.submit(decision="allow")
    query = query_of(location)
    assert location.startswith("https://rp.example/cb?") and query["state"] == "af0ifjsldkj"
    assert query["iss"] == ISSUER  # RFC 9207

    r = op.token(query["code"], verifier)
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body["token_type"] == "Bearer" and body["scope"] == "openid profile" and body["refresh_token"]
    claims = validate_id_token(body["id_token"], op.jwks(), issuer=ISSUER, client_id=op.rp["client_id"],
                               nonce="n-0S6_WzA2Mj", required_level=1)
    assert claims["acr"] == "urn:dinhdanh:level1" and claims["amr"] == ["pwd"]
    assert claims["auth_time"] <= time.time() and claims["sid"] and claims["at_hash"]
    assert "name" not in claims  # scope claims come from userinfo (Core s.5.4)
    with pytest.raises(IdTokenError):  # the relying party's check catches a nonce that is not its own
        validate_id_token(body["id_token"], op.jwks(), issuer=ISSUER, client_id=op.rp["client_id"], nonce="other")

    info = op.http.get("/userinfo", headers=_bearer(body["access_token"])).json()
    assert info["sub"] == claims["sub"]
    assert info["name"] == "Trần Thị Bình" and info["birthdate"] == "1987-05-06"
    assert info["urn:dinhdanh:level"] == 1
    assert "urn:dinhdanh:pid" not in info and "email" not in info  # not in the scope asked

    # the consent is remembered: a second login of the same person goes straight back
    query, verifier = op.login(browser)
    assert op.token(query["code"], verifier).status_code == 200

    # the access token is a JWT any resource server can check with the JWKS alone
    at = jwt.decode(body["access_token"], KeySet.import_key_set(op.jwks()), algorithms=["ES256"])
    assert at.header["typ"] == "at+jwt" and at.claims["client_id"] == op.rp["client_id"]
    assert at.claims["sub"] == claims["sub"] and at.claims["exp"] > time.time() and at.claims["jti"]


def test_claims_parameter_and_pairwise_subjects(op):
    asked = {"id_token": {"name": {"essential": True}, "email": None},
             "userinfo": {"urn:dinhdanh:pid": {"essential": True}, "phone_number": None}}
    body = op.tokens(scope="openid", claims=json.dumps(asked), who=AN)
    id_token = op.claims(body["id_token"])
    assert id_token["name"] == "Nguyễn Văn An"
    info = op.http.get("/userinfo", headers=_bearer(body["access_token"])).json()
    assert info["urn:dinhdanh:pid"] == AN and "name" not in info

    # a relying party of another sector gets another subject for the same person; one of the same
    # registered sector gets the same
    other = add_client(op.engine, name="Ngân hàng", redirect_uris=["https://bank.example/cb"])
    twin = add_client(op.engine, name="Cổng cùng lĩnh vực", redirect_uris=["https://other.example/cb"],
                      sector="rp.example")
    subs = []
    for client in (other, twin):
        query, verifier = op.login(client=client, who=AN)
        r = op.token(query["code"], verifier, client=client)
        subs.append(op.claims(r.json()["id_token"], client)["sub"])
    assert subs[0] != id_token["sub"] and subs[1] == id_token["sub"]


def test_refusals_at_the_authorization_endpoint(op):
    browser = op.browser()
    _, challenge = pkce()
    # an unregistered redirect URI: an error page, never a redirect to it
    assert browser.get(authorize_url(op.rp, challenge=challenge, redirect_uri="https://evil.example/cb")) is None
    assert browser.page.status_code == 400 and "evil.example" not in browser.page.headers.get("location", "")
    assert 'data-error="invalid_request"' in browser.page.text
    # an unknown client
    assert browser.get(authorize_url({**op.rp, "client_id": "nobody"}, challenge=challenge)) is None
    assert 'data-error="invalid_client"' in browser.page.text
    # PKCE missing, or plain: back to the client with invalid_request (and state, iss)
    for extra in ({"code_challenge": ""}, {"code_challenge_method": "plain"}):
        location = browser.get(authorize_url(op.rp, challenge=challenge, **extra))
        query = query_of(location)
        assert query["error"] == "invalid_request" and query["state"] == "af0ifjsldkj" and query["iss"] == ISSUER
    # only the code flow
    assert query_of(browser.get(authorize_url(op.rp, challenge=challenge, response_type="token")))["error"] == \
        "unsupported_response_type"
    # a client awaiting approval cannot start a login
    pending = add_client(op.engine, approve=False, name="Dịch vụ chờ duyệt")
    assert browser.get(authorize_url(pending, challenge=challenge)) is None
    assert 'data-error="client_not_approved"' in browser.page.text and "Dịch vụ chờ duyệt" in browser.page.text
    # nor get a token of any kind
    r = op.http.post("/token", data={"grant_type": "client_credentials"},
                     auth=(pending["client_id"], pending["client_secret"]))
    assert r.status_code == 400 and r.json()["error"] == "unauthorized_client"


def test_refusals_at_the_token_endpoint(op):
    # wrong verifier: invalid_grant, and the code is spent
    query, verifier = op.login()
    r = op.token(query["code"], "x" * 50)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    assert op.token(query["code"], verifier).json()["error"] == "invalid_grant"
    # no verifier
    query, verifier = op.login()
    assert op.token(query["code"], None).json()["error"] == "invalid_request"
    # wrong client authentication
    query, verifier = op.login()
    r = op.http.post("/token", data={"grant_type": "authorization_code", "code": query["code"],
                                     "redirect_uri": op.rp["redirect_uris"][0], "code_verifier": verifier},
                     auth=(op.rp["client_id"], "not-the-secret"))
    assert r.status_code == 401 and r.json()["error"] == "invalid_client" and "WWW-Authenticate" in r.headers
    # the code of another client, and a redirect URI that differs from the authorization request's
    other = add_client(op.engine, name="Khác", redirect_uris=["https://rp.example/cb"])
    assert op.token(query["code"], verifier, client=other).json()["error"] == "invalid_grant"
    assert op.token(query["code"], verifier, redirect_uri="https://rp.example/other").json()["error"] == "invalid_grant"
    # an expired code
    query, verifier = op.login()
    op.sql(oidc_codes.update().values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))
    assert op.token(query["code"], verifier).json()["error"] == "invalid_grant"
    # a parameter sent twice (RFC 6749 s.3.2): refused, and the code is not spent
    query, verifier = op.login()
    form = [("grant_type", "authorization_code"), ("code", query["code"]), ("code", query["code"]),
            ("redirect_uri", op.rp["redirect_uris"][0]), ("code_verifier", verifier)]
    r = op.http.post("/token", content=urlencode(form), auth=(op.rp["client_id"], op.rp["client_secret"]),
                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 400 and r.headers["cache-control"] == "no-store"
    assert r.json() == {"error": "invalid_request", "error_description": "Repeated parameter: code."}
    assert op.token(query["code"], verifier).status_code == 200
    # a method the endpoint does not take: the project's 405, Vietnamese first, with Allow
    r = op.http.get("/token")
    assert r.status_code == 405 and r.headers["allow"] == "POST"
    assert r.json()["error"]["code"] == "method_not_allowed" and r.json()["error"]["message"] == errors.GENERIC_VI[405]
    assert op.http.put("/userinfo", headers={"Accept-Language": "en"}).json()["error"]["message"] == "Method Not Allowed"


def test_code_used_twice_revokes_what_it_gave(op):
    query, verifier = op.login()
    first = op.token(query["code"], verifier).json()
    assert op.http.get("/userinfo", headers=_bearer(first["access_token"])).status_code == 200
    again = op.token(query["code"], verifier)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    r = op.http.get("/userinfo", headers=_bearer(first["access_token"]))
    assert r.status_code == 401 and 'error="invalid_token"' in r.headers["www-authenticate"]
    r = op.post("/token", grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert r.json()["error"] == "invalid_grant"
    assert op.post("/introspect", token=first["access_token"]).json() == {"active": False}


def test_refresh_rotation_and_reuse_revokes_the_family(op):
    first = op.tokens()
    r = op.post("/token", grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert r.status_code == 200, r.text
    second = r.json()
    assert second["refresh_token"] != first["refresh_token"] and second["access_token"] != first["access_token"]
    assert op.http.get("/userinfo", headers=_bearer(second["access_token"])).status_code == 200
    # the old refresh token again: a leak; the whole family goes
    r = op.post("/token", grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    assert op.post("/token", grant_type="refresh_token", refresh_token=second["refresh_token"]).json()["error"] == \
        "invalid_grant"
    assert op.http.get("/userinfo", headers=_bearer(second["access_token"])).status_code == 401
    with op.engine.connect() as conn:
        reasons = set(conn.execute(sa.select(oidc_tokens.c.revoke_reason)).scalars())
    assert reasons == {"refresh_reused"}


def test_level_2_step_up_and_unmet_requirements(op):
    level2 = {"acr_values": "urn:dinhdanh:level2"}
    # a level-1 account cannot reach level 2: the client is told so, after the login
    browser = op.browser()
    _, challenge = pkce()
    browser.get(authorize_url(op.rp, challenge=challenge, **level2))
    query = query_of(browser.submit(username=BINH, password=PASSCODE))
    assert query["error"] == "unmet_authentication_requirements" and query["state"] == "af0ifjsldkj"

    # a level-2 account: passcode, then the step-up page, then a TOTP code
    browser = op.browser()
    verifier, challenge = pkce()
    browser.get(authorize_url(op.rp, challenge=challenge, nonce="totp-nonce", **level2))
    assert browser.submit(username=AN, password=PASSCODE) is None
    assert browser.title == "Xác thực mức độ 2"
    assert browser.submit(totp="000000") is None and "Mã xác thực không đúng" in browser.page.text
    location = browser.submit(totp=op.people.totp())
    if location is None:
        location = browser.submit(decision="allow")
    claims = validate_id_token(op.token(query_of(location)["code"], verifier).json()["id_token"], op.jwks(),
                               issuer=ISSUER, client_id=op.rp["client_id"], nonce="totp-nonce", required_level=2)
    assert claims["acr"] == "urn:dinhdanh:level2" and "otp" in claims["amr"]

    # a device proof works too (the app signs the challenge shown on the page)
    key = ECKey.generate_key("P-256")
    with op.engine.begin() as conn:
        auth.register_device(conn, op.people.accounts[AN], key.as_dict(private=False))
    browser = op.browser()
    verifier, challenge = pkce()
    browser.get(authorize_url(op.rp, challenge=challenge, nonce="device-nonce", **level2))
    browser.submit(username=AN, password=PASSCODE)
    shown = browser.page.text.split('<code id="challenge">')[1].split("</code>")[0]
    location = browser.submit(device_proof=jws.serialize_compact({"alg": "ES256"}, shown.encode(), key))
    claims = validate_id_token(op.token(query_of(location)["code"], verifier).json()["id_token"], op.jwks(),
                               issuer=ISSUER, client_id=op.rp["client_id"], nonce="device-nonce", required_level=2)
    assert "hwk" in claims["amr"]


def test_lockout_after_five_wrong_passcodes(op):
    browser = op.browser()
    _, challenge = pkce()
    browser.get(authorize_url(op.rp, challenge=challenge))
    for attempt in range(5):
        assert browser.submit(username=DUC, password="000000") is None
        # the lock is not told on the page: it would tell that the account exists (see eid.auth's doc)
        assert "Tên đăng nhập hoặc mật mã không đúng" in browser.page.text, browser.page.text
        assert "tạm thời bị khóa" not in browser.page.text
    # the right passcode now: still refused, as a wrong one
    assert browser.submit(username=DUC, password=PASSCODE) is None
    assert "Tên đăng nhập hoặc mật mã không đúng" in browser.page.text and "phút" not in browser.page.text
    with op.engine.connect() as conn:
        outcomes = conn.execute(sa.select(eid_logins.c.outcome).where(
            eid_logins.c.account_id == op.people.accounts[DUC]).order_by(eid_logins.c.login_id)).scalars().all()
        lockouts = conn.execute(sa.select(eid_accounts.c.lockouts).where(
            eid_accounts.c.account_id == op.people.accounts[DUC])).scalar_one()
    # the owner's history tells the true cause (the fifth wrong passcode locked; the page never said so)
    assert outcomes == ["bad_credentials"] * 4 + ["temporarily_locked"] * 2 and lockouts == 1
    # in English too
    browser.get("/login", i=hidden(browser.page.text, "i"), lang="en")
    assert browser.submit(username=DUC, password=PASSCODE) is None
    assert "Wrong username or passcode" in browser.page.text and "locked" not in browser.page.text


def test_pushed_authorization_requests(op):
    verifier, challenge = pkce()
    params = {"response_type": "code", "client_id": op.rp["client_id"], "redirect_uri": op.rp["redirect_uris"][0],
              "scope": "openid profile", "state": "par-state", "nonce": "par-nonce", "code_challenge": challenge,
              "code_challenge_method": "S256"}
    # a parameter pushed twice is refused (RFC 9126 s.2.1, RFC 6749 s.3.1), nothing stored
    twice = urlencode([*params.items(), ("scope", "openid")])
    def pending() -> int:
        with op.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(oidc_requests)).scalar_one()

    before = pending()
    r = op.http.post("/par", content=twice, auth=(op.rp["client_id"], op.rp["client_secret"]),
                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 400 and r.json() == {"error": "invalid_request",
                                                 "error_description": "Repeated parameter: scope."}
    assert pending() == before
    r = op.post("/par", **params)
    assert r.status_code == 201, r.text
    pushed = r.json()
    assert pushed["expires_in"] == 90 and pushed["request_uri"].startswith("urn:ietf:params:oauth:request_uri:")
    browser = op.browser()
    assert browser.get("/authorize", client_id=op.rp["client_id"], request_uri=pushed["request_uri"]) is None
    location = browser.login(BINH)
    query = query_of(location)
    assert query["state"] == "par-state"
    assert op.token(query["code"], verifier).status_code == 200
    # used once
    assert browser.get("/authorize", client_id=op.rp["client_id"], request_uri=pushed["request_uri"]) is None
    assert 'data-error="invalid_request_uri"' in browser.page.text
    # another client cannot use it, and an expired one is refused
    params["nonce"] = "par-nonce-2"  # a nonce that came back in an ID token is refused as a replay
    pushed = op.post("/par", **params).json()
    other = add_client(op.engine, name="Khác")
    browser.get("/authorize", client_id=other["client_id"], request_uri=pushed["request_uri"])
    assert 'data-error="invalid_request_uri"' in browser.page.text
    op.sql(oidc_requests.update().values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))
    browser.get("/authorize", client_id=op.rp["client_id"], request_uri=pushed["request_uri"])
    assert 'data-error="invalid_request_uri"' in browser.page.text
    # a pushed request is checked as /authorize would, and answered in JSON
    r = op.post("/par", **{**params, "code_challenge_method": "plain"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"
    r = op.http.post("/par", data=params)
    assert r.status_code in (400, 401) and r.json()["error"] == "invalid_client"


def test_private_key_jwt_client_credentials_introspection_revocation(op):
    key = ECKey.generate_key("P-256", auto_kid=True)
    partner = add_client(op.engine, name="Đối tác xác thực", redirect_uris=(), scopes="dinhdanh.verify",
                         auth_method="private_key_jwt", jwks={"keys": [key.as_dict(private=False)]},
                         grant_types=["client_credentials"])
    assert partner["client_secret"] is None

    def assertion(signing_key=key, **kw):
        return private_key_jwt_sign(signing_key, partner["client_id"], f"{ISSUER}/token", alg="ES256", **kw)

    def request(value, **data):
        return op.http.post("/token", data={"grant_type": "client_credentials", "client_assertion": value,
                                            "client_assertion_type":
                                                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer", **data})

    signed = assertion()
    r = request(signed)
    assert r.status_code == 200, r.text
    body = r.json()
    assert "refresh_token" not in body and body["scope"] == "dinhdanh.verify"
    token = jwt.decode(body["access_token"], KeySet.import_key_set(op.jwks()), algorithms=["ES256"])
    assert token.header["alg"] == "ES256"
    assert token.claims["client_id"] == partner["client_id"] and token.claims["scope"] == "dinhdanh.verify"
    assert token.claims["exp"] > time.time() and token.claims["jti"]
    # an assertion is accepted once; one signed by another key never
    assert request(signed).json()["error"] == "invalid_client"
    assert request(assertion(ECKey.generate_key("P-256"))).json()["error"] == "invalid_client"
    # user scopes are not for client credentials
    assert request(assertion(), scope="openid profile").json()["error"] == "invalid_scope"

    def call(path, **data):
        return op.http.post(path, data={"client_assertion": assertion(), "client_assertion_type":
                                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer", **data})

    introspected = call("/introspect", token=body["access_token"]).json()
    assert introspected["active"] is True and introspected["client_id"] == partner["client_id"]
    assert introspected["scope"] == "dinhdanh.verify" and introspected["sub"] == partner["client_id"]
    # another client's token is not this client's to introspect
    theirs = op.tokens()
    assert call("/introspect", token=theirs["access_token"]).json() == {"active": False}
    assert call("/revoke", token=body["access_token"]).status_code == 200
    assert call("/introspect", token=body["access_token"]).json() == {"active": False}
    # the relying party revokes its refresh token: the family goes
    assert op.post("/introspect", token=theirs["access_token"]).json()["active"] is True
    assert op.post("/revoke", token=theirs["refresh_token"], token_type_hint="refresh_token").status_code == 200
    assert op.post("/introspect", token=theirs["access_token"]).json() == {"active": False}
    # a client without the grant
    r = op.post("/token", grant_type="client_credentials", scope="dinhdanh.verify")
    assert r.json()["error"] == "unauthorized_client"


def test_prompt_and_max_age(op):
    browser = op.browser()
    _, challenge = pkce()
    # prompt=none with no session
    query = query_of(browser.get(authorize_url(op.rp, challenge=challenge, prompt="none")))
    assert query["error"] == "login_required"
    query, _ = op.login(browser)  # log in and consent
    # now prompt=none goes straight back with a code
    assert "code" in query_of(browser.get(authorize_url(op.rp, challenge=challenge, prompt="none")))
    # ... unless something new needs consent
    query = query_of(browser.get(authorize_url(op.rp, challenge=challenge, prompt="none", scope="openid email")))
    assert query["error"] == "consent_required"
    # prompt=login: the login page, although there is a session; prompt=consent: the consent page
    assert browser.get(authorize_url(op.rp, challenge=challenge, prompt="login")) is None
    assert browser.title == "Đăng nhập bằng tài khoản định danh điện tử"
    assert browser.get(authorize_url(op.rp, challenge=challenge, prompt="consent")) is None
    assert browser.title == "Đồng ý chia sẻ thông tin"
    # refusing consent: access_denied
    assert query_of(browser.submit(decision="deny"))["error"] == "access_denied"
    # max_age=0: always a fresh login, and auth_time in the ID token
    verifier, challenge = pkce()
    assert browser.get(authorize_url(op.rp, challenge=challenge, max_age="0", nonce="max-age-nonce")) is None
    assert browser.title == "Đăng nhập bằng tài khoản định danh điện tử"
    location = browser.login(BINH)
    claims = validate_id_token(op.token(query_of(location)["code"], verifier).json()["id_token"], op.jwks(),
                               issuer=ISSUER, client_id=op.rp["client_id"], nonce="max-age-nonce", max_age=60)
    assert abs(claims["auth_time"] - time.time()) < 60


def test_logout_with_id_token_hint(op):
    browser = op.browser()
    body = op.tokens(browser=browser)
    _, challenge = pkce()
    location = browser.get("/logout", id_token_hint=body["id_token"], post_logout_redirect_uri="https://rp.example/bye",
                           state="bye-state")
    assert location == "https://rp.example/bye?state=bye-state"
    assert query_of(browser.get(authorize_url(op.rp, challenge=challenge, prompt="none")))["error"] == "login_required"
    # an unregistered post-logout URI is not followed; no hint: the person confirms first
    body = op.tokens(browser=browser)
    location = browser.get("/logout", id_token_hint=body["id_token"], post_logout_redirect_uri="https://evil.example/")
    assert location is None
    assert 'id="logged-out"' in browser.page.text
    op.login(browser)
    assert browser.get("/logout") is None and 'action="/logout"' in browser.page.text
    assert browser.submit() is None and 'id="logged-out"' in browser.page.text
    assert query_of(browser.get(authorize_url(op.rp, challenge=challenge, prompt="none")))["error"] == "login_required"


def test_a_token_stops_at_once_when_its_client_is_no_longer_approved(op):
    """The client's approval is read with the token at every use (its row joined to the token's on
    the path a token already checked takes): set back to pending by hand, without its tokens being
    revoked, the client's token is refused at the next call, and accepted again once approved."""
    headers = _bearer(op.tokens(scope="openid profile dinhdanh.me", who=HOA)["access_token"])
    for _ in range(2):  # the first use checks the signature, the next ones take the remembered path
        assert op.http.get("/api/v1/me", headers=headers).status_code == 200
    where = oidc_clients.c.client_id == op.rp["client_id"]
    op.sql(oidc_clients.update().where(where).values(status="pending"))
    assert op.http.get("/api/v1/me", headers=headers).status_code == 401
    op.sql(oidc_clients.update().where(where).values(status="approved"))
    assert op.http.get("/api/v1/me", headers=headers).status_code == 200


def test_self_service_api(op):
    body = op.tokens(scope="openid profile dinhdanh.me", who=HOA)
    headers = _bearer(body["access_token"])
    me = op.http.get("/api/v1/me", headers=headers)
    assert me.status_code == 200, me.text
    assert me.json()["pid"] == HOA and me.json()["level"] == 1 and me.json()["state"] == "active"
    consents = op.http.get("/api/v1/me/consents", headers=headers).json()
    assert [c["client_id"] for c in consents] == [op.rp["client_id"]]
    assert "dinhdanh.me" in consents[0]["claims"]
    logins = op.http.get("/api/v1/me/logins", headers=headers).json()
    assert {row["outcome"] for row in logins} >= {"success", "authorized"}
    # without the scope, or without a token
    other = op.tokens(scope="openid profile", who=BINH)
    assert op.http.get("/api/v1/me", headers=_bearer(other["access_token"])).status_code == 403
    r = op.http.get("/api/v1/me")
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthenticated"
    # withdrawing the consent stops the relying party's tokens
    assert op.http.delete(f"/api/v1/me/consents/{op.rp['client_id']}", headers=headers).status_code == 204
    assert op.http.get("/api/v1/me", headers=headers).status_code == 401
    assert op.http.delete(f"/api/v1/me/consents/{op.rp['client_id']}",
                          headers=_bearer(op.tokens(scope="openid dinhdanh.me", who=HOA)["access_token"])
                          ).status_code == 204
    # locking my account: every token and session stops, and logging in is refused
    headers = _bearer(op.tokens(scope="openid dinhdanh.me", who=HOA)["access_token"])
    r = op.http.post("/api/v1/me/lock", headers=headers, json={"reason": "Mất điện thoại"})
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "locked"
    assert op.http.get("/api/v1/me", headers=headers).status_code == 401
    browser = op.browser()
    _, challenge = pkce()
    browser.get(authorize_url(op.rp, challenge=challenge))
    assert browser.submit(username=HOA, password=PASSCODE) is None
    assert "đang bị khóa" in browser.page.text


def test_key_rotation_keeps_the_old_key_published_until_its_tokens_expire(op):
    before = op.tokens()
    old_kid = op.jwks()["keys"][0]["kid"]
    with op.engine.begin() as conn:  # rotated as if a JWKS cache lifetime ago: the new key signs now
        new = keys.rotate(conn, op.people.vault, now=dt.datetime.now(dt.UTC) - keys.PUBLISH_AHEAD)
    # ... and the provider's process as that much later: the key it holds (keys.SigningKeys) was read
    # before the rotation was written, now more than its lifetime ago
    held = op.http.app.state.signing_keys
    read_at = held.clock()
    held.clock = lambda: read_at + keys.SERVED_JWKS_LIFETIME.total_seconds()
    published = [k["kid"] for k in op.jwks()["keys"] if k["alg"] == "ES256"]
    assert published == [new.kid, old_kid]
    # what the old key signed still validates, and a new token is signed by the new key
    before_nonce = op.nonce
    op.claims(before["id_token"])
    assert op.http.get("/userinfo", headers=_bearer(before["access_token"])).status_code == 200
    after = op.tokens()
    header = jwt.decode(after["id_token"], KeySet.import_key_set(op.jwks()), algorithms=["ES256"]).header
    assert header["kid"] == new.kid
    # past the overlap the old key is gone, and its tokens with it
    op.sql(oidc_keys.update().where(oidc_keys.c.kid == old_kid)
           .values(published_until=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))
    assert [k["kid"] for k in op.jwks()["keys"] if k["alg"] == "ES256"] == [new.kid]
    assert op.http.get("/userinfo", headers=_bearer(before["access_token"])).status_code == 401
    with pytest.raises(IdTokenError):
        op.claims(before["id_token"], nonce=before_nonce)


def test_forms_need_their_csrf_token_and_a_live_request(op):
    browser = op.browser()
    _, challenge = pkce()
    browser.get(authorize_url(op.rp, challenge=challenge))
    assert browser.submit(csrf_token="forged", username=BINH, password=PASSCODE) is None
    assert 'data-error="csrf"' in browser.page.text
    assert browser.get("/login", i="no-such-request") is None
    assert 'data-error="expired"' in browser.page.text and browser.page.status_code == 400
    assert browser.get("/login", i="no-such-request", lang="en") is None
    assert "This login has expired" in browser.page.text
    cookie = browser.client.cookies.get("dd_session")
    assert cookie and "." in cookie


def test_plain_http_to_a_remote_host_is_a_400_not_a_500(op):
    """Authlib refuses plain http off loopback (RFC 6749 s3.1); the answer is invalid_request, never 500."""
    http = TestClient(op.http.app, base_url="http://testserver", follow_redirects=False,
                      raise_server_exceptions=False)
    for path in ("/token", "/userinfo", "/par", "/introspect", "/revoke"):
        r = http.post(path, data={"grant_type": "client_credentials"})
        assert r.status_code in (400, 401), (path, r.status_code, r.text)
        if r.status_code == 400:
            assert r.json()["error"] == "invalid_request", (path, r.text)


def test_an_essential_acr_the_provider_does_not_know_is_unmet(op):
    """OpenID Connect: an essential acr that cannot be met fails the request; it is never answered at a
    level nobody asked for (an outside tester got level 1 for an essential urn:dinhdanh:level3)."""
    asked = {"id_token": {"acr": {"essential": True, "values": ["urn:dinhdanh:level3"]}}}
    query, _ = op.login(who=BINH, scope="openid", claims=json.dumps(asked))
    assert query.get("error") == "unmet_authentication_requirements" and "code" not in query, query
    # not essential: answered with the true level, as before
    asked = {"id_token": {"acr": {"values": ["urn:dinhdanh:level3"]}}}
    query, verifier = op.login(who=BINH, scope="openid", claims=json.dumps(asked))
    assert "code" in query
