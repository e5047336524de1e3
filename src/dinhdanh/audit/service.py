"""Recording each read of a person's data: who, whom, what, for what purpose, when, which fields,
with what outcome. An entry is inserted in the transaction of the read it records, unsequenced; the
sequencer (``audit.sequencer``) puts it in the log's Merkle tree within seconds."""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Iterable
from operator import itemgetter

import sqlalchemy as sa

from dinhdanh.audit.tables import access_log
from dinhdanh.store.base import utcnow

# Why an officer reads a record; the API refuses any other purpose.
PURPOSES = {
    "administration": "Quản lý hành chính về dân cư",
    "residence": "Đăng ký, quản lý cư trú",
    "civil_status": "Đăng ký hộ tịch",
    "identity_card": "Cấp, quản lý thẻ căn cước",
    "investigation": "Điều tra, xử lý vi phạm pháp luật",
    "public_service": "Giải quyết thủ tục hành chính",
    "data_quality": "Làm sạch dữ liệu (đúng, đủ, sạch, sống)",
    "identity_check": "Xác thực thẻ căn cước gắn chip",
}
DEFAULT_PURPOSE = "administration"
# Why a partner (exchange.partners) checks a person's data; a partner is registered with some of these.
PARTNER_PURPOSES = {
    "subscriber_standardisation": "Chuẩn hóa thông tin thuê bao di động",
    "customer_verification": "Xác minh thông tin khách hàng (ngân hàng)",
    "public_service": "Giải quyết thủ tục hành chính",
    "identity_verification": "Xác thực thông tin công dân",
}


def record_access(conn: sa.Connection, actor: str, person_ids: Iterable[int], action: str, purpose: str, *,
                  fields: Iterable[str] | None = None, outcome: str = "ok") -> None:
    """Log that ``actor`` did ``action`` on each of ``person_ids`` for ``purpose`` (one entry each,
    appended to the chain in one insert); ``fields`` names what was read (None: not stated)."""
    now = utcnow()
    fields_text = None if fields is None else json.dumps(list(fields), ensure_ascii=False)
    rows = [{"at": now, "actor": actor, "person_id": int(pid), "action": action, "purpose": purpose,
             "fields": fields_text, "outcome": outcome} for pid in person_ids]
    if len(rows) >= BULK:
        _insert_bulk(conn, rows)
    elif rows:
        conn.execute(_INSERT, rows)  # nothing shared is read or locked: readers never wait on each other


_INSERT = access_log.insert()  # built once: every partner check appends
BULK = 1000  # from this many entries at once (a batch's chunk), through the driver
_COLUMNS = ("at", "actor", "person_id", "action", "purpose", "fields", "outcome")


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
    stamp = rows[0]["at"].astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")  # one call, one time
    rest = itemgetter(*_COLUMNS[1:])
    cursor.executemany(f"INSERT INTO access_log ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})",
                       ((stamp, *rest(r)) for r in rows))
    cursor.close()


MAX_LOG_PAGE = 100


def _who(actor: str, partners: dict[str, str]) -> dict:
    kind, _, ref = actor.partition(":")
    if kind == "partner":
        return {"kind": "partner", "label": actor, "name": partners.get(ref)}
    if kind in ("officer", "cli"):
        return {"kind": "officer", "label": actor, "name": None}  # an officer is named by label, not in person
    return {"kind": "other", "label": actor, "name": None}


def access_log_of(conn: sa.Connection, person_id: int, *, limit: int = 20, before: int | None = None) -> dict:
    """The entries about ``person_id``, newest first: a page of ``limit`` with access ids below
    ``before``, and the ``next_before`` to ask for the next page (None at the end)."""
    from dinhdanh.oidc.tables import oidc_clients

    limit = max(1, min(limit, MAX_LOG_PAGE))
    q = sa.select(access_log.c.access_id, access_log.c.at, access_log.c.actor, access_log.c.action,
                  access_log.c.purpose, access_log.c.fields, access_log.c.outcome, access_log.c.leaf_index,
                  access_log.c.leaf_hash).where(access_log.c.person_id == person_id)
    if before is not None:
        q = q.where(access_log.c.access_id < before)
    rows = conn.execute(q.order_by(access_log.c.access_id.desc()).limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    partner_ids = {r.actor.partition(":")[2] for r in rows if r.actor.startswith("partner:")}
    partners = dict(conn.execute(sa.select(oidc_clients.c.client_id, oidc_clients.c.name)
                                 .where(oidc_clients.c.client_id.in_(partner_ids))).all()) if partner_ids else {}
    items = [{"access_id": r.access_id, "at": r.at.isoformat(), "who": _who(r.actor, partners), "action": r.action,
              "purpose": {"code": r.purpose, "text": PURPOSES.get(r.purpose) or PARTNER_PURPOSES.get(r.purpose)},
              "fields": None if r.fields is None else json.loads(r.fields), "outcome": r.outcome,
              # where it sits in the transparency log, once sequenced: provable with the public proofs
              "leaf_index": r.leaf_index,
              "leaf_hash": base64.b64encode(r.leaf_hash).decode() if r.leaf_hash is not None else None}
             for r in rows]
    return {"items": items, "next_before": rows[-1].access_id if more else None}
