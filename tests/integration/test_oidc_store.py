"""The OpenID provider's storage and rules, on SQLite and PostgreSQL: relying parties and their
approval, signing keys and their overlap, browser sessions, consents, pushed requests, token
families, housekeeping, and the demo portal's registration."""

from __future__ import annotations

import datetime as dt
import os

import pytest
import sqlalchemy as sa
from authlib.oidc.core.errors import InvalidRequestURIError
from joserfc.jwk import ECKey

from dinhdanh.oidc import clients, consent, housekeeping, keys, rfc9126, sessions, tokens
from dinhdanh.oidc.tables import oidc_clients, oidc_keys, oidc_requests, oidc_sessions, oidc_tokens
from dinhdanh.registry.errors import InvalidInput, NotFound, RuleViolation
from dinhdanh.store.base import utcnow
from dinhdanh.store.vault import Vault
from dinhdanh.web.portal import CLIENT_ID, ensure_demo_client
from tests.oidc_support import BINH, add_client, load_people

NOW = dt.datetime(2025, 6, 1, 8, 0, tzinfo=dt.UTC)


@pytest.fixture
def vault():
    return Vault(os.urandom(32))


def test_registration_rules(engine):
    with engine.begin() as conn:
        def register(**kw):
            args = {"name": "Dịch vụ", "redirect_uris": ["https://rp.example/cb"], "scopes": "openid profile"} | kw
            return clients.register_client(conn, **args)

        for bad, field in [
            ({"name": " "}, "name"),
            ({"redirect_uris": ["http://rp.example/cb"]}, "redirect_uri"),  # http only for loopback
            ({"redirect_uris": ["https://rp.example/cb#frag"]}, "redirect_uri"),
            ({"redirect_uris": []}, "redirect_uri"),
            ({"scopes": "openid everything"}, "scopes"),
            ({"scopes": "profile"}, "scopes"),  # logging people in needs openid
            ({"redirect_uris": ["https://a.example/cb", "https://b.example/cb"]}, "sector"),
            ({"auth_method": "private_key_jwt"}, "jwks"),
            ({"auth_method": "private_key_jwt", "jwks": {"keys": [ECKey.generate_key("P-256").as_dict(private=True)]}},
             "jwks"),
            ({"auth_method": "client_secret_post"}, "auth"),
            ({"grant_types": ["implicit"]}, "grant"),
            ({"grant_types": ["client_credentials"], "scopes": "openid"}, "scopes"),
        ]:
            with pytest.raises(InvalidInput) as caught:
                register(**bad)
            assert caught.value.field == field, bad
        made = register(redirect_uris=["https://a.example/cb", "https://b.example/cb"], sector="a.example")
        assert made["status"] == "pending" and len(made["client_secret"]) >= 40 and made["sector"] == "a.example"
        stored = conn.execute(sa.select(oidc_clients).where(oidc_clients.c.client_id == made["client_id"])).one()
        assert made["client_secret"] not in (stored.secret_hash or "")  # only its hash
        loopback = register(redirect_uris=["http://127.0.0.1:8080/cb"])
        assert loopback["sector"] == "127.0.0.1"


def test_approval_against_an_agreement(engine):
    made = add_client(engine, approve=False)
    with engine.begin() as conn:
        client = clients.load_client(conn, made["client_id"])
        assert not client.approved and not client.check_grant_type("authorization_code")
        with pytest.raises(RuleViolation):
            clients.approve_client(conn, made["client_id"], agreement="A-1", purpose="p", security_level=2, actor="t")
        with pytest.raises(InvalidInput):
            clients.approve_client(conn, made["client_id"], agreement="", purpose="p", security_level=3, actor="t")
        with pytest.raises(NotFound):
            clients.approve_client(conn, "nobody", agreement="A-1", purpose="p", security_level=3, actor="t")
        view = clients.approve_client(conn, made["client_id"], agreement="A-1", purpose="Cấp giấy phép lái xe",
                                      security_level=3, actor="officer:1")
        assert view["status"] == "approved" and view["agreement"] == "A-1" and view["approved_by"] == "officer:1"
        client = clients.load_client(conn, made["client_id"])
        assert client.check_grant_type("authorization_code") and client.check_client_secret(made["client_secret"])
        assert not client.check_client_secret("wrong") and not client.check_grant_type("client_credentials")
        assert client.check_redirect_uri("https://rp.example/cb")
        assert not client.check_redirect_uri("https://rp.example/cb/")
        assert client.get_allowed_scope("openid email profile openid") == "openid profile"
        # what is made of a client's row is kept (SQLite) only while the row is the same: a new
        # secret and a suspension act at the next read
        if engine.dialect.name == "sqlite":
            assert clients.load_client(conn, made["client_id"]) is client
        fresh = clients.reset_secret(conn, made["client_id"])
        client = clients.load_client(conn, made["client_id"])
        assert client.check_client_secret(fresh) and not client.check_client_secret(made["client_secret"])
        suspended = clients.suspend_client(conn, made["client_id"], actor="t")
        assert suspended["status"] == "suspended"
        assert not clients.load_client(conn, made["client_id"]).check_grant_type("authorization_code")


def test_signing_keys_rotate_with_overlap(engine, vault):
    with engine.begin() as conn:
        first = keys.signing_key(conn, vault, NOW)
        assert keys.signing_key(conn, vault, NOW).kid == first.kid  # created once
        second = keys.rotate(conn, vault, now=NOW)
        # published at once (after the key signing now), signing one JWKS cache lifetime (and skew) later
        assert [k["kid"] for k in keys.published_jwks(conn, now=NOW)["keys"]] == [first.kid, second.kid]
        assert keys.signing_key(conn, vault, NOW + keys.JWKS_CACHE_LIFETIME).kid == first.kid
        assert keys.signing_key(conn, vault, NOW + keys.PUBLISH_AHEAD).kid == second.kid
        third = keys.rotate(conn, vault, now=NOW + dt.timedelta(minutes=5))
        at = NOW + dt.timedelta(minutes=5) + keys.PUBLISH_AHEAD
        published = [k["kid"] for k in keys.published_jwks(conn, now=at)["keys"]]
        assert published == [third.kid, second.kid, first.kid]
        later = NOW + keys.PUBLISH_AHEAD + keys.OVERLAP + dt.timedelta(seconds=1)
        assert [k["kid"] for k in keys.published_jwks(conn, now=later)["keys"]] == [third.kid, second.kid]
        row = conn.execute(sa.select(oidc_keys).where(oidc_keys.c.kid == third.kid)).one()
        assert b"PRIVATE" not in row.sealed and vault.open(row.sealed, "oidc-sig").startswith(b"-----BEGIN")
        for jwk in keys.published_jwks(conn)["keys"]:
            assert set(jwk) == {"kty", "crv", "x", "y", "kid", "use", "alg"}
        # the symmetric secrets are stable and sealed
        assert keys.secret(conn, vault, "pairwise") == keys.secret(conn, vault, "pairwise")
        assert keys.secret(conn, vault, "cookie") != keys.secret(conn, vault, "pairwise")


def test_browser_sessions(engine, vault):
    with engine.begin() as conn:
        anonymous, cookie = sessions.start(conn, vault, now=NOW)
        assert not anonymous.authenticated
        assert sessions.load(conn, vault, cookie, now=NOW).session_id == anonymous.session_id
        raw, mac = cookie.split(".")
        for forged in (raw + ".x", "x." + mac, "", None, "a.b.c", cookie + "x"):
            assert sessions.load(conn, vault, forged, now=NOW) is None
        assert sessions.load(conn, vault, cookie, now=NOW + sessions.ANONYMOUS_TTL) is None  # expired
        stored = conn.execute(sa.select(oidc_sessions.c.id_hash)).scalars().all()
        assert raw not in stored  # only its hash
        assert sessions.check_csrf(anonymous, anonymous.csrf) and not sessions.check_csrf(anonymous, "x")
        assert not sessions.check_csrf(None, anonymous.csrf)
        sessions.end(conn, anonymous.session_id)
        assert sessions.load(conn, vault, cookie, now=NOW) is None


def test_consents_tokens_and_housekeeping(engine, tmp_path, vault):
    people = load_people(engine, tmp_path)
    account = people.accounts[BINH]
    rp = add_client(engine)
    with engine.begin() as conn:
        consent.grant(conn, account, rp["client_id"], "openid profile", {"name", "birthdate"}, now=NOW)
        assert consent.covers(conn, account, rp["client_id"], {"name"}, now=NOW)
        assert not consent.covers(conn, account, rp["client_id"], {"name", "email"}, now=NOW)
        assert not consent.covers(conn, account, rp["client_id"], {"name"}, now=NOW + consent.REMEMBER)
        # tokens of one family, revoked together when the consent is withdrawn
        access, jti, _ = tokens.mint_access_token(conn, vault, issuer="https://op.test", client_id=rp["client_id"],
                                                  subject="s", scope="openid", now=utcnow())
        for kind, value, token_jti in (("access", access, jti), ("refresh", "refresh-value", tokens.new_jti())):
            tokens.store(conn, kind=kind, value=value, jti=token_jti, client_id=rp["client_id"],
                         scope="openid", issued_at=utcnow(), expires_at=utcnow() + dt.timedelta(minutes=5),
                         account_id=account, family_id="fam-1")
        assert tokens.find(conn, access).is_active()
        listed = consent.list_consents(conn, account, now=NOW)
        assert [c["client_id"] for c in listed] == [rp["client_id"]] and listed[0]["claims"] == ["birthdate", "name"]
        consent.revoke(conn, account, rp["client_id"], now=NOW)
        assert not consent.covers(conn, account, rp["client_id"], {"name"}, now=NOW)
        assert not tokens.find(conn, access).is_active() and not tokens.find(conn, "refresh-value").is_active()
        with pytest.raises(NotFound):
            consent.revoke(conn, account, rp["client_id"], now=NOW)
        # a rotated refresh token is recognised as such
        tokens.store(conn, kind="refresh", value="r2", jti="j2", client_id=rp["client_id"], scope="openid",
                     issued_at=utcnow(), expires_at=utcnow() + dt.timedelta(days=1), account_id=account, family_id="f2")
        found = tokens.find(conn, "r2")
        assert tokens.mark_rotated(conn, found.row.token_id, utcnow())
        assert not tokens.mark_rotated(conn, found.row.token_id, utcnow())
        assert tokens.find(conn, "r2").is_revoked()
        # read unrevoked, its family revoked before it is exchanged (another transaction: a reuse
        # elsewhere, a logout): not exchanged, so no new token escapes the family's revocation
        tokens.store(conn, kind="refresh", value="r3", jti="j3", client_id=rp["client_id"], scope="openid",
                     issued_at=utcnow(), expires_at=utcnow() + dt.timedelta(days=1), account_id=account, family_id="f3")
        found = tokens.find(conn, "r3")
        assert found.row.revoked_at is None
        assert tokens.revoke_family(conn, "f3", "logout") == 1
        assert not tokens.mark_rotated(conn, found.row.token_id, utcnow())
        # housekeeping removes what expired more than a day ago
        conn.execute(oidc_tokens.update().values(expires_at=utcnow() - dt.timedelta(days=2)))
    done = housekeeping.purge_expired(engine)
    assert done["tokens"] == 4
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(oidc_tokens)).scalar_one() == 0


def test_pushed_request_uris_are_single_use(engine):
    rp = add_client(engine)
    other = add_client(engine, name="Khác")
    with engine.begin() as conn:
        conn.execute(oidc_requests.insert().values(handle_hash=tokens.digest("h1"), kind="pushed",
                                                   client_id=rp["client_id"], params={"scope": "openid"},
                                                   created_at=NOW, expires_at=NOW + rfc9126.LIFETIME))
        uri = rfc9126.PREFIX + "h1"
        for bad_uri, client_id in ((uri, other["client_id"]), ("urn:other:h1", rp["client_id"]),
                                   (rfc9126.PREFIX + "nope", rp["client_id"]), (None, rp["client_id"])):
            with pytest.raises(InvalidRequestURIError):
                rfc9126.consume(conn, bad_uri, client_id, NOW)
        with pytest.raises(InvalidRequestURIError, match="expired"):
            rfc9126.consume(conn, uri, rp["client_id"], NOW + rfc9126.LIFETIME)
        assert rfc9126.consume(conn, uri, rp["client_id"], NOW + dt.timedelta(seconds=89)) == {"scope": "openid"}
        with pytest.raises(InvalidRequestURIError, match="used"):
            rfc9126.consume(conn, uri, rp["client_id"], NOW + dt.timedelta(seconds=89))


def test_demo_portal_client_is_ensured_once(engine):
    with engine.begin() as conn:
        first = ensure_demo_client(conn, "http://127.0.0.1:8000/")
        again = ensure_demo_client(conn, "http://127.0.0.1:8000")
        moved = ensure_demo_client(conn, "https://demo.dinhdanh.example")
        client = clients.load_client(conn, CLIENT_ID)
    assert first == again and first["client_secret"] == moved["client_secret"]
    assert client.approved and client.check_client_secret(first["client_secret"])
    assert set(client.redirect_uris) == {"http://127.0.0.1:8000/portal/callback",
                                         "https://demo.dinhdanh.example/portal/callback"}
    assert client.sector == "dichvucong.demo"  # one pairwise sector whatever host the demo runs on


@pytest.mark.parametrize("ensure", ["portal", "console"])
def test_built_in_clients_set_up_by_many_first_requests_at_once_agree(engine, ensure):
    """Eight workers' first requests at once each ensure the built-in client in their own unit: none
    fails (no duplicate registration), and all get the one secret the stored client accepts."""
    import threading

    from dinhdanh.store.unit_of_work import UnitOfWork
    from dinhdanh.web import officer_console, portal

    module = portal if ensure == "portal" else officer_console
    make = portal.ensure_demo_client if ensure == "portal" else officer_console.ensure_console_client
    uow, start = UnitOfWork(engine, lock_timeout=20), threading.Barrier(8)
    got, failures = [], []

    def first_request():
        start.wait(10)
        try:
            with uow.begin() as conn:
                got.append(make(conn, "http://127.0.0.1:8000"))
        except Exception as exc:  # noqa: BLE001 - the failure is what is counted
            failures.append(repr(exc))

    threads = [threading.Thread(target=first_request) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert failures == [] and len(got) == 8
    assert len({g["client_secret"] for g in got}) == 1
    with engine.connect() as conn:
        client = clients.load_client(conn, module.CLIENT_ID)
    assert client.approved and client.check_client_secret(got[0]["client_secret"])


def test_a_held_signing_key_is_the_key_that_signs_at_each_moment(engine):
    """``keys.SigningKeys`` answers what ``keys.signing_key`` reads, at every request time around two
    rotations (one written before the key was read, one after), and reads again once its lifetime
    has passed by its clock, without the database being read in between."""
    vault = Vault(bytes(32))
    clock = [1000.0]
    held = keys.SigningKeys(clock=lambda: clock[0])
    reads = []

    def read(_conn, _cursor, statement, *_):
        reads.append(statement)

    sa.event.listen(engine, "before_cursor_execute", read)
    try:
        with engine.begin() as conn:
            first = keys.signing_key(conn, vault, NOW)
            second = keys.rotate(conn, vault, now=NOW - keys.PUBLISH_AHEAD + dt.timedelta(seconds=2))  # signs at NOW+2s
            assert held.get(conn, vault, NOW).kid == first.kid
            reads.clear()
            assert held.get(conn, vault, NOW + dt.timedelta(seconds=1)).kid == first.kid
            assert reads == []  # held
            # the successor was written before the read: never used past its start, whatever the clock
            assert held.get(conn, vault, NOW + dt.timedelta(seconds=2)).kid == second.kid
            third = keys.rotate(conn, vault, now=NOW + dt.timedelta(seconds=3))  # written after: signs 95 s later
            moments = [NOW + dt.timedelta(seconds=s) for s in (3, 4, 60, 97, 98, 99, 200)]
            for moment in moments:
                clock[0] += 1.0
                assert held.get(conn, vault, moment).kid == keys.signing_key(conn, vault, moment).kid, moment
            assert keys.signing_key(conn, vault, moments[-1]).kid == third.kid
            reads.clear()
            assert held.get(conn, vault, moments[-1]).kid == third.kid and reads == []
            clock[0] += keys.SERVED_JWKS_LIFETIME.total_seconds()  # its lifetime: read again
            assert held.get(conn, vault, moments[-1]).kid == third.kid and reads != []
    finally:
        sa.event.remove(engine, "before_cursor_execute", read)


def test_held_signing_keys_are_held_per_database(engine, tmp_path):
    """An app whose engine is replaced (tests do it) never signs with the former database's key."""
    from dinhdanh.store.engine import make_engine, upgrade

    other = make_engine(f"sqlite:///{tmp_path / 'other.sqlite'}")
    upgrade(other)
    vault, held = Vault(bytes(32)), keys.SigningKeys()
    try:
        with engine.begin() as conn:
            first = held.get(conn, vault, NOW)
        with other.begin() as conn:
            second = held.get(conn, vault, NOW)
            assert second.kid == keys.signing_key(conn, vault, NOW).kid != first.kid
        with engine.begin() as conn:
            assert held.get(conn, vault, NOW).kid == first.kid
    finally:
        other.dispose()
