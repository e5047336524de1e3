"""Batches sent over the API: upload, queue, a runner with a lease, status, result (domain s.7).

``submit`` streams the partner's file to ``DINHDANH_HOME/var/batches/<batch_id>/input.<ext>``
(mode 0600) while hashing it, refusing it past ``max_upload_bytes()`` (``DINHDANH_BATCH_MAX_BYTES``,
default 2 GiB), checks its structure (a readable CSV or Parquet with the required columns) and
only then records the batch as ``queued``; a refused file leaves nothing behind. The format is
told by the bytes (Parquet starts with ``PAR1``), not by the file name.

A runner (``runner_loop`` beside the API, ``dinhdanh batches run``) claims one batch at a time
with a conditional UPDATE that takes a lease (``lease_owner``, ``lease_until``), renewed after
every chunk; a batch whose runner died (lease expired) is claimed again and ``matching.match_file``
resumes after its last committed chunk, since the input and result paths are the batch's own.
Progress is ``match_jobs.rows_done`` over the rows counted before the run. A telco's finished
batch feeds the mismatch ladder (``ladder.record_batch``, idempotent), marked by ``ladder_done``.

Audit: ``match_jobs`` is the record of the batch (partner, purpose, input digest, counts, times,
``actor = partner:<client_id>``), linked from ``match_batches`` with the digest of the whole
file; ``matching.match_file`` also writes one access-log entry per person checked, with each
chunk's checkpoint, so that the person's data tracker shows the check.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import re
import secrets
import shutil
import threading
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import sqlalchemy as sa

from dinhdanh import config
from dinhdanh.exchange import ladder, matching
from dinhdanh.exchange.tables import match_batches, match_jobs
from dinhdanh.registry import errors
from dinhdanh.registry.errors import Conflict, Forbidden, InvalidInput, NotFound, RegistryError
from dinhdanh.store.base import utcnow, vietnam_date
from dinhdanh.store.files import private_dir
from dinhdanh.store.unit_of_work import UnitOfWork

log = logging.getLogger("dinhdanh.batches")

DEFAULT_MAX_BYTES = 2 << 30
LEASE_SECONDS = 300
FORMATS = ("csv", "parquet")
MEDIA_TYPES = {"csv": "text/csv", "parquet": "application/vnd.apache.parquet"}
_ID = re.compile(r"^[A-Za-z0-9_-]{22}$")


def max_upload_bytes() -> int:
    value = os.environ.get("DINHDANH_BATCH_MAX_BYTES")
    return int(value) if value and value.isdigit() and int(value) > 0 else DEFAULT_MAX_BYTES


def batches_dir() -> Path:
    return config.home() / "var" / "batches"


def batch_dir(batch_id: str) -> Path:
    return batches_dir() / batch_id


def input_path(row) -> Path:
    return batch_dir(row.batch_id) / f"input.{row.input_format}"


def result_path(row) -> Path:
    return batch_dir(row.batch_id) / f"result.{row.result_format}"


class TooLarge(errors.TooLarge):
    """The upload is over the size limit (HTTP 413)."""

    def __init__(self, limit: int):
        super().__init__(f"The file is larger than the limit of {limit} bytes.", code="upload_too_large",
                         field="file")


# ------------------------------------------------------------------------------------ upload


def _check_structure(path: Path, fmt: str) -> None:
    """A readable file of its format with the required columns; ``InvalidInput`` naming the problem."""
    source = matching._Input(path)  # header / schema and required columns
    if fmt == "csv":
        try:
            reader = pacsv.open_csv(path, read_options=pacsv.ReadOptions(block_size=1 << 20),
                                    convert_options=pacsv.ConvertOptions(
                                        column_types={c: pa.string() for c in source.columns}))
            reader.read_next_batch()
        except StopIteration:
            pass  # a header and no rows: an empty batch, answered with an empty result
        except (pa.ArrowException, OSError, UnicodeDecodeError):
            raise InvalidInput("The file is not a readable CSV file (check the quoting and the number of "
                               "fields of its first rows).", field="file") from None


def submit(conn: sa.Connection, partner: sa.Row, stream: BinaryIO, *, purpose: str | None = None,
           result_format: str | None = None, max_bytes: int | None = None) -> dict:
    """Store the upload and queue the batch; returns ``{"batch_id", "status"}``.

    Raises ``InvalidInput`` (bad format, empty or unreadable file, missing column), ``Forbidden``
    (a purpose not among the partner's) or ``TooLarge``; nothing is kept then.
    """
    if result_format is not None and result_format not in FORMATS:
        raise InvalidInput(f"format must be one of {', '.join(FORMATS)}.", field="format")
    purpose = purpose or partner.purposes[0]
    if purpose not in partner.purposes:
        raise Forbidden(f"The purpose {purpose!r} is not among this partner's purposes "
                        f"({', '.join(partner.purposes)}).", code="purpose_not_allowed", field="purpose")
    limit = max_bytes or max_upload_bytes()
    batch_id = secrets.token_urlsafe(16)
    folder = batch_dir(batch_id)
    private_dir(batches_dir())  # var/batches and its parents under the data home: 0700
    folder.mkdir(mode=0o700)
    try:
        part = folder / "upload.part"
        digest, size, head = hashlib.sha256(), 0, b""
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            while block := stream.read(1 << 20):
                size += len(block)
                if size > limit:
                    raise TooLarge(limit)
                if len(head) < 4:
                    head += block[:4]
                digest.update(block)
                out.write(block)
        if size == 0:
            raise InvalidInput("The file is empty.", field="file")
        fmt = "parquet" if head[:4] == b"PAR1" else "csv"
        path = folder / f"input.{fmt}"
        os.replace(part, path)
        _check_structure(path, fmt)
        now = utcnow()
        conn.execute(match_batches.insert().values(
            batch_id=batch_id, partner=partner.client_id, purpose=purpose, input_format=fmt,
            result_format=result_format or fmt, input_size=size, input_sha256=digest.hexdigest(), status="queued",
            created_at=now, updated_at=now))
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return {"batch_id": batch_id, "status": "queued"}


# ------------------------------------------------------------------------------------ reading


def _own(conn: sa.Connection, partner: str, batch_id: str) -> sa.Row:
    row = None
    if isinstance(batch_id, str) and _ID.match(batch_id):
        row = conn.execute(sa.select(match_batches).where(match_batches.c.batch_id == batch_id,
                                                          match_batches.c.partner == partner)).first()
    if row is None:
        raise NotFound("No such batch.", field="batch_id")
    return row


def _job(conn: sa.Connection, row) -> sa.Row | None:
    if row.job_id is not None:
        return conn.execute(sa.select(match_jobs).where(match_jobs.c.job_id == row.job_id)).first()
    if row.status == "queued":
        return None
    return conn.execute(sa.select(match_jobs).where(
        match_jobs.c.partner == row.partner,
        match_jobs.c.output_path == str(result_path(row).resolve())[-500:])
        .order_by(match_jobs.c.job_id.desc()).limit(1)).first()


def view(conn: sa.Connection, row) -> dict:
    job = _job(conn, row)
    done = job.rows_done if job is not None else 0
    total = row.rows_total
    out = {"batch_id": row.batch_id, "status": row.status, "purpose": row.purpose,
           "input_format": row.input_format, "result_format": row.result_format, "input_size": row.input_size,
           "input_sha256": row.input_sha256, "rows_total": total, "rows_done": done,
           "progress": (1.0 if row.status == "done" else round(min(done / total, 1.0), 4) if total else 0.0),
           "created_at": row.created_at.isoformat(), "finished_at": row.finished_at and row.finished_at.isoformat(),
           "summary": None, "error": row.error}
    if row.status == "done" and job is not None:
        out["summary"] = {"match": job.matched, "mismatch": job.mismatched, "not_found": job.not_found,
                          "invalid": job.invalid}
    return out


def status(conn: sa.Connection, partner: str, batch_id: str) -> dict:
    return view(conn, _own(conn, partner, batch_id))


def list_batches(conn: sa.Connection, partner: str, limit: int = 100) -> list[dict]:
    query = sa.select(match_batches).where(match_batches.c.partner == partner)
    rows = conn.execute(query.order_by(match_batches.c.created_at.desc(), match_batches.c.batch_id)
                        .limit(limit)).all()
    return [view(conn, r) for r in rows]


def result_file(conn: sa.Connection, partner: str, batch_id: str) -> tuple[Path, str]:
    """(path, media type) of a finished batch's result; ``Conflict`` while it is not done."""
    row = _own(conn, partner, batch_id)
    if row.status != "done":
        raise Conflict(f"The batch is {row.status}: its result is not ready.", code="batch_not_done",
                       field="batch_id")
    path = result_path(row)
    if not path.is_file():
        raise NotFound("The result of this batch was deleted.", field="batch_id")
    return path, MEDIA_TYPES[row.result_format]


def delete(conn: sa.Connection, partner: str, batch_id: str) -> None:
    """Remove a finished (done or failed) batch's files; its record stays (the audit)."""
    row = _own(conn, partner, batch_id)
    if row.status not in ("done", "failed"):
        raise Conflict(f"The batch is {row.status}: only a finished batch can be deleted.", code="batch_not_done",
                       field="batch_id")
    shutil.rmtree(batch_dir(row.batch_id), ignore_errors=True)


# ------------------------------------------------------------------------------------ the runner


def claim(engine: sa.Engine, owner: str, lease_seconds: int = LEASE_SECONDS) -> str | None:
    """Take the oldest queued batch, or a running one whose lease expired; its id, or None."""
    b = match_batches
    now = utcnow()
    free = sa.or_(b.c.status == "queued", sa.and_(b.c.status == "running", b.c.lease_until < now))
    with UnitOfWork(engine).begin() as conn:
        ids = conn.execute(sa.select(b.c.batch_id).where(free).order_by(b.c.created_at).limit(10)).scalars().all()
        for batch_id in ids:
            taken = conn.execute(b.update().where(b.c.batch_id == batch_id, free).values(
                status="running", lease_owner=owner[:64], lease_until=now + dt.timedelta(seconds=lease_seconds),
                attempts=b.c.attempts + 1, updated_at=now)).rowcount
            if taken == 1:
                return batch_id
    return None


def _renew(engine: sa.Engine, batch_id: str, owner: str, lease_seconds: int) -> None:
    b = match_batches
    with UnitOfWork(engine).begin() as conn:
        kept = conn.execute(b.update().where(b.c.batch_id == batch_id, b.c.lease_owner == owner).values(
            lease_until=utcnow() + dt.timedelta(seconds=lease_seconds), updated_at=utcnow())).rowcount
    if kept != 1:
        raise LeaseLost(batch_id)


class LeaseLost(Exception):
    """Another runner took the batch (this one stalled past its lease): stop without touching it."""


def count_rows(path: Path, fmt: str) -> int:
    if fmt == "parquet":
        return pq.ParquetFile(path).metadata.num_rows
    rows = 0
    try:
        reader = pacsv.open_csv(path, read_options=pacsv.ReadOptions(block_size=1 << 24),
                                convert_options=pacsv.ConvertOptions(include_columns=["pid"],
                                                                     column_types={"pid": pa.string()}))
        for batch in reader:
            rows += batch.num_rows
    except (pa.ArrowException, UnicodeDecodeError):  # Arrow's message quotes the row: not passed on
        raise InvalidInput(f"The file cannot be read after row {rows}: a row has the wrong number of fields, "
                           "a broken quote or bytes that are not UTF-8.", field="file") from None
    return rows


def _safe_error(exc: BaseException) -> str:
    """The refusal without any quoted content of the file (Arrow quotes rows in its messages)."""
    if isinstance(exc, RegistryError):
        return re.sub(r"\s*\(.*", ".", exc.message).rstrip(".") + "."
    return "The batch could not be processed (internal error); ask the operator."


def run(engine: sa.Engine, batch_id: str, owner: str, *, lease_seconds: int = LEASE_SECONDS,
        chunk_rows: int = matching.CHUNK_ROWS, after_chunk=None, today: dt.date | None = None) -> dict:
    """Run a claimed batch to the end (resuming its job), then feed the ladder for a telco."""
    b = match_batches
    with UnitOfWork(engine).read() as conn:
        row = conn.execute(sa.select(b).where(b.c.batch_id == batch_id)).one()
    if row.status == "done":
        return finish_ladder(engine, batch_id, today=today)
    try:
        if row.rows_total is None:
            total = count_rows(input_path(row), row.input_format)
            with UnitOfWork(engine).begin() as conn:
                conn.execute(b.update().where(b.c.batch_id == batch_id).values(rows_total=total))

        def chunk_done(index: int, rows_done: int) -> None:
            _renew(engine, batch_id, owner, lease_seconds)
            if after_chunk:
                after_chunk(index, rows_done)

        summary = matching.match_file(engine, input_path(row), result_path(row), row.partner, chunk_rows=chunk_rows,
                                      actor=f"partner:{row.partner}", purpose=row.purpose, after_chunk=chunk_done,
                                      write_summary=False)  # the status answer has it
    except LeaseLost:
        log.warning("batch lease lost to another runner")
        return {"batch_id": batch_id, "status": "running"}
    except (RegistryError, pa.ArrowException, OSError) as exc:
        _fail(engine, batch_id, owner, _safe_error(exc))
        return {"batch_id": batch_id, "status": "failed"}
    except Exception as exc:  # noqa: BLE001 - recorded as failed, never a crash loop on one bad batch
        log.warning("batch failed: %s", type(exc).__name__)
        _fail(engine, batch_id, owner, _safe_error(exc))
        return {"batch_id": batch_id, "status": "failed"}
    now = utcnow()
    with UnitOfWork(engine).begin() as conn:
        conn.execute(b.update().where(b.c.batch_id == batch_id).values(
            status="done", job_id=summary["job_id"], rows_total=summary["rows"], lease_owner=None, lease_until=None,
            finished_at=now, updated_at=now))
    return finish_ladder(engine, batch_id, today=today)


def finish_ladder(engine: sa.Engine, batch_id: str, *, today: dt.date | None = None) -> dict:
    """Feed a done telco batch to the ladder once (idempotent if interrupted half-way)."""
    b = match_batches
    with UnitOfWork(engine).read() as conn:
        row = conn.execute(sa.select(b).where(b.c.batch_id == batch_id)).one()
    out = {"batch_id": batch_id, "status": row.status}
    if row.status != "done" or row.ladder_done:
        return out
    out["ladder"] = ladder.record_batch(engine, row.job_id, today=today)
    with UnitOfWork(engine).begin() as conn:
        conn.execute(b.update().where(b.c.batch_id == batch_id).values(ladder_done=True, updated_at=utcnow()))
    return out


def _fail(engine: sa.Engine, batch_id: str, owner: str, error: str) -> None:
    b = match_batches
    with UnitOfWork(engine).begin() as conn:
        conn.execute(b.update().where(b.c.batch_id == batch_id, b.c.lease_owner == owner).values(
            status="failed", error=error[:500], lease_owner=None, lease_until=None, finished_at=utcnow(),
            updated_at=utcnow()))


def run_pending(engine: sa.Engine, owner: str | None = None, *, stop: threading.Event | None = None,
                **kw) -> list[dict]:
    """Run every batch there is to run now (queued, or abandoned by a dead runner), then telco
    batches whose ladder step was interrupted; the results, one per batch."""
    owner = owner or f"{os.uname().nodename}:{os.getpid()}:{threading.get_ident()}"
    done: list[dict] = []
    while not (stop and stop.is_set()):
        batch_id = claim(engine, owner, kw.get("lease_seconds", LEASE_SECONDS))
        if batch_id is None:
            break
        done.append(run(engine, batch_id, owner, **kw))
    with UnitOfWork(engine).read() as conn:
        left = conn.execute(sa.select(match_batches.c.batch_id).where(
            match_batches.c.status == "done", match_batches.c.ladder_done.is_(False))).scalars().all()
    for batch_id in left:
        done.append(finish_ladder(engine, batch_id, today=kw.get("today")))
    return done


def runner_loop(engine: sa.Engine, stop: threading.Event, poll_seconds: float = 2.0) -> None:
    """The background loop beside the API: run what is pending, then wait a little."""
    while not stop.is_set():
        try:
            run_pending(engine, stop=stop)
        except Exception as exc:  # noqa: BLE001 - a loop survives its errors
            log.warning("batch runner: %s", type(exc).__name__)
        stop.wait(poll_seconds)


def ladder_loop(engine: sa.Engine, stop: threading.Event, poll_seconds: float = 3600.0) -> None:
    """Advance the ladder once a day (checked hourly; ``advance`` is idempotent within a day)."""
    last: dt.date | None = None
    while not stop.is_set():
        today = vietnam_date()
        if today != last:
            try:
                with UnitOfWork(engine).begin() as conn:
                    ladder.advance(conn, today)
                last = today
            except Exception as exc:  # noqa: BLE001
                log.warning("ladder advance: %s", type(exc).__name__)
        stop.wait(poll_seconds)

