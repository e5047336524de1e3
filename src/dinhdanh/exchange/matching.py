"""Batch matching of a partner's subscriber file against the register (domain s.7).

A telco sends one row per subscription: ``pid``, ``full_name``, ``date_of_birth`` (YYYY-MM-DD)
and optionally ``msisdn`` and ``sex``. Each row gets, in input order, one ``<field>_result`` per
field checked (``match``, ``match_folded`` for a name equal only without diacritics,
``mismatch``, ``missing``), an ``outcome`` (``match`` when every checked field matches exactly,
``mismatch``, ``not_found`` for a PID no person holds or held, ``invalid`` for a malformed PID or
date) and a short ``reason``. Field results are only given for rows whose person was found.

How it runs:

1. A snapshot of the register (every current and former PID with its person's name keys, date
   of birth and sex) goes to a Parquet file, cached per register state (``snapshot_fingerprint``).
   ``match_key`` is computed with Arrow kernels (``exchange.keys``); the folded key is the stored
   ``persons.name_key``.
2. The input is read with Arrow in chunks of ``chunk_rows`` rows; the input names get the same
   two keys, vectorised; DuckDB LEFT JOINs each chunk to the snapshot on ``pid`` and computes the
   results in SQL, ordered by the input row number, into one part file per chunk.
3. After each chunk, ``match_jobs`` records the rows done and the counts in the same commit as
   the part file is complete; a re-run with the same partner, input (path, size, digest of its
   first MiB) and output resumes after the last finished chunk. At the end the parts are joined
   into ``OUT.tmp``, renamed to ``OUT`` in one step, and the summary goes to ``OUT.summary.json``.
   A killed run never leaves a partial ``OUT``.

The job row is also the audit record of the batch: partner, purpose, input, counts, times.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import sqlalchemy as sa

from dinhdanh import config
from dinhdanh.audit.service import record_access
from dinhdanh.exchange import keys
from dinhdanh.exchange.tables import match_jobs
from dinhdanh.registry.errors import Forbidden, InvalidInput
from dinhdanh.store.base import utcnow
from dinhdanh.store.files import private_dir
from dinhdanh.store.unit_of_work import UnitOfWork

__all__ = ["REQUIRED", "OPTIONAL", "PURPOSE", "OUTCOMES", "authorised_partner", "match_file",
           "snapshot_fingerprint", "build_snapshot", "snapshot_file"]

REQUIRED = ("pid", "full_name", "date_of_birth")
OPTIONAL = ("msisdn", "sex")
PURPOSE = "subscriber_standardisation"
PARTNER_SCOPE = "dinhdanh.verify"
OUTCOMES = ("match", "mismatch", "not_found", "invalid")
CHUNK_ROWS = 1_000_000
_CSV_WHOLE = 1 << 30  # CSV files up to this size are read at once (multithreaded), larger ones streamed
_KEYS_VERSION = "keys-3"  # bump when the snapshot's columns or key functions change


# ------------------------------------------------------------------------------------ the partner


def authorised_partner(conn: sa.Connection, client_id: str):
    """The partner's OAuth client, if it may send batches; raises ``Forbidden`` otherwise.

    The client must be an active partner (``exchange.partners``) whose policy includes the
    ``batch`` operation, under an agreement not yet expired, with its client approved.
    """
    from dinhdanh.exchange.partners import active_partner
    from dinhdanh.oidc.clients import load_client

    if not isinstance(client_id, str) or not client_id:
        raise Forbidden("No partner given.", field="partner")
    active_partner(conn, client_id, "batch")
    return load_client(conn, client_id)


# ------------------------------------------------------------------------------------ the snapshot

_SNAPSHOT_SQL = """
SELECT p.pid, 0 AS former, p.full_name, p.name_key, CAST(p.date_of_birth AS VARCHAR(10)) AS dob, p.sex,
       p.person_id, p.province_code, p.commune_code, p.temp_province_code, p.temp_commune_code
FROM persons p
UNION ALL
SELECT f.pid, 1, p.full_name, p.name_key, CAST(p.date_of_birth AS VARCHAR(10)), p.sex, p.person_id,
       p.province_code, p.commune_code, p.temp_province_code, p.temp_commune_code
FROM former_pids f JOIN persons p ON p.person_id = f.person_id
"""
_SNAPSHOT_COLUMNS = ["pid", "former", "full_name", "name_key", "dob", "sex", "person_id",
                     "province", "commune", "temp_province", "temp_commune"]

# the places a person is in (residence and temporary residence), by which a partner's area is applied
SNAPSHOT_SCHEMA = pa.schema([
    ("pid", pa.string()), ("former", pa.bool_()), ("r_mk", pa.string()), ("r_fk", pa.string()),
    ("r_dob", pa.string()), ("r_sex", pa.string()), ("person_id", pa.int64()),
    ("a_province", pa.string()), ("a_commune", pa.string()), ("a_temp_province", pa.string()),
    ("a_temp_commune", pa.string()),
])


def area_filter(area) -> tuple[str, list[str]] | None:
    """The DuckDB condition keeping the snapshot's rows in a partner's area (``registry.area.Area``),
    as ``Area.covers`` does for one person; ``None`` for a national partner. Outside its area a
    person is answered exactly like an unknown PID (``not_found``)."""
    if area.commune is not None:
        return "(a_commune = ? OR a_temp_commune = ?)", [area.commune, area.commune]
    if area.province is not None:
        return "(a_province = ? OR a_temp_province = ?)", [area.province, area.province]
    return None


def snapshot_fingerprint(conn: sa.Connection) -> str:
    """Changes whenever a person or a former PID is added or a change to a record is recorded.

    Index look-ups only (no scan of ``persons``): every change of a record goes through the
    registry's ``events``/``changes`` rows, which is what is watched; an UPDATE made behind the
    registry's back is not seen (delete the cache folder after one).
    """
    persons = conn.exec_driver_sql("SELECT count(*), max(person_id) FROM persons").one()
    former = conn.exec_driver_sql("SELECT count(*) FROM former_pids").scalar()
    event = conn.exec_driver_sql("SELECT max(event_id) FROM events").scalar()
    change = conn.exec_driver_sql("SELECT max(change_id) FROM changes").scalar()
    state = json.dumps([_KEYS_VERSION, *map(str, persons), str(former), str(event), str(change)])
    return hashlib.sha256(state.encode()).hexdigest()


def build_snapshot(conn: sa.Connection) -> pa.Table:
    """Every PID, current and former, with its person's name keys, date of birth and sex."""
    if conn.dialect.name == "postgresql":
        table = _read_postgres(conn)
    else:
        cur = conn.connection.driver_connection.cursor()
        cur.execute(_SNAPSHOT_SQL)
        rows = cur.fetchall()
        cols = list(zip(*rows)) if rows else [()] * len(_SNAPSHOT_COLUMNS)
        types = {"former": pa.int8(), "person_id": pa.int64()}
        table = pa.table({name: pa.array(cols[i], types.get(name, pa.string()))
                          for i, name in enumerate(_SNAPSHOT_COLUMNS)})
    return pa.table({
        "pid": table["pid"], "former": pc.equal(table["former"].cast(pa.int8()), 1),
        "r_mk": keys.match_key(table["full_name"]), "r_fk": table["name_key"],
        "r_dob": table["dob"], "r_sex": table["sex"], "person_id": table["person_id"].cast(pa.int64()),
        "a_province": table["province"], "a_commune": table["commune"],
        "a_temp_province": table["temp_province"], "a_temp_commune": table["temp_commune"],
    }, schema=SNAPSHOT_SCHEMA)


def _read_postgres(conn: sa.Connection) -> pa.Table:
    import io

    buf = io.BytesIO()
    cur = conn.connection.driver_connection.cursor()
    with cur.copy(f"COPY ({_SNAPSHOT_SQL}) TO STDOUT WITH (FORMAT csv, HEADER true)") as copy:
        for block in copy:
            buf.write(block)
    types = {"former": pa.int8(), "person_id": pa.int64()}
    # read in place (getbuffer, not getvalue): a copy of the whole CSV is 0.8 GB more at ten million people
    table = pacsv.read_csv(pa.BufferReader(pa.py_buffer(buf.getbuffer())), convert_options=pacsv.ConvertOptions(
        column_types={n: types.get(n, pa.string()) for n in (
            "pid", "former", "full_name", "name_key", "dob", "sex", "person_id", "province_code", "commune_code",
            "temp_province_code", "temp_commune_code")}))
    return table.rename_columns(_SNAPSHOT_COLUMNS)


def default_cache_dir() -> Path:
    return config.home() / "cache" / "match"


def snapshot_file(engine: sa.Engine, cache_dir: Path | None = None) -> tuple[Path, str, bool]:
    """The snapshot's Parquet file for the register as it stands: (path, fingerprint, was cached).

    Only the newest snapshot is kept; it holds personal data, so it is readable by its owner only.
    """
    cache_dir = Path(cache_dir or default_cache_dir())
    with UnitOfWork(engine).read() as conn:
        fingerprint = snapshot_fingerprint(conn)
        path = cache_dir / f"snapshot-{fingerprint[:32]}.parquet"
        if path.exists():
            return path, fingerprint, True
        table = build_snapshot(conn)
    private_dir(cache_dir)  # snapshots of the register: owner-only
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    pq.write_table(table, tmp, compression="lz4")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    for old in cache_dir.glob("snapshot-*.parquet"):
        if old != path:
            old.unlink(missing_ok=True)
    return path, fingerprint, False


# ------------------------------------------------------------------------------------ the input


class _Input:
    """The partner's file: its columns checked up front, then read in chunks of rows."""

    def __init__(self, path: Path):
        self.path = path
        if not path.is_file():
            raise InvalidInput(f"No such file: {path}", field="file")
        self.size = path.stat().st_size
        suffix = path.suffix.lower()
        if suffix == ".parquet":
            try:
                self._parquet = pq.ParquetFile(path)
            except (pa.ArrowException, OSError) as exc:
                raise InvalidInput(f"{path.name} is not a readable Parquet file ({_short(exc)}).",
                                   field="file") from None
            names = self._parquet.schema_arrow.names
            self.rows: int | None = self._parquet.metadata.num_rows
        elif suffix == ".csv":
            self._parquet = None
            names = self._csv_header()
            self.rows = None
        else:
            raise InvalidInput(f"Unsupported input extension {path.suffix!r}: use .csv or .parquet.", field="file")
        missing = [c for c in REQUIRED if c not in names]
        if missing:
            raise InvalidInput(f"The input has no column {', '.join(missing)} (needs {', '.join(REQUIRED)}).",
                               field=missing[0])
        self.names = names
        self.columns = [c for c in (*REQUIRED, *OPTIONAL) if c in names]

    def _csv_header(self) -> list[str]:
        try:
            with self.path.open(encoding="utf-8-sig", newline="") as f:
                header = next(csv.reader(f), None)
        except (UnicodeDecodeError, csv.Error) as exc:
            raise InvalidInput(f"{self.path.name} is not a UTF-8 CSV file ({_short(exc)}).", field="file") from None
        if not header:
            raise InvalidInput(f"{self.path.name} is empty: it needs a header row.", field="file")
        return [h.strip() for h in header]

    def digest(self) -> str:
        """SHA-256 of the first MiB: enough to tell one batch file from another, cheap on 10 GB."""
        with self.path.open("rb") as f:
            return hashlib.sha256(f.read(1 << 20)).hexdigest()

    def _batches(self) -> Iterator[pa.Table]:
        if self._parquet is not None:
            if self.size <= _CSV_WHOLE:
                yield self._parquet.read(columns=self.columns)
            else:
                for rb in self._parquet.iter_batches(batch_size=1 << 17, columns=self.columns):
                    yield pa.Table.from_batches([rb])
            return
        read = pacsv.ReadOptions(column_names=self.names, skip_rows=1, block_size=1 << 24)
        convert = pacsv.ConvertOptions(include_columns=self.columns,
                                       column_types={c: pa.string() for c in self.columns})
        if self.size <= _CSV_WHOLE:
            yield pacsv.read_csv(self.path, read_options=read, convert_options=convert)
            return
        reader = pacsv.open_csv(self.path, read_options=read, convert_options=convert)
        for rb in reader:
            yield pa.Table.from_batches([rb])

    def chunks(self, chunk_rows: int) -> Iterator[tuple[int, pa.Table]]:
        """(first row, table) for every chunk of ``chunk_rows`` rows; at least one, maybe empty."""
        pending: list[pa.Table] = []
        held = start = 0
        yielded = False
        try:
            for table in self._batches():
                while table.num_rows:
                    take = min(chunk_rows - held, table.num_rows)
                    pending.append(table.slice(0, take))
                    table = table.slice(take)
                    held += take
                    if held == chunk_rows:
                        yield start, pa.concat_tables(pending)
                        yielded = True
                        start += held
                        pending, held = [], 0
        except (pa.ArrowException, OSError, UnicodeDecodeError) as exc:
            raise InvalidInput(f"{self.path.name} cannot be read after row {start + held} ({_short(exc)}).",
                               field="file") from None
        if held or not yielded:
            yield start, (pa.concat_tables(pending) if pending else self._empty())

    def _empty(self) -> pa.Table:
        return pa.table({c: pa.array([], pa.string()) for c in self.columns})


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]


# ------------------------------------------------------------------------------------ one chunk


def _prepare(table: pa.Table, start: int) -> pa.Table:
    """The chunk as DuckDB gets it: row number, text columns, and the two name keys."""
    cols = {"rn": pa.array(range(start, start + table.num_rows), pa.int64())}
    for name in table.column_names:
        col = table[name]
        cols[name] = col if col.type == pa.string() else col.cast(pa.string())
    name = cols["full_name"]
    cols["mk"], odd = keys.match_key_and_odd(name)
    cols["fk"] = keys.fold_fallback(name, odd)  # null where FOLD_SQL (in the query) gives it
    return pa.table(cols)


def _result_sql(has_msisdn: bool, has_sex: bool) -> str:
    sex_in = ("CASE WHEN lower(trim(coalesce(c.sex, ''))) IN ('male', 'm', 'nam') THEN 'male' "
              "WHEN lower(trim(coalesce(c.sex, ''))) IN ('female', 'f', 'nữ', 'nu\u0303', 'nu') THEN 'female' "
              "ELSE lower(trim(coalesce(c.sex, ''))) END") if has_sex else "NULL"
    base = f"""
    WITH j AS (
        SELECT c.rn, c.pid{', c.msisdn' if has_msisdn else ''},
            CASE WHEN trim(coalesce(c.pid, '')) = '' THEN 'missing'
                 WHEN regexp_full_match(c.pid, '[0-9]{{12}}') THEN 'ok' ELSE 'bad' END AS pid_state,
            CASE WHEN trim(coalesce(c.date_of_birth, '')) = '' THEN 'missing'
                 WHEN regexp_full_match(trim(c.date_of_birth), '[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}')
                      AND try_strptime(trim(c.date_of_birth), '%Y-%m-%d') IS NOT NULL THEN 'ok'
                 ELSE 'bad' END AS dob_state,
            trim(coalesce(c.date_of_birth, '')) AS dob_in,
            coalesce(c.mk, '') AS mk, c.fk, {sex_in} AS sex_in,
            s.pid IS NOT NULL AS found, s.former, s.r_mk, s.r_fk, s.r_dob, s.r_sex, s.person_id
        FROM chunk c LEFT JOIN snap s ON s.pid = c.pid
    ), k AS (
        SELECT *,
            CASE WHEN pid_state <> 'ok' OR dob_state = 'bad' THEN 'invalid'
                 WHEN NOT found THEN 'not_found' END AS early,
            CASE WHEN mk = '' THEN 'missing' WHEN mk = r_mk THEN 'match'
                 WHEN coalesce(fk, {keys.FOLD_SQL.format(x="mk")}) = r_fk THEN 'match_folded'
                 ELSE 'mismatch' END AS n_res,
            CASE WHEN dob_state = 'missing' THEN 'missing' WHEN dob_in = r_dob THEN 'match'
                 ELSE 'mismatch' END AS d_res,
            {"CASE WHEN sex_in = '' THEN 'missing' WHEN sex_in = r_sex THEN 'match' ELSE 'mismatch' END"
             if has_sex else "'match'"} AS s_res
        FROM j
    )
    SELECT rn, pid{', msisdn' if has_msisdn else ''},
        CASE WHEN early IS NULL THEN n_res END AS full_name_result,
        CASE WHEN early IS NULL THEN d_res END AS date_of_birth_result,
        {"CASE WHEN early IS NULL THEN s_res END AS sex_result," if has_sex else ""}
        coalesce(early, CASE WHEN n_res = 'match' AND d_res = 'match' AND s_res = 'match'
                             THEN 'match' ELSE 'mismatch' END) AS outcome,
        nullif(CASE
            WHEN early = 'invalid' THEN concat_ws('; ',
                CASE pid_state WHEN 'missing' THEN 'pid is missing'
                               WHEN 'bad' THEN 'pid is not 12 digits' END,
                CASE WHEN dob_state = 'bad' THEN 'date_of_birth is not a date (YYYY-MM-DD)' END)
            WHEN early = 'not_found' THEN 'no person holds or held this pid'
            ELSE concat_ws('; ',
                CASE n_res WHEN 'missing' THEN 'full_name is missing'
                           WHEN 'match_folded' THEN 'full_name matches only without diacritics'
                           WHEN 'mismatch' THEN 'full_name differs' END,
                CASE d_res WHEN 'missing' THEN 'date_of_birth is missing'
                           WHEN 'mismatch' THEN 'date_of_birth differs' END,
                CASE s_res WHEN 'missing' THEN 'sex is missing' WHEN 'mismatch' THEN 'sex differs' END,
                CASE WHEN former THEN 'pid is a former number of this person' END)
        END, '') AS reason,
        CASE WHEN early IS NULL THEN person_id END AS person_id
    FROM k
    """
    return base


def _part_name(index: int, fmt: str) -> str:
    return f"part-{index:06d}.{fmt}"


# ------------------------------------------------------------------------------------ the job


def _find_or_start(engine: sa.Engine, partner: str, source: _Input, out: Path, chunk_rows: int,
                   actor: str, purpose: str = PURPOSE) -> sa.Row:
    digest = source.digest()
    key = dict(partner=partner, input_path=str(source.path.resolve())[-500:], input_size=source.size,
               input_sha256=digest, output_path=str(out.resolve())[-500:])
    with UnitOfWork(engine).begin() as conn:
        job = conn.execute(
            sa.select(match_jobs).where(*(match_jobs.c[k] == v for k, v in key.items()),
                                        match_jobs.c.status.in_(("running", "failed")))
            .order_by(match_jobs.c.job_id.desc())).first()
        if job is None:
            now = utcnow()
            job_id = conn.execute(match_jobs.insert().values(
                **key, purpose=purpose[:40], chunk_rows=chunk_rows, rows_done=0, status="running",
                actor=actor[:60], started_at=now, updated_at=now,
            ).returning(match_jobs.c.job_id)).scalar_one()
        else:
            job_id = job.job_id
            conn.execute(match_jobs.update().where(match_jobs.c.job_id == job_id)
                         .values(status="running", updated_at=utcnow()))
        return conn.execute(sa.select(match_jobs).where(match_jobs.c.job_id == job_id)).one()


def _finish_output(parts: list[Path], out: Path, fmt: str, header: list[str]) -> None:
    """Join the part files into ``out`` through a temporary file renamed at the end."""
    tmp = out.with_name(out.name + ".tmp")
    if fmt == "parquet":
        if len(parts) == 1:
            os.replace(parts[0], tmp)
        else:
            # DuckDB marks a column NOT NULL in a part where it has no null: one nullable schema
            schema = pa.schema([(name, pa.string()) for name in header])
            with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
                for part in parts:
                    pf = pq.ParquetFile(part)
                    for i in range(pf.num_row_groups):
                        writer.write_table(pf.read_row_group(i).cast(schema))
    else:
        with tmp.open("wb") as f:
            f.write((",".join(header) + "\n").encode())
            for part in parts:
                with part.open("rb") as p:
                    shutil.copyfileobj(p, f, 1 << 22)
    os.chmod(tmp, 0o600)  # the result names people: owner-only, whatever the umask
    os.replace(tmp, out)


def match_file(engine: sa.Engine, path: str | Path, out: str | Path, partner: str, *,
               chunk_rows: int = CHUNK_ROWS, cache_dir: Path | None = None, actor: str = "cli",
               threads: int | None = None, after_chunk: Callable[[int, int], None] | None = None,
               purpose: str = PURPOSE, write_summary: bool = True) -> dict:
    """Match ``path`` against the register for ``partner`` and write ``out``; returns the summary,
    also written to ``OUT.summary.json`` unless ``write_summary`` is false (a caller that adds to it).

    ``after_chunk(index, rows_done)`` is called once a chunk is committed (progress, tests).
    Raises ``InvalidInput`` for a file-level problem and ``Forbidden`` for a refused partner.
    """
    import duckdb

    started = time.perf_counter()
    path, out = Path(path), Path(out)
    fmt = out.suffix.lower().lstrip(".")
    if fmt not in ("csv", "parquet"):
        raise InvalidInput(f"Unsupported output extension {out.suffix!r}: use .csv or .parquet.", field="out")
    if chunk_rows < 1:
        raise InvalidInput("chunk_rows must be at least 1.", field="chunk_rows")
    from dinhdanh.exchange.partners import active_partner, area_of

    with UnitOfWork(engine).read() as conn:
        authorised_partner(conn, partner)
        in_area = area_filter(area_of(active_partner(conn, partner, "batch")))
    source = _Input(path)
    if not out.parent.is_dir():
        raise InvalidInput(f"The output folder {out.parent} does not exist.", field="out")
    job = _find_or_start(engine, partner, source, out, chunk_rows, actor, purpose)
    chunk_rows = job.chunk_rows
    parts_dir = out.with_name(f".{out.name}.parts-{job.job_id}")
    parts_dir.mkdir(mode=0o700, exist_ok=True)
    snap_path, fingerprint, cached = snapshot_file(engine, cache_dir)

    has_msisdn, has_sex = "msisdn" in source.columns, "sex" in source.columns
    header = ["pid", *(["msisdn"] if has_msisdn else []), "full_name_result", "date_of_birth_result",
              *(["sex_result"] if has_sex else []), "outcome", "reason"]
    sql = _result_sql(has_msisdn, has_sex)
    fields_checked = ["full_name", "date_of_birth", *(["sex"] if has_sex else [])]
    counts = {"match": job.matched, "mismatch": job.mismatched, "not_found": job.not_found,
              "invalid": job.invalid}
    done = resumed_from = job.rows_done
    audit_seconds = 0.0
    con = duckdb.connect()
    try:
        if threads:
            con.execute(f"SET threads = {int(threads)}")
        if in_area is None:
            con.execute("CREATE TABLE snap AS SELECT * FROM read_parquet(?)", [str(snap_path)])
        else:  # the snapshot is the country's: keep only the partner's area
            con.execute(f"CREATE TABLE snap AS SELECT * FROM read_parquet(?) WHERE {in_area[0]}",
                        [str(snap_path), *in_area[1]])
        index = -1
        for index, (start, table) in enumerate(source.chunks(chunk_rows)):
            if start + table.num_rows <= done and table.num_rows:
                continue  # finished in an earlier run
            chunk = _prepare(table, start)
            con.register("chunk", chunk)
            con.execute(f"CREATE OR REPLACE TEMP TABLE res AS {sql}")
            part = parts_dir / _part_name(index, fmt)
            tmp = part.with_name(part.name + ".tmp")
            options = "FORMAT parquet, COMPRESSION zstd" if fmt == "parquet" else "FORMAT csv, HEADER false"
            con.execute(f"COPY (SELECT * EXCLUDE (rn, person_id) FROM res ORDER BY rn) TO '{_sql_path(tmp)}' "
                        f"({options})")
            got = dict(con.execute("SELECT outcome, count(*) FROM res GROUP BY outcome").fetchall())
            checked = {outcome: [r[0] for r in con.execute(
                "SELECT person_id FROM res WHERE outcome = ? ORDER BY person_id", [outcome]).fetchall()]
                for outcome in ("match", "mismatch")}
            con.unregister("chunk")
            os.replace(tmp, part)
            for k in counts:
                counts[k] += got.get(k, 0)
            done = start + table.num_rows
            audit_started = time.perf_counter()
            with UnitOfWork(engine).begin() as conn:
                # each person checked is told in their data tracker, with the progress: a resumed run
                # neither repeats nor skips an entry (in person order: the log's index grows in order)
                for outcome, person_ids in checked.items():
                    record_access(conn, f"partner:{partner}", person_ids, "batch_match", purpose,
                                  fields=fields_checked, outcome=outcome)
                conn.execute(match_jobs.update().where(match_jobs.c.job_id == job.job_id).values(
                    rows_done=done, matched=counts["match"], mismatched=counts["mismatch"],
                    not_found=counts["not_found"], invalid=counts["invalid"], snapshot=fingerprint,
                    updated_at=utcnow()))
            audit_seconds += time.perf_counter() - audit_started
            if after_chunk:
                after_chunk(index, done)
        n_parts = index + 1
    except BaseException:
        con.close()
        with UnitOfWork(engine).begin() as conn:
            conn.execute(match_jobs.update().where(match_jobs.c.job_id == job.job_id)
                         .values(status="failed", updated_at=utcnow()))
        raise
    con.close()

    parts = [parts_dir / _part_name(i, fmt) for i in range(n_parts)]
    _finish_output(parts, out, fmt, header)
    shutil.rmtree(parts_dir, ignore_errors=True)
    seconds = time.perf_counter() - started
    with UnitOfWork(engine).begin() as conn:
        conn.execute(match_jobs.update().where(match_jobs.c.job_id == job.job_id).values(
            status="done", rows_total=done, finished_at=utcnow(), updated_at=utcnow()))
    summary = {
        "job_id": job.job_id, "partner": partner, "purpose": purpose, "input": str(path), "output": str(out),
        "rows": done, "counts": counts, "resumed_from": resumed_from,
        "snapshot": {"fingerprint": fingerprint[:16], "cached": cached},
        "seconds": round(seconds, 3), "audit_seconds": round(audit_seconds, 3),
        "rows_per_second": round((done - resumed_from) / seconds) if seconds else None,
    }
    if write_summary:
        write_summary_file(out, summary)
    return summary


def write_summary_file(out: Path, summary: dict) -> None:
    """The summary beside the result: ``OUT.summary.json``."""
    path = out.with_name(out.name + ".summary.json")
    path.write_text(json.dumps(summary, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")
