"""Shared fixtures: a migrated database per test, on SQLite always and on PostgreSQL when
``DINHDANH_TEST_POSTGRES_URL`` is set (``.ci/run`` sets it; elsewhere those tests are skipped)."""

from __future__ import annotations

import csv
import os
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from dinhdanh.store.engine import make_engine, upgrade

POSTGRES_URL = os.environ.get("DINHDANH_TEST_POSTGRES_URL")
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


# A small register with known people: a family in Hà Nội (Phường Hoàn Kiếm, 00070), a couple in
# Hồ Chí Minh City (Phường Bến Thành, 26743), and people to test rules on.
FAMILY = [
    # pid, full_name, date_of_birth, sex, province, commune, household, relation, father, mother, spouse, marital
    ("001085000001", "Nguyễn Văn An", "1985-03-04", "male", "01", "00070", "0100000001", "head", "", "", "001187000002", "married"),
    ("001187000002", "Trần Thị Bình", "1987-05-06", "female", "01", "00070", "0100000001", "spouse", "", "", "001085000001", "married"),
    ("001212000003", "Nguyễn Minh Châu", "2012-01-02", "male", "01", "00070", "0100000001", "child", "001085000001", "001187000002", "", "single"),
    ("001215000004", "Nguyễn Thị Dung", "2015-07-08", "female", "01", "00070", "0100000001", "child", "001085000001", "001187000002", "", "single"),
    ("079090000005", "Lê Văn Đức", "1990-09-10", "male", "79", "26743", "7900000001", "head", "", "", "", "single"),
    ("079193000006", "Phạm Thị Hoa", "1993-11-12", "female", "79", "26743", "7900000002", "head", "", "", "", "single"),
    ("079095000007", "Hoàng Văn Giang", "1995-01-01", "male", "79", "26743", "7900000003", "head", "", "", "", "single"),
]
FAMILY_COLUMNS = ("pid", "full_name", "date_of_birth", "sex", "province_code", "commune_code", "household_number",
                  "relation_to_head", "father_pid", "mother_pid", "spouse_pid", "marital_status")


def write_people(path: Path, rows, columns=FAMILY_COLUMNS) -> Path:
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(columns)
        w.writerows(rows)
    return path


@pytest.fixture
def family(engine, tmp_path):
    """The engine, loaded with FAMILY."""
    from dinhdanh.population.importer import import_population

    report = import_population(engine, write_people(tmp_path / "family.csv", FAMILY))
    assert report.loaded == len(FAMILY), report
    return engine
