"""``dinhdanh match`` for a telco feeding the ladder, ``dinhdanh batches run --once`` and
``dinhdanh ladder advance|show``, end to end in subprocesses on a SQLite register."""

from __future__ import annotations

import datetime as dt
import io
import os

import sqlalchemy as sa

from dinhdanh.exchange import batches, partners
from dinhdanh.exchange.tables import match_batches
from dinhdanh.store.engine import make_engine
from tests.e2e.test_cli import Cli, assert_refused
from tests.integration.test_match import CASES, write_input
from tests.oidc_support import add_partner
from tests.support import FAMILY, write_people

PHONES = [("090100" + c[0], *c[1:]) for c in CASES]
# the former PID of the integration fixture is not in this register: that row is not found here either
PROBLEMS = sorted(c[0] for c in PHONES if c[8] != "match" or c[1] == "079095999999")


def test_match_feeds_the_ladder_which_advances(tmp_path):
    cli = Cli(tmp_path)
    db = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    cli.ok("population", "import", str(write_people(tmp_path / "family.csv", FAMILY)), "--db", db)
    engine = make_engine(db)
    telco = add_partner(engine, name="Nhà mạng")["client_id"]
    summary = cli.json("match", str(write_input(tmp_path / "in.csv", PHONES)), "--partner", telco,
                       "--out", str(tmp_path / "out.csv"), "--db", db)
    assert summary["ladder"] == {"detected": len(PROBLEMS), "restarted": 0, "cleared": 0}
    today = dt.date.today()
    shown = cli.json("ladder", "show", "0901000904", "--partner", telco, "--db", db)
    assert shown["state"] == "notified" and shown["history"][0]["state"] == "notified"
    lock_on = dt.date.fromisoformat(shown["next"]["on"])
    assert 14 <= (lock_on - today).days <= 16  # 15 days in Vietnam's calendar
    day = (lock_on - dt.timedelta(days=1)).isoformat()
    assert cli.json("ladder", "advance", "--today", day, "--db", db)["moved"]["one_way_locked"] == 0
    moved = cli.json("ladder", "advance", "--today", lock_on.isoformat(), "--db", db)
    assert moved == {"today": lock_on.isoformat(),
                     "moved": {"one_way_locked": len(PROBLEMS), "two_way_locked": 0, "terminated": 0}}
    assert cli.json("ladder", "show", "0901000904", "--partner", telco, "--db", db)["state"] == "one_way_locked"
    assert_refused(cli("ladder", "show", "0901000901", "--partner", telco, "--db", db), 1, "not on the mismatch ladder")
    assert_refused(cli("ladder", "advance", "--today", "2026-02-30", "--db", db), 2, "--today")
    engine.dispose()


def test_batches_run_once(tmp_path):
    cli = Cli(tmp_path)
    db = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    cli.ok("population", "import", str(write_people(tmp_path / "family.csv", FAMILY)), "--db", db)
    engine = make_engine(db)
    telco = add_partner(engine, name="Nhà mạng")["client_id"]
    os.environ["DINHDANH_HOME"], old = str(tmp_path), os.environ.get("DINHDANH_HOME")
    try:
        with engine.begin() as conn:
            made = batches.submit(conn, partners.load(conn, telco),
                                  io.BytesIO(write_input(tmp_path / "in.csv", PHONES).read_bytes()))
    finally:
        if old is None:
            os.environ.pop("DINHDANH_HOME")
        else:
            os.environ["DINHDANH_HOME"] = old
    ran = cli.json("batches", "run", "--once", "--db", db)
    assert ran == [{"batch_id": made["batch_id"], "status": "done",
                    "ladder": {"detected": len(PROBLEMS), "restarted": 0, "cleared": 0}}]
    assert cli.json("batches", "run", "--once", "--db", db) == []
    with engine.connect() as conn:
        row = conn.execute(sa.select(match_batches)).one()
    assert row.status == "done" and row.ladder_done and (tmp_path / "var" / "batches" / row.batch_id / "result.csv").is_file()
    engine.dispose()
