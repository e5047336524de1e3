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


def test_messages_are_sealed_until_delivered(engine, tmp_path):
    import json

    from dinhdanh.notify.service import opened
    from dinhdanh.store.vault import Vault, of_bind

    with engine.begin() as conn:
        send_sms(conn, "0912345001", "VNeID: ma kich hoat 482913")
        send_email(conn, "an@example.vn", "Mã kích hoạt", "Mã của bạn là 482913")
    with engine.connect() as conn:
        waiting = conn.execute(sa.select(outbox.c.payload).order_by(outbox.c.seq)).scalars().all()
    for payload in waiting:  # neither the code nor the text nor the subject in the row
        raw = json.dumps(payload, ensure_ascii=False)
        assert "482913" not in raw and "VNeID" not in raw and "kích hoạt" not in raw and "sealed" in payload
    assert opened(of_bind(engine), waiting[1]) == {"to": "an@example.vn", "subject": "Mã kích hoạt",
                                                    "text": "Mã của bạn là 482913"}
    # under another master key nothing opens, nothing is sent, the message waits
    sms = Flaky(fail_times=0)
    assert delivery.deliver(engine, {"sms": sms}, vault=Vault(bytes(32))) == {"sent": 0, "failed": 1, "skipped": 1}
    assert sms.sent == []
    sink = delivery.FileSink(tmp_path / "sink")
    assert delivery.deliver(engine, {"sms": sms, "email": sink}) == {"sent": 2, "failed": 0, "skipped": 0}
    assert [(m.to, m.text) for m in sms.sent] == [("0912345001", "VNeID: ma kich hoat 482913")]
    mail = next((tmp_path / "sink" / "email" / "an@example.vn").glob("*.txt"))
    assert mail.read_text(encoding="utf-8") == "Subject: Mã kích hoạt\n\nMã của bạn là 482913\n"
    assert mail.stat().st_mode & 0o777 == 0o600 and mail.parent.stat().st_mode & 0o777 == 0o700
    with engine.connect() as conn:
        after = conn.execute(sa.select(outbox.c.payload).order_by(outbox.c.seq)).scalars().all()
    assert after == [{"to": "091****001", "delivered": True}, {"to": "a***@example.vn", "delivered": True}]


def test_a_message_written_in_clear_before_sealing_is_still_delivered(engine):
    with engine.begin() as conn:
        enqueue(conn, "notify.sms", None, {"to": "0912345001", "text": "written by an older version"})
    sms = Flaky(fail_times=0)
    assert delivery.deliver(engine, {"sms": sms})["sent"] == 1
    assert [m.text for m in sms.sent] == ["written by an older version"]
