"""Files at rest are the owner's alone (``store.files``, the CLI's umask): the SQLite database and
its WAL, everything the commands write under the data home, the vault's key file. Checked with a
permissive umask (0o022) in the test process, so it is the platform that makes them private."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from dinhdanh.store import files
from dinhdanh.store.engine import make_engine, upgrade
from dinhdanh.store.outbox import enqueue
from dinhdanh.store.vault import for_database


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_private_dir_and_file(tmp_path, open_umask):
    deep = files.private_dir(tmp_path / "a" / "b" / "c")
    assert [mode(p) for p in (tmp_path / "a", tmp_path / "a" / "b", deep)] == [0o700] * 3
    loose = tmp_path / "loose"
    loose.mkdir(mode=0o755)
    files.private_dir(loose)  # an existing folder of ours is narrowed
    assert mode(loose) == 0o700
    made = files.private_file(tmp_path / "x" / "f.txt")
    assert mode(made) == 0o600 and mode(made.parent) == 0o700 and made.read_bytes() == b""
    made.write_bytes(b"kept")
    made.chmod(0o644)
    assert files.private_file(made).read_bytes() == b"kept" and mode(made) == 0o600


def test_the_database_and_its_wal_are_private(tmp_path, open_umask):
    path = tmp_path / "fresh" / "register.sqlite"
    files.secure_sqlite(path)  # make_engine does it too; here it is called until it always does
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    with engine.begin() as conn:
        enqueue(conn, "person.renamed", None, {"pid": "001085000001"})
    with engine.connect() as conn:  # a reader keeps the WAL and the shared memory there
        assert conn.execute(sa.text("PRAGMA journal_mode")).scalar_one() == "wal"
        siblings = [path.with_name(path.name + s) for s in ("-wal", "-shm")]
        assert all(p.exists() for p in siblings)
        assert {p.name: mode(p) for p in (path, *siblings)} == {p.name: 0o600 for p in (path, *siblings)}
    assert mode(path.parent) == 0o700
    engine.dispose()
    # a database left readable by an older version is narrowed with its WAL when opened again
    for p in (path, *siblings):
        if p.exists():
            p.chmod(0o644)
    files.secure_sqlite(path)
    assert all(mode(p) == 0o600 for p in (path, *siblings) if p.exists())


def test_the_vault_key_file_is_private(tmp_path, monkeypatch, open_umask):
    monkeypatch.delenv("DINHDANH_MASTER_KEY", raising=False)
    db = tmp_path / "keyed" / "register.sqlite"
    vault = for_database(f"sqlite:///{db}")
    key_file = db.with_name(db.name + ".master-key")
    assert mode(key_file) == 0o600 and mode(key_file.parent) == 0o700
    key_file.chmod(0o644)
    again = for_database(f"sqlite:///{db}")
    assert mode(key_file) == 0o600
    assert again.open(vault.seal(b"x", "t"), "t") == b"x"


def test_the_commands_leave_everything_under_the_data_home_private(tmp_path, open_umask):
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if k != "DINHDANH_DATABASE_URL"}
    env.update(DINHDANH_HOME=str(home), PYTHONIOENCODING="utf-8")

    def run(*args: str) -> None:
        p = subprocess.run([sys.executable, "-m", "dinhdanh", *args], capture_output=True, text=True, env=env,
                           cwd=tmp_path, timeout=300)
        assert p.returncode == 0, (args, p.stdout, p.stderr)

    run("db", "upgrade")  # the default database: a SQLite file under the data home
    run("population", "generate", "--count", "100", "--seed", "1", "--out", str(home / "gen" / "people.parquet"))
    found = {p.relative_to(home).as_posix(): p for p in home.rglob("*")}
    assert "dinhdanh.sqlite" in found and "gen/people.parquet" in found, sorted(found)
    loose = {name: oct(mode(p)) for name, p in found.items()
             if mode(p) != (0o700 if p.is_dir() else 0o600)}
    assert loose == {}
    assert mode(home) == 0o700
