"""Unit tests of the OpenID provider's pure parts: claims and scopes, the ``claims`` parameter,
acr levels, pairwise subjects, the relying party's ID-token check (including the classic attacks
on it), PKCE S256 only, and the modules' doctests."""

from __future__ import annotations

import base64
import doctest
import hashlib
import hmac
import importlib
import json
import time

import pytest
from authlib.oauth2.rfc6749 import InvalidRequestError
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey

from dinhdanh.oidc import claims as oc
from dinhdanh.oidc.relying_party import IdTokenError, validate_id_token
from dinhdanh.oidc.rfc7636 import S256CodeChallenge

ISSUER = "https://id.example.vn"
CLIENT = "dd-client"
KEY = ECKey.generate_key("P-256", auto_kid=True)
JWKS = {"keys": [KEY.as_dict(private=False)]}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(**over) -> dict:
    now = int(time.time())
    base = {"iss": ISSUER, "sub": "pairwise-sub", "aud": CLIENT, "exp": now + 600, "iat": now, "auth_time": now,
            "nonce": "n1", "acr": "urn:dinhdanh:level1"}
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


def _token(key=KEY, alg="ES256", **over) -> str:
    return jwt.encode({"alg": alg, "kid": KEY.kid}, _claims(**over), key, algorithms=[alg])


def _check(token: str, **kw) -> dict:
    return validate_id_token(token, JWKS, issuer=ISSUER, client_id=CLIENT, nonce=kw.pop("nonce", "n1"), **kw)


@pytest.mark.parametrize("module", ["claims", "keys", "relying_party"])
def test_doctests(module):
    result = doctest.testmod(importlib.import_module(f"dinhdanh.oidc.{module}"), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0


def test_a_good_id_token_passes():
    claims = _check(_token(), required_level=1, max_age=60)
    assert claims["sub"] == "pairwise-sub"


def test_alg_none_is_refused():
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    payload = _b64(json.dumps(_claims()).encode())
    for token in (f"{header}.{payload}.", f"{header}.{payload}.{_b64(b'x')}"):
        with pytest.raises(IdTokenError):
            _check(token)


def test_hs256_signed_with_the_public_key_is_refused():
    """The key-confusion attack: the attacker signs with HMAC, using our *public* key as the secret."""
    payload = _b64(json.dumps(_claims(sub="someone-else")).encode())
    for secret in (KEY.as_pem(private=False), json.dumps(KEY.as_dict(private=False)).encode()):
        header = _b64(json.dumps({"alg": "HS256", "kid": KEY.kid}).encode())
        signature = _b64(hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest())
        with pytest.raises(IdTokenError):
            _check(f"{header}.{payload}.{signature}")
    # and a proper HS256 token under any key is refused: the algorithm is ours to choose, not the token's
    with pytest.raises(IdTokenError):
        _check(jwt.encode({"alg": "HS256"}, _claims(), OctKey.generate_key(256), algorithms=["HS256"]))


@pytest.mark.parametrize("change", [
    {"iss": "https://evil.example"}, {"aud": "another-client"}, {"nonce": "other"}, {"nonce": None},
    {"exp": int(time.time()) - 3600}, {"sub": None}, {"iat": None}, {"aud": [CLIENT, "other"]},
])
def test_wrong_claims_are_refused(change):
    with pytest.raises(IdTokenError):
        _check(_token(**change))


def test_tampered_or_foreign_signatures_are_refused():
    token = _token()
    head, payload, sig = token.split(".")
    forged = _b64(json.dumps(_claims(sub="someone-else")).encode())
    with pytest.raises(IdTokenError):
        _check(f"{head}.{forged}.{sig}")
    with pytest.raises(IdTokenError):
        _check(_token(key=ECKey.generate_key("P-256")))
    for junk in ("", "a.b", "a.b.c", None, 42, "é.é.é"):
        with pytest.raises(IdTokenError):
            _check(junk)


def test_acr_and_max_age_when_asked():
    with pytest.raises(IdTokenError, match="level 2"):
        _check(_token(), required_level=2)
    assert _check(_token(acr="urn:dinhdanh:level2"), required_level=2)["acr"] == "urn:dinhdanh:level2"
    with pytest.raises(IdTokenError, match="max_age"):
        _check(_token(auth_time=int(time.time()) - 3600), max_age=60)
    with pytest.raises(IdTokenError, match="max_age"):
        _check(_token(auth_time=None), max_age=60)


def test_claims_parameter_is_checked_for_shape():
    assert oc.parse_claims_request(None) is None
    parsed = oc.parse_claims_request('{"userinfo": {"email": null, "urn:dinhdanh:pid": {"essential": true}}}')
    assert oc.requested_claim_names(parsed) == {"email", "urn:dinhdanh:pid"}
    assert oc.requested_claim_names(parsed, "id_token") == set()
    for bad in ("{", "[]", '{"userinfo": []}', '{"id_token": {"a": 1}}', '{"id_token": {"a": {"essential": "yes"}}}',
                '{"id_token": {"a": {"values": "x"}}}', "x" * 5000):
        with pytest.raises(ValueError):
            oc.parse_claims_request(bad)


def test_required_level():
    assert oc.required_level(None, None) is None
    assert oc.required_level("urn:dinhdanh:level2", None) == 2
    assert oc.required_level("urn:dinhdanh:level1 urn:dinhdanh:level2", None) == 1  # either is acceptable
    assert oc.required_level("urn:other:gold", None) is None
    essential = {"id_token": {"acr": {"essential": True, "values": ["urn:dinhdanh:level2"]}}}
    assert oc.required_level("urn:dinhdanh:level1", essential) == 2
    assert oc.required_level(None, {"id_token": {"acr": {"value": "urn:dinhdanh:level2"}}}) == 2


def test_pairwise_subjects():
    salt = b"s" * 32
    one = oc.pairwise_subject("dichvucong.gov.vn", "subject-1", salt)
    assert one == oc.pairwise_subject("dichvucong.gov.vn", "subject-1", salt)
    assert one != oc.pairwise_subject("bank.example", "subject-1", salt)
    assert one != oc.pairwise_subject("dichvucong.gov.vn", "subject-2", salt)
    assert one != oc.pairwise_subject("dichvucong.gov.vn", "subject-1", b"t" * 32)
    expected = base64.urlsafe_b64encode(hashlib.sha256(b"dichvucong.gov.vn|subject-1|" + salt).digest())
    assert one == expected.rstrip(b"=").decode() and len(one) == 43


def test_every_claim_has_a_plain_label_in_both_languages():
    for lang in ("vi", "en"):
        missing = [c for c in oc.KNOWN_CLAIMS if c not in oc.CLAIM_LABELS[lang]]
        assert not missing, (lang, missing)
        assert "dinhdanh.me" in oc.CLAIM_LABELS[lang]


class _Request:
    def __init__(self, **data):
        from collections import defaultdict

        class Payload:
            pass

        self.payload = Payload()
        self.payload.data = data
        self.payload.datalist = defaultdict(list, {k: [v] for k, v in data.items()})


class _Grant:
    def __init__(self, **data):
        self.request = _Request(**data)


def test_pkce_is_s256_only_and_always_required():
    check = S256CodeChallenge().validate_code_challenge
    good = _b64(hashlib.sha256(b"v" * 50).digest())
    check(_Grant(code_challenge=good, code_challenge_method="S256"), "https://rp/cb")
    for data in ({}, {"code_challenge": good}, {"code_challenge": good, "code_challenge_method": "plain"},
                 {"code_challenge": "short", "code_challenge_method": "S256"}):
        with pytest.raises(InvalidRequestError):
            check(_Grant(**data), "https://rp/cb")


def test_access_tokens_are_es256_jws_any_library_verifies():
    """The access token's serialization (``tokens._es256_compact``): a JWS compact whose header is
    ``{"alg": "ES256", "kid", "typ": "at+jwt"}`` and whose signature is R || S, 64 bytes (RFC 7518
    s.3.4): checked by joserfc with the public key alone and by ``cryptography`` from the raw bytes,
    over enough tokens that R or S with leading zero bytes occur; a key on another curve is refused."""
    import datetime as dt

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
    from joserfc.jwk import KeySet

    from dinhdanh.oidc import tokens

    key = ECKey.generate_key("P-256", auto_kid=True)
    public = KeySet([ECKey.import_key(key.as_dict(private=False))])
    now = dt.datetime(2026, 12, 7, 2, 30, tzinfo=dt.UTC)
    for i in range(600):
        value, jti, expires = tokens.mint_access_token(
            None, None, issuer="https://id.example", client_id="c-1", subject=f"s-{i}", scope="dinhdanh.verify",
            now=now, extra={"acr": "Mức độ 2", "cnf": {"jkt": "k" * 43}}, key=key)
        decoded = jwt.decode(value, public, algorithms=["ES256"])
        assert decoded.header == {"alg": "ES256", "kid": key.kid, "typ": "at+jwt"}
        assert decoded.claims == {"iss": "https://id.example", "sub": f"s-{i}", "aud": "https://id.example",
                                  "client_id": "c-1", "scope": "dinhdanh.verify", "iat": int(now.timestamp()),
                                  "exp": int(expires.timestamp()), "jti": jti, "acr": "Mức độ 2",
                                  "cnf": {"jkt": "k" * 43}}
        signing_input, _, signature = value.rpartition(".")
        raw = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
        assert len(raw) == 64
        der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
        key.private_key.public_key().verify(der, signing_input.encode(), ec.ECDSA(hashes.SHA256()))
    with pytest.raises(ValueError):
        tokens.mint_access_token(None, None, issuer="https://id.example", client_id="c", subject="s", scope="",
                                 now=now, key=ECKey.generate_key("P-384", auto_kid=True))
