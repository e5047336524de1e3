"""Officers' credentials: machine tokens for their systems, and the e-ID account with which they
sign in through the platform's own OpenID provider (scope ``dinhdanh.officer`` at level 2, see
``oidc.officers``). Both end in an ``officer_id``; ``officers.service.officer_by_id`` loads the
officer, so whatever credential was used, the officer is the same and so is the audit label.

Machine tokens (``ddo_`` + 256 random bits) are shown once; only their SHA-256 is stored (a fast
hash is enough for a secret of that entropy, and it keeps the per-request check cheap). Each
expires (``DEFAULT_DAYS``, 1 to ``MAX_DAYS``) and can be revoked alone; an officer's systems may
hold several. ``rotate`` issues a new token and revokes the old one at once, or, with an overlap
(at most ``MAX_OVERLAP``), lets the old one expire that much later so a system can switch without
a gap. Resolving a token is one query; its ``last_used_at`` is written at most once a minute.

Revoking every credential of an officer also sets ``sign_in_not_before``: provider tokens of a
sign-in made before it are refused, refresh tokens included (``officer_for_account``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass, fields, is_dataclass

import sqlalchemy as sa

from dinhdanh.eid.tables import eid_accounts
from dinhdanh.officers.tables import officer_tokens, officers
from dinhdanh.registry.errors import InvalidInput, NotFound, RuleViolation
from dinhdanh.store.base import VIETNAM, utcnow

TOKEN_PREFIX = "ddo_"
DEFAULT_DAYS = 30
MAX_DAYS = 365
MAX_OVERLAP = dt.timedelta(hours=1)
LAST_USED_GRAIN = dt.timedelta(minutes=1)  # last_used_at is this precise, so a request rarely writes

# Vietnamese wording of the refusals below, by stable code (the web layer adds them to its own).
VI = {
    "officer_not_found": "Không tìm thấy cán bộ.",
    "officer_inactive": "Cán bộ không còn hoạt động nên không được cấp mã truy cập hay liên kết tài khoản.",
    "invalid_token_days": f"Thời hạn của mã truy cập từ 1 đến {MAX_DAYS} ngày.",
    "invalid_overlap": "Thời gian mã cũ còn dùng được khi đổi mã là từ 0 đến 60 phút.",
    "token_not_found": "Cán bộ không có mã truy cập này (hoặc mã đã hết hiệu lực).",
    "account_linked": "Tài khoản định danh điện tử này đã được liên kết với một cán bộ khác.",
    ("account_not_active", "pid"): "Tài khoản định danh điện tử của cán bộ chưa hoạt động hoặc đang bị khóa.",
}


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A new machine token: ``token`` is shown this once and never stored."""

    token_id: int
    officer_id: int
    token: str
    expires_at: dt.datetime
    label: str | None = None

    def as_dict(self) -> dict:
        return {"officer_id": self.officer_id, "token_id": self.token_id, "label": self.label,
                "expires_at": _shown(self.expires_at)}


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _shown(moment: dt.datetime | None) -> str | None:
    """Times are UTC in the database and shown in Việt Nam's time."""
    return None if moment is None else moment.astimezone(VIETNAM).isoformat(timespec="seconds")


def _days(days) -> int:
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        raise InvalidInput(f"A token lives 1 to {MAX_DAYS} days.", code="invalid_token_days", field="days")
    return days


def _label(label) -> str | None:
    if label is None:
        return None
    if not isinstance(label, str) or len(label.strip()) > 100:
        raise InvalidInput("A token's label is at most 100 characters.", field="label")
    return label.strip() or None


def _officer_row(conn: sa.Connection, officer_id, *, lock: bool = False) -> sa.Row:
    if isinstance(officer_id, bool) or not isinstance(officer_id, int):
        raise NotFound("No such officer.", code="officer_not_found", field="officer_id")
    q = sa.select(officers).where(officers.c.officer_id == officer_id)
    row = conn.execute(q.with_for_update() if lock else q).first()
    if row is None:
        raise NotFound("No such officer.", code="officer_not_found", field="officer_id")
    return row


def _active_officer(conn: sa.Connection, officer_id, *, lock: bool = False) -> sa.Row:
    row = _officer_row(conn, officer_id, lock=lock)
    if not row.active:
        raise RuleViolation("This officer is not active: no credential is given.", code="officer_inactive",
                            field="officer_id")
    return row


# ------------------------------------------------------------------------------ machine tokens


def issue_token(conn: sa.Connection, officer_id: int, *, days: int = DEFAULT_DAYS, label: str | None = None,
                now: dt.datetime | None = None) -> IssuedToken:
    """A new machine token for an active officer, valid ``days`` days from ``now``."""
    days, label, now = _days(days), _label(label), now or utcnow()
    _active_officer(conn, officer_id)
    return _insert(conn, officer_id, days, label, now)


def _insert(conn: sa.Connection, officer_id: int, days: int, label: str | None, now: dt.datetime) -> IssuedToken:
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    expires = now + dt.timedelta(days=days)
    token_id = conn.execute(officer_tokens.insert().values(
        officer_id=officer_id, token_hash=_hash(token), label=label, created_at=now, expires_at=expires,
    ).returning(officer_tokens.c.token_id)).scalar_one()
    return IssuedToken(token_id, officer_id, token, expires, label)


def resolve_token(conn: sa.Connection, token, now: dt.datetime | None = None) -> int | None:
    """The officer a machine token belongs to; None when it is unknown, expired or revoked, or its
    officer is inactive (all alike: nothing tells them apart)."""
    if not isinstance(token, str) or not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    now = now or utcnow()
    row = conn.execute(_RESOLVE, {"hash": _hash(token), "now": now}).first()
    if row is None:
        return None
    if row.last_used_at is None or row.last_used_at <= now - LAST_USED_GRAIN:
        _touch(conn, row.token_id, now)
    return row.officer_id


_RESOLVE = (sa.select(officer_tokens.c.token_id, officer_tokens.c.officer_id, officer_tokens.c.last_used_at)
            .join(officers, officers.c.officer_id == officer_tokens.c.officer_id)
            .where(officer_tokens.c.token_hash == sa.bindparam("hash"), officer_tokens.c.revoked_at.is_(None),
                   officer_tokens.c.expires_at > sa.bindparam("now"), officers.c.active.is_(True)))


def _touch(conn: sa.Connection, token_id: int, now: dt.datetime) -> None:
    """Note the use; on PostgreSQL a row another request is noting already is skipped, not waited for."""
    stale = sa.and_(officer_tokens.c.token_id == token_id, sa.or_(
        officer_tokens.c.last_used_at.is_(None), officer_tokens.c.last_used_at <= now - LAST_USED_GRAIN))
    if conn.dialect.name == "postgresql":
        stale = officer_tokens.c.token_id.in_(
            sa.select(officer_tokens.c.token_id).where(stale).with_for_update(skip_locked=True).scalar_subquery())
    conn.execute(officer_tokens.update().where(stale).values(last_used_at=now))


def _live(now: dt.datetime):
    return sa.and_(officer_tokens.c.revoked_at.is_(None), officer_tokens.c.expires_at > now)


def revoke(conn: sa.Connection, officer_id: int, *, token_id: int | None = None,
           now: dt.datetime | None = None) -> int:
    """Revoke one machine token of the officer, or, with no ``token_id``, every credential: all
    their machine tokens and every provider sign-in made until now (``sign_in_not_before``).
    Returns how many machine tokens were live and are now revoked."""
    now = now or utcnow()
    _officer_row(conn, officer_id)
    mine = officer_tokens.c.officer_id == officer_id
    if token_id is not None:
        if conn.execute(sa.select(officer_tokens.c.token_id).where(
                mine, officer_tokens.c.token_id == token_id)).first() is None:
            raise NotFound("This officer has no such token.", code="token_not_found", field="token_id")
        mine = sa.and_(mine, officer_tokens.c.token_id == token_id)
    else:
        conn.execute(officers.update().where(officers.c.officer_id == officer_id).values(sign_in_not_before=now))
    return conn.execute(officer_tokens.update().where(mine, _live(now)).values(revoked_at=now)).rowcount


def rotate(conn: sa.Connection, officer_id: int, *, token_id: int | None = None, days: int = DEFAULT_DAYS,
           overlap: dt.timedelta = dt.timedelta(0), label: str | None = None,
           now: dt.datetime | None = None) -> IssuedToken:
    """A new machine token in place of the officer's live ones (or of ``token_id`` alone). With no
    ``overlap`` the old ones are revoked at once; with one (up to ``MAX_OVERLAP``) they expire that
    much later, unless they expire sooner anyway. The new token keeps the old one's label unless
    given one."""
    days, label, now = _days(days), _label(label), now or utcnow()
    if not isinstance(overlap, dt.timedelta) or not dt.timedelta(0) <= overlap <= MAX_OVERLAP:
        raise InvalidInput(f"The overlap is 0 to {int(MAX_OVERLAP.total_seconds() // 60)} minutes.",
                           code="invalid_overlap", field="overlap")
    # the officer's row first (PostgreSQL): two rotations of one token at once run one after the
    # other, and the second finds the token no longer live, instead of each making a successor
    _active_officer(conn, officer_id, lock=True)
    replaced = sa.and_(officer_tokens.c.officer_id == officer_id, _live(now))
    if token_id is not None:
        replaced = sa.and_(replaced, officer_tokens.c.token_id == token_id)
        old = conn.execute(sa.select(officer_tokens.c.label).where(replaced)).first()
        if old is None:
            raise NotFound("This officer has no live token with this id.", code="token_not_found", field="token_id")
        label = label or old.label
    if overlap:
        until = now + overlap
        conn.execute(officer_tokens.update().where(replaced, officer_tokens.c.expires_at > until)
                     .values(expires_at=until))
    else:
        conn.execute(officer_tokens.update().where(replaced).values(revoked_at=now))
    return _insert(conn, officer_id, days, label, now)


# --------------------------------------------------------------------- the officer's e-ID account


def link_account(conn: sa.Connection, officer_id: int, pid: str, *, actor: str) -> dict:
    """Link the officer to the e-ID account of the citizen with ``pid``: the account they sign in
    with. An account serves one officer at most. Signing in needs a level-2 account; a level-1
    account may be linked and upgraded later. The look-up is in the access log (``actor``), so the
    citizen sees it among the uses of their data."""
    from dinhdanh.audit.service import record_access
    from dinhdanh.eid.accounts import account_by_pid

    _active_officer(conn, officer_id)
    account = account_by_pid(conn, pid)
    if account.state != "active":
        raise RuleViolation("The e-ID account is not active.", code="account_not_active", field="pid")
    holder = conn.execute(sa.select(officers.c.officer_id).where(officers.c.account_id == account.account_id)).first()
    if holder is not None and holder.officer_id != officer_id:
        raise RuleViolation("This e-ID account is already linked to another officer.", code="account_linked",
                            field="pid")
    try:
        with conn.begin_nested():  # the unique constraint decides a race between two links
            conn.execute(officers.update().where(officers.c.officer_id == officer_id)
                         .values(account_id=account.account_id))
    except sa.exc.IntegrityError:
        raise RuleViolation("This e-ID account is already linked to another officer.", code="account_linked",
                            field="pid") from None
    record_access(conn, actor, [account.person_id], "officer_link", "administration", fields=["eid_account"])
    return {"officer_id": officer_id, "account_id": account.account_id, "account_level": account.level}


def unlink_account(conn: sa.Connection, officer_id: int) -> dict:
    """The officer no longer signs in with an e-ID account (their provider tokens stop at once)."""
    _officer_row(conn, officer_id)
    conn.execute(officers.update().where(officers.c.officer_id == officer_id).values(account_id=None))
    return {"officer_id": officer_id, "account_id": None}


@dataclass(frozen=True, slots=True)
class SignInLink:
    """An active officer behind an e-ID account, and since when their sign-ins count."""

    officer_id: int
    not_before: dt.datetime | None

    def admits(self, signed_in_at: dt.datetime | None) -> bool:
        """Whether a sign-in made at ``signed_in_at`` still counts (not ended by ``revoke``)."""
        return self.not_before is None or (signed_in_at is not None and signed_in_at >= self.not_before)


def sign_in_link(conn: sa.Connection, account_id: int | None) -> SignInLink | None:
    """The active officer whose e-ID account (itself active) is ``account_id``, else None."""
    if account_id is None:
        return None
    row = conn.execute(_BY_ACCOUNT, {"account_id": account_id}).first()
    return None if row is None else SignInLink(row.officer_id, row.sign_in_not_before)


_BY_ACCOUNT = (sa.select(officers.c.officer_id, officers.c.sign_in_not_before)
               .join(eid_accounts, eid_accounts.c.account_id == officers.c.account_id)
               .where(officers.c.account_id == sa.bindparam("account_id"), officers.c.active.is_(True),
                      eid_accounts.c.state == "active"))


def officer_for_account(conn: sa.Connection, account_id: int | None, signed_in_at: dt.datetime | None) -> int | None:
    """The officer a provider token stands for: the active officer linked to the token's account,
    when the sign-in it comes from (``auth_time``) was not ended by ``revoke``."""
    link = sign_in_link(conn, account_id)
    return link.officer_id if link is not None and link.admits(signed_in_at) else None


# ------------------------------------------------------------------------------------- listing


def list_officers(conn: sa.Connection, now: dt.datetime | None = None) -> list[dict]:
    """Every officer: identity, role and area, account link and tokens (state and expiry; never
    token material). Times in Việt Nam's time."""
    from dinhdanh.officers.service import officer_by_id

    now = now or utcnow()
    accounts = {r.account_id: r for r in conn.execute(
        sa.select(eid_accounts.c.account_id, eid_accounts.c.level, eid_accounts.c.state)
        .join(officers, officers.c.account_id == eid_accounts.c.account_id))}
    tokens: dict[int, list[dict]] = {}
    for t in conn.execute(sa.select(officer_tokens).order_by(officer_tokens.c.officer_id, officer_tokens.c.token_id)):
        state = "revoked" if t.revoked_at is not None else "expired" if t.expires_at <= now else "live"
        tokens.setdefault(t.officer_id, []).append({
            "token_id": t.token_id, "label": t.label, "state": state, "created_at": _shown(t.created_at),
            "expires_at": _shown(t.expires_at), "revoked_at": _shown(t.revoked_at),
            "last_used_at": _shown(t.last_used_at)})
    out = []
    for row in conn.execute(sa.select(officers).order_by(officers.c.officer_id)):
        account = accounts.get(row.account_id)
        view = {"officer_id": row.officer_id, "name": row.name, "role": row.role, "area_code": row.area_code,
                "agency": row.agency_code,
                "active": row.active, "created_at": _shown(row.created_at),
                "account": None if account is None else {"account_id": account.account_id, "level": account.level,
                                                         "state": account.state},
                "sign_in_not_before": _shown(row.sign_in_not_before), "tokens": tokens.get(row.officer_id, [])}
        officer = officer_by_id(conn, row.officer_id)
        if officer is not None and is_dataclass(officer):  # what officers.service adds (roles, permissions)
            for f in fields(officer):
                value = getattr(officer, f.name)
                if f.name not in view and isinstance(value, (str, int, bool, type(None), tuple, list, frozenset, set)):
                    view[f.name] = sorted(value) if isinstance(value, (frozenset, set)) else value
        out.append(view)
    return out
