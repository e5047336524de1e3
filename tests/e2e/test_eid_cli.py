"""``dinhdanh eid ...`` and ``dinhdanh notify deliver`` end to end, in subprocesses, on an SQLite file."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from dinhdanh.notify.service import send_sms
from dinhdanh.registry.tables import persons
from dinhdanh.store.engine import make_engine
from tests.chips import AN, BINH, HOA
from tests.support import FAMILY, write_people


def run(home, *args):
    env = {k: v for k, v in os.environ.items() if k != "DINHDANH_DATABASE_URL"}
    env.update(DINHDANH_HOME=str(home), PYTHONIOENCODING="utf-8")
    return subprocess.run([sys.executable, "-m", "dinhdanh", *args], capture_output=True, text=True,
                          encoding="utf-8", env=env, cwd=home, timeout=180)


@pytest.fixture
def db(tmp_path):
    url = f"sqlite:///{tmp_path / 'register.sqlite'}"
    p = run(tmp_path, "population", "import", str(write_people(tmp_path / "family.csv", FAMILY)), "--db", url)
    assert p.returncode == 0, p.stderr
    return tmp_path, url


def test_enroll_show_lock_unlock_and_refusals(db):
    home, url = db
    p = run(home, "eid", "enroll", BINH, "--level", "1", "--passcode", "135790", "--db", url)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert {k: out[k] for k in ("kind", "pid", "level", "state")} == {"kind": "citizen", "pid": BINH, "level": 1,
                                                                       "state": "active"}
    assert isinstance(out["account_id"], int)
    refused = run(home, "eid", "enroll", AN, "--level", "2", "--passcode", "135790", "--db", url)
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1 and "card" in refused.stderr
    for bad in (("--level", "3", "--passcode", "135790"), ("--level", "1", "--passcode", "12ab56")):
        p = run(home, "eid", "enroll", HOA, *bad, "--db", url)
        assert p.returncode == 2 and p.stderr.startswith("error:"), p.stderr
    assert run(home, "eid", "enroll", "12345", "--level", "1", "--passcode", "135790", "--db", url).returncode == 2
    p = run(home, "eid", "lock", BINH, "--reason", "Vi phạm", "--db", url)
    assert p.returncode == 0 and json.loads(p.stdout)["state"] == "locked"
    p = run(home, "eid", "unlock", BINH, "--reason", "Đã xử lý", "--db", url)
    assert p.returncode == 0 and json.loads(p.stdout)["state"] == "active"
    shown = json.loads(run(home, "eid", "show", BINH, "--db", url).stdout)
    assert [h["kind"] for h in shown["history"]] == ["unlocked", "locked", "created"]
    assert json.loads(run(home, "eid", "sweep", "--db", url).stdout) == {"locked": {}, "lifted": {}}


def test_seed_and_deliver_to_the_file_sink(db):
    home, url = db
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(persons.update().where(persons.c.pid == AN).values(phone="0912345001"))
    p = run(home, "eid", "seed", "--db", url)
    assert p.returncode == 0 and json.loads(p.stdout)["mobile_subscriptions"] == 1
    with engine.begin() as conn:
        send_sms(conn, "0912345001", "VNeID: ma kich hoat 123456", person_id=None)
    p = run(home, "notify", "deliver", "--sink", str(home / "phone"), "--db", url)
    assert p.returncode == 0 and json.loads(p.stdout) == {"sent": 1, "failed": 0, "skipped": 0}
    assert "123456" not in p.stderr
    files = list((home / "phone" / "sms" / "0912345001").glob("*.txt"))
    assert len(files) == 1 and "123456" in files[0].read_text(encoding="utf-8")
    assert run(home, "notify", "deliver", "--db", url).returncode == 2
    engine.dispose()
