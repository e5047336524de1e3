"""Anchors of the access log's head, on SQLite and PostgreSQL: a signed head checks out while the
log holds it, and stops checking out when an insider rewrites the chain consistently (which the
chain alone cannot show), cuts it, or forges the anchor. Also the CLI and the public endpoint."""

from __future__ import annotations

import base64
import json

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from joserfc import jws
from joserfc.jwk import KeySet
from typer.testing import CliRunner

from dinhdanh.audit.anchor import TYPE, chain_head, check_anchor, sign_head
from dinhdanh.audit.chain import GENESIS, entry_hash, verify
from dinhdanh.audit.service import record_access
from dinhdanh.audit.tables import access_log, audit_chain_head
from dinhdanh.oidc import keys
from dinhdanh.registry.tables import persons
from dinhdanh.store.vault import Vault
from dinhdanh.web.app import create_app

ISSUER = "https://testserver"


@pytest.fixture
def vault() -> Vault:
    import os

    return Vault(os.urandom(32))


@pytest.fixture
def logged(family):
    with family.connect() as conn:
        ids = conn.execute(sa.select(persons.c.person_id).order_by(persons.c.person_id)).scalars().all()
    for pid in ids[:4]:
        with family.begin() as conn:
            record_access(conn, "officer:1", [pid], "read", "administration", fields=["full_name"])
    return family


def anchor(engine, vault) -> str:
    with engine.begin() as conn:
        return sign_head(conn, vault, ISSUER)


def check(engine, token: str) -> dict:
    with engine.connect() as conn:
        return check_anchor(conn, token).as_dict()


def rewrite_consistently(engine, access_id: int, outcome: str) -> None:
    """What an insider with write access can do: change an entry and recompute every hash after
    it, and the head, so that the chain is valid again."""
    with engine.begin() as conn:
        conn.execute(access_log.update().where(access_log.c.access_id == access_id).values(outcome=outcome))
        entries = [dict(r._mapping) for r in conn.execute(sa.select(access_log).order_by(access_log.c.access_id))]
        last = GENESIS
        for e in entries:
            e["prev_hash"] = last
            e["hash"] = last = entry_hash(e)
        for e in entries:
            conn.execute(access_log.update().where(access_log.c.access_id == e["access_id"])
                         .values(prev_hash=e["prev_hash"], hash=e["hash"]))
        conn.execute(audit_chain_head.update().values(last_hash=last))


def test_a_signed_head_checks_out_and_verifies_with_the_published_jwks(logged, vault):
    token = anchor(logged, vault)
    with logged.connect() as conn:
        head = chain_head(conn)
        jwks = keys.published_jwks(conn)
    assert head["entries"] == 4 and head["last_hash"] != GENESIS
    signed = jws.deserialize_compact(token, KeySet.import_key_set(jwks), algorithms=["ES256"])
    assert signed.protected["typ"] == TYPE
    payload = json.loads(signed.payload)
    assert payload["iss"] == ISSUER and {k: payload[k] for k in head} == head
    result = check(logged, token)
    assert result["valid"] is True and result["reason"] is None
    assert result["last_access_id"] == head["last_access_id"]
    # more entries later: the old anchor still holds (the chain only grows)
    with logged.begin() as conn:
        record_access(conn, "officer:1", [1], "read", "administration")
    assert check(logged, token)["valid"] is True


def test_a_consistent_rewrite_passes_the_chain_but_not_the_anchor(logged, vault):
    token = anchor(logged, vault)
    first = check(logged, token)["last_access_id"] - 3
    rewrite_consistently(logged, first, "refused")
    assert verify(logged).valid is True  # the chain alone cannot tell
    assert check(logged, token) | {"signed_at": None} == {
        "valid": False, "reason": "hash differs", "last_access_id": first + 3, "last_hash": json.loads(
            base64.urlsafe_b64decode(token.split(".")[1] + "==").decode())["last_hash"],
        "signed_at": None, "kid": check(logged, token)["kid"]}


def test_a_cut_chain_loses_the_anchored_entry(logged, vault):
    token = anchor(logged, vault)
    last = check(logged, token)["last_access_id"]
    with logged.begin() as conn:
        conn.execute(access_log.delete().where(access_log.c.access_id == last))
    assert check(logged, token)["reason"] == "entry missing"


def test_forged_and_malformed_anchors(logged, vault):
    token = anchor(logged, vault)
    header, payload, signature = token.split(".")
    body = json.loads(base64.urlsafe_b64decode(payload + "=="))
    body["last_hash"] = "0" * 64
    forged = ".".join([header, base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=").decode(), signature])
    assert check(logged, forged)["reason"] == "bad signature"
    from joserfc.jwk import ECKey

    stranger = ECKey.generate_key("P-256", auto_kid=True)
    foreign = jws.serialize_compact({"alg": "ES256", "kid": stranger.kid, "typ": TYPE},
                                    base64.urlsafe_b64decode(payload + "=="), stranger, algorithms=["ES256"])
    assert check(logged, foreign)["reason"] == "unknown key"
    for junk in ("", "abc", "a.b.c", token.replace(".", "", 1), "é" * 20):
        assert check(logged, junk) == {"valid": False, "reason": "not an anchor", "last_access_id": None,
                                       "last_hash": None, "signed_at": None, "kid": None}


def test_an_anchor_outlives_a_key_rotation(logged, vault):
    token = anchor(logged, vault)
    with logged.begin() as conn:
        keys.rotate(conn, vault)
        conn.execute(sa.text("UPDATE oidc_keys SET published_until = NULL WHERE active IS NULL"))
    assert check(logged, token)["valid"] is True


def test_cli_anchor_and_verify_with_anchors(logged, tmp_path, monkeypatch):
    from dinhdanh.cli import app

    url = logged.url.render_as_string(hide_password=False)
    if logged.dialect.name == "postgresql":
        pytest.skip("the CLI takes a URL; the PostgreSQL test schema is set by connect_args")
    runner = CliRunner()
    out = tmp_path / "head.jws"
    made = runner.invoke(app, ["audit", "anchor", "--out", str(out), "--db", url])
    assert made.exit_code == 0, made.output
    good = runner.invoke(app, ["audit", "verify", "--anchor", str(out), "--db", url])
    assert good.exit_code == 0, good.output
    report = json.loads(good.output)
    assert report["valid"] is True and report["anchors"][0]["valid"] is True
    rewrite_consistently(logged, report["anchors"][0]["last_access_id"], "refused")
    bad = runner.invoke(app, ["audit", "verify", "--anchor", str(out), "--db", url])
    assert bad.exit_code == 1
    assert json.loads(bad.output)["anchors"][0]["reason"] == "hash differs"
    missing = runner.invoke(app, ["audit", "verify", "--anchor", str(tmp_path / "nope.jws"), "--db", url])
    assert missing.exit_code == 2 and "nope.jws" in missing.output


def test_the_public_head_endpoint(logged):
    http = TestClient(create_app(logged), base_url=ISSUER)
    r = http.get("/api/v1/audit/head")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["entries"] == 4 and check(logged, body["anchor"])["valid"] is True
    jwks = http.get("/jwks").json()
    assert json.loads(jws.deserialize_compact(body["anchor"], KeySet.import_key_set(jwks),
                                              algorithms=["ES256"]).payload)["last_hash"] == body["last_hash"]
