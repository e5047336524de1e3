"""Files at rest are the owner's alone: directories 0700, files 0600.

The register's files hold personal data (the SQLite database and its WAL, batch uploads and
results, match snapshots, card exports, the demo population) or keys (the vault's master-key file):
nobody but the account the platform runs as may read them. The CLI also sets the umask to 0o077
(``dinhdanh.cli.main``), so what a library writes on its own is private too; these functions make
it so whatever the umask of the process that calls them (the tests, an embedding application).

- ``private_dir(path)``: the folder and its missing parents created 0700; an existing folder we
  own narrowed to 0700 (for folders the platform owns: under ``config.home()``, never a user's
  ``--out`` folder's parents).
- ``private_file(path)``: the file created empty 0600 when missing, else narrowed to 0600.
- ``secure_sqlite(path)``: the database file made 0600 before SQLite opens it (SQLite gives its
  ``-wal`` and ``-shm`` files the main file's mode), and existing ``-wal``/``-shm``/``-journal``
  files narrowed; missing parent folders are created 0700, existing ones are left alone.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["private_dir", "private_file", "secure_sqlite", "DIR_MODE", "FILE_MODE"]

DIR_MODE = 0o700
FILE_MODE = 0o600
_SQLITE_SIBLINGS = ("-wal", "-shm", "-journal")


def _narrow(path: Path, mode: int) -> None:
    """chmod to ``mode`` when the file is ours and more open than that (someone else's is left)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return
    if st.st_uid == os.geteuid() and (st.st_mode & 0o777) != mode:
        os.chmod(path, mode)


def _make_dirs(path: Path) -> None:
    """Create ``path`` and its missing parents, each 0700 (``Path.mkdir(parents=True, mode=...)``
    gives the mode to the last folder only)."""
    missing = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=DIR_MODE)
        except FileExistsError:  # made meanwhile by another process: narrowed below if ours
            pass
        _narrow(folder, DIR_MODE)  # mkdir's mode is filtered by the umask; never wider than 0700


def private_dir(path: Path | str) -> Path:
    """``path`` and its missing parents created 0700; ``path`` itself narrowed to 0700 if it
    exists and is ours (its existing parents are left as they are)."""
    path = Path(path)
    _make_dirs(path)
    _narrow(path, DIR_MODE)
    return path


def private_file(path: Path | str) -> Path:
    """``path`` created empty 0600 when missing (its missing parents 0700), else narrowed to 0600."""
    path = Path(path)
    _make_dirs(path.parent)
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, FILE_MODE)  # no O_TRUNC: an existing file is kept
    os.close(fd)
    _narrow(path, FILE_MODE)
    return path


def secure_sqlite(path: Path | str) -> Path:
    """An SQLite database file made private before SQLite opens it: created empty 0600 (SQLite
    takes an empty file as a new database), or narrowed to 0600, with its existing -wal, -shm and
    -journal files. SQLite creates the -wal and -shm files with the main file's permissions, so
    creating the main file 0600 first is what keeps the WAL private."""
    path = private_file(path)
    for suffix in _SQLITE_SIBLINGS:
        _narrow(path.with_name(path.name + suffix), FILE_MODE)
    return path
