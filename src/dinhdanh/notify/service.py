"""Sending a notification: an outbox row (topic ``notify.sms`` / ``notify.email``) written in the
caller's transaction; ``notify.delivery`` hands it to a channel afterwards, so a message goes out
exactly when the change it reports is committed.

The outbox holds the message until it is delivered, then only the masked recipient: activation
codes do not stay at rest.
"""

from __future__ import annotations

import sqlalchemy as sa

from dinhdanh.store.outbox import enqueue

SMS = "notify.sms"
EMAIL = "notify.email"


def send_sms(conn: sa.Connection, msisdn: str, text: str, *, person_id: int | None = None) -> None:
    enqueue(conn, SMS, person_id, {"to": msisdn, "text": text})


def send_email(conn: sa.Connection, address: str, subject: str, text: str, *, person_id: int | None = None) -> None:
    enqueue(conn, EMAIL, person_id, {"to": address, "subject": subject, "text": text})
