"""Bulk import on SQLite and PostgreSQL: validation, rejects, idempotence, resume, links."""

from __future__ import annotations

import csv

import pytest
import sqlalchemy as sa

from dinhdanh.population import importer
from dinhdanh.population.importer import import_population
from dinhdanh.population.tables import import_jobs
from dinhdanh.registry.errors import InvalidInput
from dinhdanh.registry.records import read_record
from dinhdanh.registry.tables import households, persons
from tests.support import FAMILY, FAMILY_COLUMNS, write_people


def count(engine, table=persons) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()


def test_family_links_households_and_relatives(family):
    with family.connect() as conn:
        child = read_record(conn, "001212000003")
        mother = read_record(conn, "001187000002")
        n_households = conn.execute(sa.select(sa.func.count()).select_from(households)).scalar_one()
    assert child["relatives"]["father"]["pid"] == "001085000001"
    assert child["relatives"]["mother"]["full_name"] == "Trần Thị Bình"
    assert child["household"]["head"]["pid"] == "001085000001"
    assert child["household"]["relation_to_head"] == "child"
    assert mother["relatives"]["spouse"]["pid"] == "001085000001"
    assert [c["pid"] for c in mother["relatives"]["children"]] == ["001212000003", "001215000004"]
    assert child["permanent_residence"]["commune_name"] == "Phường Hoàn Kiếm"
    assert n_households == 4


def test_bad_rows_go_to_rejects_naming_row_field_reason(engine, tmp_path):
    good = list(FAMILY[4])
    rows = [
        good,
        ["12345", "Lê Văn X", "1990-01-01", "male", "01", "00070", "", "", "", "", "", ""],
        ["001090000011", "Lê 3", "1990-01-01", "male", "01", "00070", "", "", "", "", "", ""],
        ["001090000012", "Lê Văn Y", "1990-13-01", "male", "01", "00070", "", "", "", "", "", ""],
        ["001090000013", "Lê Văn Z", "1990-01-01", "man", "01", "00070", "", "", "", "", "", ""],
        ["001090000014", "Lê Văn Q", "1990-01-01", "male", "79", "00070", "", "", "", "", "", ""],
        ["001090000015", "Lê Văn R", "2990-01-01", "male", "01", "00070", "", "", "", "", "", ""],
        ["001090000016", "", "1990-01-01", "male", "01", "00070", "", "", "", "", "", ""],
        ["001090000017", "Lê Văn S", "1990-01-01", "male", "01", "00070", "", "boss", "", "", "", ""],
        ["001090000018", "Lê Văn T", "1990-01-01", "male", "01", "00070", "", "", "", "", "", "engaged"],
        ["001090000019", "Lê Văn U", "1990-01-01", "male", "01", "00070", "0100\x0000001", "head", "", "", "", ""],
    ]
    path = write_people(tmp_path / "mixed.csv", rows)
    report = import_population(engine, path)
    assert (report.loaded, report.rejected) == (1, 10)
    with open(report.rejects_path, encoding="utf-8") as f:
        rejects = list(csv.DictReader(f))
    assert [(r["row"], r["field"]) for r in rejects] == [
        ("2", "pid"), ("3", "full_name"), ("4", "date_of_birth"), ("5", "sex"), ("6", "commune_code"),
        ("7", "date_of_birth"), ("8", "full_name"), ("9", "relation_to_head"), ("10", "marital_status"),
        ("11", "household_number"),
    ]
    assert rejects[-1]["reason"] == "contains a NUL character"
    assert all(r["reason"] for r in rejects)
    assert count(engine) == 1


def test_same_file_twice_adds_nothing(family, tmp_path):
    before = count(family)
    again = import_population(family, tmp_path / "family.csv")
    assert again.status == "already_done" and count(family) == before
    # the same people in another file are recognised by PID and skipped
    copy = write_people(tmp_path / "copy.csv", FAMILY[:3] + [("001090000020", "Vũ Thị Lan", "1990-02-02", "female",
                                                               "01", "00070", "", "", "", "", "", "")])
    report = import_population(family, copy)
    assert (report.loaded, report.skipped) == (1, 3)
    assert count(family) == before + 1


def test_killed_import_resumes_where_it_stopped(engine, tmp_path, monkeypatch):
    rows = [(f"001090{i:06d}", f"Đỗ Văn Số {chr(0x41 + i % 26)}", "1990-01-01", "male", "01", "00070",
             f"01{i // 3:08d}", "head" if i % 3 == 0 else "child", "", "", "", "") for i in range(100)]
    rows = [(p, n.replace("Số ", ""), *rest) for p, n, *rest in rows]
    path = write_people(tmp_path / "many.csv", rows)
    monkeypatch.setattr(importer, "BATCH_ROWS", 10)
    real = importer._load_batch
    calls = {"n": 0}

    def dying(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt("killed")
        return real(*args, **kwargs)

    monkeypatch.setattr(importer, "_load_batch", dying)
    with pytest.raises(KeyboardInterrupt):
        import_population(engine, path)
    assert count(engine) == 30  # three batches committed, the fourth rolled back
    with engine.connect() as conn:
        job = conn.execute(sa.select(import_jobs)).one()
    assert (job.status, job.rows_done) == ("running", 30)
    monkeypatch.setattr(importer, "_load_batch", real)
    report = import_population(engine, path)
    assert report.resumed_from == 30 and report.status == "done"
    assert count(engine) == 100 and report.loaded == 100
    with engine.connect() as conn:
        dupes = conn.execute(sa.select(persons.c.pid).group_by(persons.c.pid).having(sa.func.count() > 1)).all()
    assert dupes == []


def test_relatives_listed_after_the_person_are_linked(engine, tmp_path):
    child_first = [FAMILY[2], FAMILY[3], FAMILY[0], FAMILY[1]]
    import_population(engine, write_people(tmp_path / "order.csv", child_first))
    with engine.connect() as conn:
        child = read_record(conn, "001212000003")
    assert child["relatives"]["father"]["pid"] == "001085000001"
    assert child["relatives"]["mother"]["pid"] == "001187000002"


def test_links_across_batches_resolve_at_the_end(engine, tmp_path, monkeypatch):
    monkeypatch.setattr(importer, "BATCH_ROWS", 1)
    report = import_population(engine, write_people(tmp_path / "split.csv", [FAMILY[2], FAMILY[0], FAMILY[1]]))
    assert report.unresolved_links == 0
    with engine.connect() as conn:
        assert read_record(conn, "001212000003")["relatives"]["mother"]["pid"] == "001187000002"
        assert read_record(conn, "001085000001")["relatives"]["spouse"]["pid"] == "001187000002"


@pytest.mark.parametrize("content, message", [
    (None, "No such file"),
    ("", "empty"),
    ("pid,full_name\n001090000001,Lê Văn A\n", "lacks the required column"),
    ("pid,full_name,date_of_birth,sex,province_code,commune_code\n001090000001,Lê,1990-01-01\n", "malformed"),
])
def test_unreadable_files_change_nothing(engine, tmp_path, content, message):
    path = tmp_path / "bad.csv"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(InvalidInput, match=message):
        import_population(engine, path)
    assert count(engine) == 0 and count(engine, import_jobs) == 0


def test_unsupported_extension(engine, tmp_path):
    path = tmp_path / "people.xlsx"
    path.write_bytes(b"PK")
    with pytest.raises(InvalidInput, match="Unsupported file type"):
        import_population(engine, path)


def test_parquet_with_nfd_names_and_date_column(engine, tmp_path):
    import datetime as dt
    import unicodedata

    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({
        "pid": ["001090000031", "001190000032"],
        "full_name": [unicodedata.normalize("NFD", "Đặng  Văn Ước"), "Tôn Nữ Thị Ninh"],
        "date_of_birth": pa.array([dt.date(1990, 1, 1), dt.date(1990, 2, 1)], pa.date32()),
        "sex": ["male", "female"], "province_code": ["01", "01"], "commune_code": ["00070", "00070"],
    })
    pq.write_table(table, tmp_path / "p.parquet")
    report = import_population(engine, tmp_path / "p.parquet")
    assert report.loaded == 2
    with engine.connect() as conn:
        rows = {r.pid: r for r in conn.execute(sa.select(persons))}
    assert rows["001090000031"].full_name == "Đặng Văn Ước"  # NFC, single spaces
    assert rows["001090000031"].name_key == "dang van uoc"
    with engine.connect() as conn:
        ninh = read_record(conn, "001190000032")
    assert (ninh["surname"], ninh["middle_name"], ninh["given_name"]) == ("Tôn Nữ", "Thị", "Ninh")


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_batches_can_grow_from_a_small_first_one(tmp_path, monkeypatch, kind):
    """The bulk load's writer starts on a small first batch; the batches then double up to BATCH_ROWS,
    every row once, in the file's order."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    monkeypatch.setattr(importer, "BATCH_ROWS", 100)
    pids = [f"001090{i:06d}" for i in range(537)]
    path = tmp_path / f"people.{kind}"
    if kind == "csv":
        write_people(path, [(p, "Lê Văn A", "1990-01-01", "male", "01", "00070", "", "", "", "", "", "") for p in pids])
    else:
        table = pa.table({c: [None] * len(pids) for c in importer.REQUIRED})
        pq.write_table(table.set_column(table.schema.get_field_index("pid"), "pid", pa.array(pids)), path)
    source = importer._Source(path)
    got = list(source.batches(0, first=7))
    assert [t.num_rows for _, t in got] == [7, 14, 28, 56, 100, 100, 100, 100, 32]
    assert [start for start, _ in got] == [0, 7, 21, 49, 105, 205, 305, 405, 505]
    assert [p for _, t in got for p in importer._string(t, "pid").to_pylist()] == pids
    assert [t.num_rows for _, t in source.batches(0)] == [100] * 5 + [37]  # without it, as before
    assert [t.num_rows for _, t in source.batches(500, first=7)] == [7, 14, 16]


def test_a_batchs_people_are_numbered_in_pid_order(engine, tmp_path, monkeypatch):
    """Within each batch, ids ascend with the PIDs (written so, the PIDs go through UNIQUE (pid)'s index
    in one sweep); batches follow one another; relatives and households still point at the right people."""
    import random

    monkeypatch.setattr(importer, "BATCH_ROWS", 25)
    numbers = random.Random(5).sample(range(10**6), 60)
    rows = [(f"001090{n:06d}", "Phạm Thị Hằng", "1990-01-01", "female", "01", "00070", f"01{i // 2:08d}",
             "head" if i % 2 == 0 else "child", "", f"001090{numbers[i - 1]:06d}" if i % 2 else "", "", "")
            for i, n in enumerate(numbers)]
    import_population(engine, write_people(tmp_path / "shuffled.csv", rows))
    with engine.connect() as conn:
        got = conn.execute(sa.select(persons.c.person_id, persons.c.pid, persons.c.mother_id)
                           .order_by(persons.c.person_id)).all()
        heads = dict(conn.execute(sa.select(households.c.number, households.c.head_id)).all())
        pid_of_household = dict(conn.execute(sa.select(households.c.number, persons.c.pid).join(
            persons, persons.c.person_id == households.c.head_id)).all())
    pids = [r.pid for r in got]
    for start in range(0, 60, 25):
        assert pids[start:start + 25] == sorted(f"001090{n:06d}" for n in numbers[start:start + 25])
    pid_of = {r.person_id: r.pid for r in got}
    mothers = {r.pid: pid_of.get(r.mother_id) for r in got}
    for i in range(1, 60, 2):  # each child's mother is the row before it in the file
        assert mothers[rows[i][0]] == rows[i - 1][0]
    assert len(heads) == 30 and all(pid_of_household[f"01{i:08d}"] == rows[2 * i][0] for i in range(30))
