"""``dinhdanh eid ...`` (e-ID accounts at the counter, locks, reviews, the demo's seed data) and
``dinhdanh notify deliver`` (the outbox's SMS and e-mail)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer

from dinhdanh.cli.common import DbOption, actor_label, emit, engine_for, fail, fail_registry
from dinhdanh.registry.errors import RegistryError

eid_app = typer.Typer(help="Electronic identification accounts (Decree 69/2024).", no_args_is_help=True)
notify_app = typer.Typer(help="Notifications (SMS, e-mail) waiting in the outbox.", no_args_is_help=True)

Username = Annotated[str, typer.Argument(help="PID, foreigner number or organisation e-ID code")]
Reason = Annotated[str, typer.Option(help="Why (kept in the account's history)")]


def _vault(engine):
    from dinhdanh.store.vault import VaultError, for_database

    try:
        return for_database(engine.url.render_as_string(hide_password=False))
    except VaultError as exc:
        fail(str(exc))


def _engine(db):
    import dinhdanh.eid

    dinhdanh.eid.hooks()
    return engine_for(db, upgrade=True)


def _pid(value: str, what: str = "PID") -> str:
    if not re.fullmatch(r"[0-9]{12}", value or ""):
        fail(f"the {what} is 12 digits")
    return value


def _account(conn, username: str):
    """The account and the person_id to audit, or a refusal."""
    from dinhdanh.eid import accounts, auth
    from dinhdanh.registry.errors import NotFound
    from dinhdanh.registry.records import find_person

    if re.fullmatch(r"[0-9]{12}", username):
        person = find_person(conn, username)
        return accounts.account_by_pid(conn, username), person.person_id
    account = auth.find_login(conn, username)
    if account is None:
        raise NotFound("No e-ID account has this username.", code="account_not_found", field="username")
    return account, None


def _audited_view(conn, account_id: int, person_id: int | None) -> dict:
    from dinhdanh.audit.service import record_access
    from dinhdanh.eid import auth

    if person_id is not None:
        record_access(conn, actor_label(), [person_id], "eid_account", "identity_check")
    return auth.account_view(conn, account_id)


@eid_app.command("enroll")
def enroll(pid: Annotated[str, typer.Argument(help="Personal ID number of a person in the register")],
           level: Annotated[int, typer.Option(help="1 or 2 (2 needs a valid chip card)")],
           passcode: Annotated[str, typer.Option(help="The 6-digit passcode the person chose")],
           guardian: Annotated[str | None, typer.Option(help="PID of the parent or legal representative "
                                                              "(level-2 account) for a child under 6")] = None,
           db: DbOption = None) -> None:
    """Create an ACTIVE account at the counter (the officer has seen the person and their card); JSON.

    The checks are the app's (register, alive, age rules, a valid card for level 2), except the face
    matcher: at the counter the officer's eyes replace it. The passcode must not be easy to guess
    (``weak_passcode``: one digit repeated, a run, the date of birth, the PID's last six digits).
    At level 2 the account gets a TOTP second factor: ``totp_uri`` (otpauth://totp/..., for the
    person's authenticator app) is printed this once and never again. Exit 1 on a refusal, 2 on bad
    input.
    """
    from dinhdanh.eid import auth

    _pid(pid)
    if guardian is not None:
        _pid(guardian, "guardian's PID")
    if level not in (1, 2):
        fail("the level is 1 or 2")
    if not re.fullmatch(r"[0-9]{6}", passcode):
        fail("the passcode is 6 digits")
    engine = _engine(db)
    vault = _vault(engine)
    try:
        with engine.begin() as conn:
            result = auth.enroll(conn, vault, pid, level=level, passcode=passcode, actor=actor_label(),
                                 guardian=guardian)
    except RegistryError as exc:
        fail_registry(exc)
    emit(result)


@eid_app.command("totp")
def totp(username: Username, db: DbOption = None) -> None:
    """At the counter: give the account a new TOTP second factor, replacing any earlier one; prints
    the account and ``totp_uri`` (shown this once). The owner is notified."""
    from dinhdanh.eid import factors

    try:
        with _engine(db).begin() as conn:
            account, person_id = _account(conn, username)
            uri = factors.set_totp(conn, account.account_id, source="officer", actor=actor_label())
            result = {**_audited_view(conn, account.account_id, person_id), "totp_uri": uri}
    except RegistryError as exc:
        fail_registry(exc)
    emit(result)


@eid_app.command("show")
def show(username: Username, db: DbOption = None) -> None:
    """An account: state, level, locks, identity card, and its history (JSON)."""
    from dinhdanh.audit.service import record_access
    from dinhdanh.eid import accounts, auth

    try:
        with _engine(db).begin() as conn:
            account, person_id = _account(conn, username)
            result = {**auth.account_view(conn, account.account_id),
                      "history": accounts.history(conn, account.account_id)}
            if person_id is not None:
                record_access(conn, actor_label(), [person_id], "eid_account", "identity_check")
    except RegistryError as exc:
        fail_registry(exc)
    emit(result)


@eid_app.command("lock")
def lock(username: Username, reason: Reason, db: DbOption = None) -> None:
    """Lock an account for breach of the terms of use."""
    from dinhdanh.eid import locks

    try:
        with _engine(db).begin() as conn:
            account, person_id = _account(conn, username)
            locks.lock(conn, account.account_id, "breach", source="officer", actor=actor_label(), reason=reason)
            result = _audited_view(conn, account.account_id, person_id)
    except RegistryError as exc:
        fail_registry(exc)
    emit(result)


@eid_app.command("unlock")
def unlock(username: Username, reason: Reason,
           cause: Annotated[list[str] | None, typer.Option(help="Lift only these causes (default: all)")] = None,
           db: DbOption = None) -> None:
    """Lift locks; a lock that follows the data (card, death, documents) only once its cause is gone."""
    from dinhdanh.eid import locks

    try:
        with _engine(db).begin() as conn:
            account, person_id = _account(conn, username)
            locks.unlock(conn, account.account_id, actor=actor_label(), reason=reason, causes=cause or None)
            result = _audited_view(conn, account.account_id, person_id)
    except RegistryError as exc:
        fail_registry(exc)
    emit(result)


@eid_app.command("revoke")
def revoke(username: Username, reason: Reason, db: DbOption = None) -> None:
    """Revoke an account."""
    from dinhdanh.eid import locks

    try:
        with _engine(db).begin() as conn:
            account, person_id = _account(conn, username)
            locks.revoke(conn, account.account_id, actor=actor_label(), reason=reason)
            result = _audited_view(conn, account.account_id, person_id)
    except RegistryError as exc:
        fail_registry(exc)
    emit(result)


@eid_app.command("sweep")
def sweep(db: DbOption = None) -> None:
    """Lock accounts whose card, passport or residence card expired or whose holder died; lift locks
    whose cause is gone. Run daily."""
    from dinhdanh.eid import locks

    with _engine(db).begin() as conn:
        emit(locks.sweep(conn))


@eid_app.command("reviews")
def reviews(db: DbOption = None) -> None:
    """Registrations waiting for an officer's review (JSON)."""
    from dinhdanh.eid import registration

    with _engine(db).begin() as conn:
        emit(registration.list_registrations(conn))


@eid_app.command("review")
def review(registration_id: Annotated[int, typer.Argument(help="Registration number")],
           reason: Reason,
           approve: Annotated[bool, typer.Option("--approve/--refuse", help="The decision")] = False,
           db: DbOption = None) -> None:
    """Approve (the face is the person's) or refuse a registration under review."""
    from dinhdanh.eid import registration

    try:
        with _engine(db).begin() as conn:
            result = registration.review(conn, registration_id, approve=approve, reason=reason, actor=actor_label())
    except RegistryError as exc:
        fail_registry(exc)
    emit(result)


@eid_app.command("lock-requests")
def lock_requests(overdue: Annotated[bool, typer.Option(help="Only pending requests past their deadline")] = False,
                  db: DbOption = None) -> None:
    """Lock requests from other authorities (deadline: 2 working days)."""
    from dinhdanh.eid import locks

    with _engine(db).begin() as conn:
        emit(locks.list_lock_requests(conn, overdue=overdue))


@eid_app.command("seed")
def seed(limit: Annotated[int | None, typer.Option(min=1, help="At most this many people")] = None,
         mismatch_rate: Annotated[float, typer.Option(min=0.0, max=1.0, help="Share of subscriptions in "
                                                                              "another name")] = 0.0,
         db: DbOption = None) -> None:
    """The demo's outside data: telcos' subscribers (from the register's phone numbers) and the issuing
    registries' documents (driving licences, vehicles, insurance)."""
    from dinhdanh.eid import registration, wallet

    with _engine(db).begin() as conn:
        subscriptions = registration.seed_subscriptions_from_register(conn, limit=limit, mismatch_rate=mismatch_rate)
        documents = wallet.seed_source_documents(conn, limit=limit)
    emit({"mobile_subscriptions": subscriptions, "source_documents": documents})


@notify_app.command("deliver")
def deliver(sink: Annotated[Path | None, typer.Option(help="Write messages as files under this folder "
                                                            "(the demo's phone and mailbox)")] = None,
            sms_gateway: Annotated[str | None, typer.Option(help="HTTP SMS gateway URL (token in "
                                                                 "DINHDANH_SMS_TOKEN)")] = None,
            smtp: Annotated[str | None, typer.Option(help="SMTP host[:port] for e-mail")] = None,
            db: DbOption = None) -> None:
    """Deliver the SMS and e-mail waiting in the outbox; prints counts (JSON)."""
    import os

    from dinhdanh.notify import delivery

    channels: dict = {}
    if sink is not None:
        channels["sms"] = channels["email"] = delivery.FileSink(sink)
    if sms_gateway:
        channels["sms"] = delivery.SmsGateway(sms_gateway, os.environ.get("DINHDANH_SMS_TOKEN", ""))
    if smtp:
        host, _, port = smtp.partition(":")
        if port and not port.isdigit():
            fail("--smtp is host or host:port")
        channels["email"] = delivery.SmtpMailer(host, int(port or 587))
    if not channels:
        fail("give --sink DIR, --sms-gateway URL or --smtp HOST")
    emit(delivery.deliver(_engine(db), channels))
