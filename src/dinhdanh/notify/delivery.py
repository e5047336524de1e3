"""Delivering the outbox's notifications through channels: an SMS gateway, SMTP, or a file sink.

``deliver(engine, channels)`` reads undelivered ``notify.*`` rows in ``seq`` order, hands each to
its channel, records the outcome in ``notification_deliveries`` and blanks the message in the
outbox (the recipient stays, masked), one transaction per message: a crash resends at most the
message in flight. Messages are sealed in the outbox (``notify.service``) and opened here, with the
database's vault, only to be handed to the channel. Logs name sequence numbers and channels, never
recipients or texts.

``FileSink`` is the demo's phone and mailbox: ``DIR/sms/<number>/<seq>.txt`` and
``DIR/email/<address>/<seq>.txt``, owner-only (folders 0700, files 0600).
"""

from __future__ import annotations

import json
import logging
import os
import re
import smtplib
import urllib.request
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol

import sqlalchemy as sa

from dinhdanh.notify.service import EMAIL, SMS, opened
from dinhdanh.notify.tables import notification_deliveries
from dinhdanh.store.base import utcnow
from dinhdanh.store.files import private_dir
from dinhdanh.store.outbox import outbox
from dinhdanh.store.vault import Vault, VaultError, of_bind
from dinhdanh.store.unit_of_work import UnitOfWork

log = logging.getLogger("dinhdanh.notify")
CHANNEL_OF = {SMS: "sms", EMAIL: "email"}


@dataclass(frozen=True, slots=True)
class Message:
    seq: int
    channel: str  # sms / email
    to: str
    text: str
    subject: str | None = None


class Channel(Protocol):
    def send(self, message: Message) -> None:
        """Deliver or raise (the message is then marked failed and retried on the next run)."""
        ...


class FileSink:
    """Writes each message to a file: the demo's phone and mailbox."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def send(self, message: Message) -> None:
        safe = re.sub(r"[^0-9A-Za-z@._+-]", "_", message.to)[:100] or "_"
        where = private_dir(self.folder / message.channel / safe)
        body = message.text if message.subject is None else f"Subject: {message.subject}\n\n{message.text}"
        fd = os.open(where / f"{message.seq:08d}.txt", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(body + "\n")


class SmsGateway:
    """A telco's or aggregator's HTTP API: POST {"to", "text"} as JSON with a bearer token."""

    def __init__(self, url: str, token: str, timeout: float = 10.0):
        self.url, self.token, self.timeout = url, token, timeout

    def send(self, message: Message) -> None:
        request = urllib.request.Request(
            self.url, data=json.dumps({"to": message.to, "text": message.text}).encode(), method="POST",
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {self.token}"})
        with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 (configured URL)
            if response.status >= 300:
                raise OSError(f"SMS gateway answered {response.status}")


class SmtpMailer:
    def __init__(self, host: str, port: int = 587, sender: str = "no-reply@dinhdanh.local",
                 username: str | None = None, password: str | None = None, starttls: bool = True):
        self.host, self.port, self.sender = host, port, sender
        self.username, self.password, self.starttls = username, password, starttls

    def send(self, message: Message) -> None:
        mail = EmailMessage()
        mail["From"], mail["To"] = self.sender, message.to
        mail["Subject"] = message.subject or "dinhdanh"
        mail.set_content(message.text)
        with smtplib.SMTP(self.host, self.port, timeout=10) as smtp:
            if self.starttls:
                smtp.starttls()
            if self.username:
                smtp.login(self.username, self.password or "")
            smtp.send_message(mail)


def mask(recipient: str) -> str:
    if "@" in recipient:
        name, _, domain = recipient.partition("@")
        return name[:1] + "***@" + domain
    return recipient[:3] + "*" * max(0, len(recipient) - 6) + recipient[-3:]


def pending(conn: sa.Connection, limit: int = 1000) -> list:
    return conn.execute(
        sa.select(outbox).outerjoin(notification_deliveries, notification_deliveries.c.seq == outbox.c.seq)
        .where(outbox.c.topic.in_(tuple(CHANNEL_OF)), sa.or_(notification_deliveries.c.seq.is_(None),
                                                             notification_deliveries.c.outcome == "failed"))
        .order_by(outbox.c.seq).limit(limit)).all()


def deliver(engine: sa.Engine, channels: dict[str, Channel], *, limit: int = 1000,
            vault: Vault | None = None) -> dict:
    """Deliver what is waiting; returns {"sent": n, "failed": n, "skipped": n} (skipped: no channel).
    Messages are opened with ``vault`` (default: the database's, ``store.vault.of_bind``)."""
    vault = vault or of_bind(engine)
    with UnitOfWork(engine).read() as conn:
        rows = pending(conn, limit)
    counts = {"sent": 0, "failed": 0, "skipped": 0}
    for row in rows:
        channel_name = CHANNEL_OF[row.topic]
        channel = channels.get(channel_name)
        if channel is None:
            counts["skipped"] += 1
            continue
        try:
            content = opened(vault, row.payload)
        except (VaultError, ValueError) as exc:  # sealed under another master key, or damaged: kept, retried
            log.warning("notification %d over %s cannot be opened: %s", row.seq, channel_name, type(exc).__name__)
            content = None
        message = Message(seq=row.seq, channel=channel_name, to=content["to"], text=content["text"],
                          subject=content["subject"]) if content else None
        outcome = "failed"
        if message is not None:
            try:
                channel.send(message)
                outcome = "sent"
            except Exception as exc:  # a channel's failure must not stop the others
                log.warning("notification %d over %s failed: %s", row.seq, channel_name, type(exc).__name__)
        with UnitOfWork(engine).begin() as conn:
            done = conn.execute(notification_deliveries.update().where(notification_deliveries.c.seq == row.seq)
                                .values(outcome=outcome, delivered_at=utcnow(),
                                        attempts=notification_deliveries.c.attempts + 1))
            if done.rowcount == 0:
                conn.execute(notification_deliveries.insert().values(seq=row.seq, channel=channel_name,
                                                                     delivered_at=utcnow(), outcome=outcome))
            if outcome == "sent":
                conn.execute(outbox.update().where(outbox.c.seq == row.seq)
                             .values(payload={"to": mask(message.to), "delivered": True}))
        counts[outcome] += 1
        log.info("notification %d over %s: %s", row.seq, channel_name, outcome)
    return counts
