"""Test data shared by the integration and end-to-end tests."""

from __future__ import annotations

import csv
import re
from pathlib import Path

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


def log_is_valid(engine) -> bool:
    """Integrate what waits in the access log and check the whole transparency log (audit verify)."""
    from dinhdanh.audit import checks, sequencer
    from dinhdanh.store.unit_of_work import UnitOfWork
    from dinhdanh.store.vault import for_database

    uow = UnitOfWork(engine)
    sequencer.integrate_all(uow, for_database(engine.url.render_as_string(hide_password=False)))
    report = checks.verify_log(uow)
    return report.valid and report.pending == 0


def schema_drift(engine, *tables: str) -> list:
    """What Alembic's autogenerate finds between the migrated database of ``engine`` and the tables'
    description (``dinhdanh.store.schema.metadata``), for ``tables`` only: [] when the migrations
    make exactly those tables, their columns, types and indexes."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from dinhdanh.store.schema import metadata

    def ours(obj, name, type_, reflected, compare_to):
        table = obj if type_ == "table" else getattr(obj, "table", None)
        return table is not None and table.name in tables

    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"include_object": ours, "compare_type": True})
        return compare_metadata(ctx, metadata)


def query_plan(conn, statement, params: dict) -> str:
    """The plan the database makes for ``statement`` with ``params`` (SQLite's ``EXPLAIN QUERY PLAN``;
    on PostgreSQL the generic plan of a prepared statement, in a transaction the caller began)."""
    compiled = statement.compile(dialect=conn.dialect)
    sql = str(compiled)
    values = compiled.construct_params(params)
    if conn.dialect.name == "sqlite":
        rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, tuple(values[k] for k in compiled.positiontup))
        return "\n".join(str(r[-1]) for r in rows)
    # the plan psycopg's prepared statement gets after its first executions: a generic one, made
    # before the parameters are known (a condition on a parameter cannot choose a partial index)
    names = list(dict.fromkeys(re.findall(r"%\((\w+)\)s", sql)))
    prepared = re.sub(r"%\((\w+)\)s", lambda m: f"${names.index(m.group(1)) + 1}", sql)
    conn.exec_driver_sql("SET LOCAL enable_seqscan = off")  # an empty table: only a usable index beats it
    conn.exec_driver_sql("SET LOCAL plan_cache_mode = force_generic_plan")
    conn.exec_driver_sql("PREPARE planned AS " + prepared.replace("%%", "%"))
    arguments = ", ".join("'" + str(values[name]).replace("'", "''") + "'" for name in names)  # the test's own
    try:
        return "\n".join(r[0] for r in conn.exec_driver_sql(f"EXPLAIN EXECUTE planned({arguments})" if names
                                                              else "EXPLAIN EXECUTE planned"))
    finally:
        conn.exec_driver_sql("DEALLOCATE planned")


def proc_stat(path: Path) -> list[str]:
    """The fields of a ``/proc/.../stat`` file after the command's name, which may hold spaces and
    parentheses: ``[0]`` the state (``Z``: ended, not reaped), ``[1]`` the parent's pid."""
    return path.read_text().rsplit(")", 1)[1].split()
