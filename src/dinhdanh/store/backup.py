"""Backups of the embedded database (SQLite) and their restore.

``backup(url, out)`` copies a live SQLite register with SQLite's online backup API in one step: one
read transaction on the source, so the copy is the database as of one instant, while the server
goes on writing (WAL mode: readers never block the writer). The copy is written to a private
temporary file beside ``out`` (0600), switched to a self-contained rollback-journal file, checked
(``PRAGMA integrity_check``), synced, then put in place: ``os.link`` when ``out`` must not be
overwritten (atomic: a file that appeared meanwhile is not replaced), ``os.replace`` with
``force``. The vault's key file beside the database (``<db>.master-key``, ``store.vault``) is copied
to ``<out>.master-key`` (0600) the same way: without it the sealed values in the copy (private
keys, chip keys, face images, secrets) cannot be opened. A master key given by
``DINHDANH_MASTER_KEY`` is not in any file: the report says so, and it must be kept with the copy.

``restore(backup_file, url)`` checks the copy first (integrity, a migration revision this version
knows), then writes it beside the target, removes the target's stale ``-wal``/``-shm`` (a WAL left
from the old database would be replayed into the new one) and renames it in place. It refuses an
existing target unless ``force``. The server must be stopped while a database is restored.

PostgreSQL is backed up by the server's own tools (``pg_basebackup`` and WAL archiving): the
runbook is ``docs/operations.md``; ``backup`` and ``restore`` refuse a PostgreSQL URL with a
pointer to it.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from dinhdanh.config import database_url
from dinhdanh.registry.errors import Conflict, InvalidInput, NotFound, RuleViolation
from dinhdanh.store.engine import sqlite_path

__all__ = ["backup", "restore", "BackupReport", "RestoreReport", "RUNBOOK"]

RUNBOOK = "docs/operations.md"
KEY_SUFFIX = ".master-key"
_MODE = 0o600


@dataclass(frozen=True)
class BackupReport:
    out: str
    bytes: int
    revision: str | None
    master_key: str  # where the copy's master key is: a file path, "environment" or "none"
    seconds: float

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class RestoreReport:
    database: str
    bytes: int
    revision: str
    at_head: bool  # False: ``dinhdanh serve`` (or ``db upgrade``) migrates it on start
    master_key: str
    seconds: float

    def as_dict(self) -> dict:
        return asdict(self)


def sqlite_file(url: str | None, field: str = "db") -> Path:
    """The file behind a SQLite URL; a PostgreSQL URL is refused with the runbook's name."""
    parsed = make_url(database_url(url))
    if parsed.get_backend_name() != "sqlite":
        raise RuleViolation(f"{parsed.get_backend_name()} databases are backed up with the server's tools "
                            f"(pg_basebackup and WAL archiving): see {RUNBOOK}", code="not_sqlite", field=field)
    path = sqlite_path(parsed)
    if path is None:
        raise InvalidInput("an in-memory SQLite database has nothing to back up or restore", field=field)
    return path


def key_file(database: Path) -> Path:
    return database.with_name(database.name + KEY_SUFFIX)


def _temporary(beside: Path) -> Path:
    """A new empty file, 0600, in ``beside``'s folder (a rename from it is atomic)."""
    tmp = beside.with_name(f".{beside.name}.{secrets.token_hex(6)}.partial")
    os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, _MODE))
    return tmp


def _sync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _put(tmp: Path, target: Path, *, force: bool, field: str) -> None:
    """``tmp`` becomes ``target``: replaced with ``force``, else only if ``target`` does not exist."""
    if force:
        os.replace(tmp, target)
        return
    try:
        os.link(tmp, target)  # fails if target exists, even one made a moment ago
    except FileExistsError:
        raise Conflict(f"{target} exists: pass --force to replace it", code="exists", field=field) from None
    os.unlink(tmp)


def _check(conn: sqlite3.Connection, what: str, field: str) -> str | None:
    """``integrity_check`` passes; the migration revision (None when the file has none)."""
    problems = [row[0] for row in conn.execute("PRAGMA integrity_check").fetchall()]
    if problems != ["ok"]:
        raise RuleViolation(f"{what} is damaged: {'; '.join(problems[:3])}", code="integrity", field=field)
    try:
        rows = conn.execute("SELECT version_num FROM alembic_version").fetchall()
    except sqlite3.DatabaseError:
        return None
    return rows[0][0] if rows else None


def _key_source(database: Path) -> Path | None:
    key = key_file(database)
    return key if key.is_file() else None


def _key_elsewhere() -> str:
    from dinhdanh.store.vault import ENV

    return "environment" if os.environ.get(ENV) else "none"


def _copy_key(source: Path, target: Path, *, force: bool, field: str) -> None:
    tmp = _temporary(target)
    try:
        tmp.write_bytes(source.read_bytes())
        _sync(tmp)
        if target.exists() and target.read_bytes() == source.read_bytes():
            os.chmod(target, _MODE)
            return
        _put(tmp, target, force=force, field=field)
    finally:
        tmp.unlink(missing_ok=True)


def backup(url: str | None, out: Path | str, *, force: bool = False, busy_timeout: float = 30.0) -> BackupReport:
    """Copy the live SQLite database of ``url`` to ``out`` (see the module's docstring)."""
    started = time.monotonic()
    source = sqlite_file(url)
    out = Path(out)
    if not source.is_file():
        raise NotFound(f"no database at {source}", code="no_database", field="db")
    if out.resolve() == source.resolve():
        raise InvalidInput("the backup cannot be the database itself", field="out")
    if not out.parent.is_dir():
        raise InvalidInput(f"no folder {out.parent}", field="out")
    key = _key_source(source)
    out_key = key_file(out)
    if not force:
        for existing in (out, out_key) if key is not None else (out,):
            if existing.exists():
                raise Conflict(f"{existing} exists: pass --force to replace it", code="exists", field="out")
    tmp = _temporary(out)
    try:
        src = sqlite3.connect(source, timeout=busy_timeout)
        try:
            dst = sqlite3.connect(tmp)
            try:
                # one step (pages=-1): one read transaction on the source, a consistent copy while it is written
                src.backup(dst)
                dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
                revision = _check(dst, "the copy", "out")
            finally:
                dst.close()
        finally:
            src.close()
        _sync(tmp)
        size = tmp.stat().st_size
        if key is not None:
            _copy_key(key, out_key, force=force, field="out")
        _put(tmp, out, force=force, field="out")
        _sync_dir(out.parent)
    finally:
        tmp.unlink(missing_ok=True)
    where = str(out_key) if key is not None else _key_elsewhere()
    return BackupReport(str(out), size, revision, where, round(time.monotonic() - started, 3))


def _known(revision: str) -> bool:
    from alembic.config import Config
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    from dinhdanh.store.engine import MIGRATIONS

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    script = ScriptDirectory.from_config(cfg)
    try:
        return script.get_revision(revision) is not None
    except (CommandError, KeyError, ValueError):
        return False


def _heads() -> set[str]:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from dinhdanh.store.engine import MIGRATIONS

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return set(ScriptDirectory.from_config(cfg).get_heads())


def restore(backup_file: Path | str, url: str | None, *, force: bool = False) -> RestoreReport:
    """Restore the SQLite database of ``url`` from ``backup_file`` (see the module's docstring)."""
    started = time.monotonic()
    target = sqlite_file(url)
    backup_file = Path(backup_file)
    if not backup_file.is_file():
        raise NotFound(f"no backup at {backup_file}", code="no_backup", field="from")
    if backup_file.resolve() == target.resolve():
        raise InvalidInput("the backup and the database are the same file", field="from")
    try:
        src = sqlite3.connect(f"file:{backup_file}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise InvalidInput(f"{backup_file} cannot be opened: {exc}", field="from") from None
    try:
        try:
            revision = _check(src, str(backup_file), "from")
        except sqlite3.DatabaseError as exc:
            raise InvalidInput(f"{backup_file} is not an SQLite database: {exc}", field="from") from None
        if revision is None:
            raise InvalidInput(f"{backup_file} is not a dinhdanh database (no migration revision)", field="from")
        if not _known(revision):
            raise RuleViolation(f"{backup_file} is at migration {revision}, unknown to this version of dinhdanh "
                                "(made by a newer one?)", code="unknown_revision", field="from")
        backup_key = key_file(backup_file)
        target_key = key_file(target)
        if not force:
            for existing in (target, target.with_name(target.name + "-wal")):
                if existing.exists():
                    raise Conflict(f"{existing} exists: stop the server, then pass --force to replace the database",
                                   code="exists", field="db")
            if backup_key.is_file() and target_key.exists() and target_key.read_bytes() != backup_key.read_bytes():
                raise Conflict(f"{target_key} exists with another key: pass --force to replace it",
                               code="exists", field="db")
        if not target.parent.exists():
            from dinhdanh.store.files import private_dir

            private_dir(target.parent)
        tmp = _temporary(target)
        try:
            dst = sqlite3.connect(tmp)
            try:
                src.backup(dst)
                dst.execute("PRAGMA journal_mode=DELETE")
                _check(dst, "the restored copy", "from")
            finally:
                dst.close()
            _sync(tmp)
            size = tmp.stat().st_size
            if backup_key.is_file():
                _copy_key(backup_key, target_key, force=True, field="db")
            for stale in ("-wal", "-shm", "-journal"):  # the old database's: never replayed into the new one
                target.with_name(target.name + stale).unlink(missing_ok=True)
            os.replace(tmp, target)
            _sync_dir(target.parent)
        finally:
            tmp.unlink(missing_ok=True)
    finally:
        src.close()
    where = str(target_key) if backup_key.is_file() else _key_elsewhere()
    return RestoreReport(str(target), size, revision, revision in _heads(), where,
                         round(time.monotonic() - started, 3))
