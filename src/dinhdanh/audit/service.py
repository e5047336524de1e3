"""Recording each read of a person's data: who, whom, what, for what purpose, when, which fields,
with what outcome. Entries are hash-chained (``audit.chain``)."""

from __future__ import annotations

import json
from collections.abc import Iterable

import sqlalchemy as sa

from dinhdanh.audit.chain import append
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
    append(conn, rows)


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
    from dinhdanh.audit.tables import access_log
    from dinhdanh.oidc.tables import oidc_clients

    limit = max(1, min(limit, MAX_LOG_PAGE))
    q = sa.select(access_log.c.access_id, access_log.c.at, access_log.c.actor, access_log.c.action,
                  access_log.c.purpose, access_log.c.fields, access_log.c.outcome
                  ).where(access_log.c.person_id == person_id)
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
              "fields": None if r.fields is None else json.loads(r.fields), "outcome": r.outcome} for r in rows]
    return {"items": items, "next_before": rows[-1].access_id if more else None}
