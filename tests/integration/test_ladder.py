"""The telcos' mismatch ladder on each back-end, with an injected ``today``: detection from a
matched file, the notice SMS, every step day by day (boundaries), catch-up, re-verification at each
stage, idempotent re-ingest, restart after clearing, and a bank's batch that feeds nothing."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa

from dinhdanh.exchange import ladder, matching
from dinhdanh.exchange.tables import subscriber_ladder, subscriber_ladder_history
from dinhdanh.registry.errors import NotFound
from dinhdanh.store.outbox import outbox
from tests.oidc_support import add_partner
from tests.support import FAMILY

AN, BINH, CHAU, DUNG, DUC, HOA, GIANG = (row[0] for row in FAMILY)
D0 = dt.date(2026, 3, 2)
GOOD = {  # msisdn -> a row that matches
    "0901000001": (AN, "Nguyễn Văn An", "1985-03-04"),
    "0901000002": (BINH, "Trần Thị Bình", "1987-05-06"),
}
BAD = {  # msisdn -> a row that does not: mismatch, not_found, invalid
    "0901000003": (CHAU, "Nguyen Minh Chau", "2012-01-02"),
    "0901000004": ("001099123456", "Ai Đó", "1999-01-01"),
    "+84 901 000 005": (DUC, "Lê Văn Đức", "1990-13-45"),
}
FIXED = {"0901000003": (CHAU, "Nguyễn Minh Châu", "2012-01-02"), "0901000004": (HOA, "Phạm Thị Hoa", "1993-11-12"),
         "+84 901 000 005": (DUC, "Lê Văn Đức", "1990-09-10")}


@pytest.fixture
def telco(family, tmp_path, monkeypatch):
    monkeypatch.setenv("DINHDANH_HOME", str(tmp_path / "home"))
    return family, add_partner(family, name="Viettel thử nghiệm")["client_id"]


def write(path: Path, rows: dict) -> Path:
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(("msisdn", "pid", "full_name", "date_of_birth"))
        for msisdn, (pid, name, dob) in rows.items():
            w.writerow((msisdn, pid, name, dob))
    return path


def feed(engine, partner, tmp_path, rows: dict, today: dt.date, name: str = "in") -> dict:
    out = tmp_path / f"{name}-out.csv"
    summary = matching.match_file(engine, write(tmp_path / f"{name}.csv", rows), out, partner)
    return {"job_id": summary["job_id"], **ladder.record_batch(engine, summary["job_id"], today=today)}


def states(engine) -> dict[str, str]:
    with engine.connect() as conn:
        return dict(conn.execute(sa.select(subscriber_ladder.c.msisdn, subscriber_ladder.c.state)).all())


def history(engine, msisdn: str) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(
            sa.select(subscriber_ladder_history.c.state, subscriber_ladder_history.c.effective_on)
            .join(subscriber_ladder).where(subscriber_ladder.c.msisdn == msisdn)
            .order_by(subscriber_ladder_history.c.history_id)).all()]


def sms(engine) -> list[dict]:
    """The notices waiting in the outbox, opened (they are sealed there) as the deliverer would."""
    from dinhdanh.notify.service import opened
    from dinhdanh.store.vault import of_bind

    with engine.connect() as conn:
        return [opened(of_bind(engine), r.payload) for r in conn.execute(
            sa.select(outbox).where(outbox.c.topic == "notify.sms").order_by(outbox.c.seq)).all()]


def advance(engine, day: int) -> dict:
    with engine.begin() as conn:
        return ladder.advance(conn, D0 + dt.timedelta(days=day))


def test_detection_and_notice(telco, tmp_path):
    engine, partner = telco
    got = feed(engine, partner, tmp_path, {**GOOD, **BAD}, D0)
    assert (got["detected"], got["restarted"], got["cleared"]) == (3, 0, 0)
    assert states(engine) == {"0901000003": "notified", "0901000004": "notified", "0901000005": "notified"}
    with engine.connect() as conn:
        view = ladder.show(conn, partner, "0901000003")
        assert ladder.show(conn, partner, "+84901000005")["outcome"] == "invalid"
        with pytest.raises(NotFound):
            ladder.show(conn, partner, "0901000001")
    assert view["detected_on"] == "2026-03-02" and view["notify_by"] == "2026-03-07"
    assert view["outcome"] == "mismatch" and view["next"] == {"state": "one_way_locked", "on": "2026-03-17"}
    assert view["history"] == [{"state": "notified", "on": "2026-03-02", "cause": f"detected in match job {got['job_id']}"}]
    notices = sms(engine)
    assert sorted(n["to"] for n in notices) == ["0901000003", "0901000004", "0901000005"]
    for n in notices:
        assert "Viettel thử nghiệm" in n["text"] and "17/03/2026" in n["text"] and "khóa một chiều" in n["text"]
        for person in FAMILY:  # nothing of the register in it
            assert person[0] not in n["text"] and person[1] not in n["text"] and person[2] not in n["text"]


def test_the_ladder_day_by_day(telco, tmp_path):
    engine, partner = telco
    feed(engine, partner, tmp_path, {"0901000003": BAD["0901000003"]}, D0)
    expected = {14: "notified", 15: "one_way_locked", 29: "one_way_locked", 30: "two_way_locked",
                59: "two_way_locked", 60: "terminated", 61: "terminated"}
    for day in range(62):
        advance(engine, day)
        if day in expected:
            assert states(engine)["0901000003"] == expected[day], day
    assert advance(engine, 400) == {"one_way_locked": 0, "two_way_locked": 0, "terminated": 0}
    assert history(engine, "0901000003") == [
        ("notified", D0), ("one_way_locked", D0 + dt.timedelta(15)), ("two_way_locked", D0 + dt.timedelta(30)),
        ("terminated", D0 + dt.timedelta(60))]
    with engine.connect() as conn:
        assert ladder.show(conn, partner, "0901000003")["next"] is None


def test_catching_up_missed_days(telco, tmp_path):
    engine, partner = telco
    feed(engine, partner, tmp_path, BAD, D0)
    assert advance(engine, 45) == {"one_way_locked": 3, "two_way_locked": 3, "terminated": 0}
    assert history(engine, "0901000004") == [
        ("notified", D0), ("one_way_locked", D0 + dt.timedelta(15)), ("two_way_locked", D0 + dt.timedelta(30))]
    with engine.connect() as conn:
        assert ladder.show(conn, partner, "0901000004")["next"] == {"state": "terminated", "on": "2026-05-01"}


@pytest.mark.parametrize("day,state", [(0, "notified"), (15, "one_way_locked"), (59, "two_way_locked")])
def test_a_matching_batch_clears_at_each_stage(telco, tmp_path, day, state):
    engine, partner = telco
    feed(engine, partner, tmp_path, BAD, D0)
    advance(engine, day)
    assert set(states(engine).values()) == {state}
    got = feed(engine, partner, tmp_path, FIXED, D0 + dt.timedelta(day), name="again")
    assert got["cleared"] == 3 and got["detected"] == 0
    assert set(states(engine).values()) == {"cleared"}
    assert history(engine, "0901000003")[-1] == ("cleared", D0 + dt.timedelta(day))
    assert advance(engine, 400) == {"one_way_locked": 0, "two_way_locked": 0, "terminated": 0}


def test_terminated_stays_and_a_new_detection_restarts(telco, tmp_path):
    engine, partner = telco
    feed(engine, partner, tmp_path, {"0901000003": BAD["0901000003"]}, D0)
    advance(engine, 60)
    got = feed(engine, partner, tmp_path, {"0901000003": FIXED["0901000003"]}, D0 + dt.timedelta(61), name="late")
    assert got["cleared"] == 0 and states(engine)["0901000003"] == "terminated"
    # the number comes back (a new subscriber) with data that does not match: the ladder starts over
    day = D0 + dt.timedelta(90)
    got = feed(engine, partner, tmp_path, {"0901000003": BAD["0901000003"]}, day, name="new")
    assert got["restarted"] == 1 and states(engine)["0901000003"] == "notified"
    with engine.connect() as conn:
        view = ladder.show(conn, partner, "0901000003")
    assert view["detected_on"] == day.isoformat() and view["history"][-1]["state"] == "notified"
    assert len(sms(engine)) == 2


def test_reingest_is_idempotent(telco, tmp_path):
    engine, partner = telco
    first = feed(engine, partner, tmp_path, {**GOOD, **BAD}, D0)
    with engine.connect() as conn:
        before = conn.execute(sa.select(subscriber_ladder).order_by(subscriber_ladder.c.msisdn)).all()
    again = ladder.record_batch(engine, first["job_id"], today=D0 + dt.timedelta(3))
    assert again == {"detected": 0, "restarted": 0, "cleared": 0}
    with engine.connect() as conn:
        assert conn.execute(sa.select(subscriber_ladder).order_by(subscriber_ladder.c.msisdn)).all() == before
        assert conn.execute(sa.select(sa.func.count()).select_from(subscriber_ladder_history)).scalar() == 3
    assert len(sms(engine)) == 3


def test_reverified_by_the_telco(telco, tmp_path):
    engine, partner = telco
    feed(engine, partner, tmp_path, BAD, D0)
    assert ladder.reverifies({"full_name": "match", "date_of_birth": "match", "phone": "mismatch"})
    assert not ladder.reverifies({"full_name": "match_folded", "date_of_birth": "match", "phone": "match"})
    assert not ladder.reverifies({"full_name": "match", "phone": "match"})
    with engine.begin() as conn:
        assert ladder.reverified(conn, partner, "+84 901 000 003", "test", D0 + dt.timedelta(2))
        assert not ladder.reverified(conn, partner, "0901000003", "test", D0 + dt.timedelta(2))  # already cleared
        assert not ladder.reverified(conn, "someone-else", "0901000004", "test")
    assert states(engine)["0901000003"] == "cleared" and states(engine)["0901000004"] == "notified"


def test_a_banks_batch_does_not_feed_the_ladder(family, tmp_path, monkeypatch):
    monkeypatch.setenv("DINHDANH_HOME", str(tmp_path / "home"))
    bank = add_partner(family, name="Ngân hàng thử nghiệm", kind="bank")["client_id"]
    got = feed(family, bank, tmp_path, BAD, D0)
    assert got["skipped"] == "not a telco"
    assert states(family) == {} and sms(family) == []


def test_list_with_counts(telco, tmp_path):
    engine, partner = telco
    feed(engine, partner, tmp_path, BAD, D0)
    with engine.begin() as conn:
        ladder.reverified(conn, partner, "0901000004", "test", D0)
        page = ladder.list_subscriptions(conn, partner, None, 1, size=2)
        notified = ladder.list_subscriptions(conn, partner, "notified")
        other = ladder.list_subscriptions(conn, "someone-else")
    assert page["counts"] == {"notified": 2, "one_way_locked": 0, "two_way_locked": 0, "terminated": 0, "cleared": 1}
    assert [i["msisdn"] for i in page["items"]] == ["0901000003", "0901000004"] and page["has_next"] is True
    assert [i["msisdn"] for i in notified["items"]] == ["0901000003", "0901000005"]
    assert other["items"] == [] and sum(other["counts"].values()) == 0
