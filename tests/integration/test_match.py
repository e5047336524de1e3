"""Batch matching against a register on each back-end: known answers, order, formats, resume."""

from __future__ import annotations

import csv
import json
import unicodedata
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from dinhdanh.audit.tables import access_log
from dinhdanh.exchange import matching
from dinhdanh.exchange.tables import match_jobs
from dinhdanh.registry.errors import Forbidden, InvalidInput
from dinhdanh.registry.tables import events, former_pids, persons
from dinhdanh.store.base import utcnow
from dinhdanh.exchange import partners
from tests.oidc_support import add_client, add_partner
from tests.support import FAMILY, log_is_valid

AN, BINH, CHAU, DUNG, DUC, HOA, GIANG = (row[0] for row in FAMILY)
OLD_GIANG = "079095999999"

# msisdn, pid, full_name, date_of_birth, sex -> full_name, date_of_birth, sex results, outcome, reason
CASES = [
    ("0901", AN, "Nguyễn Văn An", "1985-03-04", "male", "match", "match", "match", "match", None),
    ("0902", BINH, unicodedata.normalize("NFD", "Trần Thị Bình"), "1987-05-06", "female",
     "match", "match", "match", "match", None),
    ("0903", AN, "NGUYỄN  văn an", "1985-03-04", "Nam", "match", "match", "match", "match", None),
    ("0904", CHAU, "Nguyen Minh Chau", "2012-01-02", "male", "match_folded", "match", "match", "mismatch",
     "full_name matches only without diacritics"),
    ("0905", DUNG, "Nguyễn Thị Dung", "2015-07-09", "female", "match", "mismatch", "match", "mismatch",
     "date_of_birth differs"),
    ("0906", "001099123456", "Ai Đó", "1999-01-01", "male", None, None, None, "not_found",
     "no person holds or held this pid"),
    ("0907", "12345", "Lê Văn Đức", "1990-09-10", "male", None, None, None, "invalid", "pid is not 12 digits"),
    ("0908", DUC, "Lê Văn Đức", "1990-13-45", "male", None, None, None, "invalid",
     "date_of_birth is not a date (YYYY-MM-DD)"),
    ("0909", OLD_GIANG, "Hoàng Văn Giang", "1995-01-01", "male", "match", "match", "match", "match",
     "pid is a former number of this person"),
    ("0910", HOA, "Phạm Thị Hoa", "1993-11-12", "male", "match", "match", "mismatch", "mismatch", "sex differs"),
    ("0911", DUC, "", "1990-09-10", "", "missing", "match", "missing", "mismatch",
     "full_name is missing; sex is missing"),
    ("0912", DUC, "Lê Văn Dức", "", "male", "match_folded", "missing", "match", "mismatch",
     "full_name matches only without diacritics; date_of_birth is missing"),
    ("0913", "", "Lê Văn Đức", "1990-09-10", "male", None, None, None, "invalid", "pid is missing"),
    ("0914", "0010850000x1", "Nguyễn Văn An", "04/03/1985", "male", None, None, None, "invalid",
     "pid is not 12 digits; date_of_birth is not a date (YYYY-MM-DD)"),
    ("0915", DUC, "Trần Văn Đức", "1990-09-10", "male", "mismatch", "match", "match", "mismatch",
     "full_name differs"),
]
RESULT_COLUMNS = ("full_name_result", "date_of_birth_result", "sex_result", "outcome", "reason")


@pytest.fixture
def register(family, tmp_path):
    """FAMILY, Giang with a former PID, and an approved partner; returns (engine, partner id)."""
    with family.begin() as conn:
        giang = conn.execute(sa.select(persons.c.person_id).where(persons.c.pid == GIANG)).scalar_one()
        conn.execute(former_pids.insert().values(pid=OLD_GIANG, person_id=giang, retired_at=utcnow(),
                                                 retired_reason="test"))
    partner = add_partner(family)["client_id"]
    return family, partner


def write_input(path: Path, rows=CASES, columns=("msisdn", "pid", "full_name", "date_of_birth", "sex")):
    idx = [("msisdn", "pid", "full_name", "date_of_birth", "sex").index(c) for c in columns]
    data = [[r[i] for i in idx] for r in rows]
    if path.suffix == ".parquet":
        pq.write_table(pa.table({c: [d[k] for d in data] for k, c in enumerate(columns)}), path)
    else:
        with path.open("w", encoding="utf-8", newline="") as f:
            w = csv.writer(f)
            w.writerow(columns)
            w.writerows(data)
    return path


def read_output(path: Path) -> list[dict]:
    if path.suffix == ".parquet":
        return pq.read_table(path).to_pylist()
    with path.open(encoding="utf-8", newline="") as f:
        return [{k: (v or None) for k, v in row.items()} for row in csv.DictReader(f)]


@pytest.mark.parametrize("suffix_in,suffix_out", [(".csv", ".csv"), (".parquet", ".parquet"),
                                                  (".csv", ".parquet"), (".parquet", ".csv")])
def test_known_answers_in_input_order(register, tmp_path, suffix_in, suffix_out):
    engine, partner = register
    src = write_input(tmp_path / f"in{suffix_in}")
    out = tmp_path / f"result{suffix_out}"
    summary = matching.match_file(engine, src, out, partner, cache_dir=tmp_path / "cache", chunk_rows=4)
    got = read_output(out)
    assert [r["msisdn"] for r in got] == [c[0] for c in CASES]
    assert [r["pid"] or None for r in got] == [c[1] or None for c in CASES]
    for row, case in zip(got, CASES):
        assert tuple(row[k] for k in RESULT_COLUMNS) == case[5:], case
    want = {o: sum(c[8] == o for c in CASES) for o in matching.OUTCOMES}
    assert summary["counts"] == want and summary["rows"] == len(CASES)
    assert json.loads(out.with_name(out.name + ".summary.json").read_text())["counts"] == want
    assert list(got[0]) == ["pid", "msisdn", *RESULT_COLUMNS]
    assert not list(tmp_path.glob(".result*"))  # parts removed
    with engine.connect() as conn:
        job = conn.execute(sa.select(match_jobs)).one()
    assert (job.status, job.partner, job.purpose, job.rows_done, job.matched, job.invalid) == (
        "done", partner, "subscriber_standardisation", len(CASES), want["match"], want["invalid"])


def test_without_optional_columns(register, tmp_path):
    engine, partner = register
    src = write_input(tmp_path / "in.csv", columns=("pid", "full_name", "date_of_birth"))
    out = tmp_path / "out.csv"
    matching.match_file(engine, src, out, partner, cache_dir=tmp_path / "cache")
    got = read_output(out)
    assert list(got[0]) == ["pid", "full_name_result", "date_of_birth_result", "outcome", "reason"]
    # HOA's wrong sex is not checked any more
    assert got[9]["outcome"] == "match" and got[10]["reason"] == "full_name is missing"


def test_resume_after_a_crash(register, tmp_path, monkeypatch):
    engine, partner = register
    src = write_input(tmp_path / "in.parquet")
    out = tmp_path / "out.parquet"

    def crash(index, done):
        if index == 1:
            raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        matching.match_file(engine, src, out, partner, cache_dir=tmp_path / "cache", chunk_rows=4,
                            after_chunk=crash)
    assert not out.exists() and not out.with_name(out.name + ".tmp").exists()
    with engine.connect() as conn:
        job = conn.execute(sa.select(match_jobs)).one()
    assert (job.status, job.rows_done) == ("failed", 8)
    seen = []
    summary = matching.match_file(engine, src, out, partner, cache_dir=tmp_path / "cache", chunk_rows=99,
                                  after_chunk=lambda i, d: seen.append(i))
    assert summary["resumed_from"] == 8 and summary["job_id"] == job.job_id
    assert seen == [2, 3]  # the job's chunk size (4) is kept; chunks 0 and 1 are not redone
    got = read_output(out)
    assert [tuple(r[k] for k in RESULT_COLUMNS) for r in got] == [c[5:] for c in CASES]
    assert summary["counts"]["match"] == sum(c[8] == "match" for c in CASES)
    # every person checked has one entry in the access log, none twice though chunks ran in two runs
    with engine.connect() as conn:
        logged = conn.execute(sa.select(access_log.c.person_id, access_log.c.outcome, access_log.c.fields)
                              .where(access_log.c.action == "batch_match")
                              .order_by(access_log.c.access_id)).all()
        pid_of = dict(conn.execute(sa.select(persons.c.person_id, persons.c.pid)).all())
    checked = [c for c in CASES if c[8] in ("match", "mismatch")]
    assert len(logged) == len(checked)
    assert sorted((pid_of[r.person_id], r.outcome) for r in logged) == sorted(
        (GIANG if c[1] == OLD_GIANG else c[1], c[8]) for c in checked)
    assert {r.fields for r in logged} == {'["full_name", "date_of_birth", "sex"]'}
    assert log_is_valid(engine)


def test_refuses_partners_that_are_not(register, tmp_path):
    engine, _ = register
    src = write_input(tmp_path / "in.csv")
    pending = add_partner(engine, approve=False, name="Chưa duyệt")["client_id"]
    verify_only = add_partner(engine, name="Chỉ xác thực", operations=("verify",))["client_id"]
    suspended = add_partner(engine, name="Tạm dừng")["client_id"]
    with engine.begin() as conn:
        partners.suspend_partner(conn, suspended, actor="test")
    # a client approved with the partner scope but not registered as a partner
    bare = add_client(engine, name="Không phải đối tác", redirect_uris=(), scopes="dinhdanh.verify",
                      grant_types=["client_credentials"])["client_id"]
    login_rp = add_client(engine)["client_id"]
    for client_id in (pending, verify_only, suspended, bare, login_rp, "no-such-client"):
        with pytest.raises(Forbidden):
            matching.match_file(engine, src, tmp_path / "out.csv", client_id, cache_dir=tmp_path / "cache")
    assert not (tmp_path / "out.csv").exists()


def test_file_level_errors(register, tmp_path):
    engine, partner = register
    out = tmp_path / "out.csv"
    bad = write_input(tmp_path / "nodob.csv", columns=("pid", "full_name"))
    with pytest.raises(InvalidInput, match="date_of_birth"):
        matching.match_file(engine, bad, out, partner, cache_dir=tmp_path / "cache")
    junk = tmp_path / "junk.parquet"
    junk.write_bytes(b"not parquet at all")
    with pytest.raises(InvalidInput, match="not a readable Parquet"):
        matching.match_file(engine, junk, out, partner, cache_dir=tmp_path / "cache")
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("pid,full_name,date_of_birth\n001085000001,An,1985-03-04,extra,cells\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match="cannot be read"):
        matching.match_file(engine, ragged, out, partner, cache_dir=tmp_path / "cache")
    assert not out.exists()


def test_snapshot_is_cached_per_register_state(register, tmp_path):
    engine, _ = register
    p1, f1, cached1 = matching.snapshot_file(engine, tmp_path)
    p2, f2, cached2 = matching.snapshot_file(engine, tmp_path)
    assert (p1, f1, cached1, cached2) == (p2, f2, False, True)
    snap = pq.read_table(p1)
    assert snap.num_rows == len(FAMILY) + 1
    with engine.begin() as conn:  # as the registry records a change: with an event
        conn.execute(persons.update().where(persons.c.pid == AN).values(updated_at=utcnow(), version=2))
        conn.execute(events.insert().values(kind="correction", recorded_at=utcnow(), actor="test"))
    p3, f3, cached3 = matching.snapshot_file(engine, tmp_path)
    assert f3 != f1 and not cached3 and not p1.exists()


def test_a_partners_area_holds_in_batches(register, tmp_path):
    """Outside testers matched Hà Nội's people field by field with a partner limited to province 79 (where
    verification answered ``found: false``). Outside its area a person is answered in a batch exactly
    as an unknown PID, and is not in the access log."""
    engine, partner = register
    with engine.begin() as conn:
        partners.update_policy(conn, partner, area_code="79", actor="test")
    src = write_input(tmp_path / "in.csv")
    out = tmp_path / "out.csv"
    summary = matching.match_file(engine, src, out, partner, cache_dir=tmp_path / "cache")
    got = read_output(out)
    for row, case in zip(got, CASES):
        outside = case[1] in (AN, BINH, CHAU, DUNG)  # Hà Nội (01)
        if outside:
            assert (row["outcome"], row["reason"], row["full_name_result"]) == (
                "not_found", "no person holds or held this pid", None), case
        else:
            assert tuple(row[k] for k in RESULT_COLUMNS) == case[5:], case
    assert summary["counts"]["not_found"] == 1 + sum(c[1] in (AN, BINH, CHAU, DUNG) for c in CASES)
    with engine.connect() as conn:
        checked = set(conn.execute(sa.select(persons.c.pid).join(access_log, access_log.c.person_id
                                                                 == persons.c.person_id)).scalars())
    assert checked and checked.isdisjoint({AN, BINH, CHAU, DUNG})
    # the same snapshot (cached) serves a national partner whole
    with engine.begin() as conn:
        partners.update_policy(conn, partner, area_code=None, actor="test")
    matching.match_file(engine, src, tmp_path / "all.csv", partner, cache_dir=tmp_path / "cache")
    assert [r["outcome"] for r in read_output(tmp_path / "all.csv")] == [c[8] for c in CASES]
