"""``oidc.housekeeping.purge_expired`` on SQLite and PostgreSQL: what has expired goes, in batches
each committed alone, a stopped purge keeps what it deleted and the next run finishes, sessions go
only when no token or code refers to them, and finding those references uses their indexes."""

from __future__ import annotations

import datetime as dt
import secrets
import subprocess
import sys

import pytest
import sqlalchemy as sa

from dinhdanh.oidc import housekeeping, tokens
from dinhdanh.oidc.tables import oidc_assertions, oidc_sessions, oidc_tokens
from dinhdanh.store.base import utcnow
from tests.oidc_support import BINH, add_client, load_people
from tests.support import query_plan

NOW = utcnow()
LONG_AGO = NOW - dt.timedelta(days=40)  # past the purge's day of grace


@pytest.fixture
def people(engine, tmp_path):
    return load_people(engine, tmp_path)


class Counted:
    """What units of work begin on (here the engine), counting them; ``fail_at``: the unit that
    raises before it begins, as a purge killed midway."""

    def __init__(self, engine, fail_at: int | None = None):
        self.engine, self.fail_at, self.units = engine, fail_at, 0

    def begin(self):
        self.units += 1
        if self.units == self.fail_at:
            raise RuntimeError("stopped")
        return self.engine.begin()


def _session(conn, expires_at: dt.datetime) -> int:
    return conn.execute(oidc_sessions.insert().values(
        id_hash=secrets.token_hex(32), sid=secrets.token_urlsafe(32), csrf="c", amr=None, created_at=LONG_AGO,
        expires_at=expires_at).returning(oidc_sessions.c.session_id)).scalar_one()


def _token(conn, client_id: str, account_id: int, expires_at: dt.datetime, session_id: int | None = None) -> str:
    value = secrets.token_urlsafe(32)
    tokens.store(conn, kind="refresh", value=value, jti=tokens.new_jti(), client_id=client_id, scope="openid",
                 issued_at=LONG_AGO, expires_at=expires_at, account_id=account_id, session_id=session_id,
                 family_id=tokens.new_id())
    return value


def _count(engine, table) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()


def test_expired_tokens_go_in_batches_and_the_rest_stays(engine, people):
    rp = add_client(engine)
    with engine.begin() as conn:
        kept = [_token(conn, rp["client_id"], people.accounts[BINH], NOW + dt.timedelta(days=1)) for _ in range(5)]
        for i in range(10):  # interleaved with the kept ones in key order
            _token(conn, rp["client_id"], people.accounts[BINH], LONG_AGO if i % 2 else NOW - dt.timedelta(days=2))
    before = _count(engine, oidc_tokens)
    db = Counted(engine)
    done = housekeeping.purge_expired(db, NOW, batch=3)
    assert done["tokens"] == 10 and _count(engine, oidc_tokens) == before - 10
    assert db.units >= 4 + 5  # four batches of tokens, and at least one unit for each other kind
    with engine.connect() as conn:
        assert all(tokens.find(conn, value, "refresh") is not None for value in kept)
    assert housekeeping.purge_expired(engine, NOW)["tokens"] == 0  # nothing left to do


def test_a_stopped_purge_keeps_what_it_deleted_and_the_next_run_finishes(engine, people):
    rp = add_client(engine)
    with engine.begin() as conn:
        for _ in range(10):
            _token(conn, rp["client_id"], people.accounts[BINH], LONG_AGO)
    before = _count(engine, oidc_tokens)
    with pytest.raises(RuntimeError, match="stopped"):
        # units: codes 1, requests 2, tokens 3, 4, then stopped before the third batch of tokens
        housekeeping.purge_expired(Counted(engine, fail_at=5), NOW, batch=4)
    assert _count(engine, oidc_tokens) == before - 8  # two batches committed
    assert housekeeping.purge_expired(engine, NOW, batch=4)["tokens"] == 2
    assert _count(engine, oidc_tokens) == before - 10


def test_sessions_go_when_nothing_refers_to_them(engine, people):
    rp = add_client(engine)
    with engine.begin() as conn:
        sessions_before = conn.execute(sa.select(sa.func.count()).select_from(oidc_sessions)).scalar_one()
        unused = [_session(conn, LONG_AGO) for _ in range(4)]
        with_live_token = _session(conn, LONG_AGO)
        with_dead_token = _session(conn, LONG_AGO)
        live = _session(conn, NOW + dt.timedelta(hours=1))
        _token(conn, rp["client_id"], people.accounts[BINH], NOW + dt.timedelta(days=1), session_id=with_live_token)
        _token(conn, rp["client_id"], people.accounts[BINH], LONG_AGO, session_id=with_dead_token)
    done = housekeeping.purge_expired(engine, NOW, batch=2)
    with engine.connect() as conn:
        left = set(conn.execute(sa.select(oidc_sessions.c.session_id)).scalars())
    # the expired token went first, so its session could go too; the live token keeps its session
    assert done["sessions"] == 5 and not left & {*unused, with_dead_token}
    assert {with_live_token, live} <= left and len(left) == sessions_before + 2


def test_a_table_of_two_key_columns_is_purged_in_batches(engine, people):
    rp, other = add_client(engine), add_client(engine, name="Khác")
    with engine.begin() as conn:
        for client in (rp, other):
            for i in range(5):
                conn.execute(oidc_assertions.insert().values(client_id=client["client_id"], jti=f"j{i}",
                                                             expires_at=LONG_AGO if i != 2 else NOW))
    assert housekeeping.purge_expired(Counted(engine), NOW, batch=3)["assertions"] == 8
    with engine.connect() as conn:
        assert sorted(conn.execute(sa.select(oidc_assertions.c.jti)).scalars()) == ["j2", "j2"]


def test_finding_a_sessions_references_uses_their_indexes(engine):
    """The purge's condition on sessions, and the foreign keys' own check when a session is deleted,
    look the session up in ``oidc_tokens`` and ``oidc_codes``: by index, not by reading them whole
    (2,000 sessions beside 200,000 tokens took 112 s without the indexes)."""
    from dinhdanh.oidc.tables import oidc_codes

    with engine.begin() as conn:
        for table, index in ((oidc_tokens, "ix_oidc_tokens_session_id"), (oidc_codes, "ix_oidc_codes_session_id")):
            statement = sa.select(oidc_sessions.c.session_id).where(
                oidc_sessions.c.session_id == sa.bindparam("id"), ~sa.exists().where(
                    table.c.session_id == oidc_sessions.c.session_id))
            plan = query_plan(conn, statement, {"id": 1})
            assert index in plan, plan


def test_the_command_purges(engine, people, tmp_path):
    """``dinhdanh oidc purge`` on the same database: the counts, as JSON."""
    import json

    if engine.dialect.name != "sqlite":
        pytest.skip("the CLI's own engine cannot reach the test's schema (see test_officer_credentials)")
    rp = add_client(engine)
    with engine.begin() as conn:
        _token(conn, rp["client_id"], people.accounts[BINH], LONG_AGO)
    url = engine.url.render_as_string(hide_password=False)
    out = subprocess.run([sys.executable, "-m", "dinhdanh", "oidc", "purge", "--db", url], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["tokens"] == 1
