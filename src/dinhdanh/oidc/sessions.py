"""Browser sessions at the provider.

The cookie holds an opaque random id and its HMAC (the cookie key is a provider secret sealed by
the vault), so a forged cookie is refused before any lookup; the server keeps the SHA-256 of the id
with the account, the level proved, the authentication methods and time, and a CSRF token that
every form carries. A session starts anonymous (the login form needs a CSRF token); logging in
replaces it by a new one, so an id planted before the login is worth nothing after it.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

import sqlalchemy as sa

from dinhdanh.oidc import keys
from dinhdanh.oidc.tables import oidc_sessions
from dinhdanh.store.base import utcnow
from dinhdanh.store.vault import Vault

COOKIE = "dd_session"
ANONYMOUS_TTL = dt.timedelta(hours=1)
SESSION_TTL = dt.timedelta(hours=8)


@dataclass(frozen=True)
class Session:
    session_id: int
    sid: str
    csrf: str
    account_id: int | None
    level: int | None
    amr: tuple[str, ...]
    auth_time: dt.datetime | None
    challenge: str | None

    @property
    def authenticated(self) -> bool:
        return self.account_id is not None and self.auth_time is not None


def _sign(key: bytes, raw: str) -> str:
    mac = hmac.new(key, raw.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def _session(row) -> Session:
    return Session(row.session_id, row.sid, row.csrf, row.account_id, row.level, tuple(row.amr or ()),
                   row.auth_time, row.challenge)


def load(conn: sa.Connection, vault: Vault, cookie: str | None, now: dt.datetime | None = None) -> Session | None:
    """The live session named by the cookie value, or None (absent, forged, expired, ended)."""
    if not cookie or len(cookie) > 200 or cookie.count(".") != 1:
        return None
    raw, mac = cookie.split(".")
    if not hmac.compare_digest(_sign(keys.secret(conn, vault, "cookie"), raw).encode(), mac.encode()):
        return None
    row = conn.execute(sa.select(oidc_sessions).where(oidc_sessions.c.id_hash == _digest(raw))).first()
    now = now or utcnow()
    if row is None or row.ended_at is not None or row.expires_at <= now:
        return None
    return _session(row)


def start(conn: sa.Connection, vault: Vault, *, account_id: int | None = None, level: int | None = None,
          amr: list[str] | None = None, now: dt.datetime | None = None) -> tuple[Session, str]:
    """A new session (anonymous, or logged in); returns it and the cookie value to set."""
    now = now or utcnow()
    raw = secrets.token_urlsafe(32)
    ttl = SESSION_TTL if account_id is not None else ANONYMOUS_TTL
    session_id = conn.execute(oidc_sessions.insert().values(
        id_hash=_digest(raw), sid=secrets.token_urlsafe(32)[:43], csrf=secrets.token_urlsafe(32)[:43],
        account_id=account_id, level=level, amr=amr, auth_time=now if account_id is not None else None,
        created_at=now, expires_at=now + ttl,
    ).returning(oidc_sessions.c.session_id)).scalar_one()
    row = conn.execute(sa.select(oidc_sessions).where(oidc_sessions.c.session_id == session_id)).one()
    return _session(row), f"{raw}.{_sign(keys.secret(conn, vault, 'cookie'), raw)}"


def get(conn: sa.Connection, session_id: int) -> Session | None:
    row = conn.execute(sa.select(oidc_sessions).where(oidc_sessions.c.session_id == session_id)).first()
    return None if row is None or row.ended_at is not None else _session(row)


def end(conn: sa.Connection, session_id: int, now: dt.datetime | None = None) -> None:
    conn.execute(oidc_sessions.update().where(oidc_sessions.c.session_id == session_id)
                 .values(ended_at=now or utcnow()))


def end_all(conn: sa.Connection, account_id: int, now: dt.datetime | None = None) -> None:
    conn.execute(oidc_sessions.update().where(oidc_sessions.c.account_id == account_id,
                                              oidc_sessions.c.ended_at.is_(None))
                 .values(ended_at=now or utcnow()))


def by_sid(conn: sa.Connection, sid: str):
    return conn.execute(sa.select(oidc_sessions).where(oidc_sessions.c.sid == sid)).first()


def step_up(conn: sa.Connection, session: Session, method: str, now: dt.datetime | None = None) -> None:
    """The session has proved level 2 (a second factor): ``method`` joins its ``amr``."""
    amr = list(dict.fromkeys([*session.amr, method, "mfa"]))
    conn.execute(oidc_sessions.update().where(oidc_sessions.c.session_id == session.session_id)
                 .values(level=2, amr=amr, auth_time=now or utcnow(), challenge=None))


def set_challenge(conn: sa.Connection, session: Session, challenge: str | None) -> None:
    conn.execute(oidc_sessions.update().where(oidc_sessions.c.session_id == session.session_id)
                 .values(challenge=challenge))


def check_csrf(session: Session | None, token) -> bool:
    return session is not None and isinstance(token, str) and hmac.compare_digest(session.csrf.encode(),
                                                                                    token.encode())
