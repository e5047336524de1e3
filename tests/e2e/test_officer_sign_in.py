"""Officers sign in through the platform's own OpenID provider, on SQLite and PostgreSQL: an officer
client asks for the scope ``dinhdanh.officer``; the provider demands level 2 (passcode, then the
TOTP second factor) whatever the request says, and refuses accounts that are not an active
officer's; the access token (10 minutes) opens the officer routes, the access log names the
officer; refresh works, ``/revoke`` stops the token at once, and revoking the officer's
credentials ends their sign-ins. A client that is not an officer client never gets the scope.

People (tests/oidc_support.py): An holds a level-2 account with TOTP and is the officer of Phường
Hoàn Kiếm (00070); Bình, Đức and Hoa hold level-1 accounts.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import time
import warnings

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import KeySet
from typer.testing import CliRunner

from dinhdanh.audit.tables import access_log
from dinhdanh.officers import credentials
from dinhdanh.officers.service import add_officer
from dinhdanh.officers.tables import officers
from dinhdanh.oidc.tables import oidc_tokens
from dinhdanh.oidc.tokens import digest
from dinhdanh.registry.errors import InvalidInput
from dinhdanh.registry.tables import persons
from dinhdanh.web.app import create_app
from tests.oidc_support import (AN, BINH, DUC, PASSCODE, Browser, LiveServer, add_client, authorize_url, load_people,
                                pkce, query_of)

with warnings.catch_warnings():  # Authlib 1.9 prefers the "httpx2" fork; the project pins httpx
    warnings.simplefilter("ignore", DeprecationWarning)
    from authlib.integrations.httpx_client import OAuth2Client

ISSUER = "https://testserver"
CONSOLE = "https://console.example/cb"
SCOPE = "openid dinhdanh.officer"
LEVEL2 = "urn:dinhdanh:level2"


class Desk:
    """The register with people, An's officer, an officer client, and the app."""

    def __init__(self, engine, tmp_path, http_base: str = ISSUER):
        self.engine = engine
        self.people = load_people(engine, tmp_path)
        with engine.begin() as conn:
            self.officer, _ = add_officer(conn, "Nguyễn Văn An (công an phường)", "commune", "00070",
                                          roles=("registrar",))
            credentials.link_account(conn, self.officer.officer_id, AN, actor="test")
        self.console = add_client(engine, name="Hệ thống nghiệp vụ", redirect_uris=[CONSOLE], scopes="openid",
                                  officer=True)
        self.http = TestClient(create_app(engine), base_url=http_base, follow_redirects=False)
        self._step = 0

    def totp(self) -> str:
        """A code the provider has not seen yet: the steps before, at and after now (each code is
        accepted once, one step of drift either way), three at most per test."""
        assert self._step < 3
        self._step += 1
        return self.people.totp(time.time() + 30 * (self._step - 2))

    def browser(self) -> Browser:
        return Browser(TestClient(self.http.app, base_url=ISSUER, follow_redirects=False))

    def sign_in(self, browser: Browser | None = None, who: str = AN, client: dict | None = None, scope: str = SCOPE,
                **params) -> tuple[dict, str]:
        """The officer's browser from the client to the callback; the callback's query, the verifier."""
        browser = browser or self.browser()
        verifier, challenge = pkce()
        location = browser.get(authorize_url(client or self.console, challenge=challenge, scope=scope, **params))
        if location is None and 'name="password"' in browser.page.text:
            location = browser.submit(username=who, password=PASSCODE)
        if location is None and 'action="/login/step-up"' in browser.page.text:
            location = browser.submit(totp=self.totp())
        if location is None and 'action="/consent"' in browser.page.text:
            location = browser.submit(decision="allow")
        assert location is not None, browser.page.text[:2000]
        return query_of(location), verifier

    def tokens(self, **kw) -> dict:
        query, verifier = self.sign_in(**kw)
        client = kw.get("client") or self.console
        r = self.http.post("/token", data={"grant_type": "authorization_code", "code": query["code"],
                                           "redirect_uri": client["redirect_uris"][0], "code_verifier": verifier},
                           auth=(client["client_id"], client["client_secret"]))
        assert r.status_code == 200, r.text
        return r.json()

    def post(self, path: str, **data):
        return self.http.post(path, data=data, auth=(self.console["client_id"], self.console["client_secret"]))

    def read(self, token: str, pid: str = BINH):
        return self.http.get(f"/api/v1/citizens/{pid}", headers={"Authorization": f"Bearer {token}"})

    def token_row(self, value: str):
        with self.engine.connect() as conn:
            return conn.execute(sa.select(oidc_tokens).where(oidc_tokens.c.token_hash == digest(value))).one()

    def last_access(self):
        with self.engine.connect() as conn:
            return conn.execute(sa.select(access_log.c.actor, access_log.c.action, persons.c.pid)
                                .join(persons, persons.c.person_id == access_log.c.person_id)
                                .order_by(access_log.c.access_id.desc())).first()


@pytest.fixture
def desk(engine, tmp_path) -> Desk:
    return Desk(engine, tmp_path)


def test_an_officer_signs_in_with_authlib_against_a_live_server_and_works(engine, tmp_path):
    """The whole sign-in over HTTP with an off-the-shelf client: code + PKCE, the forced step-up,
    a read of a record in the officer's area, refresh, and revocation (RFC 7009)."""
    desk = Desk(engine, tmp_path)
    with LiveServer(engine) as live:
        meta = httpx.get(f"{live.url}/.well-known/openid-configuration").json()
        assert "dinhdanh.officer" in meta["scopes_supported"]
        with OAuth2Client(client_id=desk.console["client_id"], client_secret=desk.console["client_secret"],
                          scope=SCOPE, redirect_uri=CONSOLE, code_challenge_method="S256",
                          token_endpoint_auth_method="client_secret_basic") as client:
            verifier, nonce = secrets.token_urlsafe(48), secrets.token_urlsafe(16)
            # acr_values asks for level 1: the officer scope asks for level 2 all the same
            url, state = client.create_authorization_url(meta["authorization_endpoint"], code_verifier=verifier,
                                                         nonce=nonce, acr_values="urn:dinhdanh:level1")
            with httpx.Client(base_url=live.url, follow_redirects=False) as http:
                browser = Browser(http)
                assert browser.get(url) is None and 'name="password"' in browser.page.text
                assert browser.submit(username=AN, password=PASSCODE) is None
                assert 'action="/login/step-up"' in browser.page.text  # the second factor, forced
                location = browser.submit(totp=desk.totp())
                if location is None:
                    assert "Làm việc với tư cách cán bộ" in browser.page.text  # the consent names the scope
                    location = browser.submit(decision="allow")
            assert location.startswith(CONSOLE)
            token = client.fetch_token(meta["token_endpoint"], authorization_response=location,
                                       code_verifier=verifier, state=state)
            assert token["expires_in"] == 600 and "dinhdanh.officer" in token["scope"].split()
            claims = jwt.decode(token["id_token"], KeySet.import_key_set(httpx.get(meta["jwks_uri"]).json()),
                                algorithms=["ES256"]).claims
            assert claims["acr"] == LEVEL2 and claims["nonce"] == nonce

            r = client.get(f"{live.url}/api/v1/citizens/{BINH}", params={"purpose": "residence"})
            assert r.status_code == 200 and r.json()["full_name"] == "Trần Thị Bình"
            assert tuple(desk.last_access()) == (f"officer:{desk.officer.officer_id}", "read", BINH)
            assert client.get(f"{live.url}/api/v1/citizens/079090000005").status_code == 404  # outside 00070

            first = token["access_token"]
            refreshed = client.refresh_token(meta["token_endpoint"])
            assert refreshed["access_token"] != first and "dinhdanh.officer" in refreshed["scope"].split()
            assert client.get(f"{live.url}/api/v1/citizens/{BINH}").status_code == 200
            row = desk.token_row(refreshed["refresh_token"])
            assert row.expires_at == row.auth_time + dt.timedelta(hours=12)  # the sign-in's working day

            r = client.revoke_token(meta["revocation_endpoint"], token=refreshed["access_token"],
                                    token_type_hint="access_token")
            assert r.status_code == 200
            r = client.get(f"{live.url}/api/v1/citizens/{BINH}")
            assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"


def test_level_1_is_refused(desk):
    # an officer whose account holds level 1 only: the client is told, no code
    with desk.engine.begin() as conn:
        other, _ = add_officer(conn, "Trần Thị Bình", "commune", "00070", roles=("registrar",))
        credentials.link_account(conn, other.officer_id, BINH, actor="test")
    query, _ = desk.sign_in(who=BINH)
    assert query["error"] == "unmet_authentication_requirements" and "code" not in query

    # An, with the passcode alone: the step-up page, whatever acr_values say; never a code
    browser = desk.browser()
    _, challenge = pkce()
    assert browser.get(authorize_url(desk.console, challenge=challenge, scope=SCOPE,
                                     acr_values="urn:dinhdanh:level1")) is None
    assert browser.submit(username=AN, password=PASSCODE) is None
    assert 'action="/login/step-up"' in browser.page.text
    location = browser.get(authorize_url(desk.console, challenge=challenge, scope=SCOPE, prompt="none",
                                         acr_values="urn:dinhdanh:level1"))
    assert query_of(location)["error"] == "interaction_required"

    # a token of the officer scope that was not issued at level 2 opens nothing
    tokens = desk.tokens()
    assert desk.read(tokens["access_token"]).status_code == 200
    with desk.engine.begin() as conn:
        conn.execute(oidc_tokens.update().where(oidc_tokens.c.token_hash == digest(tokens["access_token"]))
                     .values(acr="urn:dinhdanh:level1"))
    assert desk.read(tokens["access_token"]).status_code == 401


def test_an_account_that_is_not_an_active_officers_is_refused(desk):
    # Đức has an e-ID account and is no officer: access_denied after the passcode, before any step-up
    query, _ = desk.sign_in(who=DUC)
    assert query["error"] == "access_denied" and "code" not in query
    # An's officer made inactive: the same, and the tokens An holds stop working
    tokens = desk.tokens()
    assert desk.read(tokens["access_token"]).status_code == 200
    with desk.engine.begin() as conn:
        conn.execute(officers.update().where(officers.c.officer_id == desk.officer.officer_id).values(active=False))
    assert desk.read(tokens["access_token"]).status_code == 401
    r = desk.post("/token", grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    query, _ = desk.sign_in()
    assert query["error"] == "access_denied"


def test_only_an_officer_client_gets_the_officer_scope(desk, engine):
    rp = add_client(engine, scopes="openid profile")
    # asked for by another client: invalid_scope, before anyone logs in
    browser = desk.browser()
    _, challenge = pkce()
    location = browser.get(authorize_url(rp, challenge=challenge, scope=SCOPE))
    assert query_of(location)["error"] == "invalid_scope"
    # a citizen's token from another client opens no officer route
    citizen = desk.tokens(client=rp, who=DUC, scope="openid profile")
    assert desk.read(citizen["access_token"]).status_code == 401
    # and the scope cannot be registered for it
    with pytest.raises(InvalidInput) as refused:
        add_client(engine, scopes="openid dinhdanh.officer")
    assert refused.value.field == "scopes"
    with pytest.raises(InvalidInput) as refused:
        add_client(engine, scopes="dinhdanh.verify", grant_types=["client_credentials"], redirect_uris=[],
                   officer=True)
    assert refused.value.field == "grant"
    # the CLI: --officer gives the scope
    from dinhdanh.cli import app

    url = engine.url.render_as_string(hide_password=False)
    if engine.dialect.name == "postgresql":
        pytest.skip("the CLI's own engine cannot reach the test's schema (see test_officer_credentials)")
    runner = CliRunner()
    made = runner.invoke(app, ["client", "add", "--name", "Bàn làm việc", "--redirect-uri", CONSOLE, "--officer",
                               "--db", url])
    assert made.exit_code == 0, made.output
    out = json.loads(made.stdout)
    assert out["officer"] is True and "dinhdanh.officer" in out["scope"].split()
    refused_cli = runner.invoke(app, ["client", "add", "--name", "X", "--redirect-uri", CONSOLE,
                                      "--scopes", "openid dinhdanh.officer", "--db", url])
    assert refused_cli.exit_code == 2 and "scopes" in refused_cli.stderr


def test_revoking_the_officers_credentials_ends_their_sign_ins(desk):
    browser = desk.browser()
    tokens = desk.tokens(browser=browser)
    assert desk.read(tokens["access_token"]).status_code == 200
    with desk.engine.begin() as conn:
        credentials.revoke(conn, desk.officer.officer_id)
    assert desk.read(tokens["access_token"]).status_code == 401  # at once
    r = desk.post("/token", grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    # the browser's session from before does not count: the passcode and the second factor again
    verifier, challenge = pkce()
    assert browser.get(authorize_url(desk.console, challenge=challenge, scope=SCOPE)) is None
    assert 'name="password"' in browser.page.text
    query, verifier = desk.sign_in(browser=browser)
    r = desk.http.post("/token", data={"grant_type": "authorization_code", "code": query["code"],
                                       "redirect_uri": CONSOLE, "code_verifier": verifier},
                       auth=(desk.console["client_id"], desk.console["client_secret"]))
    assert r.status_code == 200, r.text
    assert desk.read(r.json()["access_token"]).status_code == 200
    assert desk.last_access().actor == f"officer:{desk.officer.officer_id}"
