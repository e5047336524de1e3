"""DPoP proofs (RFC 9449 s.4.3) as ``oidc.dpop.check_proof`` checks them, with proofs made by an
independent client (tests/dpop_client.py: ``cryptography`` and the RFC, not the server's code)."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import time

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from dinhdanh.oidc import dpop
from dinhdanh.oidc.dpop import InvalidProof, check_proof, normalise_uri
from tests.dpop_client import DPoPKey, ath, b64, compact, private_jwk, sign, thumbprint

URL = "https://id.example.vn/api/v1/verify"
TOKEN = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def check(proof: str, method: str = "POST", url: str = URL, access_token: str | None = None, at=None):
    return check_proof(proof, method=method, url=url, now=at or now(), access_token=access_token)


def refused(proof, *, match: str, **kw) -> None:
    with pytest.raises(InvalidProof, match=match) as caught:
        check(proof, **kw)
    assert '"' not in caught.value.description and "\\" not in caught.value.description


def test_rfc7638_thumbprint_example():
    """RFC 7638 s.3.1: the example RSA key and its thumbprint."""
    jwk = {"kty": "RSA", "e": "AQAB", "alg": "RS256", "kid": "2011-04-29",
           "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXj"
                "BZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSq"
                "zs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHa"
                "Q-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"}
    assert dpop.thumbprint(jwk) == thumbprint(jwk) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_access_token_hash_is_base64url_sha256():
    expected = b64(hashlib.sha256(TOKEN.encode()).digest())
    assert dpop.access_token_hash(TOKEN) == ath(TOKEN) == expected and "=" not in expected


@pytest.mark.parametrize("alg", ["ES256", "ES384", "RS256", "PS256", "EdDSA", "Ed25519"])
def test_a_valid_proof_of_each_algorithm(alg):
    key = DPoPKey(alg)
    proof = check(key.proof("POST", URL, access_token=TOKEN), access_token=TOKEN)
    assert proof.jkt == key.jkt  # the RFC 7638 thumbprint, computed independently
    assert proof.jti and abs(proof.iat - time.time()) < 5
    assert proof.expires_at > now() + dt.timedelta(seconds=59)


def test_header_refusals():
    key = DPoPKey()
    refused(key.proof("POST", URL, header={"typ": "JWT"}), match="typ")
    refused(key.proof("POST", URL, header={"typ": None}), match="typ")
    refused(key.proof("POST", URL, header={"jwk": None}), match="jwk")
    refused(key.proof("POST", URL, header={"jwk": private_jwk(key.key)}), match="private key")
    rsa_key = DPoPKey("RS256")
    refused(key.proof("POST", URL, header={"jwk": rsa_key.jwk}), match="not a key for ES256")
    refused(key.proof("POST", URL, header={"jwk": {**key.jwk, "crv": "P-384"}}), match="not a key for ES256")
    refused(key.proof("POST", URL, header={"jwk": {**key.jwk, "x": b64(b"\x01" * 32)}}), match="valid public key")


def test_header_members_we_do_not_know_are_ignored_unless_critical():
    key = DPoPKey()
    assert check(key.proof("POST", URL, header={"kid": "k1", "x-vendor": 1})).jkt == key.jkt
    assert check(key.proof("POST", URL, header={"jwk": {**key.jwk, "use": "sig", "alg": "ES256"}})).jkt == key.jkt
    refused(key.proof("POST", URL, header={"crit": ["x-vendor"], "x-vendor": 1}), match="cannot be read")


def test_no_signature_and_mac_algorithms_are_refused():
    key = DPoPKey()
    body = {"jti": "j1", "htm": "POST", "htu": URL, "iat": int(time.time())}
    unsigned = compact({"typ": "dpop+jwt", "alg": "none", "jwk": key.jwk}, body)
    refused(unsigned, match="alg")
    secret = b"a shared secret of thirty-two bytes!"
    mac = compact({"typ": "dpop+jwt", "alg": "HS256", "jwk": {"kty": "oct", "k": b64(secret)}}, body,
                  lambda data: hmac.new(secret, data, hashlib.sha256).digest())
    refused(mac, match="alg")
    # an HMAC keyed with the public key's bytes (the classic confusion) is refused as well
    mac = compact({"typ": "dpop+jwt", "alg": "HS256", "jwk": key.jwk}, body,
                  lambda data: hmac.new(key.jwk["x"].encode(), data, hashlib.sha256).digest())
    refused(mac, match="alg")


def test_signature_must_verify_with_the_header_key():
    key, other = DPoPKey(), DPoPKey()
    refused(key.proof("POST", URL, signer=lambda data: sign(other.key, "ES256", data)), match="signature")
    good = key.proof("POST", URL)
    head, payload, signature = good.split(".")
    claims = json.dumps({"jti": "other", "htm": "POST", "htu": URL, "iat": int(time.time())}).encode()
    tampered = f"{head}.{b64(claims)}.{signature}"
    refused(tampered, match="signature")
    # a DER-encoded ECDSA signature (not r || s) is not a JWS signature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    refused(key.proof("POST", URL, signer=lambda data: key.key.sign(data, ec.ECDSA(hashes.SHA256()))),
            match="signature")


def test_short_rsa_keys_are_refused():
    small = DPoPKey("RS256", key=rsa.generate_private_key(public_exponent=65537, key_size=1024))
    refused(small.proof("POST", URL), match="2048")


def test_claim_refusals():
    key = DPoPKey()
    refused(key.proof("GET", URL), match="htm")
    refused(key.proof("post", URL), match="htm")
    refused(key.proof("POST", "https://id.example.vn/api/v1/kyc"), match="htu")
    refused(key.proof("POST", "https://evil.example/api/v1/verify"), match="htu")
    refused(key.proof("POST", "http://id.example.vn/api/v1/verify"), match="htu")
    refused(key.proof("POST", URL, claims={"htu": 42}), match="htu")
    refused(key.proof("POST", URL, drop=("jti",)), match="jti")
    refused(key.proof("POST", URL, jti="x" * 257), match="jti")
    refused(key.proof("POST", URL, drop=("iat",)), match="iat")
    refused(key.proof("POST", URL, iat="1700000000"), match="iat")
    refused(key.proof("POST", URL, iat=True), match="iat")
    refused(key.proof("POST", URL, iat=time.time() - 61), match="iat")
    refused(key.proof("POST", URL, iat=time.time() + 61), match="iat")
    check(key.proof("POST", URL, iat=time.time() - 55))  # inside the window, both ways
    check(key.proof("POST", URL, iat=time.time() + 55))


def test_ath_binds_the_proof_to_the_access_token():
    key = DPoPKey()
    refused(key.proof("POST", URL), access_token=TOKEN, match="ath")
    refused(key.proof("POST", URL, access_token=TOKEN + "x"), access_token=TOKEN, match="ath")
    refused(key.proof("POST", URL, claims={"ath": ath(TOKEN) + "="}), access_token=TOKEN, match="ath")
    assert check(key.proof("POST", URL, access_token=TOKEN), access_token=TOKEN).jkt == key.jkt


def test_htu_is_compared_after_normalisation_without_query():
    key = DPoPKey()
    for htu in ("HTTPS://ID.Example.VN/api/v1/verify", "https://id.example.vn:443/api/v1/verify",
                "https://id.example.vn/api/v1/%76erify", "https://id.example.vn/api/./v1/x/../verify",
                "https://id.example.vn/api/v1/verify?x=1", "https://id.example.vn/api/v1/verify#f"):
        assert check(key.proof("POST", htu)).jkt == key.jkt, htu
    assert normalise_uri("https://a.example") == "https://a.example/"
    assert normalise_uri("http://a.example:80/%7e%2f") == "http://a.example/~%2F"
    assert normalise_uri("https://a.example:8443/a/b/..") == "https://a.example:8443/a/"
    assert normalise_uri("https://[::1]:443/x") == "https://[::1]/x"
    for bad in ("ftp://a.example/", "https:///x", "https://user@a.example/", "https://a.example:99999/", "/x"):
        assert normalise_uri(bad) is None, bad


@pytest.mark.parametrize("value", [
    None, "", "abc", "a.b", "a.b.c.d", "!!!.e30.", "e30.e30.", b64(b"[]") + ".e30.", b64(b"\xff") + ".e30.",
    b64(b'{"typ":"dpop+jwt","alg":"ES256","jwk":{"kty":"EC"}}') + ".e30.",
    "x" * 9000,
])
def test_garbage_is_refused_as_invalid_proof(value):
    with pytest.raises(InvalidProof):
        check(value)


def test_payload_must_be_a_json_object():
    key = DPoPKey()
    head = b64(json.dumps({"typ": "dpop+jwt", "alg": "ES256", "jwk": key.jwk}).encode())
    signing_input = f"{head}.{b64(b'[1]')}"
    proof = signing_input + "." + b64(sign(key.key, "ES256", signing_input.encode()))
    refused(proof, match="JSON object")


def test_one_header_only_at_the_token_endpoint():
    key = DPoPKey()
    url = "https://id.example.vn/token"
    with pytest.raises(dpop.InvalidDPoPProofError, match="one DPoP header"):
        dpop.token_request_proof(None, [key.proof("POST", url), key.proof("POST", url)], url=url, now=now())
    assert dpop.token_request_proof(None, [], url=url, now=now()) is None


def test_challenge_names_the_algorithms():
    assert dpop.challenge() == 'DPoP algs="ES256 ES384 PS256 RS256 EdDSA Ed25519"'
    refusal = dpop.ResourceRefusal("invalid_dpop_proof", 'a "quoted" \\ word')
    header = dict(refusal.get_headers())["WWW-Authenticate"]
    assert header.startswith('DPoP error="invalid_dpop_proof", error_description="a ?quoted? ? word"')
