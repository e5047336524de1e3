"""``dinhdanh match`` end to end, in a subprocess, on a SQLite register."""

from __future__ import annotations

import csv
import json

import pytest

from dinhdanh.store.engine import make_engine
from tests.e2e.test_cli import Cli, assert_refused
from tests.integration.test_match import CASES, RESULT_COLUMNS, write_input
from tests.oidc_support import add_client, add_partner
from tests.support import FAMILY, write_people


@pytest.fixture
def setup(tmp_path):
    cli = Cli(tmp_path)
    db = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    cli.ok("population", "import", str(write_people(tmp_path / "family.csv", FAMILY)), "--db", db)
    engine = make_engine(db)
    partner = add_partner(engine, name="Nhà mạng")["client_id"]
    rp = add_client(engine)["client_id"]
    engine.dispose()
    return cli, db, partner, rp


def test_match_writes_results_and_a_summary(setup, tmp_path):
    cli, db, partner, _ = setup
    src = write_input(tmp_path / "subscribers.csv")
    out = tmp_path / "result.csv"
    summary = cli.json("match", str(src), "--partner", partner, "--out", str(out), "--db", db)
    assert summary["rows"] == len(CASES) and summary["rows_per_second"] > 0
    assert set(summary["counts"]) == {"match", "mismatch", "not_found", "invalid"}
    assert json.loads((tmp_path / "result.csv.summary.json").read_text()) == summary
    with out.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["msisdn"] for r in rows] == [c[0] for c in CASES]
    # the former PID of the register fixture is not in this register: that row is not found here
    assert [r["outcome"] for r in rows][:8] == [c[8] for c in CASES][:8]
    assert list(rows[0]) == ["pid", "msisdn", *RESULT_COLUMNS]


def test_match_refuses_bad_input_and_partners(setup, tmp_path):
    cli, db, partner, rp = setup
    out = tmp_path / "result.parquet"
    nodob = write_input(tmp_path / "nodob.csv", columns=("pid", "full_name", "msisdn"))
    assert_refused(cli("match", str(nodob), "--partner", partner, "--out", str(out), "--db", db), 2,
                   "date_of_birth")
    junk = tmp_path / "junk.parquet"
    junk.write_text("hello")
    assert_refused(cli("match", str(junk), "--partner", partner, "--out", str(out), "--db", db), 2, "parquet")
    src = write_input(tmp_path / "ok.csv")
    assert_refused(cli("match", str(src), "--partner", partner, "--out", str(tmp_path / "r.xlsx"), "--db", db),
                   2, "extension")
    assert_refused(cli("match", str(src), "--partner", rp, "--out", str(out), "--db", db), 1, "partner")
    assert_refused(cli("match", str(src), "--partner", "nobody", "--out", str(out), "--db", db), 1, "nobody")
    assert not out.exists() and not list(tmp_path.glob("*.summary.json"))
