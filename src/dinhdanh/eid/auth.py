"""Credentials and identity of e-ID accounts: the contract the OIDC provider and the app code against.

Who logs in
    A citizen with their PID (a former PID still finds them), a foreigner with their
    identification number, an organisation with its e-ID code; always with the 6-digit passcode.
    ``check_login(engine, username, passcode)`` checks and counts; ``login_result(conn, check)``
    answers a ``Principal`` or raises ``LoginRefused`` whose ``code`` is one of
    ``bad_credentials`` (the same for an unknown user and a wrong passcode), ``temporarily_locked``
    (too many wrong passcodes: ``retry_after`` seconds), ``account_locked`` (an administrative or
    owner's lock) and ``not_active`` (pending activation, or revoked). The account's state is told
    only after a right passcode, so a guesser learns nothing of it.

    **A lockout does not tell who has an account.** An unknown username has no counter to lock, so
    a known account that answered 429 ``temporarily_locked`` after five failures, while an unknown
    one answered 401 forever, told a guesser which usernames exist. So what a caller is told of a
    passcode check (``PasscodeCheck.answer``, which ``login_result`` / ``checked_account`` raise)
    never names a temporary lock: a locked account gets the same 401 ``bad_credentials``, body and
    headers (no ``Retry-After``) as a wrong passcode or an unknown username, and costs the same
    single Argon2 evaluation (while locked, ``HASHER.hash`` of what was sent: the passcode is still
    not tried, so the five-per-window budget holds; a right passcode is refused as well until the lock
    runs out). The
    owner learns of the lock through their own channel: an SMS / e-mail notice through the outbox
    when it is put on (``_settle``), and ``temporarily_locked`` in their login history and account
    history. ``PasscodeCheck.refusal`` keeps the true refusal for the history and for scripts;
    ``check_credentials`` / ``authenticate(conn, ...)`` (scripts, tests) still raise it. (The other
    way, a per-username failure counter for unknown usernames, would need a new table; it was not
    chosen.) Once a right passcode is given, a lock put on by wrong second factors is told as
    ``temporarily_locked`` (429) as before: the caller has proved the passcode.

Passcodes
    Argon2id, m = 7 MiB (7168 KiB), t = 5, p = 1 (argon2-cffi). Five wrong passcodes in a row lock
    the account for 5 min, then 15 min, 60 min and 24 h at each further run of five; a right passcode
    resets the count and the back-off.

    **The counters hold under concurrency.** ``check_login`` is called with no transaction open:
    it claims the attempt first, in a short transaction of its own, with one conditional UPDATE
    (``failed_attempts + 1`` while the account is not locked; the fifth claim puts the lock on,
    ``lockouts + 1``, in the same statement), then verifies Argon2 with no transaction open (a
    SQLite write transaction would hold the whole database for tens of milliseconds), then settles
    in another short transaction (a right passcode clears the count; the wrong fifth records the
    lock). So at most five passcodes are checked per lockout window, however many arrive at once, no
    step of the ladder is lost, a check cut short by a crash counts as a failure, and nothing
    depends on the caller committing::

        check = auth.check_login(engine, username, passcode)    # no transaction open
        with engine.begin() as conn:
            try:
                who = auth.login_result(conn, check)
            except auth.LoginRefused as refused:
                auth.record_login(conn, check.account_id, ...outcome=refused.code...)
                return error_page(refused.message)

    ``authenticate(engine, ...)`` does both; ``authenticate(conn, ...)`` and ``check_credentials``
    run the same steps on one connection (scripts, tests): the counters are then written on
    ``conn``, so commit even when it raises.

Second factor (what makes a login level 2)
    A device key (ES256 public JWK, registered at activation): the app signs the server's
    challenge (``new_challenge()``, random, kept by the caller, used once) as a compact JWS whose
    payload is exactly the challenge text; ``verify_second_factor(..., device_proof=jws,
    challenge=challenge)``. Or a TOTP code (RFC 6238, 30 s, 6 digits, SHA-1, as authenticator apps
    do), each code accepted once. Only an account at level 2 should be given acr level 2 by the
    caller: ``Principal.level`` says which level the account holds. Wrong factors are counted
    (five in a row: the same temporary lock as wrong passcodes), on ``conn`` as well: commit even
    when it answers False. Each check is counted before it is made, by an UPDATE that holds the
    account's row until the caller commits, so concurrent checks of one account take turns and a
    TOTP code is accepted once even when sent twice at the same moment.
    ``temporarily_locked(conn, account_id)`` gives the refusal to show then.

Claims
    ``claims(conn, account_id)`` reads the register (citizens), the foreigners table or the
    organisation. OIDC standard claims plus ``urn:dinhdanh:level`` and ``urn:dinhdanh:kind`` for
    every kind; ``urn:dinhdanh:pid`` for citizens only (a foreigner has
    ``urn:dinhdanh:foreigner_number``, an organisation ``urn:dinhdanh:organisation_code``); claims
    with no value are left out, as OIDC Core s.5.1 asks.

Vault
    TOTP secrets are sealed. ``enable_totp`` and ``verify_second_factor`` take an optional
    ``vault``; without one they use the database's (``store.vault.for_database``: the
    ``DINHDANH_MASTER_KEY`` environment variable, else the key file beside an SQLite database),
    the same one the web app's ``vault_of(request)`` opens.
"""

from __future__ import annotations

import datetime as dt
import hmac
import math
import re
import secrets
from dataclasses import dataclass

import pyotp
import sqlalchemy as sa
from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from dinhdanh import places
from dinhdanh.eid import accounts, factors, passcodes
from dinhdanh.eid.tables import (eid_accounts, eid_biometrics, eid_devices, eid_logins, eid_registrations, foreigners,
                                 organisations)
from dinhdanh.ids import names
from dinhdanh.registry.errors import InvalidInput, NotFound, RuleViolation
from dinhdanh.registry.records import find_person
from dinhdanh.registry.tables import persons
from dinhdanh.store.base import UTCDateTime, utcnow
from dinhdanh.store.prepared import Prepared
from dinhdanh.store.vault import Vault, of_bind

__all__ = ["Principal", "LoginRefused", "PasscodeCheck", "enroll", "check_login", "login_result",
           "checked_account", "authenticate", "new_challenge", "verify_second_factor",
           "enable_totp", "claims", "record_login", "login_history", "account_view", "lock_by_owner",
           "principal", "register_device", "hash_passcode", "check_passcode", "database_vault"]

# The benchmark's parameters: Argon2id, 7 MiB, 5 passes, 1 lane.
HASHER = PasswordHasher(time_cost=5, memory_cost=7168, parallelism=1, hash_len=32, salt_len=16, type=Type.ID)
MAX_FAILURES = 5
BACKOFF = (dt.timedelta(minutes=5), dt.timedelta(minutes=15), dt.timedelta(minutes=60), dt.timedelta(hours=24))
PASSCODE = re.compile(r"^[0-9]{6}$")
TOTP_ISSUER = factors.TOTP_ISSUER


@dataclass(frozen=True, slots=True)
class Principal:
    account_id: int
    subject: str  # stable opaque id of the account (random, stored), the basis for pairwise subs
    kind: str  # "citizen" | "foreigner" | "organisation"
    level: int | None  # 1, 2 or None (organisation)
    person_id: int | None
    username: str  # the PID (citizen), foreigner id, or organisation code


MESSAGES = {
    "bad_credentials": ("Tên đăng nhập hoặc mật mã không đúng.", "Wrong username or passcode."),
    "temporarily_locked": ("Tài khoản tạm thời bị khóa do nhập sai mật mã nhiều lần; hãy thử lại sau {minutes} phút.",
                           "Too many wrong passcodes: the account is locked for {minutes} minutes."),
    "account_locked": ("Tài khoản định danh điện tử đang bị khóa.", "The e-ID account is locked."),
    "not_active": ("Tài khoản định danh điện tử chưa được kích hoạt hoặc đã bị thu hồi.",
                   "The e-ID account is not activated, or has been revoked."),
}


class LoginRefused(Exception):
    """A login that does not go through; ``code`` for programs, ``message`` (Vietnamese) for people."""

    def __init__(self, code: str, retry_after: int | None = None):
        vi, en = MESSAGES[code]
        minutes = math.ceil(retry_after / 60) if retry_after else 0
        self.code = code
        self.message = vi.format(minutes=minutes)
        self.message_en = en.format(minutes=minutes)
        self.retry_after = retry_after
        super().__init__(self.message_en)


# --------------------------------------------------------------------------------- passcodes


def check_passcode(passcode: object) -> str:
    if not isinstance(passcode, str) or not PASSCODE.match(passcode):
        raise InvalidInput("The passcode is 6 digits.", code="invalid_passcode", field="passcode")
    return passcode


def check_new_passcode(conn: sa.Connection, account, passcode: object) -> str:
    """A passcode the account's holder may choose: 6 digits (``invalid_passcode``) and none of the
    easy ones of ``passcodes`` (``weak_passcode``: one digit repeated, a run, the date of birth or
    founding, the last six digits of the username)."""
    check_passcode(passcode)
    row = accounts.holder(conn, account)
    born = getattr(row, "date_of_birth", None) or getattr(row, "founding_date", None)
    return passcodes.check_strength(passcode, born=born, username=accounts.username_of(conn, account, row))


def hash_passcode(passcode: str) -> str:
    return HASHER.hash(check_passcode(passcode))


_dummy_hash: list[str] = []


def _verify(stored: str | None, passcode: str) -> bool:
    if stored is None:
        # same cost as a real check, so timing does not tell unknown users apart
        if not _dummy_hash:
            _dummy_hash.append(HASHER.hash("000000"))
        stored = _dummy_hash[0]
        real = False
    else:
        real = True
    try:
        return HASHER.verify(stored, passcode) and real
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def set_passcode(conn: sa.Connection, account_id: int, passcode: str, *, now: dt.datetime | None = None) -> None:
    """A new passcode (checked by ``check_new_passcode``); the counters are cleared."""
    check_new_passcode(conn, accounts.get_account(conn, account_id), passcode)
    conn.execute(eid_accounts.update().where(eid_accounts.c.account_id == account_id).values(
        passcode_hash=hash_passcode(passcode), failed_attempts=0, lockouts=0, locked_until=None,
        updated_at=now or utcnow()))


# ------------------------------------------------------------------------------------ vault


def database_vault(conn: sa.Connection) -> Vault:
    """The vault of the database behind ``conn`` (``store.vault.of_bind``: one cache per URL)."""
    return of_bind(conn)


# ----------------------------------------------------------------------------- the counter


def enroll(conn: sa.Connection, vault: Vault, pid: str, *, level: int, passcode: str, actor: str,
           now: dt.datetime | None = None, guardian: str | None = None, face: bytes | None = None,
           fingerprint: bytes | None = None) -> dict:
    """Create (or activate, or raise to level 2) a citizen's ACTIVE account at a police counter.

    The checks are the app's: the person is in the register and alive, the age rules of Decree
    69/2024 (``guardian`` = the PID of a parent or legal representative holding an active level-2
    account, required under 6), and for level 2 a valid chip card. The face matcher of the app is
    replaced by the officer, who sees the person and their card; ``face`` and ``fingerprint``,
    when captured, are sealed in the vault. Returns ``{account_id, kind, pid, level, state}``, and at
    level 2 ``totp_uri``: the account's new TOTP secret as an ``otpauth://totp/`` URI, shown this once
    (a level-2 account always has a second factor). The passcode must pass ``passcodes``.
    """
    if level not in (1, 2) or isinstance(level, bool):
        raise InvalidInput("The level is 1 or 2.", field="level")
    check_passcode(passcode)
    now = now or utcnow()
    today = accounts.vn_today(now)
    person = find_person(conn, pid)
    passcodes.check_strength(passcode, born=person.date_of_birth, username=person.pid)
    accounts.check_alive(person)
    guardian_account = None
    if guardian is not None:
        guardian_person = find_person(conn, guardian)
        g = accounts.account_of_person(conn, guardian_person.person_id)
        if g is None:
            raise RuleViolation("The guardian has no e-ID account.", code="guardian_not_level2", field="guardian")
        guardian_account = accounts.guardian_of(conn, person, g.account_id)
    accounts.check_citizen_age(person.date_of_birth, level, today, by_guardian=guardian_account is not None)
    if level == 2:
        accounts.check_current_card(conn, person.person_id, today)
    existing = accounts.account_of_person(conn, person.person_id)
    accounts.refuse_existing(existing, level)
    passcode_hash = hash_passcode(passcode)
    detail = {"channel": "counter", "face_check": "officer"}
    if existing is None:
        account_id = accounts.create_account(
            conn, kind="citizen", level=level, state="active", source="officer", actor=actor,
            reason="enrolled at the counter", person_id=person.person_id,
            guardian_account_id=guardian_account.account_id if guardian_account else None,
            msisdn=person.phone, email=person.email, detail=detail, now=now)
        conn.execute(eid_accounts.update().where(eid_accounts.c.account_id == account_id)
                     .values(passcode_hash=passcode_hash))
    else:
        account_id = existing.account_id
        new_level = max(level, existing.level or 0)
        kind = {"pending": "activated", "revoked": "re_enrolled"}.get(existing.state, f"level_{new_level}")
        accounts.set_state(conn, existing, "active", kind=kind, source="officer", actor=actor,
                           reason="enrolled at the counter", detail=detail, now=now, level=new_level,
                           passcode_hash=passcode_hash, failed_attempts=0, lockouts=0, locked_until=None,
                           activated_at=existing.activated_at or now)
    # a code sent earlier (app registration) no longer activates what the counter activated
    conn.execute(eid_registrations.update().where(eid_registrations.c.account_id == account_id,
                                                  eid_registrations.c.status == "approved").values(code_hash=None))
    for what, raw in (("face", face), ("fingerprint", fingerprint)):
        if raw:
            conn.execute(eid_biometrics.insert().values(account_id=account_id, kind=what,
                                                        sealed=vault.seal(raw, f"eid-{what}"),
                                                        captured_at=now, captured_by=actor))
    account = accounts.get_account(conn, account_id)
    out = {"account_id": account_id, "kind": "citizen", "pid": person.pid, "level": account.level,
           "state": account.state}
    if account.level == 2:  # a level-2 account always has a second factor: a new TOTP, shown this once
        out["totp_uri"] = factors.set_totp(conn, account_id, source="officer", actor=actor, now=now)
    return out


# ------------------------------------------------------------------------------------ login


def find_login(conn: sa.Connection, username: str):
    """The account a username names (PID, former PID, foreigner number, organisation code), or None."""
    if not isinstance(username, str):
        return None
    username = username.strip()
    if not username or len(username) > 20:
        return None
    if re.fullmatch(r"[0-9]{12}", username):
        try:
            person = find_person(conn, username)
        except NotFound:
            person = None
        if person is not None:
            return accounts.account_of_person(conn, person.person_id)
    row = conn.execute(sa.select(eid_accounts).join(foreigners, foreigners.c.foreigner_id == eid_accounts.c.foreigner_id)
                       .where(foreigners.c.number == username)).first()
    if row is None:
        row = conn.execute(sa.select(eid_accounts)
                           .join(organisations, organisations.c.organisation_id == eid_accounts.c.organisation_id)
                           .where(organisations.c.code == username)).first()
    return row


def _principal(conn: sa.Connection, account) -> Principal:
    return Principal(account_id=account.account_id, subject=account.subject, kind=account.kind,
                     level=account.level, person_id=account.person_id,
                     username=accounts.username_of(conn, account))


def _usable(account) -> None:
    if account.state == "locked":
        raise LoginRefused("account_locked")
    if account.state != "active":
        raise LoginRefused("not_active")


@dataclass(frozen=True, slots=True)
class PasscodeCheck:
    """What ``check_login`` found: the account the username names (None when it names none, or one
    without a passcode) and the refusal (None when the passcode was right). The counters are
    already settled and committed; ``login_result`` or ``checked_account`` tell the caller the rest."""

    account_id: int | None
    refusal: LoginRefused | None  # the true refusal: for the owner's history and the counters' tests

    @property
    def ok(self) -> bool:
        return self.refusal is None

    @property
    def answer(self) -> LoginRefused | None:
        """What the caller is told: a temporary lock is told as a wrong passcode (see the module's doc)."""
        if self.refusal is not None and self.refusal.code == "temporarily_locked":
            return LoginRefused("bad_credentials")
        return self.refusal


def _lock_until(now: dt.datetime):
    """``now`` plus the back-off of the step the account's ``lockouts`` column is at (SQL)."""
    steps = [(eid_accounts.c.lockouts == i, sa.literal(now + wait, UTCDateTime())) for i, wait in
             enumerate(BACKOFF[:-1])]
    return sa.case(*steps, else_=sa.literal(now + BACKOFF[-1], UTCDateTime()))


def _not_locked(now: dt.datetime):
    return sa.or_(eid_accounts.c.locked_until.is_(None), eid_accounts.c.locked_until <= now)


@dataclass(frozen=True, slots=True)
class _Claim:
    account_id: int
    passcode_hash: str
    lockouts: int  # after the claim
    locked_until: dt.datetime | None  # set when this claim was the fifth: the lock is already on

    def locked(self, now: dt.datetime) -> bool:
        return self.locked_until is not None and self.locked_until > now


def _claim(conn: sa.Connection, account_id: int, now: dt.datetime) -> _Claim | None:
    """Count one passcode check before it is made, in one statement; None while the account waits
    out a back-off. The fifth claim in a row puts the lock on at once (the next step of the
    ladder, ``lockouts + 1`` in SQL): no sixth check can be claimed, and a check that never
    settles (a crash) still counts."""
    fifth = eid_accounts.c.failed_attempts + 1 >= MAX_FAILURES
    row = conn.execute(eid_accounts.update().where(
        eid_accounts.c.account_id == account_id, eid_accounts.c.passcode_hash.is_not(None), _not_locked(now),
    ).values(
        failed_attempts=sa.case((fifth, 0), else_=eid_accounts.c.failed_attempts + 1),
        lockouts=sa.case((fifth, eid_accounts.c.lockouts + 1), else_=eid_accounts.c.lockouts),
        locked_until=sa.case((fifth, _lock_until(now)), else_=eid_accounts.c.locked_until),
    ).returning(eid_accounts.c.passcode_hash, eid_accounts.c.lockouts, eid_accounts.c.locked_until)).first()
    if row is None:
        return None
    return _Claim(account_id, row.passcode_hash, row.lockouts, row.locked_until)


def _waiting(conn: sa.Connection, account_id: int, now: dt.datetime) -> LoginRefused:
    until = conn.execute(sa.select(eid_accounts.c.locked_until).where(eid_accounts.c.account_id == account_id)
                         ).scalar()
    if until is None or until <= now:  # the account went away, or lost its passcode, meanwhile
        return LoginRefused("bad_credentials")
    return LoginRefused("temporarily_locked", math.ceil((until - now).total_seconds()))


def _settle(conn: sa.Connection, claim: _Claim, right: bool, passcode: str, now: dt.datetime) -> LoginRefused | None:
    """After the check: a right passcode clears the count and the ladder (unless a lock that other
    checks put on meanwhile is in force: it stays, and this login, checked within the budget,
    goes through); the wrong fifth records the lock its claim put on."""
    if right:
        ours = sa.and_(eid_accounts.c.lockouts == claim.lockouts, eid_accounts.c.locked_until.is_not(None)) \
            if claim.locked(now) else sa.false()
        values = {"failed_attempts": 0, "lockouts": 0, "locked_until": None}
        conn.execute(eid_accounts.update().where(eid_accounts.c.account_id == claim.account_id,
                                                 sa.or_(_not_locked(now), ours)).values(**values))
        if HASHER.check_needs_rehash(claim.passcode_hash):
            conn.execute(eid_accounts.update().where(eid_accounts.c.account_id == claim.account_id,
                                                     eid_accounts.c.passcode_hash == claim.passcode_hash)
                         .values(passcode_hash=HASHER.hash(passcode)))
        return None
    if claim.locked(now):
        wait = math.ceil((claim.locked_until - now).total_seconds())
        accounts.log_event(conn, claim.account_id, "temporarily_locked", source="system", actor="system",
                           reason=f"{MAX_FAILURES} wrong passcodes", detail={"seconds": wait}, now=now)
        _lock_notice(conn, claim.account_id, wait)
        return LoginRefused("temporarily_locked", wait)
    return LoginRefused("bad_credentials")


def _lock_notice(conn: sa.Connection, account_id: int, seconds: int) -> None:
    """Tell the owner (SMS, e-mail, through the outbox) that wrong passcodes locked the account: the
    login answer no longer says so (see the module's doc)."""
    from dinhdanh.notify.service import send_email, send_sms

    account = accounts.get_account(conn, account_id)
    minutes = math.ceil(seconds / 60)
    if account.msisdn:
        send_sms(conn, account.msisdn, f"VNeID: tai khoan dinh danh dien tu cua ban tam khoa {minutes} phut do nhap "
                                       f"sai mat ma {MAX_FAILURES} lan. Neu khong phai ban, hay lien he co quan Cong an.",
                 person_id=account.person_id)
    if account.email:
        send_email(conn, account.email, "Tài khoản định danh điện tử tạm khóa",
                   f"Tài khoản định danh điện tử của bạn bị tạm khóa {minutes} phút do nhập sai mật mã "
                   f"{MAX_FAILURES} lần liên tiếp.", person_id=account.person_id)


def _usable_passcode(passcode) -> str:
    return passcode if isinstance(passcode, str) and PASSCODE.match(passcode) else ""  # "" never matches


def check_login(db, username: str, passcode: str, *, now: dt.datetime | None = None) -> PasscodeCheck:
    """Check a username and passcode, counting the attempt so that it holds under any concurrency.

    ``db`` is an ``Engine`` (or anything whose ``begin()`` gives a committed transaction, such as a
    ``UnitOfWork``); call it with no transaction open. Three steps: the attempt is claimed in a
    short transaction of its own (one conditional UPDATE: at most five checks per lockout window,
    however many arrive at once), Argon2 runs with no transaction open (a SQLite write transaction
    holds the whole database), and the outcome is settled in another short transaction. Nothing
    depends on the caller committing. An unknown username costs one Argon2 check too.
    """
    now = now or utcnow()
    passcode = _usable_passcode(passcode)
    waiting = None
    with db.begin() as conn:
        account = find_login(conn, username)
        if account is None or account.passcode_hash is None:
            account_id, claim = (account.account_id if account is not None else None), None
        else:
            account_id, claim = account.account_id, _claim(conn, account.account_id, now)
            if claim is None:
                waiting = _waiting(conn, account_id, now)
    if claim is None:
        if waiting is not None:  # locked: the cost of one check (same parameters), the passcode not tried
            HASHER.hash(passcode or "000000")
        else:
            _verify(None, passcode)  # an unknown user: one check against a dummy hash
        return PasscodeCheck(account_id, waiting or LoginRefused("bad_credentials"))
    right = _verify(claim.passcode_hash, passcode)
    if not right and not claim.locked(now):
        return PasscodeCheck(account_id, LoginRefused("bad_credentials"))  # counted by the claim
    with db.begin() as conn:
        return PasscodeCheck(account_id, _settle(conn, claim, right, passcode, now))


def checked_account(conn: sa.Connection, check: PasscodeCheck):
    """The account of a right passcode, whatever its state (for the owner's unlock); else raises
    the check's answer (``PasscodeCheck.answer``: a temporary lock is told as ``bad_credentials``)."""
    if check.refusal is not None:
        raise check.answer
    try:
        return accounts.get_account(conn, check.account_id)
    except NotFound:
        raise LoginRefused("bad_credentials") from None


def login_result(conn: sa.Connection, check: PasscodeCheck) -> Principal:
    """The principal of a right passcode on a usable account; ``LoginRefused`` otherwise."""
    account = checked_account(conn, check)
    _usable(account)
    return _principal(conn, account)


def check_credentials(conn: sa.Connection, username: str, passcode: str, *, now: dt.datetime | None = None):
    """``check_login`` on one connection, for scripts and tests: the account when the passcode is
    right (whatever its state), else raises. The claim holds the account's row (PostgreSQL) or the
    database (SQLite) until the caller commits, and the counters commit with the caller: commit
    even when it raises. Servers use ``check_login``."""
    now = now or utcnow()
    passcode = _usable_passcode(passcode)
    account = find_login(conn, username)
    if account is None or account.passcode_hash is None:
        _verify(None, passcode)
        raise LoginRefused("bad_credentials")
    claim = _claim(conn, account.account_id, now)
    if claim is None:
        raise _waiting(conn, account.account_id, now)
    refusal = _settle(conn, claim, _verify(claim.passcode_hash, passcode), passcode, now)
    if refusal is not None:
        raise refusal
    return accounts.get_account(conn, account.account_id)


def authenticate(bind: sa.Engine | sa.Connection, username: str, passcode: str, *,
                 now: dt.datetime | None = None) -> Principal:
    """The principal for a right username and passcode on a usable account; ``LoginRefused`` otherwise.

    Given an engine (or a unit of work), ``check_login`` then ``login_result``: what servers do.
    Given a connection, ``check_credentials`` on it (the counters are written on ``conn``: commit
    even when it raises, see the module's doc)."""
    if isinstance(bind, sa.Connection):
        account = check_credentials(bind, username, passcode, now=now)
        _usable(account)
        return _principal(bind, account)
    check = check_login(bind, username, passcode, now=now)
    with bind.begin() as conn:
        return login_result(conn, check)


def principal(conn: sa.Connection, account_id: int) -> Principal:
    """The account as it stands; ``LoginRefused`` (``not_active`` / ``account_locked``) when not usable.
    One narrow statement (the account and its username): every token refresh asks it."""
    row = _PRINCIPAL.first(conn, {"account_id": account_id})
    if row is None:
        raise LoginRefused("not_active")
    _usable(row)
    return Principal(account_id=row.account_id, subject=row.subject, kind=row.kind, level=row.level,
                     person_id=row.person_id, username=row.username)


# the account's own columns and its holder's username (``accounts.username_of``), on the driver's
# cursor (``store.prepared``): every token refresh reads it
_PRINCIPAL = Prepared(
    sa.select(eid_accounts.c.account_id, eid_accounts.c.subject, eid_accounts.c.kind, eid_accounts.c.level,
              eid_accounts.c.person_id, eid_accounts.c.state,
              sa.case((eid_accounts.c.kind == "citizen", persons.c.pid),
                      (eid_accounts.c.kind == "foreigner", foreigners.c.number),
                      else_=organisations.c.code).label("username"))
    .select_from(eid_accounts)
    .outerjoin(persons, persons.c.person_id == eid_accounts.c.person_id)
    .outerjoin(foreigners, foreigners.c.foreigner_id == eid_accounts.c.foreigner_id)
    .outerjoin(organisations, organisations.c.organisation_id == eid_accounts.c.organisation_id)
    .where(eid_accounts.c.account_id == sa.bindparam("account_id"))
)


# ----------------------------------------------------------------------------- second factor


def new_challenge() -> str:
    """A random challenge (base64url, 256 bits) for a device proof; the caller keeps it and uses it once."""
    return secrets.token_urlsafe(32)


def _device_key(jwk: dict):
    from joserfc.errors import JoseError
    from joserfc.jwk import ECKey

    if not isinstance(jwk, dict) or jwk.get("kty") != "EC" or jwk.get("crv") != "P-256" or "d" in jwk:
        raise InvalidInput("The device key must be a public EC P-256 JWK (ES256).", code="invalid_device_key",
                           field="device_key")
    public = {k: jwk[k] for k in ("kty", "crv", "x", "y") if k in jwk}
    try:
        key = ECKey.import_key(public)
        thumbprint = key.thumbprint()
    except (JoseError, ValueError, TypeError, KeyError):
        raise InvalidInput("The device key is not a valid P-256 public key.", code="invalid_device_key",
                           field="device_key") from None
    return key, public, thumbprint


def register_device(conn: sa.Connection, account_id: int, jwk: dict, *, actor: str = "owner", source: str = "owner",
                    now: dt.datetime | None = None) -> str:
    """Register a device's ES256 public key (JWK); returns its RFC 7638 thumbprint. The change is in the
    account's history and told to the owner (``factors``); who may make it is the caller's check."""
    _, public, thumbprint = _device_key(jwk)
    now = now or utcnow()
    existing = conn.execute(sa.select(eid_devices).where(eid_devices.c.thumbprint == thumbprint)).first()
    if existing is not None:
        if existing.account_id != account_id or existing.revoked_at is not None:
            raise InvalidInput("This device key is already registered.", code="device_key_taken", field="device_key")
        return thumbprint
    conn.execute(eid_devices.insert().values(account_id=account_id, jwk=public, thumbprint=thumbprint,
                                             registered_at=now))
    factors.changed(conn, accounts.get_account(conn, account_id), "device_registered", source=source, actor=actor,
                    now=now, detail={"thumbprint": thumbprint})
    return thumbprint


def _check_device_proof(conn, account_id: int, proof: str, challenge: str) -> bool:
    from joserfc import jws
    from joserfc.errors import JoseError
    from joserfc.jwk import ECKey

    if not isinstance(proof, str) or not isinstance(challenge, str) or not challenge or len(proof) > 4096:
        return False
    rows = conn.execute(sa.select(eid_devices.c.jwk, eid_devices.c.thumbprint)
                        .where(eid_devices.c.account_id == account_id, eid_devices.c.revoked_at.is_(None))).all()
    try:
        kid = jws.extract_compact(proof.encode()).headers().get("kid")
    except (JoseError, ValueError, TypeError, UnicodeError):
        return False
    for jwk, thumbprint in rows:
        if kid is not None and kid != thumbprint:
            continue
        try:
            obj = jws.deserialize_compact(proof, ECKey.import_key(jwk), algorithms=["ES256"])
        except (JoseError, ValueError, TypeError, UnicodeError):
            continue
        if hmac.compare_digest(obj.payload, challenge.encode()):
            return True
    return False


def _check_totp(conn, account, code: str, vault: Vault, now: dt.datetime) -> bool:
    if account.totp_secret is None or not isinstance(code, str) or not re.fullmatch(r"[0-9]{6}", code):
        return False
    secret = vault.open(account.totp_secret, "eid-totp").decode()
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now)
    for step in (current - 1, current, current + 1):  # one step of clock drift either way
        if account.totp_last_step is not None and step <= account.totp_last_step:
            continue
        if hmac.compare_digest(totp.generate_otp(step), code):
            # once, even for two requests at the same moment: only one moves the step forward
            spent = conn.execute(eid_accounts.update().where(
                eid_accounts.c.account_id == account.account_id,
                sa.or_(eid_accounts.c.totp_last_step.is_(None), eid_accounts.c.totp_last_step < step),
            ).values(totp_last_step=step))
            return spent.rowcount == 1
    return False


def verify_second_factor(conn: sa.Connection, account_id: int, *, totp: str | None = None,
                         device_proof: str | None = None, challenge: str | None = None,
                         now: dt.datetime | None = None, vault: Vault | None = None) -> bool:
    """True when the TOTP code is right (and unused) or the device proof signs ``challenge``.

    Wrong factors are counted apart from wrong passcodes (a right passcode does not reset them): the
    fifth in a row locks the account temporarily, as five wrong passcodes do, and while it is so
    locked every factor is refused. The counters are written on ``conn``: commit even on False.

    The check is counted before it is made, by one UPDATE that also holds the account's row (on
    PostgreSQL; on SQLite the write transaction holds the database) until the caller commits, so
    concurrent checks of one account take turns and no count or step of the ladder is lost.
    """
    now = now or utcnow()
    if device_proof is None and totp is None:
        return False
    claimed = conn.execute(eid_accounts.update().where(eid_accounts.c.account_id == account_id, _not_locked(now))
                           .values(factor_failures=eid_accounts.c.factor_failures + 1)
                           .returning(eid_accounts.c.factor_failures)).scalar()
    if claimed is None:  # no such account, or it waits out a back-off
        return False
    account = accounts.get_account(conn, account_id)  # read under the claim: current
    ok = device_proof is not None and challenge is not None and _check_device_proof(conn, account_id, device_proof,
                                                                                      challenge)
    if not ok and totp is not None:
        ok = _check_totp(conn, account, totp, vault or database_vault(conn), now)
    if ok:
        conn.execute(eid_accounts.update().where(eid_accounts.c.account_id == account_id).values(factor_failures=0))
        return True
    if claimed >= MAX_FAILURES:
        until = conn.execute(eid_accounts.update().where(eid_accounts.c.account_id == account_id).values(
            factor_failures=0, lockouts=eid_accounts.c.lockouts + 1, locked_until=_lock_until(now))
            .returning(eid_accounts.c.locked_until)).scalar_one()
        accounts.log_event(conn, account_id, "temporarily_locked", source="system", actor="system",
                           reason=f"{MAX_FAILURES} wrong second factors",
                           detail={"seconds": math.ceil((until - now).total_seconds())}, now=now)
    return False


def temporarily_locked(conn: sa.Connection, account_id: int, now: dt.datetime | None = None) -> LoginRefused | None:
    """The refusal to give while the account waits out a back-off, else None."""
    now = now or utcnow()
    until = conn.execute(sa.select(eid_accounts.c.locked_until).where(eid_accounts.c.account_id == account_id)
                         ).scalar()
    if until is not None and until > now:
        return LoginRefused("temporarily_locked", math.ceil((until - now).total_seconds()))
    return None


def enable_totp(conn: sa.Connection, account_id: int, vault: Vault | None = None, *, source: str = "owner",
                actor: str = "owner") -> str:
    """Give the account a new TOTP secret (sealed at rest; replacing any earlier one); returns the
    ``otpauth://`` URI for the app. Recorded and told to the owner (``factors.set_totp``); who may
    do it (a level-2 session, the activation, the counter) is the caller's check."""
    return factors.set_totp(conn, account_id, source=source, actor=actor, vault=vault or database_vault(conn))


# ------------------------------------------------------------------------------------ claims


def e164(msisdn: str | None) -> str | None:
    """0912345678 -> +84912345678."""
    if not msisdn:
        return None
    digits = re.sub(r"[^0-9]", "", msisdn)
    if digits.startswith("84"):
        return "+" + digits
    if digits.startswith("0"):
        return "+84" + digits[1:]
    return "+" + digits


def _address(address: str | None, province_code: str | None, commune_code: str | None) -> dict | None:
    province = places.PROVINCES.get(province_code or "")
    commune = places.COMMUNES.get(commune_code or "")
    parts = [p for p in (address, commune.name if commune else None, province.name if province else None) if p]
    if not parts:
        return None
    out = {"formatted": ", ".join(parts), "country": "VN"}
    if province:
        out["region"] = province.name
    if commune:
        out["locality"] = commune.name
    if address:
        out["street_address"] = address
    return out


def _drop_empty(claims_: dict) -> dict:
    return {k: v for k, v in claims_.items() if v is not None and v != ""}


def claims(conn: sa.Connection, account_id: int) -> dict:
    """OIDC standard claims of the account's holder, plus ``urn:dinhdanh:*`` (see the module's doc)."""
    account = accounts.get_account(conn, account_id)
    row = accounts.holder(conn, account)
    base = {"urn:dinhdanh:level": account.level, "urn:dinhdanh:kind": account.kind}
    phone = account.msisdn
    if account.kind == "organisation":
        representative = conn.execute(sa.select(persons.c.pid).where(persons.c.person_id == row.representative_id)
                                      ).scalar()
        return _drop_empty({
            "name": row.name, "address": {"formatted": row.address, "country": "VN"},
            "urn:dinhdanh:organisation_code": row.code, "urn:dinhdanh:founding_date": row.founding_date.isoformat(),
            "urn:dinhdanh:representative_pid": representative, "email": account.email,
            "phone_number": e164(phone), "phone_number_verified": bool(account.msisdn_verified) if phone else None,
            **base})
    if account.kind == "foreigner":
        return _drop_empty({
            "name": row.full_name, "birthdate": row.date_of_birth.isoformat(), "gender": row.sex,
            "nationality": row.nationality, "urn:dinhdanh:foreigner_number": row.number,
            "phone_number": e164(phone or row.phone),
            "phone_number_verified": bool(account.msisdn_verified and phone) if (phone or row.phone) else None,
            "email": account.email or row.email,
            "address": {"formatted": row.address, "country": "VN"} if row.address else None, **base})
    parts = names.split(row.full_name)
    phone = phone or row.phone
    return _drop_empty({
        "name": row.full_name, "family_name": parts.surname, "given_name": parts.given,
        "middle_name": parts.middle or None, "birthdate": row.date_of_birth.isoformat(), "gender": row.sex,
        "phone_number": e164(phone),
        "phone_number_verified": bool(account.msisdn_verified and account.msisdn) if phone else None,
        "email": account.email or row.email,
        "address": _address(row.address, row.province_code, row.commune_code),
        "urn:dinhdanh:pid": row.pid, **base})


# ------------------------------------------------------------------------------------ history


def record_login(conn: sa.Connection, account_id: int, *, client_id: str | None, acr: str | None, outcome: str,
                 ip: str | None, user_agent: str | None) -> None:
    """One row of the account's login history (shown to its owner)."""

    def cut(value, size):
        return value[:size] if isinstance(value, str) else None

    conn.execute(eid_logins.insert().values(account_id=account_id, at=utcnow(), client_id=cut(client_id, 100),
                                            acr=cut(acr, 60), outcome=cut(outcome, 30) or "unknown",
                                            ip=cut(ip, 45), user_agent=cut(user_agent, 300)))


def login_history(conn: sa.Connection, account_id: int, limit: int = 50) -> list[dict]:
    rows = conn.execute(sa.select(eid_logins).where(eid_logins.c.account_id == account_id)
                        .order_by(eid_logins.c.login_id.desc()).limit(max(1, min(limit, 500)))).all()
    return [{"at": r.at.isoformat(), "client_id": r.client_id, "acr": r.acr, "outcome": r.outcome, "ip": r.ip,
             "user_agent": r.user_agent} for r in rows]


def account_view(conn: sa.Connection, account_id: int) -> dict:
    """The account as its owner sees it: state, level, open locks, second factors, identity card."""
    from dinhdanh.eid import wallet

    account = accounts.get_account(conn, account_id)
    row = accounts.holder(conn, account)
    locks = accounts.open_locks(conn, account_id)
    devices = conn.execute(sa.select(sa.func.count()).select_from(eid_devices).where(
        eid_devices.c.account_id == account_id, eid_devices.c.revoked_at.is_(None))).scalar_one()
    view = {
        "account_id": account.account_id, "kind": account.kind, "level": account.level, "state": account.state,
        "username": accounts.username_of(conn, account, row),
        "name": row.name if account.kind == "organisation" else row.full_name,
        "msisdn": accounts.mask_msisdn(account.msisdn), "email": account.email,
        "created_at": account.created_at.isoformat(),
        "activated_at": account.activated_at.isoformat() if account.activated_at else None,
        "locks": [{"cause": lock.cause, "source": lock.source, "reason": lock.reason,
                   "locked_at": lock.locked_at.isoformat()} for lock in locks],
        "temporarily_locked_until": account.locked_until.isoformat()
        if account.locked_until is not None and account.locked_until > utcnow() else None,
        "totp": account.totp_enabled_at is not None, "devices": devices,
    }
    if account.kind == "citizen":
        view["pid"] = row.pid
        view["identity_card"] = wallet.identity_card(conn, account) if account.level == 2 else None
    return view


def lock_by_owner(conn: sa.Connection, account_id: int, reason: str) -> dict:
    """The owner locks their own account (lost phone...); unlocking is in the app or at the police."""
    from dinhdanh.eid import locks

    if not isinstance(reason, str) or not reason.strip() or len(reason) > 500:
        raise InvalidInput("Give a reason of 1 to 500 characters.", field="reason")
    locks.lock(conn, account_id, "owner", source="owner", actor="owner", reason=reason.strip())
    return account_view(conn, account_id)
