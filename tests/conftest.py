"""Shared fixtures: a migrated database per test, on SQLite always and on PostgreSQL when
``DINHDANH_TEST_POSTGRES_URL`` is set (``.ci/run`` sets it; elsewhere those tests are skipped)."""

from __future__ import annotations

import base64
import os
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from dinhdanh.store.engine import make_engine, upgrade
from tests.support import FAMILY, write_people

POSTGRES_URL = os.environ.get("DINHDANH_TEST_POSTGRES_URL")
# The vault's master key for server databases (SQLite files would get a key file of their own);
# one random key per test session, inherited by the CLI subprocesses the tests start.
os.environ.setdefault("DINHDANH_MASTER_KEY", base64.b64encode(os.urandom(32)).decode())
NO_POSTGRES = "DINHDANH_TEST_POSTGRES_URL is not set: PostgreSQL tests skipped (.ci/run sets it)"


def _sqlite(tmp_path: Path) -> sa.Engine:
    engine = make_engine(f"sqlite:///{tmp_path / 'register.sqlite'}")
    upgrade(engine)
    return engine


def _postgres():
    """A fresh schema in the test database, dropped afterwards."""
    schema = "t_" + uuid.uuid4().hex[:12]
    admin = make_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    engine = make_engine(POSTGRES_URL, connect_args={"options": f"-csearch_path={schema}"})
    upgrade(engine)
    return engine, admin, schema


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def engine(request, tmp_path):
    """A migrated, empty register on each back-end."""
    if request.param == "sqlite":
        eng = _sqlite(tmp_path)
        yield eng
        eng.dispose()
        return
    if not POSTGRES_URL:
        pytest.skip(NO_POSTGRES)
    eng, admin, schema = _postgres()
    yield eng
    eng.dispose()
    with admin.begin() as conn:
        conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
    admin.dispose()


@pytest.fixture
def sqlite_engine(tmp_path):
    eng = _sqlite(tmp_path)
    yield eng
    eng.dispose()


@pytest.fixture
def family(engine, tmp_path):
    """The engine, loaded with FAMILY."""
    from dinhdanh.population.importer import import_population

    report = import_population(engine, write_people(tmp_path / "family.csv", FAMILY))
    assert report.loaded == len(FAMILY), report
    return engine
