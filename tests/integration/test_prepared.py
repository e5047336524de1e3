"""Hot statements on the driver's cursor (``store.prepared``): the same values in and out as through
SQLAlchemy's execution (dates with their zone, JSON, booleans, values written into the statement),
in the unit's own transaction, and the driver's errors as SQLAlchemy's, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from dinhdanh.oidc.tables import oidc_clients, oidc_tokens
from dinhdanh.store.prepared import Prepared
from dinhdanh.store.unit_of_work import UnitOfWork

NOW = dt.datetime(2026, 12, 7, 1, 2, 3, 456789, tzinfo=dt.UTC)
CLIENT = dict(client_id="c-1", name="Ngân hàng Thử nghiệm", auth_method="client_secret_basic", secret_hash="h" * 64,
              jwks=None, redirect_uris=["https://rp.example/cb"], post_logout_redirect_uris=[], scopes="openid",
              grant_types=["authorization_code", "refresh_token"], officer=True, status="approved",
              created_at=NOW, created_by="test")
TOKEN = dict(kind="refresh", token_hash="a" * 64, jti="j" * 43, client_id="c-1", scope="openid profile",
             claims={"userinfo": {"name": None}}, amr=["pwd", "otp"], auth_time=NOW, issued_at=NOW,
             expires_at=NOW + dt.timedelta(days=30))

INSERT = Prepared(oidc_tokens.insert().returning(oidc_tokens.c.token_id), keys=list(TOKEN))
BY_HASH = Prepared(sa.select(oidc_tokens, oidc_clients.c.officer, oidc_clients.c.grant_types)
                   .join(oidc_clients, oidc_clients.c.client_id == oidc_tokens.c.client_id)
                   .where(oidc_tokens.c.token_hash == sa.bindparam("hash"), oidc_tokens.c.kind == "refresh"))
ROTATE = Prepared(oidc_tokens.update().where(oidc_tokens.c.token_id == sa.bindparam("id"),
                                             oidc_tokens.c.rotated_at.is_(None))
                  .values(rotated_at=sa.bindparam("at")))


def test_values_go_in_and_come_out_as_through_sqlalchemy(engine):
    uow = UnitOfWork(engine)
    with uow.begin() as conn:
        conn.execute(oidc_clients.insert().values(**CLIENT))
        rows, _ = INSERT.run(conn, TOKEN)
        token_id = rows[0].token_id
    with uow.begin() as conn:
        ours = BY_HASH.first(conn, {"hash": "a" * 64})
        theirs = conn.execute(BY_HASH.statement, {"hash": "a" * 64}).first()
        assert BY_HASH.first(conn, {"hash": "b" * 64}) is None
    assert tuple(ours) == tuple(theirs)
    assert ours._mapping == dict(theirs._mapping)
    assert ours.token_id == token_id and ours.issued_at == NOW and ours.issued_at.tzinfo is not None
    assert ours.claims == {"userinfo": {"name": None}} and ours.amr == ["pwd", "otp"]
    assert ours.officer is True and ours.grant_types == ["authorization_code", "refresh_token"]
    assert ours.rotated_at is None


def test_a_statement_runs_in_the_units_transaction(engine):
    uow = UnitOfWork(engine)
    with uow.begin() as conn:
        conn.execute(oidc_clients.insert().values(**CLIENT))
        token_id = INSERT.run(conn, TOKEN)[0][0].token_id
    with pytest.raises(RuntimeError):
        with uow.begin() as conn:
            assert ROTATE.rowcount(conn, {"id": token_id, "at": NOW}) == 1
            assert ROTATE.rowcount(conn, {"id": token_id, "at": NOW}) == 0  # already rotated, in this unit
            raise RuntimeError("rolled back")
    with uow.begin() as conn:  # the rollback took the rotation with it
        assert BY_HASH.first(conn, {"hash": "a" * 64}).rotated_at is None
        assert ROTATE.rowcount(conn, {"id": token_id, "at": NOW}) == 1
    with uow.begin() as conn:
        assert BY_HASH.first(conn, {"hash": "a" * 64}).rotated_at == NOW


def test_a_driver_error_is_sqlalchemys(engine):
    uow = UnitOfWork(engine)
    with uow.begin() as conn:
        conn.execute(oidc_clients.insert().values(**CLIENT))
        INSERT.run(conn, TOKEN)
    with pytest.raises(sa.exc.IntegrityError):  # the same token hash twice
        with uow.begin() as conn:
            INSERT.run(conn, TOKEN)
    with uow.begin() as conn:  # and the connection is fit for the next unit
        assert BY_HASH.first(conn, {"hash": "a" * 64}) is not None


def test_lists_and_callables_are_refused(engine):
    listed = Prepared(sa.select(oidc_tokens.c.token_id).where(oidc_tokens.c.kind.in_(["access", "refresh"])))
    with engine.connect() as conn, pytest.raises(ValueError):
        listed.first(conn, {})


class _NoNone(sa.TypeDecorator):
    """A type that refuses None (as a column type may)."""

    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            raise ValueError("no None here")
        return value.upper()


def test_nones_are_bound_as_sqlalchemy_binds_them(engine):
    """A NULL column's value is computed once per statement (``_of_none``), and is what SQLAlchemy's
    own execution writes; a type that refuses None still refuses it at every bind."""
    empty = TOKEN | dict(claims=None, amr=None, auth_time=None)
    uow = UnitOfWork(engine)
    with uow.begin() as conn:
        conn.execute(oidc_clients.insert().values(**CLIENT))
        INSERT.run(conn, empty | {"token_hash": "c" * 64, "jti": "c" * 43})
        conn.execute(oidc_tokens.insert().values(**(empty | {"token_hash": "d" * 64, "jti": "d" * 43})))
        stored = conn.execute(sa.select(oidc_tokens.c.claims.is_(None), oidc_tokens.c.amr.is_(None),
                                        oidc_tokens.c.auth_time.is_(None), sa.cast(oidc_tokens.c.claims, sa.Text))
                              .order_by(oidc_tokens.c.token_hash)).all()
    assert stored[0] == stored[1]
    table = sa.Table("no_none", sa.MetaData(), sa.Column("x", _NoNone))
    refusing = Prepared(table.insert(), keys=["x"])
    assert refusing.bound(engine.dialect, {"x": "a"})[1] in (["A"], {"x": "A"})
    for _ in range(2):
        with pytest.raises(ValueError, match="no None"):
            refusing.bound(engine.dialect, {"x": None})
