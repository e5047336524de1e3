"""The e-ID app's own login: a session token for ``/api/v1/eid/me``, at the level the login proved.

Not the OIDC provider's sessions (those are ``dinhdanh.oidc``): this is how the app itself talks to
the platform. A login with the passcode alone is level 1; with a device proof over a fresh
challenge (``new_challenge``: 120 s, used once) or a TOTP code, an account at level 2 gets a level-2
session. Tokens are random and stored as SHA-256; a session lasts 30 minutes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

import sqlalchemy as sa

from dinhdanh.eid import auth, locks
from dinhdanh.eid.tables import eid_challenges, eid_devices, eid_sessions
from dinhdanh.registry.errors import RuleViolation
from dinhdanh.store.base import utcnow

SESSION_LIFETIME = dt.timedelta(minutes=30)
CHALLENGE_LIFETIME = dt.timedelta(seconds=120)
TOKEN_PREFIX = "eids_"
APP_CLIENT = "vneid-app"


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def new_challenge(conn: sa.Connection, *, now: dt.datetime | None = None) -> dict:
    now = now or utcnow()
    challenge = auth.new_challenge()
    conn.execute(eid_challenges.delete().where(eid_challenges.c.expires_at < now - dt.timedelta(hours=1)))
    conn.execute(eid_challenges.insert().values(challenge_hash=_hash(challenge), created_at=now,
                                                expires_at=now + CHALLENGE_LIFETIME))
    return {"challenge": challenge, "expires_in": int(CHALLENGE_LIFETIME.total_seconds())}


def _spend_challenge(conn, challenge: str, now: dt.datetime) -> bool:
    done = conn.execute(eid_challenges.update().where(
        eid_challenges.c.challenge_hash == _hash(challenge), eid_challenges.c.used_at.is_(None),
        eid_challenges.c.expires_at > now).values(used_at=now))
    return done.rowcount == 1


class SecondFactorRefused(RuleViolation):
    """A wrong second factor: counted like a wrong passcode (the caller must commit)."""

    code = "second_factor_failed"


def _second_factor(conn, account_id: int, *, totp, device_proof, challenge, now) -> bool | None:
    """None when none was given; True / False for the one given."""
    if device_proof is None and totp is None:
        return None
    if device_proof is not None:
        if challenge is None or not _spend_challenge(conn, challenge, now):
            raise RuleViolation("The challenge is unknown, expired or already used.", code="challenge_invalid",
                                field="challenge")
    return auth.verify_second_factor(conn, account_id, totp=totp, device_proof=device_proof,
                                     challenge=challenge, now=now)


def open_session(conn: sa.Connection, check: auth.PasscodeCheck, *, totp: str | None = None,
                 device_proof: str | None = None, challenge: str | None = None, ip: str | None = None,
                 user_agent: str | None = None, now: dt.datetime | None = None) -> dict:
    """A session for the passcode ``auth.check_login`` checked (with no transaction open, before
    this one), at level 2 with a right second factor on a level-2 account. Refusals are recorded
    in the login history on ``conn``, and second factors counted on it: commit even when it raises."""
    now = now or utcnow()
    try:
        who = auth.login_result(conn, check)
    except auth.LoginRefused as refused:
        if check.account_id is not None:  # the owner's history tells the true cause (a lock), the answer does not
            auth.record_login(conn, check.account_id, client_id=APP_CLIENT, acr=None,
                              outcome=(check.refusal or refused).code, ip=ip, user_agent=user_agent)
        raise
    second = _second_factor(conn, who.account_id, totp=totp, device_proof=device_proof, challenge=challenge,
                            now=now)
    if second is False:
        auth.record_login(conn, who.account_id, client_id=APP_CLIENT, acr=None, outcome="second_factor_failed",
                          ip=ip, user_agent=user_agent)
        refused = auth.temporarily_locked(conn, who.account_id, now)
        if refused is not None:
            raise refused
        raise SecondFactorRefused("The second factor is wrong.",
                                  field="device_proof" if device_proof is not None else "totp")
    level = 2 if second and who.level == 2 else 1
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    conn.execute(eid_sessions.insert().values(token_hash=_hash(token), account_id=who.account_id, level=level,
                                              created_at=now, expires_at=now + SESSION_LIFETIME))
    auth.record_login(conn, who.account_id, client_id=APP_CLIENT, acr=f"level{level}", outcome="success", ip=ip,
                      user_agent=user_agent)
    return {"token": token, "token_type": "Bearer", "level": level, "account_level": who.level,
            "kind": who.kind, "expires_in": int(SESSION_LIFETIME.total_seconds())}


def session_of(conn: sa.Connection, token: str, *, now: dt.datetime | None = None) -> tuple[int, int] | None:
    """(account_id, level) of a live session token, else None."""
    if not isinstance(token, str) or not token.startswith(TOKEN_PREFIX) or len(token) > 100:
        return None
    row = conn.execute(sa.select(eid_sessions.c.account_id, eid_sessions.c.level).where(
        eid_sessions.c.token_hash == _hash(token), eid_sessions.c.revoked_at.is_(None),
        eid_sessions.c.expires_at > (now or utcnow()))).first()
    return None if row is None else (row.account_id, row.level)


def owner_unlock(conn: sa.Connection, check: auth.PasscodeCheck, *, totp: str | None = None,
                 device_proof: str | None = None, challenge: str | None = None, reason: str,
                 now: dt.datetime | None = None) -> dict:
    """The owner lifts a lock they asked for: right passcode (``check``, from ``auth.check_login``),
    and their second factor when they have one."""
    now = now or utcnow()
    account = auth.checked_account(conn, check)
    has_factor = account.totp_secret is not None or conn.execute(
        sa.select(eid_devices.c.device_id).where(eid_devices.c.account_id == account.account_id,
                                                 eid_devices.c.revoked_at.is_(None))).first() is not None
    if has_factor:
        second = _second_factor(conn, account.account_id, totp=totp, device_proof=device_proof,
                                challenge=challenge, now=now)
        if second is None:
            raise RuleViolation("The second factor is required.", code="second_factor_failed", field="totp")
        if not second:
            refused = auth.temporarily_locked(conn, account.account_id, now)
            if refused is not None:
                raise refused
            raise SecondFactorRefused("The second factor is wrong.", field="totp")
    locks.unlock(conn, account.account_id, actor="owner", reason=reason, causes=["owner"], source="owner", now=now)
    return auth.account_view(conn, account.account_id)


def end_sessions(conn: sa.Connection, account_id: int, *, now: dt.datetime | None = None) -> None:
    conn.execute(eid_sessions.update().where(eid_sessions.c.account_id == account_id,
                                             eid_sessions.c.revoked_at.is_(None)).values(revoked_at=now or utcnow()))



