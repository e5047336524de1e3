"""The SQLite bulk mode of the import (population.bulk and its writer process): the same register as
the normal path, all or nothing on a repeated PID, and a SIGKILL midway (of either process or both)
rolled back and loaded again by a rerun."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from dinhdanh.population import bulk, importer, synthetic
from dinhdanh.population.importer import import_population
from dinhdanh.population.tables import import_jobs, import_links
from dinhdanh.registry.errors import Conflict, InvalidInput, RuleViolation
from dinhdanh.registry.search import SearchQuery, search
from dinhdanh.registry.tables import events, households, persons
from dinhdanh.store.engine import make_engine, upgrade
from tests.support import proc_stat

PEOPLE = 20_000
STAMPS = {"created_at", "updated_at"}  # the time of each load: the only thing allowed to differ


@pytest.fixture(scope="module")
def people(tmp_path_factory) -> Path:
    """20,000 synthetic people in reverse order (children before their parents, so relatives are
    linked after the fact), with two bad rows (rejected by both paths)."""
    table = synthetic.generate(PEOPLE, 11)
    table = table.take(pa.array(range(PEOPLE - 1, -1, -1)))
    sex = table.column("sex").to_pylist()
    sex[3] = "unknown"
    names = table.column("full_name").to_pylist()
    names[17_001] = "Nguyễn 3"
    table = table.set_column(table.schema.get_field_index("sex"), "sex", pa.array(sex))
    table = table.set_column(table.schema.get_field_index("full_name"), "full_name", pa.array(names))
    path = tmp_path_factory.mktemp("bulk") / "people.parquet"
    pq.write_table(table, path)
    return path


def fresh(tmp_path: Path, name: str) -> sa.Engine:
    engine = make_engine(f"sqlite:///{tmp_path / (name + '.sqlite')}")
    upgrade(engine)
    return engine


def dump(engine: sa.Engine, table: sa.Table) -> list[tuple]:
    cols = [c for c in table.c if c.name not in STAMPS]
    with engine.connect() as conn:
        return conn.execute(sa.select(*cols).order_by(*table.primary_key.columns)).all()


PERSON_REFS = ("father_id", "mother_id", "spouse_id", "representative_id")


def register(engine: sa.Engine) -> dict[str, list[tuple]]:
    """``persons`` and ``households`` as a reader sees them, whatever ids the load chose: each person by
    PID, each household by number, references written as the PID or number they lead to."""
    people, homes = dump(engine, persons), dump(engine, households)
    pid_of = {p.person_id: p.pid for p in people}
    number_of = {h.household_id: h.number for h in homes}
    people = sorted(
        tuple(pid_of.get(v) if k in PERSON_REFS else number_of.get(v) if k == "household_id" else v
              for k, v in row._mapping.items() if k != "person_id")
        for row in people)
    homes = sorted(tuple(pid_of.get(v) if k == "head_id" else v for k, v in row._mapping.items() if k != "household_id")
                   for row in homes)
    return {"persons": people, "households": homes}


def indexes(engine: sa.Engine) -> list[tuple]:
    with engine.connect() as conn:
        return sorted(conn.exec_driver_sql(
            "SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'index'").all(), key=lambda r: r[0])


def count(engine: sa.Engine, table: sa.Table) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()


def test_bulk_and_normal_loads_give_the_same_register(people, tmp_path, monkeypatch):
    monkeypatch.setattr(importer, "BATCH_ROWS", 3_000)  # several batches, households across them
    normal, fast = fresh(tmp_path, "normal"), fresh(tmp_path, "bulk")
    before = indexes(fast)
    slow_report = import_population(normal, people, tmp_path / "normal.rejects.csv", bulk=False)
    fast_report = import_population(fast, people, tmp_path / "bulk.rejects.csv", bulk=True)
    assert (slow_report.mode, fast_report.mode) == ("normal", "bulk")
    assert (fast_report.loaded, fast_report.rejected) == (PEOPLE - 2, 2)
    phases = fast_report.phases  # where the writer's time went, measured by the writer
    assert set(phases) == {"waiting", "writing", "end", "foreign_keys", "indexes"} and slow_report.phases is None
    assert phases["writing"] > 0 and 0 < phases["indexes"] + phases["foreign_keys"] <= phases["end"]
    for name in ("rows", "loaded", "rejected", "skipped", "unresolved_links"):
        assert getattr(fast_report, name) == getattr(slow_report, name), name
    assert (tmp_path / "normal.rejects.csv").read_text() == (tmp_path / "bulk.rejects.csv").read_text()
    # the same people, households and links; the ids may differ, as each path numbers a batch's people
    # in PID order and the bulk path's first batches are smaller
    expected, got = register(normal), register(fast)
    assert got["persons"] == expected["persons"] and got["households"] == expected["households"]
    assert [h.household_id for h in dump(fast, households)] == list(range(1, len(got["households"]) + 1))
    assert [p.person_id for p in dump(fast, persons)] == list(range(1, PEOPLE - 1))
    with fast.connect() as conn:
        linked = conn.exec_driver_sql("SELECT count(*) FROM persons WHERE father_id IS NOT NULL").scalar_one()
        assert linked > 1_000  # relatives named before they were loaded, linked at the end
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_key_check").all() == []
        assert conn.exec_driver_sql("PRAGMA integrity_check").scalar_one() == "ok"
        job = conn.execute(sa.select(import_jobs)).one()
        assert (job.status, job.rows_done, job.loaded) == ("done", PEOPLE, PEOPLE - 2)
        assert conn.execute(sa.select(sa.func.count()).select_from(import_links)).scalar_one() == 0
        assert conn.execute(sa.select(events.c.kind)).scalars().all() == ["import"]
    assert indexes(fast) == before  # every index rebuilt, as the migrations made it

    sample = dump(normal, persons)[::997][:6]
    queries = [SearchQuery(name="nguyen van"), SearchQuery(name="tran thi", birth_year=1990),
               SearchQuery(name="le", province="79", page=2)]
    queries += [SearchQuery(name=p.full_name.split()[0], birth_year=p.birth_year, province=p.province_code)
                for p in sample]
    queries += [SearchQuery(pid=p.pid) for p in sample] + [SearchQuery(commune=sample[0].commune_code)]
    pid_in = {name: {p.person_id: p.pid for p in dump(engine, persons)} for name, engine in
              (("normal", normal), ("bulk", fast))}
    for q in queries:
        with normal.connect() as a, fast.connect() as b:
            expected, got = search(a, q), search(b, q)
        assert got.items == expected.items, q
        assert [pid_in["bulk"][i] for i in got.person_ids] == [pid_in["normal"][i] for i in expected.person_ids], q
    with fast.connect() as conn:
        assert sum(len(search(conn, q).items) for q in queries) > 20  # the queries do find people
    # the same file again adds nothing
    assert import_population(fast, people, tmp_path / "bulk.rejects.csv").status == "already_done"


def test_bulk_is_chosen_for_a_big_file_into_an_empty_register_only(people, tmp_path, monkeypatch):
    monkeypatch.setattr(bulk, "AUTO_ROWS", 5_000)
    engine = fresh(tmp_path, "auto")
    assert import_population(engine, people, tmp_path / "r.csv").mode == "bulk"
    other = tmp_path / "more.parquet"
    pq.write_table(synthetic.generate(6_000, 12), other)
    report = import_population(engine, other, tmp_path / "r2.csv")  # not empty now: the normal path
    assert report.mode == "normal" and report.loaded + report.skipped == 6_000
    with pytest.raises(Conflict) as err:  # asked for, on a register that holds people
        import_population(engine, _copy(people, tmp_path), tmp_path / "r4.csv", bulk=True)
    assert err.value.field == "bulk"


def _copy(path: Path, tmp_path: Path) -> Path:
    """The same people in another file (another SHA-256: another job)."""
    table = pq.read_table(path)
    out = tmp_path / "again.parquet"
    pq.write_table(table.slice(0, PEOPLE - 1), out)
    return out


@pytest.mark.parametrize("first, again, pid", [
    (200, 3_500, None),  # in another batch than the first occurrence
    (200, 260, None),  # in the same batch
    (20, 3_900, "12345"),  # not a PID at all (both rows would be rejected): still the same value twice
])
def test_a_repeated_pid_fails_the_whole_load_and_changes_nothing(tmp_path, monkeypatch, first, again, pid):
    monkeypatch.setattr(importer, "BATCH_ROWS", 1_000)
    table = synthetic.generate(4_000, 13)
    pids = table.column("pid").to_pylist()
    pids[first] = pid or pids[first]
    pids[again] = pids[first]
    table = table.set_column(table.schema.get_field_index("pid"), "pid", pa.array(pids))
    path = tmp_path / "twice.parquet"
    pq.write_table(table, path)
    engine = fresh(tmp_path, "dup")
    before = indexes(engine)
    with pytest.raises(Conflict) as err:
        import_population(engine, path, tmp_path / "r.csv", bulk=True)
    assert err.value.field == "pid" and f"Rows {first + 1} and {again + 1}" in str(err.value)
    assert count(engine, persons) == count(engine, households) == 0
    assert indexes(engine) == before
    with engine.connect() as conn:
        assert conn.execute(sa.select(import_jobs.c.status)).scalar_one() == "running"
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"
    bulk.refuse_incomplete(engine)  # not marked: it failed cleanly
    report = import_population(engine, path, tmp_path / "r.csv", bulk=False)  # row by row: the repeat left out
    assert (report.loaded, report.rejected + report.skipped) == ((3_998, 2) if pid else (3_999, 1))


KILLED = textwrap.dedent("""
    import sys
    from dinhdanh.population import importer
    from dinhdanh.store.engine import make_engine
    importer.BATCH_ROWS = 2_000
    def progress(done, total):
        print(done, flush=True)
    importer.import_population(make_engine(sys.argv[1]), sys.argv[2], sys.argv[3], progress=progress, bulk=True)
    print("finished", flush=True)
""")


def _writer_of(pid: int) -> int:
    """The bulk load's writer process, a child of the importing process ``pid``."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        for child in children:
            if "bulk_writer" in Path(f"/proc/{child}/cmdline").read_text():
                return int(child)
        time.sleep(0.01)
    raise AssertionError("no writer process")


def _gone(pid: int) -> bool:
    """Whether every thread of ``pid`` has ended (its files, and SQLite's locks on them, closed). A
    zombie leader is not enough: it shows ``Z`` while the process's other threads are still ending,
    holding the files they share."""
    try:
        states = [proc_stat(task / "stat")[0] for task in Path(f"/proc/{pid}/task").iterdir()]
    except (FileNotFoundError, ProcessLookupError):  # reaped (a thread that ends between the two reads too)
        return not Path(f"/proc/{pid}").exists()
    return all(state == "Z" for state in states)  # ended, not yet reaped


@pytest.mark.parametrize("killed", ["both", "importer", "writer"])
def test_a_bulk_load_killed_midway_is_rolled_back_and_loaded_whole_by_a_rerun(people, tmp_path, killed):
    """SIGKILL midway, after 8,000 of 20,000 rows were sent to the writer: the import's process group
    (both processes: the hot journal is played back at the next open), the importing process alone
    (its writer sees the pipe close and rolls back), or the writer alone (the import fails and says
    so). The register is then as before, and the rerun loads it whole."""
    url = f"sqlite:///{tmp_path / 'killed.sqlite'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    proc = subprocess.Popen([sys.executable, "-c", KILLED, url, str(people), str(tmp_path / "r.csv")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 25
    seen = []
    writer = None
    try:
        for line in proc.stdout:
            seen.append(line.strip())
            if line.strip().isdigit() and int(line) >= 8_000:  # batches sent, not committed
                writer = _writer_of(proc.pid)
                if killed == "both":
                    os.killpg(proc.pid, signal.SIGKILL)
                else:
                    os.kill(writer if killed == "writer" else proc.pid, signal.SIGKILL)
                break
            assert time.monotonic() < deadline
        proc.wait(20)
        while writer is not None and not _gone(writer):  # the writer, if alive, rolls back and ends
            assert time.monotonic() < deadline + 20
            time.sleep(0.02)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    assert "finished" not in seen and writer is not None
    if killed == "writer":  # the import saw its writer die and failed: the mark is taken back
        assert proc.returncode == 1 and "writer ended without an answer" in proc.stderr.read()
    else:
        assert proc.returncode == -signal.SIGKILL
    if killed == "both":
        assert (tmp_path / "killed.sqlite-journal").exists()  # the hot journal SQLite plays back

    engine = make_engine(url)
    if killed == "writer":
        bulk.refuse_incomplete(engine)  # not marked: the import took its mark back
    else:
        with pytest.raises(RuleViolation, match="bulk load incomplete"):
            bulk.refuse_incomplete(engine)  # serve refuses it
    assert count(engine, persons) == count(engine, households) == 0  # rolled back whole
    assert not (tmp_path / "killed.sqlite-journal").exists()
    # the rerun (a marked register loads in bulk again by itself; this file is small enough for the
    # normal path otherwise)
    report = import_population(engine, people, tmp_path / "r.csv", bulk=True if killed == "writer" else None)
    assert (report.mode, report.status, report.loaded, report.rejected) == ("bulk", "done", PEOPLE - 2, 2)
    bulk.refuse_incomplete(engine)
    assert count(engine, persons) == PEOPLE - 2
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA integrity_check").scalar_one() == "ok"
        assert conn.exec_driver_sql("PRAGMA foreign_key_check").all() == []
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"
    reference = fresh(tmp_path, "reference")
    import_population(reference, people, tmp_path / "ref.csv", bulk=False)
    assert register(engine) == register(reference)


def test_a_register_open_elsewhere_is_not_bulk_loaded(people, tmp_path, monkeypatch):
    monkeypatch.setattr(bulk, "AUTO_ROWS", 5_000)
    engine = fresh(tmp_path, "open")
    other = sqlite3.connect(tmp_path / "open.sqlite")  # a server, say: the file is not ours alone
    try:
        other.execute("SELECT count(*) FROM persons").fetchall()
        with pytest.raises(Conflict, match="alone") as err:
            import_population(engine, people, tmp_path / "r.csv", bulk=True)
        assert err.value.field == "bulk"
        bulk.refuse_incomplete(engine)  # the failed attempt left no mark
        report = import_population(engine, people, tmp_path / "r.csv")  # chosen, not asked: the normal path
        assert (report.mode, report.loaded) == ("normal", PEOPLE - 2)
    finally:
        other.close()


def test_the_import_command_takes_bulk_and_no_bulk(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from dinhdanh.cli import app

    small = tmp_path / "small.parquet"
    pq.write_table(synthetic.generate(300, 5), small)
    db = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    result = CliRunner().invoke(app, ["population", "import", str(small), "--db", db, "--bulk"])
    assert result.exit_code == 0, result.output
    assert '"mode": "bulk"' in result.stdout and '"loaded": 300' in result.stdout
    again = tmp_path / "again.parquet"
    pq.write_table(synthetic.generate(200, 6), again)
    result = CliRunner().invoke(app, ["population", "import", str(again), "--db", db, "--bulk"])
    assert result.exit_code != 0 and "empty register" in result.output  # it holds people now
    result = CliRunner().invoke(app, ["population", "import", str(again), "--db", db, "--no-bulk"])
    assert result.exit_code == 0 and '"mode": "normal"' in result.stdout


def test_bulk_is_for_sqlite_postgresql_loads_with_copy(engine, tmp_path):
    small = tmp_path / "small.parquet"
    pq.write_table(synthetic.generate(100, 8), small)
    if engine.dialect.name == "postgresql":
        with pytest.raises(InvalidInput) as err:
            import_population(engine, small, tmp_path / "r.csv", bulk=True)
        assert err.value.field == "bulk"
        assert import_population(engine, small, tmp_path / "r.csv").mode == "normal"  # never chosen there
    else:
        assert import_population(engine, small, tmp_path / "r.csv", bulk=True).mode == "bulk"
    assert count(engine, persons) == 100
