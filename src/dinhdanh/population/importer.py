"""Bulk import of people from CSV or Parquet into the register.

Rows are validated a batch at a time with Arrow compute (vectorised, no per-row Python on the hot
path); rows that fail go to a rejects file naming row, field and reason, the rest load. Each batch
commits together with the job's checkpoint (``import_jobs.rows_done``), so a killed import resumes
at the first row not committed, and the same file run again (same SHA-256) adds nothing twice.

The rows are written through the driver directly (``executemany`` on SQLite, ``COPY`` on
PostgreSQL): the ORM's per-value processing would cost more than the whole validation.

Bulk mode (``population.bulk``; ``bulk=True``, ``--bulk``, or chosen when the SQLite register is
empty, not open elsewhere, and the file has more than 50,000 rows): the whole file in ONE
transaction, the secondary indexes of ``persons`` dropped first and rebuilt (then ``ANALYZE``)
before COMMIT, foreign keys checked once at the end, ``synchronous=OFF`` and a rollback journal
instead of WAL for the load only (pages appended to empty tables are never journaled, so the
journal costs next to nothing and keeps the load atomic). Same validation, rejects and rows as the
normal path; a PID repeated in the file fails the whole load (``Conflict``), where the normal path
rejects the repeat. Crash story: the job is marked ``bulk`` ("bulk load incomplete") in a commit of
its own before the load; a process killed during the load leaves a hot journal that SQLite plays
back at the next open, so the register is exactly as before the load, still marked: ``dinhdanh
serve`` refuses to start on it, and running the same import again loads it whole (the mark goes
with that load's COMMIT). A machine crash under ``synchronous=OFF`` may damage the file: the rerun's
``PRAGMA quick_check`` refuses it, and the copy from before the load (an empty register) is
restored. Nothing is ever served half-loaded.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import sqlalchemy as sa

from dinhdanh import places
from dinhdanh.ids import names
from dinhdanh.population.tables import import_jobs, import_links
from dinhdanh.registry.errors import Conflict, InvalidInput
from dinhdanh.registry.tables import events, former_pids, households, persons
from dinhdanh.store.base import UTCDateTime, utcnow
from dinhdanh.store.unit_of_work import UnitOfWork

REQUIRED = ("pid", "full_name", "date_of_birth", "sex", "province_code", "commune_code")
OPTIONAL = (
    "other_names", "place_of_birth", "birth_registration_code", "hometown", "ethnicity", "religion",
    "nationality", "blood_type", "old_id_number", "father_pid", "mother_pid", "spouse_pid",
    "household_number", "relation_to_head", "address", "current_address", "marital_status", "status",
    "date_of_death", "phone", "email",
)
FIELDS = REQUIRED + OPTIONAL
# Present in generated files, and not read: the register derives them from full_name.
DERIVED = ("surname", "middle_name", "given_name")
KNOWN = FIELDS + DERIVED
BATCH_ROWS = 50_000

_RELATIONS = ("head", "spouse", "child", "parent", "grandchild", "sibling", "other")
_BLOOD = ("O+", "O-", "A+", "A-", "B+", "B-", "AB+", "AB-")
_NAME_RE = r"^[\pL\pM]+(?:[ '\-.’][\pL\pM]+)*$"
_TEXT_LIMITS = {"other_names": 200, "place_of_birth": 200, "hometown": 200, "ethnicity": 40, "religion": 40,
                "household_number": 20, "address": 200, "current_address": 200}


@dataclass
class ImportReport:
    job_id: int
    source: str
    status: str  # done / already_done
    rows: int = 0  # rows in the file
    loaded: int = 0
    rejected: int = 0
    skipped: int = 0  # already in the register (by PID)
    resumed_from: int = 0
    unresolved_links: int = 0
    rejects_path: str | None = None
    ignored_columns: list[str] = field(default_factory=list)
    seconds: float = 0.0
    mode: str = "normal"  # normal / bulk (population.bulk)
    # bulk mode: where the writer's time went (seconds): waiting for rows, appending them, and the
    # end (foreign-key check, indexes, statistics, commit)
    phases: dict[str, float] | None = None

    def as_dict(self) -> dict:
        return asdict(self)


# ---------------------------------------------------------------------------------------- reading


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class _Source:
    """A file's header, row count and batches; refuses what is not a readable table at all."""

    def __init__(self, path: Path):
        self.path = path
        suffix = path.suffix.lower()
        if not path.is_file():
            raise InvalidInput(f"No such file: {path}", field="file")
        if suffix not in (".csv", ".parquet"):
            raise InvalidInput(f"Unsupported file type {suffix!r}: use .csv or .parquet.", field="file")
        self.kind = suffix[1:]
        if self.kind == "parquet":
            try:
                self._pq = pq.ParquetFile(path)
            except Exception as exc:  # pyarrow raises several types for a corrupt file
                raise InvalidInput(f"Not a readable Parquet file: {exc}", field="file") from None
            self.columns = list(self._pq.schema_arrow.names)
            self.rows = self._pq.metadata.num_rows
        else:
            with path.open(encoding="utf-8-sig", newline="") as f:
                try:
                    header = next(csv.reader(f), None)
                except (UnicodeDecodeError, csv.Error) as exc:
                    raise InvalidInput(f"The CSV header cannot be read: {exc}", field="file") from None
            if not header:
                raise InvalidInput("The CSV file is empty: it has no header row.", field="file")
            self.columns = [h.strip() for h in header]
            self.rows = self._check_csv()
        missing = [c for c in REQUIRED if c not in self.columns]
        if missing:
            raise InvalidInput(f"The file lacks the required column(s): {', '.join(missing)}.", field="file")
        dupes = sorted({c for c in self.columns if self.columns.count(c) > 1})
        if dupes:
            raise InvalidInput(f"The file repeats the column(s): {', '.join(dupes)}.", field="file")
        self.used = [c for c in self.columns if c in FIELDS]
        self.ignored = [c for c in self.columns if c not in KNOWN]

    def _csv_reader(self):
        return pacsv.open_csv(
            self.path,
            read_options=pacsv.ReadOptions(block_size=8 << 20, column_names=self.columns, skip_rows=1),
            convert_options=pacsv.ConvertOptions(
                column_types={c: pa.string() for c in self.columns}, strings_can_be_null=True,
                null_values=[""], include_columns=[c for c in self.columns if c in FIELDS],
            ),
        )

    def _check_csv(self) -> int:
        """One pass over the whole file before anything is written: a broken file changes nothing."""
        rows = 0
        try:
            for batch in self._csv_reader():
                rows += batch.num_rows
        except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
            # the parser quotes the offending row: keep its complaint, not the personal data
            problem = re.sub(r"(got \d+): .*$", r"\1", str(exc).splitlines()[0])
            raise InvalidInput(f"The CSV file is malformed after data row {rows}: {problem}",
                               field="file") from None
        return rows

    def batches(self, skip: int, first: int | None = None) -> Iterator[tuple[int, pa.Table]]:
        """(index of the batch's first data row, batch) from row ``skip`` on, BATCH_ROWS each; with
        ``first``, the batches grow from that many rows, doubling, up to BATCH_ROWS (a pipeline
        whose next stage waits for the first batch starts sooner)."""
        size = min(first or BATCH_ROWS, BATCH_ROWS)
        if self.kind == "parquet":
            stream = (pa.Table.from_batches([b]) for b in
                      self._pq.iter_batches(batch_size=BATCH_ROWS, columns=self.used))
        else:
            stream = (pa.Table.from_batches([b]) for b in self._csv_reader())
        position = 0  # data rows read from the stream so far
        buffer: list[pa.Table] = []
        buffered = 0
        start = skip
        for table in stream:
            end = position + table.num_rows
            if end <= skip:
                position = end
                continue
            if position < skip:
                table = table.slice(skip - position)
            position = end
            buffer.append(table)
            buffered += table.num_rows
            while buffered >= size:
                merged = pa.concat_tables(buffer)
                yield start, merged.slice(0, size).combine_chunks()
                start += size
                rest = merged.slice(size)
                buffer, buffered = [rest], rest.num_rows
                size = min(size * 2, BATCH_ROWS)
        if buffered:
            yield start, pa.concat_tables(buffer).combine_chunks()


# ------------------------------------------------------------------------------------- validation


def _iso(dates: pa.Array) -> pa.Array:
    """Dates as ISO 8601 text (YYYY-MM-DD), as the register stores them: Arrow's cast writes exactly
    that, eight times faster than its ``strftime`` (which formats each value through a time zone
    library)."""
    return dates.cast(pa.string())


def _has_nul(values: pa.Array) -> bool:
    """Whether any value holds a NUL character: one look at the text the values span (the usual
    answer, no, without searching value by value)."""
    if len(values) == 0 or values.null_count == len(values):
        return False
    _, offsets, data = values.buffers()
    width = np.int64 if pa.types.is_large_string(values.type) else np.int32
    bounds = np.frombuffer(offsets, dtype=width)[[values.offset, values.offset + len(values)]]
    text = np.frombuffer(data, dtype=np.uint8)[bounds[0]:bounds[1]] if data is not None else np.empty(0, np.uint8)
    return bool(np.count_nonzero(text) < len(text))


def _string(table: pa.Table, name: str) -> pa.Array:
    n = table.num_rows
    if name not in table.column_names:
        return pa.nulls(n, pa.string())
    col = table.column(name).combine_chunks()
    if pa.types.is_date(col.type):
        return _iso(col)
    if not pa.types.is_string(col.type) and not pa.types.is_large_string(col.type):
        try:
            col = col.cast(pa.string())
        except pa.ArrowNotImplementedError:
            return pa.array([None if v is None else repr(v) for v in col.to_pylist()], pa.string())
    return _blank_as_null(col.cast(pa.string()))


def _blank_as_null(col: pa.Array) -> pa.Array:
    """Empty and whitespace-only values as null: what a spreadsheet leaves in a cell it shows empty.
    Two tests per value, no new text (trimming each value to compare it with "" made a copy of every
    column); the column itself when nothing is blank, the usual case."""
    blank = pc.or_(pc.utf8_is_space(col), pc.equal(pc.binary_length(col), 0))
    return pc.if_else(blank, pa.scalar(None, pa.string()), col) if pc.any(blank).as_py() else col


def _nfc(values: pa.Array) -> pa.Array:
    """NFC (Arrow's kernel: cheaper than asking Python whether each value already is)."""
    return pc.utf8_normalize(values, form="NFC")


_SEPARATORS = r"[\s\-'’.,_]+"  # as names.fold: they separate words like spaces


def _fold_words(words: pa.Array) -> pa.Array:
    """Each text NFD-decomposed, its marks dropped, đ/Đ as d, lower-cased (the letters of ``names.fold``)."""
    key = pc.replace_substring_regex(pc.utf8_normalize(words, form="NFD"), r"\pM", "")
    return pc.utf8_lower(pc.replace_substring(pc.replace_substring(key, "đ", "d"), "Đ", "d"))


def _fold(full_names: pa.Array) -> pa.Array:
    """``names.fold`` done with Arrow kernels; rows that leave ASCII take the Python path.

    The letters are folded once for each distinct word of the batch (a batch of 50,000 names holds a
    few thousand: Vietnamese names share their surnames, middle names and given names), then the
    words joined by single spaces. A word that folds to nothing (marks alone, after a separator)
    would leave two spaces: then the whole names are folded instead, as one text each."""
    words = pc.split_pattern_regex(full_names, _SEPARATORS)
    distinct = pc.dictionary_encode(pc.list_flatten(words))
    folded = _fold_words(distinct.dictionary)
    if pc.any(pc.and_(pc.equal(folded, ""), pc.not_equal(distinct.dictionary, ""))).as_py():
        key = _fold_words(full_names)
        key = pc.utf8_trim_whitespace(pc.replace_substring_regex(key, _SEPARATORS, " "))
    else:
        rebuilt = pa.ListArray.from_arrays(words.offsets, pc.take(folded, distinct.indices),
                                           mask=pc.is_null(words))
        key = pc.utf8_trim_whitespace(pc.binary_join(rebuilt, " "))  # a separator at either end: an empty word
    odd = pc.invert(pc.string_is_ascii(key))
    if pc.any(odd).as_py():
        values = key.to_pylist()
        for i in np.flatnonzero(pc.fill_null(odd, False).to_numpy(zero_copy_only=False)):
            values[i] = names.fold(full_names[i].as_py())
        key = pa.array(values, pa.string())
    return key


class _Rejects:
    """First failing check per row: field and reason."""

    def __init__(self, n: int):
        self.bad = np.zeros(n, dtype=bool)
        self.field = np.full(n, None, dtype=object)
        self.reason = np.full(n, None, dtype=object)

    def add(self, bad: pa.Array | np.ndarray, field: str, reason: str) -> None:
        if isinstance(bad, (pa.Array, pa.ChunkedArray)):
            if not pc.any(bad).as_py():  # the usual case: no row fails this check
                return
            bad = pc.fill_null(bad, False).to_numpy(zero_copy_only=False)
        sel = bad & ~self.bad
        if sel.any():
            self.field[sel] = field
            self.reason[sel] = reason
            self.bad |= sel

    @property
    def ok(self) -> np.ndarray:
        return ~self.bad


def _date(col: pa.Array) -> pa.Array:
    """ISO text -> date32; anything else -> null."""
    shaped = pc.match_substring_regex(col, r"^\d{4}-\d{2}-\d{2}$")
    parsed = pc.strptime(pc.if_else(shaped, col, pa.scalar(None, pa.string())), format="%Y-%m-%d", unit="s",
                         error_is_null=True)
    return pc.cast(parsed, pa.date32())


def _validate(t: pa.Table, retired: set[str], today: dt.date):
    """Normalised columns of the batch and the rejects; nothing here touches the database."""
    n = t.num_rows
    r = _Rejects(n)
    col = {name: _string(t, name) for name in FIELDS}

    def required(name: str) -> None:
        r.add(pc.is_null(col[name]), name, "missing")

    def pattern(name: str, regex: str, reason: str) -> None:
        r.add(pc.invert(pc.match_substring_regex(col[name], regex)), name, reason)

    def one_of(name: str, allowed, reason: str) -> None:
        outside = pc.invert(pc.is_in(col[name], pa.array(list(allowed))))
        r.add(pc.and_(pc.is_valid(col[name]), outside), name, reason)

    required("pid")
    pattern("pid", r"^\d{12}$", "not 12 digits")
    if len(pc.unique(col["pid"])) != n:  # rare: find every occurrence after the first
        _, first = np.unique(col["pid"].to_numpy(zero_copy_only=False).astype(str), return_index=True)
        repeated = np.ones(n, bool)
        repeated[first] = False
        r.add(repeated, "pid", "the same PID appears earlier in the batch")
    if retired:
        r.add(pc.is_in(col["pid"], pa.array(list(retired))), "pid", "a retired PID, never reused")

    full = _nfc(pc.fill_null(col["full_name"], ""))
    if pc.any(pc.match_substring_regex(full, r"^\s|\s$|\s\s|[^\S ]")).as_py():
        full = pc.utf8_trim_whitespace(pc.replace_substring_regex(full, r"\s+", " "))
    required("full_name")
    r.add(pc.greater(pc.utf8_length(full), 100), "full_name", "longer than 100 characters")
    r.add(pc.invert(pc.match_substring_regex(full, _NAME_RE)), "full_name",
          "not a name (letters, single spaces, hyphens, apostrophes)")

    dob = _date(col["date_of_birth"])
    required("date_of_birth")
    r.add(pc.is_null(dob), "date_of_birth", "not a date written YYYY-MM-DD")
    r.add(pc.or_(pc.less(dob, pa.scalar(dt.date(1900, 1, 1))), pc.greater(dob, pa.scalar(today))),
          "date_of_birth", "outside 1900-01-01 .. today")
    required("sex")
    one_of("sex", ("male", "female"), "must be male or female")
    required("province_code")
    one_of("province_code", places.PROVINCES, "not a 2025 province code")
    required("commune_code")
    one_of("commune_code", places.COMMUNES, "not a 2025 commune code")
    commune_codes = pa.array(list(places.COMMUNES))
    commune_province = pa.array([c.province_code for c in places.COMMUNES.values()])
    province_of_commune = pc.take(commune_province, pc.index_in(col["commune_code"], commune_codes))
    r.add(pc.not_equal(province_of_commune, col["province_code"]), "commune_code",
          "the commune is not in the province given")

    for name in FIELDS:
        if _has_nul(col[name]):
            r.add(pc.match_substring(col[name], "\x00"), name, "contains a NUL character")
    for name, limit in _TEXT_LIMITS.items():
        r.add(pc.greater(pc.utf8_length(col[name]), limit), name, f"longer than {limit} characters")
    pattern("birth_registration_code", r"^\d{3}$", "not a three-digit place code")
    pattern("nationality", r"^[A-Z]{3}$", "not three capital letters (ISO 3166 alpha-3)")
    one_of("blood_type", _BLOOD, "not a blood type (O+, A-, AB+, ...)")
    pattern("old_id_number", r"^(\d{9}|\d{12})$", "not 9 or 12 digits")
    for kin in ("father_pid", "mother_pid", "spouse_pid"):
        pattern(kin, r"^\d{12}$", "not 12 digits")
        r.add(pc.equal(col[kin], col["pid"]), kin, "the person's own PID")
    one_of("relation_to_head", _RELATIONS, "not one of " + ", ".join(_RELATIONS))
    one_of("marital_status", ("single", "married", "divorced", "widowed"),
           "must be single, married, divorced or widowed")
    one_of("status", ("alive", "dead", "missing"), "must be alive, dead or missing")
    dod = _date(col["date_of_death"])
    r.add(pc.and_(pc.is_valid(col["date_of_death"]), pc.is_null(dod)), "date_of_death",
          "not a date written YYYY-MM-DD")
    r.add(pc.or_(pc.less(dod, dob), pc.greater(dod, pa.scalar(today))), "date_of_death",
          "before the date of birth or after today")
    pattern("phone", r"^0\d{9}$", "not 10 digits starting with 0")
    pattern("email", r"^[^@\s]+@[^@\s]+\.[^@\s]+$", "not an e-mail address")
    col["full_name"], col["date_of_birth"], col["date_of_death"] = full, dob, dod
    return col, r


# ---------------------------------------------------------------------------------------- writing


class _Writer:
    """Writes persons and households for one back-end, inside the caller's transaction."""

    def __init__(self, conn: sa.Connection):
        self.conn = conn
        self.postgres = conn.dialect.name == "postgresql"
        self.now = utcnow()
        # the text SQLAlchemy itself stores for a UTC datetime on SQLite (so comparisons order right)
        self.now_value = self.now.isoformat() if self.postgres else UTCDateTime().bind_processor(conn.dialect)(self.now)

    def _where_in(self, select: str, column: str, values: list[str]) -> list[tuple]:
        """Rows of ``select`` whose ``column`` is one of ``values`` (through the driver: these lists
        are long, and compiling them through SQLAlchemy costs more than the query)."""
        rows: list[tuple] = []
        if self.postgres:
            for i in range(0, len(values), 50_000):
                rows += self.conn.exec_driver_sql(f"{select} WHERE {column} = ANY(%s)", (values[i:i + 50_000],)).all()
            return rows
        for i in range(0, len(values), 5000):
            chunk = values[i:i + 5000]
            rows += self.conn.exec_driver_sql(f"{select} WHERE {column} IN ({', '.join('?' * len(chunk))})",
                                              tuple(chunk)).all()
        return rows

    def lookup_pids(self, values: list[str]) -> dict[str, int]:
        return dict(self._where_in("SELECT pid, person_id FROM persons", "pid", values))

    def new_person_ids(self, n: int) -> np.ndarray:
        if self.postgres:
            ids = self.conn.exec_driver_sql(
                "SELECT nextval(pg_get_serial_sequence('persons', 'person_id')) FROM generate_series(1, %(n)s)",
                {"n": n}).scalars().all()
            return np.array(ids, dtype=np.int64)
        top = self.conn.execute(sa.select(sa.func.coalesce(sa.func.max(persons.c.person_id), 0))).scalar_one()
        return np.arange(top + 1, top + 1 + n, dtype=np.int64)

    def _ids_of(self, numbers: list[str]) -> list[tuple]:
        return self._where_in("SELECT number, household_id, head_id FROM households", "number", numbers)

    def households(self, first_rows: dict[str, tuple], heads: dict[str, int]) -> dict[str, int]:
        """Household ids by number; new households are founded with their head when it is known."""
        existing = self._ids_of(sorted(first_rows))
        found = {num: hid for num, hid, _ in existing}
        headless = [(heads[num], hid) for num, hid, head in existing if head is None and num in heads]
        mark = "%s" if self.postgres else "?"
        if headless:
            self.conn.exec_driver_sql(f"UPDATE households SET head_id = {mark} WHERE household_id = {mark}",
                                      headless)
        missing = [num for num in first_rows if num not in found]
        if missing:
            now = self.now if self.postgres else self.now_value
            rows = [(num, heads.get(num), *first_rows[num], now) for num in missing]
            columns = "households (number, head_id, province_code, commune_code, address, created_at)"
            if self.postgres:  # COPY, as the persons: the import writes with COPY all the way
                cursor = self.conn.connection.driver_connection.cursor()
                with cursor.copy(f"COPY {columns} FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            else:
                self.conn.exec_driver_sql(f"INSERT INTO {columns} VALUES ({', '.join([mark] * 6)})", rows)
            found.update((num, hid) for num, hid, _ in self._ids_of(missing))
        return found

    def persons(self, table: pa.Table) -> None:
        names_ = table.column_names
        if self.postgres:
            buf = io.BytesIO()
            pacsv.write_csv(table, buf, pacsv.WriteOptions(include_header=False))
            cursor = self.conn.connection.driver_connection.cursor()
            with cursor.copy(f"COPY persons ({', '.join(names_)}) FROM STDIN (FORMAT csv)") as copy:
                copy.write(buf.getbuffer())
            return
        # a column with one value in the whole batch (the load's time, "VNM", an absent optional
        # field) is written once into the statement, not converted and bound row by row
        values, columns = [], []
        for column in table.columns:
            literal = _literal(_one_value(column))
            values.append(literal or "?")
            if literal is None:
                columns.append(column.to_pylist())
        cursor = self.conn.connection.driver_connection.cursor()
        # a row may name a relative further down the batch: check foreign keys at commit
        cursor.execute("PRAGMA defer_foreign_keys = ON")
        rows = zip(*columns) if columns else [()] * table.num_rows  # one row: every column is "constant"
        cursor.executemany(f"INSERT INTO persons ({', '.join(names_)}) VALUES ({', '.join(values)})", rows)
        cursor.close()


_VARIES = object()


def _one_value(column: pa.Array | pa.ChunkedArray):
    """The value every row of ``column`` holds (None: all null), or ``_VARIES``."""
    if column.null_count == len(column):
        return None
    if column.null_count or pc.count_distinct(column).as_py() != 1:
        return _VARIES
    return column[0].as_py()


def _literal(value) -> str | None:
    """An SQL literal for ``_one_value``'s answer (NULL, an integer, a text), or None: bind it."""
    if value is None:
        return "NULL"
    if isinstance(value, int) and not isinstance(value, bool):
        return str(int(value))
    if isinstance(value, str) and "\x00" not in value:
        return "'" + value.replace("'", "''") + "'"
    return None  # _VARIES, or a kind written through a parameter


def _checked(t: pa.Table, start: int, retired: set[str], today: dt.date
             ) -> tuple[dict[str, pa.Array], list[tuple[int, str, str]]]:
    """The batch's valid rows (normalised columns) and its rejects (file row, field, reason)."""
    col, r = _validate(t, retired, today)
    ok = r.ok
    rejects = [(start + int(i) + 1, r.field[i], r.reason[i]) for i in np.flatnonzero(~ok)]
    mask = pa.array(ok)
    return {k: pc.filter(v, mask) for k, v in col.items()}, rejects


def _ids_in_pid_order(order: pa.Array, ascending_ids: np.ndarray) -> np.ndarray:
    """Each row's id, in the batch's order, when a batch's people are numbered in the order of their
    PIDs (``order``: the rows' indices sorted by PID; ``ascending_ids``: the batch's new ids, smallest
    first); the rows are then written in ``order``.

    Written so, each row goes after the last in the table (ids ascending) and the batch's PIDs go
    into ``UNIQUE (pid)``'s index in one sweep instead of at random places: PIDs are random, and on
    SQLite random inserts into that index were a third of the cost of appending a person (measured in
    docs/benchmarks.md). Both import paths number so, and give the same register."""
    ids = np.empty(len(ascending_ids), dtype=np.int64)
    ids[order.to_numpy()] = ascending_ids
    return ids


def _residences(col: dict[str, pa.Array], ids: np.ndarray) -> tuple[list, dict[str, tuple], dict[str, int]]:
    """Household numbers per row; each household's residence from its first member; heads by number."""
    numbers = col["household_number"].to_pylist()
    first_rows: dict[str, tuple] = {}
    heads: dict[str, int] = {}
    for num, prov, com, addr, relation, person_id in zip(
            numbers, col["province_code"].to_pylist(), col["commune_code"].to_pylist(), col["address"].to_pylist(),
            col["relation_to_head"].to_pylist(), ids.tolist()):
        if num is None:
            continue
        if num not in first_rows:
            first_rows[num] = (prov, com, addr)
        if relation == "head":
            heads.setdefault(num, person_id)
    return numbers, first_rows, heads


def _relatives(col: dict[str, pa.Array], ids: np.ndarray, known: dict[str, int], job_id: int
               ) -> tuple[dict[str, pa.Array], list[dict]]:
    """Relatives' person ids where already known, and links to resolve later for the others."""
    links = []
    kin_ids = {}
    for kin, relation in (("father_pid", "father"), ("mother_pid", "mother"), ("spouse_pid", "spouse")):
        values = col[kin].to_pylist()
        resolved = [known.get(v) if v else None for v in values]
        links += [{"job_id": job_id, "person_id": int(ids[i]), "relation": relation, "relative_pid": v}
                  for i, (v, got) in enumerate(zip(values, resolved)) if v and got is None]
        kin_ids[relation] = pa.array(resolved, pa.int64())
    return kin_ids, links


def _person_rows(col: dict[str, pa.Array], ids: np.ndarray, household_ids: pa.Array, kin_ids: dict[str, pa.Array],
                 now_value) -> pa.Table:
    """The ``persons`` rows of the batch, column by column, as the register stores them."""
    n = len(ids)
    dob = col["date_of_birth"]
    pid_place = pc.utf8_slice_codeunits(col["pid"], 0, 3)
    return pa.table({
        "person_id": pa.array(ids),
        "pid": col["pid"],
        "full_name": col["full_name"],
        "name_key": _fold(col["full_name"]),
        "other_names": col["other_names"],
        "date_of_birth": _iso(dob),
        "birth_year": pc.year(dob),
        "sex": col["sex"],
        "place_of_birth": col["place_of_birth"],
        "birth_registration_code": pc.coalesce(col["birth_registration_code"], pid_place),
        "hometown": col["hometown"], "ethnicity": col["ethnicity"], "religion": col["religion"],
        "nationality": pc.coalesce(col["nationality"], pa.scalar("VNM")),
        "blood_type": col["blood_type"], "old_id_number": col["old_id_number"],
        "father_id": kin_ids["father"], "mother_id": kin_ids["mother"], "spouse_id": kin_ids["spouse"],
        "household_id": household_ids,
        "relation_to_head": pc.if_else(pc.is_null(household_ids), pa.scalar(None, pa.string()),
                                       col["relation_to_head"]),
        "province_code": col["province_code"], "commune_code": col["commune_code"],
        "address": col["address"], "current_address": col["current_address"],
        "marital_status": pc.coalesce(col["marital_status"], pa.scalar("single")),
        "status": pc.coalesce(col["status"], pa.scalar("alive")),
        "date_of_death": _iso(col["date_of_death"]),
        "phone": col["phone"], "email": col["email"],
        "created_at": pa.array([now_value] * n),
        "updated_at": pa.array([now_value] * n),
        "version": pa.array(np.ones(n, dtype=np.int32)),
    })


def _load_batch(conn: sa.Connection, job_id: int, start: int, t: pa.Table, retired: set[str],
                today: dt.date) -> tuple[int, int, int, list[tuple[int, str, str]]]:
    """Validate and write one batch; returns loaded, rejected, skipped and the rejects."""
    w = _Writer(conn)
    col, rejects = _checked(t, start, retired, today)
    pids = col["pid"].to_pylist()
    kin_pids = {p for k in ("father_pid", "mother_pid", "spouse_pid") for p in col[k].to_pylist() if p}
    known = w.lookup_pids(sorted(set(pids) | kin_pids))
    fresh = np.array([p not in known for p in pids], dtype=bool)
    skipped = int((~fresh).sum())
    col = {k: pc.filter(v, pa.array(fresh)) for k, v in col.items()}
    n = len(col["pid"])
    if n == 0:
        return 0, len(rejects), skipped, rejects
    order = pc.sort_indices(col["pid"])
    ids = _ids_in_pid_order(order, np.sort(w.new_person_ids(n)))
    batch_ids = dict(zip(col["pid"].to_pylist(), ids.tolist()))
    known.update(batch_ids)

    # households: found by number, or founded from their first member's residence
    numbers, first_rows, heads = _residences(col, ids)
    hh = w.households(first_rows, heads)
    household_ids = pa.array([hh.get(num) if num else None for num in numbers], pa.int64())
    kin_ids, links = _relatives(col, ids, known, job_id)
    w.persons(_person_rows(col, ids, household_ids, kin_ids, w.now_value).take(order))
    if links:
        conn.execute(import_links.insert(), links)
    return n, len(rejects), skipped, rejects


def _resolve_links(conn: sa.Connection, job_id: int) -> int:
    """Link relatives listed after the person who names them; returns how many stay unresolved."""
    rel = persons.alias("rel")
    found = conn.execute(
        sa.select(import_links.c.person_id, import_links.c.relation, rel.c.person_id.label("relative_id"))
        .join(rel, rel.c.pid == import_links.c.relative_pid).where(import_links.c.job_id == job_id)
    ).all()
    for relation in ("father", "mother", "spouse"):
        rows = [{"p": f.person_id, "r": f.relative_id} for f in found if f.relation == relation]
        if rows:
            conn.execute(persons.update().where(persons.c.person_id == sa.bindparam("p"))
                         .values({f"{relation}_id": sa.bindparam("r")}), rows)
    total = conn.execute(sa.select(sa.func.count()).select_from(import_links)
                         .where(import_links.c.job_id == job_id)).scalar_one()
    conn.execute(import_links.delete().where(import_links.c.job_id == job_id))
    return total - len(found)


def _rewrite_rejects(path: Path, keep_before: int) -> None:
    """On resume, drop rejects of rows that were not committed (they are validated again)."""
    if not path.exists():
        return
    with path.open(encoding="utf-8", newline="") as f:
        rows = [r for r in csv.reader(f)]
    with path.open("w", encoding="utf-8", newline="") as f:
        out = csv.writer(f)
        for r in rows:
            if r and (r[0] == "row" or int(r[0]) <= keep_before):
                out.writerow(r)


def _bulk_load(engine: sa.Engine, job, source: _Source, retired: set[str], today: dt.date, rejects_file: Path,
               report: ImportReport, progress, bulk: bool | None) -> bool:
    """Load in the bulk mode when asked or when it fits; False: the normal path is to load."""
    from dinhdanh.population import bulk as bulk_mode

    after_crash = job.status == bulk_mode.INCOMPLETE  # rolled back by SQLite: the register is as before it
    if bulk is False:
        if after_crash:
            bulk_mode.mark(engine, job.job_id, "running")
        return False
    if engine.dialect.name != "sqlite":
        if bulk:
            raise InvalidInput("The bulk mode is for the SQLite register; PostgreSQL loads with COPY.", field="bulk")
        return False
    if not after_crash and job.rows_done:
        if bulk:
            raise Conflict("This file's import was begun by the normal path: it resumes there (--no-bulk).",
                           field="bulk")
        return False
    if bulk is None and not after_crash and source.rows <= bulk_mode.AUTO_ROWS:
        return False
    with engine.connect() as conn:
        empty = bulk_mode.register_is_empty(conn)
    if not empty and not after_crash:
        if bulk:
            raise Conflict("The bulk mode loads an empty register only; this one holds people already.",
                           field="bulk")
        return False
    try:
        bulk_mode.load(engine, job.job_id, source, retired, today, rejects_file, report, progress, after_crash)
    except bulk_mode.NotAlone as exc:
        if bulk or after_crash:
            raise Conflict(f"A bulk load needs the register alone: {exc} (stop the server, or load with "
                           "--no-bulk).", field="bulk") from None
        return False
    return True


def import_population(engine: sa.Engine, path: str | Path, rejects_path: str | Path | None = None,
                      progress: Callable[[int, int], None] | None = None,
                      today: dt.date | None = None, bulk: bool | None = None) -> ImportReport:
    """Load ``path`` (CSV or Parquet) into the register; see the module's notes on resuming.

    ``bulk``: True loads in the bulk mode (``population.bulk``: SQLite, empty register; a
    ``Conflict`` otherwise), False never does, None (default) does when the register is SQLite,
    empty, not open elsewhere, and the file has more than ``bulk.AUTO_ROWS`` rows.
    """
    import time

    started = time.perf_counter()
    path = Path(path)
    source = _Source(path)
    rejects_file = Path(rejects_path) if rejects_path else path.with_name(path.name + ".rejects.csv")
    digest = _sha256(path)
    today = today or dt.date.today()
    with UnitOfWork(engine).begin() as conn:  # (SQLite: the write lock first; a read upgraded beside a
        # server's writes was refused at once)
        job = conn.execute(sa.select(import_jobs).where(import_jobs.c.source_sha256 == digest)).first()
        if job is None:
            job_id = conn.execute(import_jobs.insert().values(
                source_sha256=digest, source_name=str(path)[-300:], status="running",
                rejects_path=str(rejects_file)[-300:], started_at=utcnow(),
            ).returning(import_jobs.c.job_id)).scalar_one()
            conn.execute(events.insert().values(kind="import", recorded_at=utcnow(), actor=f"import:{job_id}",
                                                reason=f"bulk import of {path.name}", payload={"job_id": job_id}))
            job = conn.execute(sa.select(import_jobs).where(import_jobs.c.job_id == job_id)).one()
        retired = set(conn.execute(sa.select(former_pids.c.pid)).scalars())
    report = ImportReport(job_id=job.job_id, source=str(path), status=job.status, rows=source.rows,
                          loaded=job.loaded, rejected=job.rejected, skipped=job.skipped, resumed_from=job.rows_done,
                          rejects_path=job.rejects_path, ignored_columns=source.ignored)
    if job.status == "done":
        report.status = "already_done"
        return report
    rejects_file = Path(job.rejects_path)
    if job.rows_done:
        _rewrite_rejects(rejects_file, job.rows_done)
    else:
        rejects_file.parent.mkdir(parents=True, exist_ok=True)
        with rejects_file.open("w", encoding="utf-8", newline="") as f:
            csv.writer(f).writerow(["row", "field", "reason"])
    if progress:
        progress(job.rows_done, source.rows)
    if _bulk_load(engine, job, source, retired, today, rejects_file, report, progress, bulk):
        report.status, report.mode = "done", "bulk"
        report.seconds = round(time.perf_counter() - started, 3)
        return report
    for start, table in source.batches(job.rows_done):
        with UnitOfWork(engine).begin() as conn:
            loaded, rejected, skipped, rejects = _load_batch(conn, job.job_id, start, table, retired, today)
            report.loaded += loaded
            report.rejected += rejected
            report.skipped += skipped
            if rejects:
                with rejects_file.open("a", encoding="utf-8", newline="") as f:
                    csv.writer(f).writerows(rejects)
            conn.execute(import_jobs.update().where(import_jobs.c.job_id == job.job_id).values(
                rows_done=start + table.num_rows, loaded=report.loaded, rejected=report.rejected,
                skipped=report.skipped))
        if progress:
            progress(start + table.num_rows, source.rows)
    with UnitOfWork(engine).begin() as conn:
        report.unresolved_links = _resolve_links(conn, job.job_id)
        # the planner picks indexes from statistics, and a bulk load changes the data most
        conn.exec_driver_sql("ANALYZE persons" if conn.dialect.name == "postgresql" else "PRAGMA optimize")
        conn.execute(import_jobs.update().where(import_jobs.c.job_id == job.job_id)
                     .values(status="done", finished_at=utcnow()))
    report.status = "done"
    report.seconds = round(time.perf_counter() - started, 3)
    return report
