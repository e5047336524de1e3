"""Delivering routed events as signed webhooks (Standard Webhooks).

Each message is POSTed with ``webhook-id`` (``msg_<client>_<seq>``: the same on every retry, so
receivers dedupe by it), ``webhook-timestamp`` (unix seconds of the attempt) and
``webhook-signature`` (``v1,<base64 HMAC-SHA256>`` by ``standardwebhooks``, with the subscription's
``whsec_`` secret). A 2xx answer delivers it; anything else (refused connection, timeout, 5xx, 4xx)
schedules a retry with exponential back-off and jitter (5 s, 30 s, 2 min, 10 min, 1 h, 3 h, then
every 6 h); after ``max_attempts`` the row goes ``dead`` (the dead-letter list, re-queued by the
partner or an operator).

Where to: only to checked public addresses (``changes.targets.PinnedTransport``: the host is
resolved here, every address checked, the connection made to the address checked, TLS verified
against the name). A refused target is a failed attempt (``last_error``
``webhook_url_not_allowed: ...``, no address, no body, no secret), retried and dead-lettered like
any other. Redirects are not followed: a 3xx is a failure.

Order per person: a message is not sent while an earlier one for the same person and subscription
is still pending. A dead message does not block what follows (the dead-letter list keeps it; a
re-queued one is delivered late, out of order, with its seq telling the receiver where it belongs).

At least once: the state of each message changes in its own transaction after the POST answers; a
crash resends at most what was in flight. On PostgreSQL each message is locked (``FOR UPDATE SKIP
LOCKED``) while it is sent, so several deliverers share the work without sending twice.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
from collections.abc import Callable

import httpx
import sqlalchemy as sa
from standardwebhooks import Webhook

from dinhdanh.changes.service import event_body, open_secret
from dinhdanh.changes.targets import PinnedTransport, TargetRefused
from dinhdanh.changes.tables import change_deliveries, subscriptions
from dinhdanh.exchange.tables import partners
from dinhdanh.store.base import utcnow
from dinhdanh.store.vault import Vault
from dinhdanh.store.unit_of_work import UnitOfWork

log = logging.getLogger("dinhdanh.changes")
SCHEDULE = (5, 30, 120, 600, 3600, 3 * 3600, 6 * 3600)  # seconds before attempt 2, 3, ...; then the last
MAX_ATTEMPTS = 12  # about a day and a half of retries
TIMEOUT = 10.0
BATCH = 100


def backoff(attempts: int, rand: Callable[[], float] = random.random) -> dt.timedelta:
    """The wait after the ``attempts``-th failed attempt: the schedule, +-20 % jitter."""
    base = SCHEDULE[min(max(attempts, 1), len(SCHEDULE)) - 1]
    return dt.timedelta(seconds=base * (0.8 + 0.4 * rand()))


def message_id(client_id: str, seq: int) -> str:
    return f"msg_{client_id}_{seq}"


def signed_request(secret: str, client_id: str, seq: int, body: bytes, at: dt.datetime) -> dict[str, str]:
    """The headers of one attempt (the signature covers id, timestamp and the body bytes)."""
    msg_id = message_id(client_id, seq)
    return {"webhook-id": msg_id, "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": Webhook(secret).sign(msg_id, at, body), "content-type": "application/json"}


def body_of(row) -> bytes:
    return json.dumps(event_body(row.topic, row.occurred_at, dict(row.data)), ensure_ascii=False,
                      separators=(",", ":")).encode()


class Deliverer:
    def __init__(self, engine: sa.Engine, vault: Vault, *, client: httpx.Client | None = None,
                 max_attempts: int = MAX_ATTEMPTS, timeout: float = TIMEOUT,
                 clock: Callable[[], dt.datetime] = utcnow, rand: Callable[[], float] = random.random):
        self.engine = engine
        self.vault = vault
        self.client = client or httpx.Client(timeout=timeout, follow_redirects=False, transport=PinnedTransport(),
                                             headers={"user-agent": "dinhdanh-webhooks"})
        self.max_attempts = max_attempts
        self.clock = clock
        self.rand = rand
        self.hold = engine.dialect.name == "postgresql"
        self._secrets: dict[int, str] = {}

    def close(self) -> None:
        self.client.close()

    def _secret(self, sub) -> str:
        secret = self._secrets.get(sub.subscription_id)
        if secret is None:
            secret = self._secrets[sub.subscription_id] = open_secret(self.vault, sub.secret_sealed)
        return secret

    def due(self, conn: sa.Connection, now: dt.datetime, limit: int = BATCH) -> list:
        """Pending messages due now, each the earliest pending one of its person and subscription."""
        d, e = change_deliveries, change_deliveries.alias("earlier")
        earlier = sa.exists().where(e.c.subscription_id == d.c.subscription_id, e.c.person_id == d.c.person_id,
                                    e.c.status == "pending", e.c.seq < d.c.seq)
        return conn.execute(
            sa.select(d.c.delivery_id).join(subscriptions, subscriptions.c.subscription_id == d.c.subscription_id)
            .join(partners, partners.c.client_id == d.c.client_id)
            .where(d.c.status == "pending", d.c.next_attempt_at <= now, ~earlier,
                   subscriptions.c.state == "active", partners.c.state == "active")
            .order_by(d.c.seq, d.c.delivery_id).limit(limit)).scalars().all()

    def _load(self, conn: sa.Connection, delivery_id: int, now: dt.datetime):
        q = (sa.select(change_deliveries, subscriptions.c.webhook_url, subscriptions.c.secret_sealed)
             .join(subscriptions, subscriptions.c.subscription_id == change_deliveries.c.subscription_id)
             .where(change_deliveries.c.delivery_id == delivery_id, change_deliveries.c.status == "pending",
                    change_deliveries.c.next_attempt_at <= now))
        if self.hold:
            q = q.with_for_update(skip_locked=True, of=change_deliveries)
        return conn.execute(q).first()

    def _post(self, row) -> str | None:
        """Send one message; None when delivered, else what went wrong (no personal data)."""
        body = body_of(row)
        headers = signed_request(self._secret(row), row.client_id, row.seq, body, utcnow())
        try:
            answer = self.client.post(row.webhook_url, content=body, headers=headers)
        except TargetRefused as exc:
            log.warning("webhook of subscription %d refused: %s", row.subscription_id, exc)
            return str(exc)[:200]
        except httpx.HTTPError as exc:
            return type(exc).__name__
        if 200 <= answer.status_code < 300:
            return None
        return f"HTTP {answer.status_code}"

    def _record(self, conn: sa.Connection, row, error: str | None, now: dt.datetime) -> str:
        attempts = row.attempts + 1
        if error is None:
            values = {"status": "delivered", "delivered_at": now, "last_error": None}
        elif attempts >= self.max_attempts:
            values = {"status": "dead", "last_error": error}
        else:
            values = {"next_attempt_at": now + backoff(attempts, self.rand), "last_error": error}
        conn.execute(change_deliveries.update().where(change_deliveries.c.delivery_id == row.delivery_id,
                                                      change_deliveries.c.status == "pending")
                     .values(attempts=attempts, **values))
        return values.get("status", "retry")

    def deliver(self, delivery_id: int) -> str | None:
        """One attempt at one message: "delivered", "retry", "dead", or None if it was not due."""
        now = self.clock()
        if self.hold:  # the row stays locked while it is sent: other deliverers skip it
            with UnitOfWork(self.engine).begin() as conn:
                row = self._load(conn, delivery_id, now)
                if row is None:
                    return None
                return self._record(conn, row, self._post(row), self.clock())
        with UnitOfWork(self.engine).read() as conn:  # SQLite: no transaction open during the POST
            row = self._load(conn, delivery_id, now)
        if row is None:
            return None
        error = self._post(row)
        with UnitOfWork(self.engine).begin() as conn:
            return self._record(conn, row, error, self.clock())

    def run(self, limit: int = BATCH) -> dict[str, int]:
        """Send what is due now, round after round, until nothing is due; counts per outcome."""
        counts = {"delivered": 0, "retry": 0, "dead": 0}
        while True:
            with UnitOfWork(self.engine).read() as conn:
                ids = self.due(conn, self.clock(), limit)
            if not ids:
                return counts
            sent = 0
            for delivery_id in ids:
                outcome = self.deliver(delivery_id)
                if outcome is not None:
                    counts[outcome] += 1
                    sent += 1
            if sent == 0:
                return counts
