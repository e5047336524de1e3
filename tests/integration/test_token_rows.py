"""How token rows are found, on SQLite and PostgreSQL: an access token by the ``jti`` its JWT
carries and the hash of the whole token, a refresh token by its hash; what each lookup must refuse
(a forged token with a real ``jti``, a token of the other kind, malformed input); the indexes each
lookup uses; and migration 0028 keeping the tokens issued before it."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import time

import pytest
import sqlalchemy as sa
from alembic import command

from dinhdanh.oidc import keys, tokens
from dinhdanh.oidc.tables import oidc_tokens
from dinhdanh.store.base import utcnow
from dinhdanh.store.engine import alembic_config, upgrade
from dinhdanh.store.vault import Vault
from tests.oidc_support import BINH, add_client, load_people
from tests.support import query_plan, schema_drift

ISSUER = "https://op.test"


@pytest.fixture
def vault():
    return Vault(os.urandom(32))


@pytest.fixture
def rp(engine):
    return add_client(engine)


def _access(conn, vault, client_id: str, **extra) -> tuple[str, str]:
    """A stored access token as the token endpoint writes it: (value, jti)."""
    now = utcnow()
    value, jti, expires = tokens.mint_access_token(conn, vault, issuer=ISSUER, client_id=client_id, subject=client_id,
                                                   scope="dinhdanh.verify", now=now)
    tokens.store(conn, kind="access", value=value, jti=jti, client_id=client_id, scope="dinhdanh.verify",
                 issued_at=now, expires_at=expires, **extra)
    return value, jti


def _refresh(conn, client_id: str, value: str, **extra) -> None:
    now = utcnow()
    tokens.store(conn, kind="refresh", value=value, jti=tokens.new_jti(), client_id=client_id, scope="openid",
                 issued_at=now, expires_at=now + tokens.REFRESH_TTL, **extra)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _json(value) -> str:
    return _b64(json.dumps(value).encode())


def test_an_access_token_is_found_by_its_jti_and_only_as_issued(engine, vault, rp):
    with engine.begin() as conn:
        value, jti = _access(conn, vault, rp["client_id"])
        _refresh(conn, rp["client_id"], "r-" + "a" * 60)
        found = tokens.find(conn, value)
        assert found.row.jti == jti and found.kind == "access" and found.is_active()
        assert tokens.find(conn, value, "access").row.token_id == found.row.token_id
        assert tokens.validate_access_token(conn, value, ISSUER).row.token_id == found.row.token_id
        assert tokens.find(conn, value, "refresh") is None  # another kind asked for
        header, payload, signature = value.split(".")
        # the same jti in a token we did not issue: another signature, another claim, nothing after
        forged = (f"{header}.{payload}.{_b64(os.urandom(64))}",
                  f"{header}.{_json({'jti': jti, 'sub': 'x'})}.{signature}",
                  f"{header}.{_json({'jti': jti})}.")
        for other in forged:
            assert tokens.find(conn, other) is None, other
            assert tokens.validate_access_token(conn, other, ISSUER) is None, other
        # a refresh token's hash with an access token's shape finds nothing, nor the reverse
        assert tokens.find(conn, "r-" + "a" * 60, "access") is None
        assert tokens.find(conn, "r-" + "a" * 60).kind == "refresh"
        # malformed: never an error, never a row
        for bad in ("a.b.c", f"{header}.!!!.{signature}", f"{header}.{_json([1, 2])}.x",
                    f"{header}.{_json({'jti': 7})}.x", f"{header}.{_json({'jti': 'j' * 44})}.x",
                    f"{header}.{_json({'jti': ''})}.x", f"{header}.{_b64(b'not json')}.x",
                    f"{header}.{_b64(bytes([0xff] * 9))}.x", "é.é.é", "." * 2, "x" * 4097, "", None, 7):
            assert tokens.find(conn, bad) is None, bad
            assert tokens.validate_access_token(conn, bad, ISSUER) is None, bad


def test_revoked_and_expired_access_tokens_are_still_found_but_not_valid(engine, vault, rp):
    with engine.begin() as conn:
        value, _ = _access(conn, vault, rp["client_id"])
        row = tokens.find(conn, value).row
        assert tokens.revoke_one(conn, row.token_id, "test") == 1
        assert tokens.find(conn, value).is_revoked()
        assert tokens.validate_access_token(conn, value, ISSUER) is None
        value, _ = _access(conn, vault, rp["client_id"])
        later = utcnow() + tokens.ACCESS_TTL + dt.timedelta(seconds=1)
        assert tokens.find(conn, value, now=later).is_expired()
        assert tokens.validate_access_token(conn, value, ISSUER, later) is None


def test_jtis_are_in_time_order_and_unique():
    made = []
    for _ in range(5):
        made += [tokens.new_jti() for _ in range(2000)]
        time.sleep(0.002)
    assert len(set(made)) == len(made)
    assert all(len(j) == 43 and j.isascii() and "." not in j for j in made)
    prefixes = [j[:13] for j in made]
    assert prefixes == sorted(prefixes)  # byte order is time order: what the indexes see
    assert int(prefixes[-1], 16) - int(prefixes[0], 16) >= 8_000  # microseconds, 4 sleeps of 2 ms
    assert abs(int(prefixes[-1], 16) / 1e6 - time.time()) < 5


def test_both_kinds_of_token_are_unique(engine, vault, rp):
    with engine.begin() as conn:
        _, jti = _access(conn, vault, rp["client_id"])
        _refresh(conn, rp["client_id"], "same-refresh")
    with engine.begin() as conn, pytest.raises(sa.exc.IntegrityError):
        _refresh(conn, rp["client_id"], "same-refresh")
    with engine.begin() as conn, pytest.raises(sa.exc.IntegrityError):
        tokens.store(conn, kind="refresh", value="another", jti=jti, client_id=rp["client_id"], scope="openid",
                     issued_at=utcnow(), expires_at=utcnow() + tokens.REFRESH_TTL)


def test_each_lookup_uses_its_index(engine, vault, rp):
    with engine.begin() as conn:
        _access(conn, vault, rp["client_id"])
        key = keys.signing_key(conn, vault, utcnow())
        cases = (
            (tokens._ACCESS_BY_JTI.statement, {"jti": "j", "hash": "h"}, "ix_oidc_tokens_jti"),
            (tokens._BY_JTI_AND_KEY.statement, {"jti": "j", "hash": "h", "kid": key.kid, "now": utcnow()},
             "ix_oidc_tokens_jti"),
            (tokens._REFRESH_BY_HASH.statement, {"hash": "h"}, "uq_oidc_tokens_refresh_hash"),
            (sa.select(oidc_tokens.c.token_id).where(oidc_tokens.c.family_id == "f"), {}, "ix_oidc_tokens_family_id"),
            (sa.select(oidc_tokens.c.token_id).where(oidc_tokens.c.account_id == 1), {}, "ix_oidc_tokens_account_id"),
        )
        for statement, params, index in cases:
            plan = query_plan(conn, statement, params)
            assert index in plan, plan


def test_the_migration_matches_the_tables(engine):
    assert schema_drift(engine, "oidc_tokens", "oidc_codes") == []
    with engine.connect() as conn:
        indexes = {i["name"]: i for i in sa.inspect(conn).get_indexes("oidc_tokens")}
    assert indexes["ix_oidc_tokens_jti"]["unique"] and indexes["uq_oidc_tokens_refresh_hash"]["unique"]
    assert not any(i["column_names"] == ["token_hash"] and i["name"] != "uq_oidc_tokens_refresh_hash"
                   for i in indexes.values())


def test_tokens_issued_before_0028_keep_working_and_the_downgrade_gives_the_hash_index_back(engine, vault, tmp_path):
    """Before 0028 a token's jti was random and every token was found by its hash."""
    config = alembic_config(engine)
    command.downgrade(config, "0027")
    people = load_people(engine, tmp_path)
    rp = add_client(engine)
    now = utcnow()
    with engine.begin() as conn:
        key = keys.signing_key(conn, vault, now)
        old_jti = tokens.new_id()  # how jtis were made before
        claims = {"iss": ISSUER, "sub": "s", "aud": ISSUER, "client_id": rp["client_id"], "scope": "openid",
                  "iat": int(now.timestamp()), "exp": int((now + tokens.ACCESS_TTL).timestamp()), "jti": old_jti}
        access = tokens._es256_compact(key, claims)
        for kind, value, jti in (("access", access, old_jti), ("refresh", "old-refresh", tokens.new_id())):
            conn.execute(oidc_tokens.insert().values(
                kind=kind, token_hash=tokens.digest(value), jti=jti, client_id=rp["client_id"], scope="openid",
                account_id=people.accounts[BINH], family_id="old-family", issued_at=now,
                expires_at=now + tokens.ACCESS_TTL))
    upgrade(engine)
    with engine.begin() as conn:
        assert tokens.validate_access_token(conn, access, ISSUER).row.jti == old_jti
        assert tokens.find(conn, access).kind == "access"
        assert tokens.find(conn, "old-refresh", "refresh").row.family_id == "old-family"
        assert tokens.revoke_family(conn, "old-family", "test") == 2
        assert tokens.validate_access_token(conn, access, ISSUER) is None
    command.downgrade(config, "0027")
    with engine.connect() as conn:
        indexes = {i["name"]: i for i in sa.inspect(conn).get_indexes("oidc_tokens")}
        uniques = sa.inspect(conn).get_unique_constraints("oidc_tokens")
    assert "ix_oidc_tokens_jti" not in indexes and "uq_oidc_tokens_refresh_hash" not in indexes
    assert any(u["column_names"] == ["token_hash"] for u in uniques) or \
        any(i["column_names"] == ["token_hash"] and i["unique"] for i in indexes.values())
    upgrade(engine)
