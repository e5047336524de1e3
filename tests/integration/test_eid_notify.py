"""Delivering the outbox's notifications (SMS, e-mail) on SQLite and PostgreSQL: in order, once, a
failed channel retried, the message blanked after delivery, nothing personal in the logs."""

from __future__ import annotations

import logging

import sqlalchemy as sa

from dinhdanh.notify import delivery
from dinhdanh.notify.service import send_email, send_sms
from dinhdanh.notify.tables import notification_deliveries
from dinhdanh.store.outbox import enqueue, outbox


class Flaky:
    def __init__(self, fail_times: int):
        self.fail_times, self.sent = fail_times, []

    def send(self, message):
        if self.fail_times:
            self.fail_times -= 1
            raise OSError("gateway down")
        self.sent.append(message)


def test_deliver_in_order_retry_and_redact(engine, tmp_path, caplog):
    with engine.begin() as conn:
        send_sms(conn, "0912345001", "ma 111111")
        send_email(conn, "an@example.vn", "Ma", "ma 222222")
        send_sms(conn, "0912345002", "ma 333333")
        enqueue(conn, "person.died", None, {"pid": "001085000001"})  # not a notification
    sms = Flaky(fail_times=1)
    with caplog.at_level(logging.INFO, logger="dinhdanh.notify"):
        first = delivery.deliver(engine, {"sms": sms})
    assert first == {"sent": 1, "failed": 1, "skipped": 1}
    assert [m.to for m in sms.sent] == ["0912345002"]
    assert "0912345" not in caplog.text and "111111" not in caplog.text and "an@example" not in caplog.text
    second = delivery.deliver(engine, {"sms": sms, "email": delivery.FileSink(tmp_path)})
    assert second == {"sent": 2, "failed": 0, "skipped": 0}
    assert [m.text for m in sms.sent] == ["ma 333333", "ma 111111"]
    mail = next((tmp_path / "email" / "an@example.vn").glob("*.txt")).read_text(encoding="utf-8")
    assert mail.startswith("Subject: Ma") and "ma 222222" in mail
    assert delivery.deliver(engine, {"sms": sms, "email": delivery.FileSink(tmp_path)})["sent"] == 0
    with engine.connect() as conn:
        rows = conn.execute(sa.select(outbox.c.topic, outbox.c.payload).order_by(outbox.c.seq)).all()
        attempts = conn.execute(sa.select(notification_deliveries.c.attempts)
                                .order_by(notification_deliveries.c.seq)).scalars().all()
    assert [p for t, p in rows if t.startswith("notify.")] == [
        {"to": "091****001", "delivered": True}, {"to": "a***@example.vn", "delivered": True},
        {"to": "091****002", "delivered": True}]
    assert rows[-1].payload == {"pid": "001085000001"}
    assert attempts == [2, 1, 1]
