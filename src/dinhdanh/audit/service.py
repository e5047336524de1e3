"""Recording each read of a person's data: who, whom, what, for what purpose, when, which fields,
with what outcome. An entry is inserted in the transaction of the read it records, unsequenced; the
sequencer (``audit.sequencer``) puts it in the log's Merkle tree within seconds."""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Iterable

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
    in the order given, in the caller's transaction); ``fields`` names what was read (None: not
    stated). Nothing shared is read or locked: readers never wait on each other."""
    for name, value in (("actor", actor), ("action", action), ("purpose", purpose), ("outcome", outcome)):
        if len(value) > _LENGTHS[name]:  # PostgreSQL would refuse it; SQLite would keep it: neither
            raise ValueError(f"access log {name} longer than {_LENGTHS[name]} characters")
    now = utcnow()
    fields_text = None if fields is None else json.dumps(list(fields), ensure_ascii=False)
    ids = [int(pid) for pid in person_ids]
    if len(ids) >= BULK:
        _insert_bulk(conn, ids, {"at": now, "actor": actor, "action": action, "purpose": purpose,
                                 "fields": fields_text, "outcome": outcome})
    elif ids:
        conn.execute(_INSERT, [{"at": now, "actor": actor, "person_id": pid, "action": action, "purpose": purpose,
                                "fields": fields_text, "outcome": outcome} for pid in ids])


_INSERT = access_log.insert()  # built once: every partner check appends
_LENGTHS = {name: access_log.c[name].type.length for name in ("actor", "action", "purpose", "outcome")}
BULK = 1000  # from this many entries at once (a batch's chunk), in one statement
_SHARED = ("at", "actor", "action", "purpose", "fields", "outcome")
_COLUMNS = ", ".join(("person_id", *_SHARED))
# One statement for a whole chunk: the person ids go in as one parameter (a JSON array for SQLite,
# an array for PostgreSQL) and the database makes the rows. Building them in Python (a dict, then a
# tuple per entry) cost more than the insert: 4.2 s of a million-row match, now about 1.5 s.
_BULK_SQLITE = (f"INSERT INTO access_log ({_COLUMNS}) SELECT value, {', '.join('?' * len(_SHARED))} "
                "FROM json_each(?)")
_BULK_POSTGRES = (f"INSERT INTO access_log ({_COLUMNS}) SELECT id, {', '.join(['%s'] * len(_SHARED))} "
                  "FROM unnest(%s::bigint[]) WITH ORDINALITY AS ids(id, n) ORDER BY n")


def _insert_bulk(conn: sa.Connection, ids: list[int], shared: dict) -> None:
    """One entry per id, in order, through the driver in the caller's transaction. ``at`` is
    written as SQLAlchemy itself writes a UTC datetime, so both paths read back alike."""
    cursor = conn.connection.driver_connection.cursor()
    try:
        if conn.dialect.name == "postgresql":
            cursor.execute(_BULK_POSTGRES, (*(shared[c] for c in _SHARED), ids))
            return
        stamp = shared["at"].astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        cursor.execute(_BULK_SQLITE, (stamp, *(shared[c] for c in _SHARED[1:]), json.dumps(ids)))
    finally:
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
