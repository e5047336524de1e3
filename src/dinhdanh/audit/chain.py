"""The access log's hash chain: the canonical encoding of an entry, appending, and verifying.

An entry's ``hash`` is the lowercase hex SHA-256 of the UTF-8 bytes of this JSON object, keys
sorted, no spaces (``json.dumps(..., sort_keys=True, separators=(",", ":"), ensure_ascii=False)``)::

    {"action": str, "actor": str, "at": "YYYY-MM-DDTHH:MM:SS.ffffff+00:00" (UTC),
     "fields": str | null (the column's JSON text as stored), "outcome": str,
     "person_id": int, "prev_hash": str, "purpose": str}

``prev_hash`` is the ``hash`` of the entry before it in ``access_id`` order; the first entry's is
``GENESIS`` (64 zeros). ``access_id`` itself is not hashed (it is only known after the insert):
order is carried by the links. ``audit_chain_head`` holds the last link.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from operator import itemgetter

import sqlalchemy as sa

from dinhdanh.audit.tables import access_log, audit_chain_head

GENESIS = "0" * 64
HASHED = ("action", "actor", "at", "fields", "outcome", "person_id", "prev_hash", "purpose")


def iso_utc(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).isoformat(timespec="microseconds")


def canonical(entry: Mapping) -> bytes:
    """The bytes an entry's hash covers (``entry`` has the keys of ``HASHED``)."""
    payload = {k: entry[k] for k in HASHED}
    payload["at"] = iso_utc(payload["at"])
    payload["person_id"] = int(payload["person_id"])
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def entry_hash(entry: Mapping) -> str:
    return hashlib.sha256(canonical(entry)).hexdigest()


def link(rows: list[dict], prev_hash: str) -> str:
    """Fill ``prev_hash`` and ``hash`` of ``rows`` (same actor, time, action, purpose, fields and
    outcome; only ``person_id`` differs) chained from ``prev_hash``; returns the last hash.

    The per-call constant part of the encoding is built once: the bytes are the same as
    ``canonical`` (tests/unit/test_audit_encoding.py checks it)."""
    if not rows:
        return prev_hash
    first = rows[0]
    dumps = json.dumps
    head = ('{"action":%s,"actor":%s,"at":%s,"fields":%s,"outcome":%s,"person_id":'
            % (dumps(first["action"], ensure_ascii=False), dumps(first["actor"], ensure_ascii=False),
               dumps(iso_utc(first["at"])), dumps(first["fields"], ensure_ascii=False),
               dumps(first["outcome"], ensure_ascii=False))).encode()
    tail = (',"purpose":%s}' % dumps(first["purpose"], ensure_ascii=False)).encode()
    sha256 = hashlib.sha256
    for row in rows:
        row["prev_hash"] = prev_hash
        prev_hash = sha256(b'%s%d,"prev_hash":"%s"%s' % (head, row["person_id"], prev_hash.encode(), tail)).hexdigest()
        row["hash"] = prev_hash
    return prev_hash


def append(conn: sa.Connection, rows: list[dict]) -> None:
    """Insert ``rows`` (see ``link``) at the end of the chain, in one executemany.

    The head row is locked FOR UPDATE (PostgreSQL) before its hash is read, so concurrent appends
    queue and each links to the one before; SQLite's single writer serialises them anyway (a
    transaction that read an older snapshot cannot write: it gets SQLITE_BUSY, never a fork)."""
    if not rows:
        return
    prev = conn.execute(_LOCK_HEAD).scalar_one_or_none()
    if prev is None:  # the first append ever: create the head (a concurrent first append waits on it)
        _create_head(conn)
        prev = conn.execute(_LOCK_HEAD).scalar_one()
    last = link(rows, prev)
    if len(rows) == 1:  # the usual case (one person read): its key comes back from the insert
        last_id = conn.execute(_INSERT_ONE, rows[0]).inserted_primary_key[0]
    else:
        if len(rows) >= BULK:
            _insert_bulk(conn, rows)
        else:
            conn.execute(access_log.insert(), rows)
        last_id = conn.execute(sa.select(sa.func.max(access_log.c.access_id))).scalar_one()
    conn.execute(_MOVE_HEAD, {"last_id": last_id, "last": last})


BULK = 1000  # from this many entries at once (a batch's chunk), through the driver
_COLUMNS = ("at", "actor", "person_id", "action", "purpose", "fields", "outcome", "prev_hash", "hash")


def _insert_bulk(conn: sa.Connection, rows: list[dict]) -> None:
    """The rows through the driver, in the caller's transaction (``COPY`` on PostgreSQL,
    ``executemany`` on SQLite): SQLAlchemy's per-value processing costs more than the insert.
    ``at`` is written as SQLAlchemy itself writes a UTC datetime, so both paths read back alike."""
    cursor = conn.connection.driver_connection.cursor()
    if conn.dialect.name == "postgresql":
        with cursor.copy(f"COPY access_log ({', '.join(_COLUMNS)}) FROM STDIN") as copy:
            for r in rows:
                copy.write_row(tuple(r[c] for c in _COLUMNS))
        return
    stamps: dict[dt.datetime, str] = {}  # a batch's entries share one time: format it once

    def stamp(at: dt.datetime) -> str:
        text = stamps.get(at)
        if text is None:
            text = stamps[at] = at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        return text

    rest = itemgetter(*_COLUMNS[1:])
    values = ((stamp(r["at"]), *rest(r)) for r in rows)
    cursor.executemany(f"INSERT INTO access_log ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})",
                       values)
    cursor.close()


# built once: every partner check appends (building a statement costs more than running it)
_INSERT_ONE = access_log.insert()
_LOCK_HEAD = sa.select(audit_chain_head.c.last_hash).where(audit_chain_head.c.id == 1).with_for_update()
_MOVE_HEAD = audit_chain_head.update().where(audit_chain_head.c.id == 1).values(
    last_access_id=sa.bindparam("last_id"), last_hash=sa.bindparam("last"))


def _create_head(conn: sa.Connection) -> None:
    values = {"id": 1, "last_access_id": 0, "last_hash": GENESIS}
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    conn.execute(insert(audit_chain_head).values(values).on_conflict_do_nothing())


# ----------------------------------------------------------------------------------- verifying


@dataclass
class Verdict:
    entries: int
    first_broken: dict | None

    @property
    def valid(self) -> bool:
        return self.first_broken is None

    def as_dict(self) -> dict:
        return {"entries": self.entries, "valid": self.valid, "first_broken": self.first_broken}


def verify(engine: sa.Engine, batch: int = 2000) -> Verdict:
    """Walk the chain in ``access_id`` order (streamed: constant memory) and report the first entry
    whose ``prev_hash`` is not the previous entry's hash or whose hash does not match its fields.

    The head is read by the same statement (one snapshot, on both back-ends): the walk must end at
    the entry it names with the hash it holds, else the tail was cut or rows were appended past it."""
    head = sa.select(audit_chain_head.c.last_access_id, audit_chain_head.c.last_hash).subquery()
    query = (sa.select(access_log.c.access_id, *(access_log.c[k] for k in HASHED), access_log.c.hash,
                       head.c.last_access_id, head.c.last_hash)
             .select_from(access_log.outerjoin(head, sa.true())).order_by(access_log.c.access_id))
    n, expected, last_id, head_id, head_hash = 0, GENESIS, 0, 0, GENESIS
    with engine.connect() as conn, conn.begin():  # a transaction, for PostgreSQL's server-side cursor
        for row in conn.execution_options(yield_per=batch).execute(query):
            n += 1
            head_id, head_hash = row.last_access_id or 0, row.last_hash or GENESIS
            if row.access_id > head_id:
                return Verdict(n, {"access_id": row.access_id, "reason": "beyond the chain head"})
            if row.prev_hash != expected:
                return Verdict(n, {"access_id": row.access_id, "reason": "prev_hash does not link"})
            if row.hash != entry_hash(row._mapping):
                return Verdict(n, {"access_id": row.access_id, "reason": "hash mismatch"})
            expected, last_id = row.hash, row.access_id
        if n == 0:  # no entries: the head (if any) must be the genesis one
            with engine.connect() as conn:
                h = conn.execute(sa.select(audit_chain_head)).first()
            head_id, head_hash = (h.last_access_id, h.last_hash) if h else (0, GENESIS)
    if (last_id, expected) != (head_id, head_hash):
        return Verdict(n, {"access_id": head_id, "reason": "chain head does not match"})
    return Verdict(n, None)
