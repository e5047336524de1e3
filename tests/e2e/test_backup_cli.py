"""``dinhdanh backup`` and ``dinhdanh restore`` on the embedded register: a consistent copy taken
while another thread writes, restored whole, private files, and the refusals."""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from dinhdanh.store import outbox


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "DINHDANH_DATABASE_URL"}
    env["DINHDANH_HOME"] = str(tmp_path)
    return subprocess.run([sys.executable, "-m", "dinhdanh", *args], capture_output=True, text=True,
                          encoding="utf-8", env=env, cwd=tmp_path, timeout=120)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _rows(path: Path) -> tuple[int, int]:
    """(count, max seq) of the outbox in the SQLite file ``path``."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT count(*), coalesce(max(seq), 0) FROM outbox").fetchone()
    finally:
        conn.close()


def _refused(p: subprocess.CompletedProcess, code: int, *words: str) -> None:
    assert p.returncode == code, (p.returncode, p.stdout, p.stderr)
    assert p.stdout == "" and "Traceback" not in p.stderr, p.stderr
    for word in words:
        assert word.lower() in p.stderr.lower(), (word, p.stderr)


def test_backup_while_writing_then_restore(sqlite_engine, tmp_path):
    db = Path(sqlite_engine.url.database)
    url = f"sqlite:///{db}"
    key = db.with_name(db.name + ".master-key")  # the vault's key file beside the database
    key.write_bytes(base64.b64encode(os.urandom(32)) + b"\n")
    os.chmod(key, 0o600)

    stop, written, errors = threading.Event(), [0], []
    some = threading.Event()

    def writer() -> None:  # one event per transaction, as fast as it goes, until told to stop
        try:
            while not stop.is_set():
                with sqlite_engine.begin() as conn:
                    outbox.enqueue(conn, "test.backup", None, {"n": written[0]})
                written[0] += 1
                if written[0] >= 50:
                    some.set()
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
            some.set()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert some.wait(30)
        before = written[0]
        out = tmp_path / "copy.sqlite"
        made = _run(tmp_path, "backup", "--db", url, "--out", str(out))
        during = written[0]
    finally:
        stop.set()
        thread.join(30)
    assert not errors, errors
    assert made.returncode == 0, made.stderr
    report = json.loads(made.stdout)
    assert during > before, "the writer did not write while the backup ran"
    count, last = _rows(out)
    # a consistent instant: every event up to one, none after it, while the writer kept going
    assert before <= count <= written[0] and last == count
    assert report["revision"] and report["bytes"] == out.stat().st_size
    out_key = tmp_path / "copy.sqlite.master-key"
    assert report["master_key"] == str(out_key) and out_key.read_bytes() == key.read_bytes()
    assert _mode(out) == _mode(out_key) == 0o600
    assert not (tmp_path / "copy.sqlite-wal").exists()  # one self-contained file
    assert not list(tmp_path.glob(".copy.sqlite.*.partial"))

    # the copy is not overwritten without --force; with it, it is
    again = _run(tmp_path, "backup", "--db", url, "--out", str(out))
    _refused(again, 1, "exists", "--force")
    assert _rows(out) == (count, last)
    forced = _run(tmp_path, "backup", "--db", url, "--out", str(out), "--force")
    assert forced.returncode == 0, forced.stderr
    assert _rows(out)[0] == written[0]  # the writer has stopped: everything

    # restored into a new place: the same rows, private files, the key beside it
    target = tmp_path / "restored" / "register.sqlite"
    restored = _run(tmp_path, "restore", "--from", str(out), "--db", f"sqlite:///{target}")
    assert restored.returncode == 0, restored.stderr
    answer = json.loads(restored.stdout)
    assert answer["at_head"] is True and answer["revision"] == report["revision"]
    assert _rows(target) == _rows(out)
    target_key = target.with_name("register.sqlite.master-key")
    assert target_key.read_bytes() == key.read_bytes()
    assert _mode(target) == _mode(target_key) == 0o600
    conn = sqlite3.connect(target)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    conn.close()

    # an existing database is not replaced without --force; with it, and its stale WAL goes
    _refused(_run(tmp_path, "restore", "--from", str(out), "--db", f"sqlite:///{target}"), 1, "exists", "--force")
    stale = target.with_name("register.sqlite-wal")
    stale.write_bytes(b"not a WAL of this database")
    forced = _run(tmp_path, "restore", "--from", str(out), "--db", f"sqlite:///{target}", "--force")
    assert forced.returncode == 0, forced.stderr
    assert not stale.exists() and _rows(target) == _rows(out)


def test_restore_checks_the_copy_first(sqlite_engine, tmp_path):
    target = tmp_path / "target.sqlite"
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(os.urandom(8192))
    _refused(_run(tmp_path, "restore", "--from", str(junk), "--db", f"sqlite:///{target}"), 2, "junk.sqlite")
    assert not target.exists()

    # a register at a migration this version does not know (made by a newer one)
    newer = tmp_path / "newer.sqlite"
    src = sqlite3.connect(sqlite_engine.url.database)
    dst = sqlite3.connect(newer)
    src.backup(dst)
    src.close()
    dst.execute("UPDATE alembic_version SET version_num = 'ffff_from_the_future'")
    dst.commit()
    dst.close()
    _refused(_run(tmp_path, "restore", "--from", str(newer), "--db", f"sqlite:///{target}"), 1, "unknown")
    assert not target.exists()
    _refused(_run(tmp_path, "restore", "--from", str(tmp_path / "none.sqlite"), "--db", f"sqlite:///{target}"),
             1, "no backup")


@pytest.mark.parametrize("command", ["backup", "restore"])
def test_postgresql_is_pointed_to_the_runbook(tmp_path, command):
    url = "postgresql+psycopg://postgres@127.0.0.1:1/nowhere"
    args = ["--out", str(tmp_path / "x")] if command == "backup" else ["--from", str(tmp_path / "x")]
    _refused(_run(tmp_path, command, "--db", url, *args), 1, "pg_basebackup", "docs/operations.md")
    assert not (tmp_path / "x").exists()
