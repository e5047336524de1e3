"""Adding officers and recognising them by their API token.

Tokens are 256-bit random strings shown once; only their SHA-256 is stored (a fast hash is enough
for a secret of that entropy, and it keeps the per-request check cheap).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

import sqlalchemy as sa

from dinhdanh import places
from dinhdanh.officers.tables import officers
from dinhdanh.registry.area import Area
from dinhdanh.registry.errors import InvalidInput
from dinhdanh.store.base import utcnow

ROLES = ("national", "province", "commune")
TOKEN_PREFIX = "ddo_"


@dataclass(frozen=True, slots=True)
class Officer:
    officer_id: int
    name: str
    role: str
    area_code: str | None

    @property
    def label(self) -> str:
        return f"officer:{self.officer_id}"

    @property
    def area(self) -> Area:
        if self.role == "commune":
            return Area(commune=self.area_code)
        if self.role == "province":
            return Area(province=self.area_code)
        return Area()


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def add_officer(conn: sa.Connection, name: str, role: str, area_code: str | None) -> tuple[Officer, str]:
    """Create an officer; returns it and its API token (shown once, never stored)."""
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise InvalidInput("The officer's name must be 1 to 100 characters.", field="name")
    if role not in ROLES:
        raise InvalidInput(f"The role must be one of {', '.join(ROLES)}.", field="role")
    if role == "national":
        if area_code not in (None, "", "VN", "00"):
            raise InvalidInput("A national officer has no area.", field="area")
        area_code = None
    elif role == "province":
        area_code = (area_code or "").strip().zfill(2)
        if area_code not in places.PROVINCES:
            raise InvalidInput("The area must be a 2025 province code (two digits, e.g. 79).", field="area")
    else:
        area_code = (area_code or "").strip().zfill(5)
        if area_code not in places.COMMUNES:
            raise InvalidInput("The area must be a 2025 commune code (five digits, e.g. 00070).", field="area")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    officer_id = conn.execute(officers.insert().values(
        name=name, role=role, area_code=area_code, token_hash=_hash(token), created_at=utcnow(),
    ).returning(officers.c.officer_id)).scalar_one()
    return Officer(officer_id, name, role, area_code), token


def officer_by_token(conn: sa.Connection, token: str) -> Officer | None:
    row = conn.execute(
        sa.select(officers).where(officers.c.token_hash == _hash(token), officers.c.active.is_(True))
    ).first()
    return None if row is None else Officer(row.officer_id, row.name, row.role, row.area_code)


DEMO_OFFICER = "Cán bộ demo (quốc gia)"


def ensure_demo_officer(conn: sa.Connection) -> str:
    """The demo's national officer, with a fresh token each start (tokens are stored only hashed)."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    done = conn.execute(officers.update().where(officers.c.name == DEMO_OFFICER, officers.c.role == "national")
                        .values(token_hash=_hash(token), active=True))
    if done.rowcount == 0:
        conn.execute(officers.insert().values(name=DEMO_OFFICER, role="national", area_code=None,
                                              token_hash=_hash(token), created_at=utcnow()))
    return token
