"""The bulk load's writer: a process of its own that writes Arrow batches into the SQLite register.

``population.bulk.load`` (the reading side) starts it as ``python -m dinhdanh.population.bulk_writer
PATH JOB_ID AFTER_CRASH SOCKET_FD`` and sends it the rows it has read, validated and numbered;
the writer holds the load's one write transaction and commits it when told the file is done.

Why ADBC, and why a process. Apache Arrow's ADBC driver for SQLite binds Arrow columns to SQLite's
statement in C: no Python object per value, which is where ``sqlite3.executemany`` spends most of
its time (measured here: 2.5 times the rows per second for the same ``persons`` rows). The driver
carries its own copy of the SQLite library. Two copies of SQLite in one process do not see each
other's locks: POSIX advisory locks belong to the process, so neither copy's locks keep the other
out, and closing a file in one drops the other's (https://sqlite.org/howtocorrupt.html, 2.2.1).
In a process of its own, the second copy meets every other connection (the importing process's
included) through SQLite's ordinary locking between processes. It also puts the writing on the
second core while the reading side reads, validates and numbers the next batch.

The conversation (``Channel``): each request is a JSON header, with the rows of the row-carrying
ones as one Arrow IPC stream beside it.

- the writer first answers ``{"ok": "ready"}`` once it has the file alone (``journal_mode=DELETE``,
  which SQLite grants only to a connection that has it alone), has checked it after a crash
  (``quick_check``), has begun the transaction and found ``persons`` and ``households`` empty; or
  an error (below);
- ``{"op": "households"}``, ``{"op": "persons"}`` + rows: appended to that table (columns empty in
  the whole batch and NULL by default left out); the first people make the writer drop the
  secondary indexes of ``persons`` on the columns they carry;
- ``{"op": "heads"}`` + (head_id, household_id): heads of households founded before them;
- ``{"op": "kin", "relation": "father" | "mother" | "spouse"}`` + (relative_id, person_id);
- each of these is answered ``{"ok": "took"}`` once written: the reading side keeps at most
  ``AHEAD`` of them unanswered, so the memory held by rows on their way stays bounded;
- ``{"op": "finish", "job": {...}}``: every foreign key checked, the indexes built again as the
  migrations made them, ``ANALYZE``, the job marked ``done``, then COMMIT; answered
  ``{"ok": "committed", "phases": {...}}``: the seconds spent waiting for rows, writing them, and
  at the end (of which the foreign-key check and the indexes), for the import's report.

Any failure rolls the transaction back and is answered ``{"error": kind, "message": ..., "field":
...}`` (kind ``not_alone``, ``rule`` or ``failed``). If the reading side goes away (its pipe
closes) before ``finish``, the writer rolls back and exits: nothing is written. If the writer is
killed, SQLite plays its hot journal back at the next open. Either way the register is as it was.
The writer puts the file back into WAL before it exits.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time

import pyarrow as pa

BUSY_MS = 10_000  # how long the writer waits for a lock another process holds
# for the load only (the writer's connection ends with it): no fsync, a 256 MiB page cache, foreign
# keys checked once, by foreign_key_check, before COMMIT (checked row by row, a relative named before
# their own row is a pending violation that makes every insert look for orphans in each of the
# twenty-odd tables referring to persons)
LOAD_PRAGMAS = ("PRAGMA synchronous=OFF", "PRAGMA cache_size=-262144", "PRAGMA foreign_keys=OFF")
# for building the indexes at the end, while the reading side's core is idle: the table read through
# a memory map (no copy of each page into the cache), and a small cache, which makes SQLite's sorter
# cut the keys into runs that worker threads sort beside the scan (with a cache larger than the keys
# it sorts them all at the end, on one core). The seven indexes on a million people's rows, writer
# alone: 5.7 s before, 4.3-4.7 s after (docs/benchmarks.md)
BUILD_PRAGMAS = ("PRAGMA cache_size=-16384", f"PRAGMA mmap_size={1 << 31}",
                 f"PRAGMA threads={min(4, max(1, (os.cpu_count() or 2) - 1))}")

AHEAD = 2  # row-carrying requests the reading side sends before the writer has taken the first
ANALYSIS_ROWS = 1000  # SQLite's analysis_limit for the load's ANALYZE
_INGEST = ("households", "persons")
_KIN = ("father", "mother", "spouse")


class Channel:
    """Requests and answers between the two sides, on a Unix socket of the SEQPACKET kind (one
    message is one packet): a JSON header, with the rows of the row-carrying ones as an Arrow IPC
    stream in an anonymous memory file (``memfd``) whose descriptor travels with the header. The
    rows are written once, into that memory, and read where they lie (mapped, not copied); the
    memory is freed when both sides have closed it, a crash included: nothing is left on any disk."""

    MAX_HEADER = 1 << 16

    def __init__(self, sock: socket.socket):
        self.sock = sock

    def send(self, header: dict, rows: pa.Table | None = None) -> None:
        data = json.dumps(header).encode()
        if rows is None:
            self.sock.sendall(data)
            return
        counted = pa.MockOutputStream()
        with pa.ipc.new_stream(counted, rows.schema) as stream:
            stream.write_table(rows)
        fd = os.memfd_create("dinhdanh-bulk-rows", os.MFD_CLOEXEC)
        try:
            os.ftruncate(fd, counted.size())
            with pa.memory_map(f"/proc/self/fd/{fd}", "r+") as memory, \
                    pa.ipc.new_stream(memory, rows.schema) as stream:
                stream.write_table(rows)
            socket.send_fds(self.sock, [data], [fd])
        finally:
            os.close(fd)

    def receive(self) -> tuple[dict, pa.Table | None]:
        """The next header and its rows; raises EOFError when the other side is gone."""
        while True:
            try:
                data, fds, _, _ = socket.recv_fds(self.sock, self.MAX_HEADER, 1)
                break
            except ConnectionResetError:
                # the other side closed with our requests unread: Linux says so once, then gives what it
                # sent before closing (its answer), then the end
                continue
        if not data:
            for fd in fds:
                os.close(fd)
            raise EOFError("the other side of the bulk load is gone")
        if not fds:
            return json.loads(data), None
        try:
            memory = pa.memory_map(f"/proc/self/fd/{fds[0]}", "r")
        finally:
            os.close(fds[0])
        return json.loads(data), pa.ipc.open_stream(memory).read_all()

    def close(self) -> None:
        self.sock.close()


def _row(cur, sql: str) -> tuple:
    cur.execute(sql)
    return tuple(cur.fetchone())


def _scalar(cur, sql: str):
    cur.execute(sql)
    row = cur.fetchone()
    return None if row is None else row[0]


def _defaultless(cur, table: str) -> set[str]:
    """The columns of ``table`` that an INSERT leaving them out fills with NULL."""
    cur.execute(f"PRAGMA table_info({table})")
    return {name for _, name, _, _, default, pk in cur.fetchall() if default is None and not pk}


def _without_empty(rows: pa.Table, defaultless: set[str]) -> pa.Table:
    """``rows`` without the columns that are NULL in every row and NULL when left out: the same rows
    written, fewer values bound (a batch of people leaves a dozen such columns empty)."""
    empty = [name for name in rows.column_names if name in defaultless and rows.column(name).null_count == len(rows)]
    return rows.drop_columns(empty) if empty and len(empty) < rows.num_columns else rows


def _drop_indexes(cur, written: set[str]) -> list[tuple[str, str]]:
    """Drop the secondary indexes of ``persons`` (search, relatives, household; not the UNIQUE ones)
    on a column the load writes, and return them (name, SQL) to be built again at the end. An index
    on columns the load leaves empty stays: its key is the same for every row loaded, so each entry
    goes after the last one, in the page SQLite has just written."""
    cur.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'persons' "
                "AND sql IS NOT NULL ORDER BY name")
    dropped = []
    for name, sql in cur.fetchall():
        cur.execute(f'PRAGMA index_info("{name}")')
        if {column for _, _, column in cur.fetchall()} & written:
            cur.execute(f'DROP INDEX "{name}"')
            dropped.append((name, sql))
    return dropped


def _dense_keys_hold(cur) -> bool:
    """True when every foreign key of the loaded tables holds, shown without a lookup per value.

    The load numbers people 1..N and households 1..H (both tables were empty before it). A key
    declared ``INTEGER PRIMARY KEY`` holds distinct integers (it is the rowid), so when its table
    has N rows, the smallest 1 and the largest N, its rows are exactly the ids 1..N, and a reference
    to it holds if and only if it is NULL or between 1 and N: one scan of each loaded table, where
    ``PRAGMA foreign_key_check`` looks every value up (a million people: 0.3-0.4 s against 0.9-1.3 s
    in the load). False means "not shown" (another kind of key or parent, ids with gaps, a
    reference out of range): the caller then runs SQLite's own check."""
    parents = {}
    for table in _INGEST:
        cur.execute(f"SELECT name, upper(type) FROM pragma_table_info('{table}') WHERE pk > 0")
        keys = cur.fetchall()
        if len(keys) != 1 or keys[0][1] != "INTEGER":
            return False
        key = keys[0][0]
        count, low, high = _row(cur, f"SELECT count(*), min({key}), max({key}) FROM {table}")
        if count and (low, high) != (1, count):
            return False
        parents[table] = (key, count)
    for table in _INGEST:
        tests = []
        cur.execute(f"SELECT \"from\", \"table\", \"to\" FROM pragma_foreign_key_list('{table}')")
        for column, parent, parent_key in cur.fetchall():
            key, count = parents.get(parent, (None, 0))
            if key is None or parent_key not in (None, key):
                return False
            tests.append(f'"{column}" NOT BETWEEN 1 AND {count}')
        if tests and _scalar(cur, f"SELECT count(*) FROM (SELECT 1 FROM {table} WHERE {' OR '.join(tests)} LIMIT 1)"):
            return False
    return True


def _finish(cur, job_id: int, job: dict, indexes: list[tuple[str, str]], phases: dict[str, float]) -> None:
    import sqlalchemy as sa
    from sqlalchemy.dialects import sqlite

    from dinhdanh.population.tables import import_jobs
    from dinhdanh.store.base import utcnow
    from dinhdanh.store.prepared import Prepared

    started = time.perf_counter()
    if not _dense_keys_hold(cur):  # SQLite's own check decides, row by row, and names the table
        for table in _INGEST:
            cur.execute(f"PRAGMA foreign_key_check({table})")
            if cur.fetchone() is not None:
                raise _Refused("rule", f"The load would leave {table} referring to rows that do not exist: "
                               "nothing was written.", "file")
    checked = time.perf_counter()
    for pragma in BUILD_PRAGMAS:
        cur.execute(pragma)
        cur.fetchall()
    for _, sql in indexes:
        cur.execute(sql)
    phases["foreign_keys"], phases["indexes"] = checked - started, time.perf_counter() - checked
    # statistics from a sample of each index (as PRAGMA optimize takes them): as good for the planner
    # here, and 10 times less time than reading every index whole
    cur.execute(f"PRAGMA analysis_limit={ANALYSIS_ROWS}")
    cur.fetchall()
    cur.execute("ANALYZE")
    done = Prepared(import_jobs.update().where(import_jobs.c.job_id == sa.bindparam("job")),
                    keys=["rows_done", "loaded", "rejected", "skipped", "status", "finished_at"])
    sql, values = done.bound(sqlite.dialect(), {**job, "job": job_id, "status": "done", "finished_at": utcnow()})
    cur.execute(sql, values)


class _Refused(Exception):
    def __init__(self, kind: str, message: str, field: str | None = None):
        super().__init__(message)
        self.kind, self.field = kind, field


def write(path: str, job_id: int, after_crash: bool, channel: Channel) -> None:
    """The writer's side of the load (see the module's notes)."""
    import adbc_driver_sqlite.dbapi as adbc

    db = adbc.connect(path, autocommit=True)
    cur = db.cursor()
    began = False
    try:
        try:
            cur.execute(f"PRAGMA busy_timeout={BUSY_MS}")
            cur.fetchall()
            mode = str(_scalar(cur, "PRAGMA journal_mode=DELETE")).lower()
        except adbc.Error:
            mode = "wal"
        if mode != "delete":
            raise _Refused("not_alone", "another connection has the register open")
        if after_crash:
            cur.execute("PRAGMA quick_check")
            problems = [r[0] for r in cur.fetchall()]
            if problems != ["ok"]:
                raise _Refused("rule", "A bulk load was interrupted by a crash of the machine and the register "
                               f"file is damaged ({problems[0][:200]}): restore the copy taken before the load "
                               "(the register was empty then).", "import")
        for pragma in LOAD_PRAGMAS:
            cur.execute(pragma)
            cur.fetchall()
        db.adbc_connection.set_autocommit(False)  # the load's one transaction begins
        began = True
        if (_scalar(cur, "SELECT count(*) FROM (SELECT 1 FROM persons LIMIT 1)")
                or _scalar(cur, "SELECT count(*) FROM (SELECT 1 FROM households LIMIT 1)")):
            raise _Refused("not_alone", "the register already holds people")
        indexes: list[tuple[str, str]] | None = None  # dropped when the first people arrive
        phases = {"waiting": 0.0, "writing": 0.0}  # seconds, told with the commit
        defaultless = {table: _defaultless(cur, table) for table in _INGEST}
        channel.send({"ok": "ready"})
        while True:
            waited = time.perf_counter()
            try:
                header, rows = channel.receive()
            except EOFError:  # the reading side is gone before the end: nothing is written
                return
            began_at = time.perf_counter()
            phases["waiting"] += began_at - waited
            op = header.get("op")
            if op in _INGEST and rows is not None:
                if op == "persons" and indexes is None:
                    indexes = _drop_indexes(cur, set(rows.column_names))
                cur.adbc_ingest(op, _without_empty(rows, defaultless[op]), mode="append")
                channel.send({"ok": "took"})
            elif op == "heads" and rows is not None:
                cur.executemany("UPDATE households SET head_id = ? WHERE household_id = ?", rows)
                channel.send({"ok": "took"})
            elif op == "kin" and header.get("relation") in _KIN and rows is not None:
                cur.executemany(f"UPDATE persons SET {header['relation']}_id = ? WHERE person_id = ?", rows)
                channel.send({"ok": "took"})
            elif op == "finish":
                _finish(cur, job_id, header["job"], indexes or [], phases)
                db.adbc_connection.commit()
                began = False
                phases["end"] = time.perf_counter() - began_at
                channel.send({"ok": "committed", "phases": {k: round(v, 3) for k, v in phases.items()}})
                return
            else:
                raise _Refused("failed", f"unknown request {op!r}")
            phases["writing"] += time.perf_counter() - began_at
    except _Refused as exc:
        _answer(channel, {"error": exc.kind, "message": str(exc), "field": exc.field})
    except Exception as exc:  # noqa: BLE001 - told to the reading side, which raises it
        _answer(channel, {"error": "failed", "message": str(exc).splitlines()[0][:500] if str(exc) else repr(exc),
                          "field": "file"})
    finally:
        if began:
            db.adbc_connection.rollback()
        try:
            db.adbc_connection.set_autocommit(True)
            cur.execute("PRAGMA journal_mode=WAL")
            cur.fetchall()
        finally:
            cur.close()
            db.close()


def _answer(channel: Channel, header: dict) -> None:
    try:
        channel.send(header)
    except OSError:  # the reading side is gone: nobody to tell
        pass


def main(argv: list[str]) -> int:
    path, job_id, after_crash, fd = argv
    channel = Channel(socket.socket(fileno=int(fd)))
    try:
        write(path, int(job_id), after_crash == "1", channel)
    finally:
        channel.close()
    return 0


if __name__ == "__main__":
    os.umask(0o077)  # a journal it creates is the register's, owner-only
    sys.exit(main(sys.argv[1:]))
