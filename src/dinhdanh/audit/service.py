"""Recording each read of a person's data: who, whom, what, for what purpose, when."""

from __future__ import annotations

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


def record_access(conn: sa.Connection, actor: str, person_ids: Iterable[int], action: str, purpose: str) -> None:
    now = utcnow()
    rows = [{"at": now, "actor": actor, "person_id": pid, "action": action, "purpose": purpose} for pid in person_ids]
    if rows:
        conn.execute(access_log.insert(), rows)
