"""PostgreSQL's pool pings a connection before use only when it has rested in the pool
(``store.engine.REST_BEFORE_PING``): a connection used a moment ago goes straight to its unit (no
round trip more a unit), one that rested and whose server session is gone is replaced before the
unit sees it."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from dinhdanh.store import engine as engine_module
from dinhdanh.store.engine import make_engine
from dinhdanh.store.unit_of_work import DatabaseUnavailable, UnitOfWork

from tests.conftest import NO_POSTGRES, POSTGRES_URL

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg():
    if not POSTGRES_URL:
        pytest.skip(NO_POSTGRES)
    eng = make_engine(POSTGRES_URL, pool_size=1, max_overflow=0)
    pings: list[int] = []
    ping = eng.dialect.do_ping

    def counted(dbapi_conn):
        pings.append(1)
        return ping(dbapi_conn)

    eng.dialect.do_ping = counted
    yield eng, pings
    eng.dispose()


def _backend(uow: UnitOfWork) -> int:
    with uow.read() as conn:
        return conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()


def _terminate(pid: int) -> None:
    admin = make_engine(POSTGRES_URL, pool_size=1)
    with admin.begin() as conn:
        assert conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar_one()
    admin.dispose()


def test_a_connection_used_a_moment_ago_is_not_pinged(pg):
    eng, pings = pg
    uow = UnitOfWork(eng)
    first = _backend(uow)
    for _ in range(20):
        assert _backend(uow) == first  # the one pooled connection, again and again
    assert pings == []


def test_a_rested_connection_whose_session_is_gone_is_replaced_before_the_unit(pg, monkeypatch):
    eng, pings = pg
    uow = UnitOfWork(eng)
    first = _backend(uow)
    _terminate(first)
    monkeypatch.setattr(engine_module, "REST_BEFORE_PING", 0.0)  # as if it had rested a second
    assert _backend(uow) != first  # pinged, found dead, replaced: the unit never saw it
    assert len(pings) == 1


def test_a_connection_whose_session_went_a_moment_ago_fails_its_unit_then_the_pool_recovers(pg):
    eng, pings = pg
    uow = UnitOfWork(eng)
    first = _backend(uow)
    _terminate(first)
    with pytest.raises(DatabaseUnavailable):  # answered 503, like every request while the server is away
        _backend(uow)
    assert _backend(uow) != first
    assert pings == []
