"""The bulk load's writer process (population.bulk_writer) and its channel, driven directly: rows
travel in memory files, anything it refuses leaves the register as it was, in WAL."""

from __future__ import annotations

import os
import socket

import pyarrow as pa
import pytest
import sqlalchemy as sa

from dinhdanh.population import bulk, bulk_writer
from dinhdanh.population.tables import import_jobs
from dinhdanh.registry.errors import RuleViolation
from dinhdanh.registry.tables import households
from dinhdanh.store.base import utcnow
from dinhdanh.store.engine import make_engine, upgrade


def test_the_channel_carries_headers_and_rows_and_says_when_the_other_side_is_gone():
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    a, b = bulk_writer.Channel(ours), bulk_writer.Channel(theirs)
    rows = pa.table({"pid": ["001099012345", None], "full_name": ["Nguyễn Thị Ánh", "Đặng Văn Đức"]})
    a.send({"op": "persons"}, rows)
    a.send({"op": "finish", "job": {"loaded": 2}})
    header, got = b.receive()
    assert header == {"op": "persons"} and got.equals(rows)
    assert _memory_files()  # read where they lie
    assert b.receive() == ({"op": "finish", "job": {"loaded": 2}}, None)
    del got
    a.close()
    with pytest.raises(EOFError):
        b.receive()
    b.close()
    assert not _memory_files()  # the rows' memory is freed with the table read from it


def _memory_files() -> list[str]:
    """The rows' memory files this process has open or mapped."""
    found = [line for line in open("/proc/self/maps") if "dinhdanh-bulk-rows" in line]
    for fd in os.listdir("/proc/self/fd"):
        try:
            if "dinhdanh-bulk-rows" in os.readlink(f"/proc/self/fd/{fd}"):
                found.append(fd)
        except FileNotFoundError:  # the listing's own descriptor, closed since
            pass
    return found


def test_columns_left_out_are_only_the_empty_ones_null_by_default():
    rows = pa.table({"a": pa.nulls(3, pa.string()), "b": ["x", None, None], "c": pa.nulls(3, pa.int64())})
    assert bulk_writer._without_empty(rows, {"a", "b"}).column_names == ["b", "c"]  # c has a default
    assert bulk_writer._without_empty(rows.select(["a"]), {"a"}).column_names == ["a"]  # never no column


def _start(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'w.sqlite'}")
    upgrade(engine)
    with engine.begin() as conn:
        job_id = conn.execute(import_jobs.insert().values(
            source_sha256="0" * 64, source_name="t", status="bulk", rejects_path="r", started_at=utcnow(),
        ).returning(import_jobs.c.job_id)).scalar_one()
    engine.dispose()
    writer = bulk._Writer(str(tmp_path / "w.sqlite"), job_id, False)
    assert writer.answer() == {"ok": "ready"}
    return engine, writer


def _homes(numbers: list[str]) -> pa.Table:
    n = len(numbers)
    return pa.table({"household_id": list(range(1, n + 1)), "number": numbers, "head_id": pa.nulls(n, pa.int64()),
                     "province_code": ["01"] * n, "commune_code": ["00004"] * n, "address": ["Số 1"] * n,
                     "created_at": ["2026-12-07 00:00:00.000000"] * n})


@pytest.mark.parametrize("request_", ["duplicate", "unknown"])
def test_what_the_writer_refuses_changes_nothing(tmp_path, request_):
    engine, writer = _start(tmp_path)
    try:
        writer.send({"op": "households"}, _homes(["HK0001", "HK0002"]))
        with pytest.raises(RuleViolation) as err:
            if request_ == "duplicate":  # UNIQUE (households.number)
                writer.send({"op": "households"}, _homes(["HK0003", "HK0001"]).set_column(
                    0, "household_id", pa.array([3, 4])))
            else:
                writer.send({"op": "drop table"}, _homes(["HK0009"]))
            writer.finish({"rows_done": 0, "loaded": 0, "rejected": 0, "skipped": 0})
        assert err.value.field == "file"
        assert ("UNIQUE" in str(err.value)) if request_ == "duplicate" else ("unknown request" in str(err.value))
    finally:
        writer.close()
    assert writer.process.returncode == 0
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(households)).scalar_one() == 0
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"
        assert conn.execute(sa.select(import_jobs.c.status)).scalar_one() == "bulk"  # load() takes it back


def test_the_writer_commits_only_when_told_the_file_is_done(tmp_path):
    engine, writer = _start(tmp_path)
    writer.send({"op": "households"}, _homes(["HK0001"]))
    writer.close()  # the reading side goes away before "finish": the writer rolls back
    assert writer.process.returncode == 0
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(households)).scalar_one() == 0
    engine.dispose()  # an idle connection of ours would keep the file in WAL: the writer would step aside

    writer = bulk._Writer(str(tmp_path / "w.sqlite"), 1, False)
    assert writer.answer() == {"ok": "ready"}
    for start in range(0, 10):  # more than AHEAD on their way: each send waits for its turn
        writer.send({"op": "households"}, _homes([f"HK{start}"]).set_column(0, "household_id", pa.array([start + 1])))
    writer.finish({"rows_done": 10, "loaded": 0, "rejected": 0, "skipped": 0})
    writer.close()
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(households)).scalar_one() == 10
        job = conn.execute(sa.select(import_jobs)).one()
        assert (job.status, job.rows_done) == ("done", 10) and job.finished_at is not None
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"


def _people(ids: list[int], **columns) -> pa.Table:
    n = len(ids)
    return pa.table({"person_id": ids, "pid": [f"0010990{i:05d}" for i in ids], "full_name": ["Lý Thị Hoa"] * n,
                     "name_key": ["ly thi hoa"] * n, "date_of_birth": ["1990-01-01"] * n, "birth_year": [1990] * n,
                     "sex": ["female"] * n, "created_at": ["2026-12-07 00:00:00.000000"] * n,
                     "updated_at": ["2026-12-07 00:00:00.000000"] * n,
                     **{name: pa.array(values, pa.int64()) for name, values in columns.items()}})


@pytest.mark.parametrize("case", ["no such household", "no such mother", "a gap in the ids"])
def test_a_load_whose_foreign_keys_do_not_hold_is_refused(tmp_path, case):
    engine, writer = _start(tmp_path)
    try:
        writer.send({"op": "households"}, _homes(["HK0001", "HK0002"]))
        if case == "no such household":
            people = _people([1, 2, 3], household_id=[1, 2, 3])
        elif case == "no such mother":
            people = _people([1, 2, 3], household_id=[1, 1, 2], mother_id=[None, 1, 4])
        else:  # ids 1, 2, 4: a mother 3 is in range but not there
            people = _people([1, 2, 4], mother_id=[None, 3, 1])
        writer.send({"op": "persons"}, people)
        with pytest.raises(RuleViolation) as err:
            writer.finish({"rows_done": 3, "loaded": 3, "rejected": 0, "skipped": 0})
        assert "referring to rows that do not exist" in str(err.value) and err.value.field == "file"
    finally:
        writer.close()
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(households)).scalar_one() == 0


def test_dense_ids_show_the_foreign_keys_hold_without_a_lookup_each(tmp_path):
    import sqlite3

    engine = make_engine(f"sqlite:///{tmp_path / 'k.sqlite'}")
    upgrade(engine)
    engine.dispose()
    db = sqlite3.connect(tmp_path / "k.sqlite", isolation_level=None)
    cur = db.cursor()
    assert bulk_writer._dense_keys_hold(cur)  # nothing loaded: nothing refers to anything
    db.execute("BEGIN")
    db.executemany("INSERT INTO households (household_id, number, province_code, commune_code, created_at) "
                   "VALUES (?, ?, '01', '00004', '2026-12-07')", [(1, "HK1"), (2, "HK2")])
    people = [(i, f"0010990{i:05d}", mother, home) for i, mother, home in
              [(1, None, 1), (2, 1, 1), (3, 1, None), (4, 2, 2)]]
    db.executemany("INSERT INTO persons (person_id, pid, full_name, name_key, date_of_birth, birth_year, sex, "
                   "mother_id, household_id, created_at, updated_at) VALUES (?, ?, 'A', 'a', '1990-01-01', 1990, "
                   "'male', ?, ?, '2026-12-07', '2026-12-07')", people)
    assert bulk_writer._dense_keys_hold(cur)
    db.execute("UPDATE persons SET mother_id = 5 WHERE person_id = 4")  # out of range
    assert not bulk_writer._dense_keys_hold(cur)
    db.execute("UPDATE persons SET mother_id = 2 WHERE person_id = 4")
    db.execute("UPDATE persons SET household_id = 3 WHERE person_id = 4")  # no household 3
    assert not bulk_writer._dense_keys_hold(cur)
    db.execute("UPDATE persons SET household_id = 2 WHERE person_id = 4")
    db.execute("DELETE FROM persons WHERE person_id = 3")  # a gap: not shown, SQLite's check decides
    assert not bulk_writer._dense_keys_hold(cur)
    db.execute("ROLLBACK")
    db.close()
