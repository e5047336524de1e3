"""The bulk mode of the import: a first load into an empty SQLite register, indexes built after.

Inserting a million people into ``persons`` with its nine secondary indexes in place spends most of
its time keeping them, the search ones above all (folded name, province + year + name, commune),
whose keys arrive in random order. A first load into an empty register therefore:

1. marks the job ``bulk`` (``import_jobs.status``) in its own committed transaction: the register
   is "bulk load incomplete" until the load commits, and ``dinhdanh serve`` refuses to start on it
   (``refuse_incomplete``);
2. starts the writer (``population.bulk_writer``, a process of its own: why is told there), which
   takes the register alone (out of WAL into a rollback journal, ``journal_mode=DELETE``, which
   SQLite grants only to a connection that has the file alone: a running server makes the bulk
   mode step aside; ``synchronous=OFF``, a 256 MiB page cache, foreign keys checked at the end),
   begins ONE write transaction, checks that ``persons`` and ``households`` are empty and drops the
   secondary indexes of ``persons``;
3. here, batch by batch (the first of 2,000 rows, then doubling up to the import's 50,000, so the
   writer starts at once): reads, checks for repeated PIDs, validates and converts (the same
   validation, rejects and rows as the normal path; one batch ahead in a thread), numbers the
   people in PID order and the households (PIDs in ``LoadedPids``, household numbers in a dict,
   instead of read back) and sends the rows to the writer as Arrow data, in PID order, which
   appends them; then the relatives named before they were loaded;
4. the writer shows every foreign key holds (one scan over dense ids, or ``PRAGMA
   foreign_key_check``), rebuilds the indexes exactly as the migrations made them, runs
   ``ANALYZE``, marks the job ``done`` and COMMITs, then puts the file back into WAL.

The primary keys, ``UNIQUE (pid)``, ``UNIQUE (households.number)``, the CHECK and NOT NULL
constraints stay in force all along; a foreign key that would not hold fails the load before
COMMIT. A PID repeated in the file fails the whole load (``Conflict`` naming the two rows): nothing
is written, the job goes back to ``running``, and the same file loads with ``--no-bulk``, which
rejects the repeats row by row.

Crash story. Pages appended to an empty table are never copied to the rollback journal (only pages
that existed before the transaction are), so the journal costs next to nothing here, and it is what
makes the load atomic. If the importing process dies, the writer sees its pipe close before it was
told to finish and rolls back. If the writer dies (killed with the import's process group, or
alone), it leaves a hot journal that SQLite plays back at the next open, before anything reads the
file. Either way the register is exactly as it was before the load (no person, no household,
indexes in place), with the job still marked ``bulk`` if the importing process died too (it puts
the mark back to ``running`` when it sees the writer fail). ``serve`` refuses a marked register;
running the same import again (the same file, recognised by its SHA-256) checks the file (``PRAGMA
quick_check``) and loads it again from the first row. A power loss or an OS crash during the load,
with ``synchronous=OFF``, may leave the file itself damaged: the mark is then what stops anyone
serving it, and the rerun's ``quick_check`` refuses it with a clear error (restore the copy taken
before the load; the register was empty then). The data is never silently half-loaded. A writer
that dies after it was told to finish may have committed: the job's row, committed with the data,
says which.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from dinhdanh.population.bulk_writer import AHEAD
from dinhdanh.population.loaded_pids import PID_DIGITS, LoadedPids
from dinhdanh.population.tables import import_jobs
from dinhdanh.registry.errors import Conflict, RuleViolation
from dinhdanh.registry.tables import households, persons
from dinhdanh.store.base import UTCDateTime, utcnow
from dinhdanh.store.engine import sqlite_path

AUTO_ROWS = 50_000  # a file longer than this into an empty SQLite register loads in bulk by default
INCOMPLETE = "bulk"  # import_jobs.status while a bulk load has not committed
FIRST_ROWS = 2_000  # rows in the first batch, then doubling up to BATCH_ROWS: the writer starts sooner


class NotAlone(Exception):
    """The register is not empty, or another connection has it open: the normal path must load it."""


def register_is_empty(conn: sa.Connection) -> bool:
    """No person and no household yet."""
    has_person = conn.execute(sa.select(persons.c.person_id).limit(1)).first() is not None
    has_household = conn.execute(sa.select(households.c.household_id).limit(1)).first() is not None
    return not (has_person or has_household)


def incomplete_jobs(conn: sa.Connection) -> list[int]:
    """Jobs whose bulk load began and never committed."""
    return list(conn.execute(sa.select(import_jobs.c.job_id).where(import_jobs.c.status == INCOMPLETE)
                             .order_by(import_jobs.c.job_id)).scalars())


def refuse_incomplete(engine: sa.Engine) -> None:
    """Raise ``RuleViolation`` when a bulk load is incomplete (``serve`` calls it before starting)."""
    with engine.connect() as conn:
        jobs = incomplete_jobs(conn)
    if jobs:
        raise RuleViolation(
            f"The register is marked 'bulk load incomplete' (import job {', '.join(map(str, jobs))}): it is not "
            "served until that import is run again to the end (dinhdanh population import FILE).", field="import")


def mark(engine: sa.Engine, job_id: int, status: str) -> None:
    """Set the job's status in a transaction of its own (committed before the load begins)."""
    with engine.begin() as conn:
        conn.execute(import_jobs.update().where(import_jobs.c.job_id == job_id).values(status=status))


def _duplicates(pids: pa.Array, start: int, seen: LoadedPids, odd: set[str], source) -> None:
    """Fail on a PID repeated in the file (``seen``: every PID of twelve digits so far; ``odd``: any
    other, which validation will reject), then remember these. Only on failure is the file read
    again from the top, to name both rows."""
    present = pc.drop_null(pids)
    digits = pc.match_substring_regex(present, PID_DIGITS)
    numbers, others = pc.filter(present, digits), pc.filter(present, pc.invert(digits)).to_pylist()
    if (len(pc.unique(present)) != len(present) or pc.any(pc.is_valid(seen.find(numbers))).as_py()
            or not odd.isdisjoint(others)):
        from dinhdanh.population import importer as imp

        first: dict[str, int] = {}
        for begin, table in source.batches(0):
            for offset, pid in enumerate(imp._string(table, "pid").to_pylist()):
                row = begin + offset + 1
                if pid is not None and first.setdefault(pid, row) != row:
                    raise Conflict(f"Rows {first[pid]} and {row} of the file have the same PID: a bulk load "
                                   "refuses a file with repeated PIDs and wrote nothing; load it with --no-bulk "
                                   "to reject the repeats row by row.", field="pid")
    seen.add(numbers, np.ones(len(numbers), dtype=np.int64))
    odd.update(others)


def _households(col: dict[str, pa.Array], ids: np.ndarray, homes: dict[str, int], headless: set[str],
                next_home: int, now_value) -> tuple[pa.Array, list[tuple], list[tuple]]:
    """The batch's household ids (new households numbered from ``next_home`` in order of first
    appearance, founded with their first member's residence and their first head), the new
    ``households`` rows, and (head, household) for households founded headless in earlier batches.
    Arrow's dictionary encoding does per household what the normal path does per row."""
    encoded = pc.dictionary_encode(col["household_number"])
    codes = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64)
    numbers = encoded.dictionary.to_pylist()  # in order of first appearance
    member = np.flatnonzero(codes >= 0)
    _, first_of = np.unique(codes[member], return_index=True)
    first_row = member[first_of]  # first member of each household of the batch
    is_head = pc.fill_null(pc.equal(col["relation_to_head"], "head"), False).to_numpy(zero_copy_only=False)
    head_rows = np.flatnonzero(is_head & (codes >= 0))
    head_codes, first_head = np.unique(codes[head_rows], return_index=True)
    head_of = dict(zip(head_codes.tolist(), ids[head_rows[first_head]].tolist()))
    home_ids = np.empty(len(numbers), dtype=np.int64)
    new_rows, founded = [], []
    fields = [pc.take(col[c], pa.array(first_row)).to_pylist() for c in ("province_code", "commune_code", "address")]
    for code, number in enumerate(numbers):
        known = homes.get(number)
        head = head_of.get(code)
        if known is None:
            known = homes[number] = next_home + len(new_rows)
            new_rows.append((known, number, head, fields[0][code], fields[1][code], fields[2][code], now_value))
            if head is None:
                headless.add(number)
        elif head is not None and number in headless:
            founded.append((head, known))
            headless.discard(number)
        home_ids[code] = known
    mapped = home_ids[np.maximum(codes, 0)] if len(numbers) else np.zeros(len(codes), dtype=np.int64)
    return pa.array(mapped, pa.int64(), mask=codes < 0), new_rows, founded


def _kin(col: dict[str, pa.Array], ids: np.ndarray, known: LoadedPids, job_id: int
         ) -> tuple[dict[str, pa.Array], list[dict]]:
    """As ``importer._relatives``, looking up each distinct relative's PID once."""
    kin_cols = {"father": col["father_pid"], "mother": col["mother_pid"], "spouse": col["spouse_pid"]}
    distinct = pc.unique(pc.drop_null(pa.concat_arrays([c.cast(pa.string()) for c in kin_cols.values()])))
    resolved = known.find(distinct)
    kin_ids, links = {}, []
    for relation, values in kin_cols.items():
        found = pc.take(resolved, pc.index_in(values, distinct))
        kin_ids[relation] = found
        missing = np.flatnonzero(pc.and_(pc.is_valid(values), pc.is_null(found)).to_numpy(zero_copy_only=False))
        links += [{"job_id": job_id, "person_id": int(ids[i]), "relation": relation,
                   "relative_pid": values[int(i)].as_py()} for i in missing]
    return kin_ids, links


# the columns of a person row that depend on what was loaded before (ids, relatives, household)
_LINKED = ("person_id", "father_id", "mother_id", "spouse_id", "household_id")
_HOUSEHOLD_COLUMNS = ("household_id", "number", "head_id", "province_code", "commune_code", "address", "created_at")


def _person_table(col: dict[str, pa.Array], order: pa.Array, now_value) -> pa.Table:
    """The batch's person rows as the normal path writes them (in ``order``: by PID), the ``_LINKED``
    columns still to fill."""
    from dinhdanh.population import importer as imp

    n = len(col["pid"])
    # a household number always finds its household here: the id is null where the number is
    household = pc.if_else(pc.is_null(col["household_number"]), pa.scalar(None, pa.int64()), pa.scalar(0, pa.int64()))
    none = pa.nulls(n, pa.int64())
    return imp._person_rows(col, np.zeros(n, dtype=np.int64), household,
                            {"father": none, "mother": none, "spouse": none}, now_value).take(order)


def _prepared(source, retired: set[str], today: dt.date, now_value) -> Iterator[tuple]:
    """(first row, rows, valid columns, rejects, the valid rows' order by PID, person rows in that
    order) of each batch, read, checked for repeated PIDs, validated and converted one batch ahead in
    a thread (Arrow's kernels release the GIL), while the batch before is numbered and sent to the
    writer."""
    from dinhdanh.population import importer as imp

    batches = source.batches(0, first=FIRST_ROWS)
    seen, odd = LoadedPids(), set()  # every PID of the file so far, valid or not

    def prepare():
        item = next(batches, None)
        if item is None:
            return None
        start, table = item
        _duplicates(imp._string(table, "pid"), start, seen, odd, source)
        col, rejects = imp._checked(table, start, retired, today)
        order = pc.sort_indices(col["pid"])
        return start, table.num_rows, col, rejects, order, _person_table(col, order, now_value)

    with ThreadPoolExecutor(1, thread_name_prefix="bulk-read") as pool:
        ahead = pool.submit(prepare)
        while (item := ahead.result()) is not None:
            ahead = pool.submit(prepare)
            yield item


class _Writer:
    """The writer process (``population.bulk_writer``) and our side of its channel."""

    def __init__(self, path: str, job_id: int, after_crash: bool):
        from dinhdanh.population.bulk_writer import Channel

        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        # the same interpreter and path; this package's root last, for a process that found it there
        package_root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            p for p in (os.environ.get("PYTHONPATH"), package_root) if p))
        try:
            # same session and process group: a signal to the import (Ctrl-C, a kill of the group) reaches it too
            self.process = subprocess.Popen(
                [sys.executable, "-m", "dinhdanh.population.bulk_writer", path, str(job_id),
                 "1" if after_crash else "0", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),), env=env, stdin=subprocess.DEVNULL)
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self.channel = Channel(ours)
        self.unanswered = 0  # row-carrying requests not yet answered "took"

    def answer(self) -> dict:
        """The writer's next answer; raises what it refused, or a RuntimeError when it died."""
        try:
            got, _ = self.channel.receive()
        except (EOFError, OSError):
            got = None
        if got is None:
            code = self.process.wait()
            raise RuntimeError(f"the bulk load's writer ended without an answer (exit status {code})")
        if "error" in got:
            if got["error"] == "not_alone":
                raise NotAlone(got["message"])
            raise RuleViolation(got["message"], field=got.get("field") or "file")
        return got

    def _post(self, header: dict, rows: pa.Table | None = None) -> None:
        try:
            self.channel.send(header, rows)
        except OSError:  # the writer stopped: its last answer says why
            while True:
                self.answer()  # raises what it refused, or that it died

    def send(self, header: dict, rows: pa.Table) -> None:
        """Send rows; wait while more than ``AHEAD`` are on their way."""
        self._post(header, rows)
        self.unanswered += 1
        while self.unanswered > AHEAD:
            self.answer()
            self.unanswered -= 1

    def finish(self, job: dict) -> dict[str, float]:
        """Tell the writer the file is done; returns once it has committed, with where its time went."""
        self._post({"op": "finish", "job": job})
        while self.unanswered:
            self.answer()
            self.unanswered -= 1
        return self.answer().get("phases") or {}

    def close(self) -> None:
        self.channel.close()  # the writer, if still waiting for rows, rolls back and exits
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:  # a writer that does not end is ended
            self.process.kill()
            self.process.wait()


def _database_path(engine: sa.Engine) -> str:
    path = sqlite_path(engine.url)
    if path is None:
        raise NotAlone("the register is not a file of its own")
    return str(path.resolve())


def _status(engine: sa.Engine, job_id: int) -> str | None:
    with engine.connect() as conn:
        return conn.execute(sa.select(import_jobs.c.status).where(import_jobs.c.job_id == job_id)).scalar()


def load(engine: sa.Engine, job_id: int, source, retired: set[str], today: dt.date, rejects_file: Path,
         report, progress: Callable[[int, int], None] | None, after_crash: bool = False) -> None:
    """Load the whole file in one transaction (see the module's notes); raises ``NotAlone`` before
    writing anything when the register is not empty or not ours alone."""
    from dinhdanh.population import importer as imp

    path = _database_path(engine)
    now_value = UTCDateTime().bind_processor(engine.dialect)(utcnow())  # the text SQLite stores
    mark(engine, job_id, INCOMPLETE)
    engine.dispose()  # our own idle connections would keep the file in WAL mode
    writer = _Writer(path, job_id, after_crash)
    finishing = committed = False
    try:
        writer.answer()  # ready: the register is ours alone, empty, its indexes dropped
        known = LoadedPids()  # PID -> person_id of everyone loaded so far
        homes: dict[str, int] = {}  # household number -> household_id
        headless: set[str] = set()  # numbers of households founded before their head was loaded
        links: list[dict] = []
        next_person = next_home = 1
        for start, rows, col, rejects, order, people in _prepared(source, retired, today, now_value):
            n = len(col["pid"])
            report.rejected += len(rejects)
            if rejects:
                with rejects_file.open("a", encoding="utf-8", newline="") as f:
                    imp.csv.writer(f).writerows(rejects)
            if n:
                ascending = np.arange(next_person, next_person + n, dtype=np.int64)
                ids = imp._ids_in_pid_order(order, ascending)  # each row's id, as the normal path numbers
                next_person += n
                known.add(col["pid"], ids)
                household_ids, new_homes, founded = _households(col, ids, homes, headless, next_home, now_value)
                if new_homes:
                    writer.send({"op": "households"}, pa.table(
                        [pa.array(c) for c in zip(*new_homes)], names=list(_HOUSEHOLD_COLUMNS)))
                    next_home += len(new_homes)
                if founded:
                    writer.send({"op": "heads"}, pa.table([pa.array(c, pa.int64()) for c in zip(*founded)],
                                                          names=["head_id", "household_id"]))
                kin_ids, later = _kin(col, ids, known, job_id)
                links += later
                # the rows go in PID order, so the ids ascend
                linked = {"person_id": pa.array(ascending), "father_id": pc.take(kin_ids["father"], order),
                          "mother_id": pc.take(kin_ids["mother"], order),
                          "spouse_id": pc.take(kin_ids["spouse"], order),
                          "household_id": pc.take(household_ids, order)}
                for name, values in linked.items():
                    people = people.set_column(people.schema.get_field_index(name), name, values)
                writer.send({"op": "persons"}, people)
                report.loaded += n
            if progress:
                progress(start + rows, source.rows)
        # relatives listed after the person who names them: everyone is loaded now
        relatives = known.find(pa.array([link["relative_pid"] for link in links], pa.string())).to_pylist()
        for relation in ("father", "mother", "spouse"):
            pairs = [(relative, link["person_id"]) for link, relative in zip(links, relatives)
                     if link["relation"] == relation and relative is not None]
            if pairs:
                writer.send({"op": "kin", "relation": relation}, pa.table(
                    [pa.array(c, pa.int64()) for c in zip(*pairs)], names=["relative_id", "person_id"]))
        report.unresolved_links = relatives.count(None)
        finishing = True
        report.phases = writer.finish({"rows_done": source.rows, "loaded": report.loaded,
                                       "rejected": report.rejected, "skipped": report.skipped})
        committed = True
    except RuntimeError:
        # the writer died: after it was told to finish, it may have committed first (the job's row says)
        if not (finishing and _status(engine, job_id) == "done"):
            raise
        committed = True
    finally:
        writer.close()  # returns once the writer has ended
        if not committed and _status(engine, job_id) != "done":
            # failed cleanly (rolled back, or never began): no longer a bulk load in progress
            mark(engine, job_id, "running")
