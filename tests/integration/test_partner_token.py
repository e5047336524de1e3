"""A partner's client-credentials token granted without Authlib's dispatch (``Provider._plain_token``),
on SQLite and PostgreSQL: it grants exactly what the general way grants, and whatever it does not
grant goes the general way (Authlib's refusals), with nothing written on the way."""

from __future__ import annotations

import os

import pytest
import sqlalchemy as sa
from authlib.oauth2.rfc6749 import OAuth2Request
from joserfc import jwt
from joserfc.jwk import KeySet

from dinhdanh.oidc import keys
from dinhdanh.oidc.server import HttpRequest, Provider, Request
from dinhdanh.oidc.tables import oidc_tokens
from dinhdanh.store.vault import Vault
from tests.oidc_support import TOKEN_ISSUER as ISSUER
from tests.oidc_support import add_partner, token_answer, token_request



@pytest.fixture
def vault():
    return Vault(os.urandom(32))


def _http(partner: dict, form=None, headers=(), secret: str | None = None, query=()) -> HttpRequest:
    form = [("grant_type", "client_credentials"), ("scope", "dinhdanh.verify")] if form is None else form
    return token_request(partner, form, headers, secret, query)


_grant = token_answer


def _claims(engine, vault, token: str) -> dict:
    with engine.begin() as conn:
        published = KeySet.import_key_set(keys.published_jwks(conn))
    return jwt.decode(token, published).claims


def test_the_partner_path_grants_what_the_general_way_grants(engine, vault, monkeypatch):
    partner = add_partner(engine)
    general = _grant(engine, vault, _http(partner), general=True)
    # the partner path answers alone: Authlib's grant lookup is never reached
    monkeypatch.setattr(Provider, "get_token_grant", lambda *a: pytest.fail("the general way was taken"))
    fast = _grant(engine, vault, _http(partner))
    for status, body, headers, written in (general, fast):
        assert status == 200 and written == 1
        assert headers == {"Content-Type": "application/json", "Cache-Control": "no-store", "Pragma": "no-cache"}
        assert set(body) == {"access_token", "token_type", "expires_in", "scope"}
    assert {k: v for k, v in fast[1].items() if k != "access_token"} == \
        {k: v for k, v in general[1].items() if k != "access_token"}
    one, other = (_claims(engine, vault, got[1]["access_token"]) for got in (general, fast))
    varying = {"jti", "iat", "exp"}
    assert {k: v for k, v in one.items() if k not in varying} == {k: v for k, v in other.items() if k not in varying}
    assert other["sub"] == other["client_id"] == partner["client_id"] and other["scope"] == "dinhdanh.verify"
    with engine.begin() as conn:
        rows = conn.execute(sa.select(oidc_tokens).order_by(oidc_tokens.c.token_id)).all()
    same = ("kind", "client_id", "scope", "account_id", "session_id", "family_id", "claims", "acr", "amr",
            "auth_time", "jkt", "rotated_at", "revoked_at")
    assert [[getattr(r, c) for c in same] for r in rows] == [[getattr(rows[0], c) for c in same]] * 2
    # no scope asked: the client's own partner scopes, as the general way gives
    monkeypatch.undo()
    plain = [("grant_type", "client_credentials")]
    assert _grant(engine, vault, _http(partner, form=plain))[1]["scope"] == \
        _grant(engine, vault, _http(partner, form=plain), general=True)[1]["scope"] == "dinhdanh.verify"


@pytest.mark.parametrize("case", ["wrong secret", "unknown client", "openid scope", "unknown scope",
                                  "repeated grant_type", "client_id in the form", "a query", "a DPoP header",
                                  "not approved", "no Basic header", "authorization code grant"])
def test_what_the_partner_path_does_not_grant_goes_the_general_way(engine, vault, case, monkeypatch):
    partner = add_partner(engine, approve=case != "not approved")
    cc = ("grant_type", "client_credentials")
    request = {
        "wrong secret": lambda: _http(partner, secret="not-the-secret"),
        "unknown client": lambda: _http({**partner, "client_id": "nobody"}),
        "openid scope": lambda: _http(partner, form=[cc, ("scope", "openid")]),
        "unknown scope": lambda: _http(partner, form=[cc, ("scope", "dinhdanh.everything")]),
        "repeated grant_type": lambda: _http(partner, form=[cc, cc]),
        "client_id in the form": lambda: _http(partner, form=[cc, ("client_id", partner["client_id"])]),
        "a query": lambda: _http(partner, query=[("x", "1")]),
        "a DPoP header": lambda: _http(partner, headers=[("dpop", "not-a-proof")]),
        "not approved": lambda: _http(partner),
        "no Basic header": lambda: HttpRequest("POST", ISSUER + "/token", form=[cc]),
        "authorization code grant": lambda: _http(partner, form=[("grant_type", "authorization_code"),
                                                                 ("code", "x"), ("redirect_uri", "https://x/cb")]),
    }[case]
    answered = []
    plain_token = Provider._plain_token
    monkeypatch.setattr(Provider, "_plain_token", lambda self, r: answered.append(plain_token(self, r)))
    fast = _grant(engine, vault, request())
    assert answered == [None]  # declined: the general way answered
    general = _grant(engine, vault, request(), general=True)
    if case in ("client_id in the form", "a query"):  # Authlib grants these
        assert fast[0] == general[0] == 200 and fast[3] == general[3] == 1
        return
    if case == "repeated grant_type":  # RFC 6749 s.3.2: no parameter more than once
        assert fast[1] == {"error": "invalid_request", "error_description": "Repeated parameter: grant_type."}
    assert fast[0] >= 400 and fast[3] == 0, fast
    assert fast[:3] == general[:3]  # Authlib's refusal, the same either way


def test_a_partner_token_over_plain_http_is_refused(engine, vault):
    from authlib.oauth2.rfc6749.errors import InsecureTransportError

    partner = add_partner(engine)
    plain = _http(partner)
    plain.uri = "http://id.dinhdanh.test/token"
    with pytest.raises(InsecureTransportError), engine.begin() as conn:
        Provider(conn, vault, "http://id.dinhdanh.test").create_token_response(plain)


def test_the_request_carries_what_authlibs_request_carries():
    """``Request`` sets the attributes of ``OAuth2Request.__init__`` without calling it (``server.Request``)."""
    theirs = vars(OAuth2Request("POST", ISSUER + "/token", headers={}))
    ours = vars(Request(HttpRequest("POST", ISSUER + "/token")))
    assert set(theirs) <= set(ours)
    assert {k: ours[k] for k in theirs if k not in ("headers", "payload")} == \
        {k: v for k, v in theirs.items() if k not in ("headers", "payload")}
