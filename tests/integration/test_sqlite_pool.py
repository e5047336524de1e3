"""The SQLite pool hands out the connection returned last (``store.engine``): in WAL mode a
connection drops its page cache when another connection wrote since its last transaction, so the
connection that wrote last is the one whose cache is still warm."""

from __future__ import annotations

from dinhdanh.store.engine import make_engine
from dinhdanh.store.unit_of_work import UnitOfWork


def test_the_connection_returned_last_is_the_next_one_handed_out(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'r.sqlite'}")
    try:
        first, second = engine.connect(), engine.connect()  # two connections in the pool
        ids = [id(first.connection.dbapi_connection), id(second.connection.dbapi_connection)]
        assert ids[0] != ids[1]
        first.close()
        second.close()  # returned last
        with engine.connect() as again:
            assert id(again.connection.dbapi_connection) == ids[1]
        uow = UnitOfWork(engine)
        for _ in range(3):  # unit after unit: the same connection, the one that wrote last
            with uow.begin() as conn:
                conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS t (x)")
                conn.exec_driver_sql("INSERT INTO t VALUES (1)")
                assert id(conn.connection.dbapi_connection) == ids[1]
    finally:
        engine.dispose()
