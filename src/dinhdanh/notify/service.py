"""Sending a notification: an outbox row (topic ``notify.sms`` / ``notify.email``) written in the
caller's transaction; ``notify.delivery`` hands it to a channel afterwards, so a message goes out
exactly when the change it reports is committed.

The message itself (text and subject: an activation code, a lock notice) is sealed with the
database's vault (``store.vault.of_bind``, purpose ``notify-message``) before it is written: the
outbox row holds ``{"to": recipient, "sealed": base64}``, opened only at delivery
(``opened``). Once delivered, the outbox keeps only the masked recipient: activation codes never
sit in clear at rest, and not even sealed after they went out.
"""

from __future__ import annotations

import base64
import json

import sqlalchemy as sa

from dinhdanh.store.outbox import enqueue
from dinhdanh.store.vault import Vault, of_bind

SMS = "notify.sms"
EMAIL = "notify.email"
PURPOSE = "notify-message"


def _sealed(vault: Vault, text: str, subject: str | None) -> str:
    message = {"text": text} if subject is None else {"subject": subject, "text": text}
    return base64.b64encode(vault.seal(json.dumps(message, ensure_ascii=False).encode(), PURPOSE)).decode()


def send_sms(conn: sa.Connection, msisdn: str, text: str, *, person_id: int | None = None,
             vault: Vault | None = None) -> None:
    enqueue(conn, SMS, person_id, {"to": msisdn, "sealed": _sealed(vault or of_bind(conn), text, None)})


def send_email(conn: sa.Connection, address: str, subject: str, text: str, *, person_id: int | None = None,
               vault: Vault | None = None) -> None:
    enqueue(conn, EMAIL, person_id, {"to": address, "sealed": _sealed(vault or of_bind(conn), text, subject)})


def opened(vault: Vault, payload: dict) -> dict:
    """``{"to", "subject", "text"}`` of a waiting notification's payload (raises ``VaultError`` when
    it does not open). A row written in clear before messages were sealed is read as it is."""
    payload = payload or {}
    if "sealed" in payload:
        message = json.loads(vault.open(base64.b64decode(payload["sealed"]), PURPOSE))
    else:
        message = payload
    return {"to": str(payload.get("to", "")), "subject": message.get("subject"), "text": str(message.get("text", ""))}
