"""Second factors (TOTP, device keys): who may add, replace or remove them, and the owner's notice.

**A level-2 login never rests on the passcode alone.** A level-2 account always has a second factor:
enrolment at level 2 (``auth.enroll``, ``counter.enrol_level2``, ``counter.enroll_foreigner``)
registers a TOTP secret and shows its ``otpauth://`` URI once; removing the last factor of a level-2
account is refused (``last_second_factor``, 409).

Who may change a factor:

- the counter (an officer, through the officer API or the CLI), ``source="officer"``;
- the activation in the app (``registration.activate``), with the activation code sent to the
  holder's phone, may register the first factors (device key, TOTP);
- the owner, from an app session at **level 2**, i.e. one opened with the current second factor
  (``require_step_up``). A session opened with the passcode alone gets 403 ``step_up_required``, for
  every account: a level-1 account has no level-2 session, so its factors change at the activation
  or at the counter only (otherwise a passcode thief could plant a factor that a later level-2
  enrolment at the counter would trust).

Every change is kept in the account's history (``account_events``: ``totp_enabled``,
``totp_replaced``, ``totp_removed``, ``device_registered``) and told to the owner by SMS (and e-mail)
through the outbox (``notify.service``), in the same transaction, so an owner whose factor was changed
behind their back hears of it.
"""

from __future__ import annotations

import datetime as dt

import pyotp
import sqlalchemy as sa

from dinhdanh.eid import accounts
from dinhdanh.eid.tables import eid_accounts, eid_devices
from dinhdanh.notify.service import send_email, send_sms
from dinhdanh.registry.errors import Conflict, Forbidden
from dinhdanh.store.base import utcnow
from dinhdanh.store.vault import Vault, of_bind

TOTP_ISSUER = "VNeID (dinhdanh)"

_WHAT = {  # SMS text (ASCII, as the operators send it) and e-mail text, by event kind
    "totp_enabled": ("da them ma xac thuc TOTP (ung dung xac thuc)", "đã thêm mã xác thực TOTP (ứng dụng xác thực)"),
    "totp_replaced": ("da thay ma xac thuc TOTP (ung dung xac thuc)", "đã thay mã xác thực TOTP (ứng dụng xác thực)"),
    "totp_removed": ("da go bo ma xac thuc TOTP", "đã gỡ bỏ mã xác thực TOTP"),
    "device_registered": ("da dang ky mot thiet bi moi", "đã đăng ký một thiết bị mới"),
}


def require_step_up(session_level: int) -> None:
    """Refuse (403 ``step_up_required``) a change of factor from a session opened with the passcode alone."""
    if session_level != 2:
        raise Forbidden("Changing a second factor needs a level-2 session (log in with your current second "
                        "factor), or the police counter.", code="step_up_required", field="session")


def devices_of(conn: sa.Connection, account_id: int) -> int:
    return conn.execute(sa.select(sa.func.count()).select_from(eid_devices).where(
        eid_devices.c.account_id == account_id, eid_devices.c.revoked_at.is_(None))).scalar_one()


def has_factor(conn: sa.Connection, account) -> bool:
    return account.totp_secret is not None or devices_of(conn, account.account_id) > 0


def notify_owner(conn: sa.Connection, account, kind: str, *, source: str, now: dt.datetime) -> None:
    """Tell the owner, through the outbox, that a second factor changed (SMS, and e-mail when known)."""
    sms, mail = _WHAT[kind]
    when = now.astimezone(dt.timezone(dt.timedelta(hours=7))).strftime("%H:%M %d/%m/%Y")
    by = "tai co quan Cong an" if source == "officer" else "tren ung dung"
    if account.msisdn:
        send_sms(conn, account.msisdn, f"VNeID: tai khoan dinh danh dien tu cua ban {sms} {by} luc {when}. "
                                       "Neu khong phai ban, hay khoa tai khoan ngay va lien he co quan Cong an.",
                 person_id=account.person_id)
    if account.email:
        send_email(conn, account.email, "Thay đổi yếu tố xác thực tài khoản định danh điện tử",
                   f"Tài khoản định danh điện tử của bạn {mail} lúc {when}. Nếu không phải bạn thực hiện, hãy "
                   "khóa tài khoản ngay và liên hệ cơ quan Công an.", person_id=account.person_id)


def changed(conn: sa.Connection, account, kind: str, *, source: str, actor: str, now: dt.datetime,
            detail: dict | None = None) -> None:
    """Record a change of factor in the history and tell the owner."""
    accounts.log_event(conn, account.account_id, kind, source=source, actor=actor, level=account.level,
                       detail={"channel": source, **(detail or {})}, now=now)
    notify_owner(conn, account, kind, source=source, now=now)


def set_totp(conn: sa.Connection, account_id: int, *, source: str, actor: str, vault: Vault | None = None,
             now: dt.datetime | None = None) -> str:
    """A new TOTP secret for the account (sealed at rest, replacing any earlier one); returns the
    ``otpauth://totp/`` URI (RFC 6238, SHA-1, 6 digits, 30 s; issuer ``TOTP_ISSUER``), shown once."""
    account = accounts.get_account(conn, account_id, for_update=True)
    secret = pyotp.random_base32()
    vault = vault or of_bind(conn)
    now = now or utcnow()
    conn.execute(eid_accounts.update().where(eid_accounts.c.account_id == account_id).values(
        totp_secret=vault.seal(secret.encode(), "eid-totp"), totp_enabled_at=now, totp_last_step=None,
        updated_at=now))
    changed(conn, account, "totp_replaced" if account.totp_secret is not None else "totp_enabled", source=source,
            actor=actor, now=now)
    return totp_uri(secret, accounts.username_of(conn, account))


def totp_uri(secret: str, username: str) -> str:
    return pyotp.TOTP(secret, digits=6, interval=30).provisioning_uri(name=username, issuer_name=TOTP_ISSUER)


def remove_totp(conn: sa.Connection, account_id: int, *, source: str, actor: str,
                now: dt.datetime | None = None) -> None:
    """Remove the account's TOTP; refused when it is the last second factor of a level-2 account."""
    account = accounts.get_account(conn, account_id, for_update=True)
    now = now or utcnow()
    if account.totp_secret is None:
        raise Conflict("The account has no TOTP.", code="no_totp", field="totp")
    if account.level == 2 and devices_of(conn, account_id) == 0:
        raise Conflict("A level-2 account keeps at least one second factor: add another before removing this one.",
                       code="last_second_factor", field="totp")
    conn.execute(eid_accounts.update().where(eid_accounts.c.account_id == account_id).values(
        totp_secret=None, totp_enabled_at=None, totp_last_step=None, updated_at=now))
    changed(conn, account, "totp_removed", source=source, actor=actor, now=now)
