"""Officers' machine tokens, on SQLite and PostgreSQL: they expire (30 days unless told otherwise;
an expired token is refused like an unknown one), ``dinhdanh officer revoke|rotate`` take effect at
once (or after the overlap asked for), ``dinhdanh officer list`` shows no token material, the use
of a token is noted at most once a minute, ``link`` ties an officer to their e-ID account, and
migration 0013 moves the tokens of existing officers into ``officer_tokens`` with an expiry."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import uuid

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from dinhdanh.audit.tables import access_log
from dinhdanh.cli import app as cli_app
from dinhdanh.eid import auth
from dinhdanh.officers import credentials
from dinhdanh.officers.service import add_officer
from dinhdanh.officers.tables import officer_tokens, officers
from dinhdanh.population.importer import import_population
from dinhdanh.registry.errors import InvalidInput, NotFound, RuleViolation
from dinhdanh.store.base import utcnow
from dinhdanh.store.engine import make_engine, upgrade
from dinhdanh.store.vault import for_database
from dinhdanh.web.app import create_app
from tests.support import FAMILY, write_people

POSTGRES_URL = os.environ.get("DINHDANH_TEST_POSTGRES_URL")
AN, BINH = FAMILY[0][0], FAMILY[1][0]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db(request, tmp_path):
    """An empty database as a URL (for the CLI) and an engine on it (for the app and checks)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'officers.sqlite'}"
        engine = make_engine(url)
        yield url, engine
        engine.dispose()
        return
    if not POSTGRES_URL:
        pytest.skip("DINHDANH_TEST_POSTGRES_URL is not set: PostgreSQL tests skipped (.ci/run sets it)")
    schema = "t_" + uuid.uuid4().hex[:12]
    admin = make_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    url = f"{POSTGRES_URL}{'&' if '?' in POSTGRES_URL else '?'}options=-csearch_path%3D{schema}"
    engine = make_engine(url)
    yield url, engine
    engine.dispose()
    with admin.begin() as conn:
        conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
    admin.dispose()


@pytest.fixture
def register(db, tmp_path):
    """The database with FAMILY, an officer of Phường Hoàn Kiếm (00070) and the API."""
    url, engine = db
    upgrade(engine)
    assert import_population(engine, write_people(tmp_path / "family.csv", FAMILY)).loaded == len(FAMILY)
    with engine.begin() as conn:
        officer, token = add_officer(conn, "Cán bộ phường Hoàn Kiếm", "commune", "00070", roles=("registrar",))
    return url, engine, officer, token, TestClient(create_app(engine), raise_server_exceptions=False)


def _get(http: TestClient, token: str, pid: str = AN):
    return http.get(f"/api/v1/citizens/{pid}", headers={"Authorization": f"Bearer {token}"})


def _cli(*args: str):
    return CliRunner(env={"COLUMNS": "200"}).invoke(cli_app, list(args))  # a table as wide as it needs


def _refused_alike(http: TestClient, token: str) -> dict:
    r = _get(http, token)
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer", r.text
    return r.json()


def test_a_token_expires_and_is_then_refused_like_an_unknown_one(register):
    url, engine, officer, token, http = register
    assert _get(http, token).status_code == 200
    now = utcnow()
    with engine.begin() as conn:
        row = conn.execute(sa.select(officer_tokens).where(officer_tokens.c.officer_id == officer.officer_id)).one()
        # the default lifetime: 30 days from issue
        assert dt.timedelta(days=30) - dt.timedelta(minutes=1) < row.expires_at - now <= dt.timedelta(days=30)
        expired = credentials.issue_token(conn, officer.officer_id, days=1, now=now - dt.timedelta(days=1, seconds=1))
        nearly = credentials.issue_token(conn, officer.officer_id, days=1, now=now - dt.timedelta(hours=23))
    assert _get(http, nearly.token).status_code == 200
    unknown = _refused_alike(http, credentials.TOKEN_PREFIX + "x" * 43)
    assert _refused_alike(http, expired.token) == unknown  # no oracle: expired, revoked, unknown alike
    # the clock decides, to the second
    with engine.begin() as conn:
        assert credentials.resolve_token(conn, nearly.token, nearly.expires_at - dt.timedelta(seconds=1)) \
            == officer.officer_id
        assert credentials.resolve_token(conn, nearly.token, nearly.expires_at) is None
        conn.execute(officers.update().where(officers.c.officer_id == officer.officer_id).values(active=False))
    assert _refused_alike(http, token) == unknown  # an inactive officer's live token


def test_lifetimes_are_bounded_and_checked(register):
    _, engine, officer, _, _ = register
    with engine.begin() as conn:
        for days in (0, 366, -1, True, "30"):
            with pytest.raises(InvalidInput) as refused:
                credentials.issue_token(conn, officer.officer_id, days=days)
            assert refused.value.field == "days"
        with pytest.raises(InvalidInput) as refused:
            credentials.rotate(conn, officer.officer_id, overlap=dt.timedelta(hours=2))
        assert refused.value.field == "overlap"
        with pytest.raises(NotFound) as refused:
            credentials.issue_token(conn, 999_999)
        assert refused.value.field == "officer_id"
        year = credentials.issue_token(conn, officer.officer_id, days=365)
        assert year.expires_at - utcnow() > dt.timedelta(days=364)
    assert _cli("officer", "rotate", str(officer.officer_id), "--days", "400", "--db", register[0]).exit_code == 2


def test_cli_rotate_and_revoke_take_effect_at_once(register):
    url, engine, officer, first, http = register
    oid = str(officer.officer_id)
    rotated = _cli("officer", "rotate", oid, "--db", url)
    assert rotated.exit_code == 0, rotated.output
    second = rotated.stdout.strip()
    assert second.startswith("ddo_") and second != first and second not in rotated.stderr
    assert "shown once" in rotated.stderr
    assert _get(http, first).status_code == 401 and _get(http, second).status_code == 200

    # with an overlap the old token works a little longer, never past it
    overlapped = _cli("officer", "rotate", oid, "--overlap-minutes", "5", "--days", "7", "--db", url)
    assert overlapped.exit_code == 0, overlapped.output
    third = overlapped.stdout.strip()
    assert _get(http, second).status_code == 200 and _get(http, third).status_code == 200
    with engine.connect() as conn:
        rows = {r.token_hash: r for r in conn.execute(sa.select(officer_tokens))}
    old, new = rows[hashlib.sha256(second.encode()).hexdigest()], rows[hashlib.sha256(third.encode()).hexdigest()]
    assert old.revoked_at is None and old.expires_at - utcnow() <= dt.timedelta(minutes=5)
    assert dt.timedelta(days=6, hours=23) < new.expires_at - utcnow() <= dt.timedelta(days=7)
    with engine.connect() as conn:
        assert credentials.resolve_token(conn, second, utcnow() + dt.timedelta(minutes=5, seconds=1)) is None

    # one token, then all of them
    revoked = _cli("officer", "revoke", oid, "--token-id", str(old.token_id), "--db", url)
    assert revoked.exit_code == 0 and json.loads(revoked.stdout)["tokens_revoked"] == 1
    assert _get(http, second).status_code == 401 and _get(http, third).status_code == 200
    extra = _cli("officer", "issue-token", oid, "--label", "hệ thống tiếp dân", "--db", url).stdout.strip()
    assert _get(http, extra).status_code == 200 and _get(http, third).status_code == 200
    everything = _cli("officer", "revoke", oid, "--db", url)
    assert everything.exit_code == 0, everything.output
    assert json.loads(everything.stdout) == {"officer_id": officer.officer_id, "token_id": None, "tokens_revoked": 2,
                                             "sign_ins_ended": True}
    assert _get(http, third).status_code == 401 and _get(http, extra).status_code == 401
    # refusals name the field, one line, no traceback
    missing = _cli("officer", "revoke", oid, "--token-id", "999999", "--db", url)
    assert missing.exit_code == 1 and "token_id" in missing.stderr and "Traceback" not in missing.output
    nobody = _cli("officer", "rotate", "999999", "--db", url)
    assert nobody.exit_code == 1 and "officer_id" in nobody.stderr


def test_list_shows_tokens_and_accounts_but_no_token_material(register):
    url, engine, officer, token, _ = register
    with engine.begin() as conn:
        extra = credentials.issue_token(conn, officer.officer_id, days=2, label="máy trạm 1")
        credentials.revoke(conn, officer.officer_id, token_id=extra.token_id)
        secrets_ = [token, extra.token, *conn.execute(sa.select(officer_tokens.c.token_hash)).scalars()]
    listed = _cli("officer", "list", "--json", "--db", url)
    assert listed.exit_code == 0, listed.output
    table = _cli("officer", "list", "--db", url)
    assert table.exit_code == 0, table.output
    for output in (listed.output, table.output):
        assert not any(s in output for s in secrets_)
        assert "ddo_" not in output
    [shown] = json.loads(listed.stdout)
    assert (shown["officer_id"], shown["role"], shown["area_code"], shown["account"]) == (
        officer.officer_id, "commune", "00070", None)
    assert shown["roles"] == ["registrar"]
    assert [(t["state"], t["label"]) for t in shown["tokens"]] == [("live", None), ("revoked", "máy trạm 1")]
    assert shown["tokens"][0]["expires_at"].endswith("+07:00")  # shown in Việt Nam's time
    assert set(shown["tokens"][0]) == {"token_id", "label", "state", "created_at", "expires_at", "revoked_at",
                                       "last_used_at"}
    assert "Cán bộ phường Hoàn Kiếm" in table.output and "revoked" in table.output


def test_use_is_noted_at_most_once_a_minute(register):
    _, engine, officer, token, http = register

    def last_used():
        with engine.connect() as conn:
            return conn.execute(sa.select(officer_tokens.c.last_used_at)).scalar_one()

    assert last_used() is None
    before = utcnow()
    assert _get(http, token).status_code == 200  # a request notes it
    assert before <= last_used() <= utcnow()
    t0 = utcnow() + dt.timedelta(hours=1)
    with engine.begin() as conn:
        credentials.resolve_token(conn, token, t0)
    assert last_used() == t0
    with engine.begin() as conn:
        credentials.resolve_token(conn, token, t0 + dt.timedelta(seconds=59))
    assert last_used() == t0  # not written again within the minute
    with engine.begin() as conn:
        credentials.resolve_token(conn, token, t0 + dt.timedelta(seconds=61))
    assert last_used() == t0 + dt.timedelta(seconds=61)


def test_link_ties_an_officer_to_their_e_id_account(register):
    url, engine, officer, _, _ = register
    vault = for_database(url)
    with engine.begin() as conn:
        account = auth.enroll(conn, vault, BINH, level=1, passcode="135790", actor="test")["account_id"]
        other, _ = add_officer(conn, "Cán bộ khác", "national", None, roles=("registrar",))
    linked = _cli("officer", "link", str(officer.officer_id), "--pid", BINH, "--db", url)
    assert linked.exit_code == 0, linked.output
    assert json.loads(linked.stdout) == {"officer_id": officer.officer_id, "account_id": account, "account_level": 1}
    assert "level 1" in linked.stderr
    with engine.connect() as conn:
        # the look-up is in the access log: the citizen sees it
        entry = conn.execute(sa.select(access_log).order_by(access_log.c.access_id.desc())).first()
        assert (entry.action, entry.actor.startswith("cli")) == ("officer_link", True)
        assert credentials.sign_in_link(conn, account).officer_id == officer.officer_id
    taken = _cli("officer", "link", str(other.officer_id), "--pid", BINH, "--db", url)
    assert taken.exit_code == 1 and "pid" in taken.stderr and "another officer" in taken.stderr
    nobody = _cli("officer", "link", str(other.officer_id), "--pid", AN, "--db", url)  # An has no account
    assert nobody.exit_code == 1 and "(pid)" in nobody.stderr
    with engine.begin() as conn:
        with pytest.raises(RuleViolation) as refused:
            credentials.link_account(conn, other.officer_id, BINH, actor="test")
        assert refused.value.code == "account_linked"
    listed = json.loads(_cli("officer", "list", "--json", "--db", url).stdout)
    assert listed[0]["account"] == {"account_id": account, "level": 1, "state": "active"}
    assert _cli("officer", "unlink", str(officer.officer_id), "--db", url).exit_code == 0
    with engine.connect() as conn:
        assert credentials.sign_in_link(conn, account) is None


def test_migration_moves_existing_tokens_with_an_expiry_and_back(db):
    """0013: an officer's token from before keeps working for 30 days after the upgrade; the
    downgrade gives back the newest live token as the officer's one token."""
    from alembic import command

    from dinhdanh.store.engine import alembic_config

    url, engine = db
    upgrade(engine, "0012")
    token = "ddo_" + "a" * 43
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO officers (name, role, area_code, token_hash, active, created_at)"
                             " VALUES ('Cán bộ cũ', 'national', NULL, :hash, :yes, :at)"),
                     {"hash": hashlib.sha256(token.encode()).hexdigest(), "yes": True,
                      "at": dt.datetime(2025, 1, 2, tzinfo=dt.UTC)})
    before = utcnow()
    upgrade(engine)
    with engine.begin() as conn:
        row = conn.execute(sa.select(officer_tokens)).one()
        assert row.created_at == dt.datetime(2025, 1, 2, tzinfo=dt.UTC)
        assert before + dt.timedelta(days=30) <= row.expires_at <= utcnow() + dt.timedelta(days=30)
        officer_id = credentials.resolve_token(conn, token)
        assert officer_id is not None
        assert credentials.resolve_token(conn, token, row.expires_at) is None
        rotated = credentials.rotate(conn, officer_id)
    command.downgrade(alembic_config(engine), "0012")
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT token_hash FROM officers")).scalar_one() \
            == hashlib.sha256(rotated.token.encode()).hexdigest()
    upgrade(engine)
