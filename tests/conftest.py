"""Shared fixtures: a migrated database per test, on SQLite always and on PostgreSQL when
``DINHDANH_TEST_POSTGRES_URL`` is set (``.ci/run`` sets it; elsewhere those tests are skipped)."""

from __future__ import annotations

import base64
import os
import shutil
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
# Workers (pytest-xdist, ``-n auto`` in pyproject.toml): at most this many. The suite's servers are
# shared (one PostgreSQL with its max_connections, Redis, NATS) and its load tests were sized for a
# 2-core machine; more workers are for who asks for them (``-n 4``).
MAX_WORKERS = 2


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config):
    """``-n auto``: one worker per CPU this process may run on, at most MAX_WORKERS."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(MAX_WORKERS, cpus))


def pytest_addoption(parser, pluginmanager):
    """Without pytest-xdist (``-p no:xdist``, or not installed) the ``--numprocesses``/``--dist`` of
    pyproject's addopts are accepted and ignored, and the suite runs in this one process."""
    if pluginmanager.get_plugin("xdist") is None:
        group = parser.getgroup("xdist", "pytest-xdist is off: these options are ignored")
        group.addoption("--numprocesses", dest="numprocesses", default=None)
        group.addoption("--dist", dest="dist", default="no")


def _sqlite(tmp_path: Path) -> sa.Engine:
    engine = make_engine(f"sqlite:///{tmp_path / 'register.sqlite'}")
    upgrade(engine)
    return engine


# Migrating a fresh database for each test cost about half a second on each back-end, a good part of
# the suite's time. The migrations run once per session into a template instead, which every test
# copies: a file copy on SQLite (checkpointed first, so the copy holds everything), a database made
# ``TEMPLATE`` of it on PostgreSQL. The template is what ``upgrade`` makes, data steps included; tests
# that step migrations up and down or compare them with the tables do so on databases of their own.
_templates: dict[str, object] = {}


def _sqlite_copy(tmp_path: Path, tmp_path_factory) -> sa.Engine:
    template = _templates.get("sqlite")
    if template is None:
        template = tmp_path_factory.mktemp("template") / "register.sqlite"
        made = make_engine(f"sqlite:///{template}")
        upgrade(made)
        with made.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        made.dispose()
        _templates["sqlite"] = template
    target = tmp_path / "register.sqlite"
    shutil.copyfile(template, target)
    return make_engine(f"sqlite:///{target}")


def _postgres_database():
    """A fresh database made from the session's migrated template; returns it and how to drop it."""
    admin = _templates.get("pg_admin")
    if admin is None:
        admin = make_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
        name = "dd_tmpl_" + uuid.uuid4().hex[:12]
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
        made = make_engine(_database_url(name))
        upgrade(made)
        made.dispose()
        _templates.update(pg_admin=admin, pg_template=name)
    name = "t_" + uuid.uuid4().hex[:12]
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name} TEMPLATE {_templates['pg_template']}")

    def drop() -> None:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    return make_engine(_database_url(name)), drop


def _database_url(name: str) -> str:
    return sa.engine.make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)


def pytest_sessionfinish(session, exitstatus):
    admin = _templates.get("pg_admin")
    if admin is not None:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {_templates['pg_template']} WITH (FORCE)")
        admin.dispose()


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
def engine(request, tmp_path, tmp_path_factory):
    """A migrated, empty register on each back-end (a copy of the session's migrated template)."""
    if request.param == "sqlite":
        eng = _sqlite_copy(tmp_path, tmp_path_factory)
        yield eng
        eng.dispose()
        return
    if not POSTGRES_URL:
        pytest.skip(NO_POSTGRES)
    eng, drop = _postgres_database()
    yield eng
    eng.dispose()
    drop()


@pytest.fixture
def sqlite_engine(tmp_path, tmp_path_factory):
    eng = _sqlite_copy(tmp_path, tmp_path_factory)
    yield eng
    eng.dispose()


@pytest.fixture
def family(engine, tmp_path):
    """The engine, loaded with FAMILY."""
    from dinhdanh.population.importer import import_population

    report = import_population(engine, write_people(tmp_path / "family.csv", FAMILY))
    assert report.loaded == len(FAMILY), report
    return engine
