"""Locking and unlocking for every cause (Decree 69/2024), on SQLite and PostgreSQL: the owner, a revoked
or expired card, death, a foreigner's documents, an organisation's dissolution, another authority's
request with its deadline; each cause lifted on its own; every change in account_events."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from dinhdanh.cards import lifecycle, pki
from dinhdanh.cards.tables import cards
from dinhdanh.eid import accounts, auth, counter, locks
from dinhdanh.eid.tables import account_events, account_locks, eid_accounts, lock_requests
from dinhdanh.registry.errors import Conflict, InvalidInput, RuleViolation
from dinhdanh.registry.tables import persons
from tests import chips
from tests.chips import AN, BINH, CHAU, NATIONAL
from tests.eid_support import PASSCODE, enroll, issue, record

NOW = dt.datetime.now(dt.UTC)
TODAY = accounts.vn_today(NOW)


@pytest.fixture
def vault():
    return chips.new_vault()


@pytest.fixture
def reg(family, vault):
    chips.reset_caches()
    with family.begin() as conn:
        pki.init_pki(conn, vault)
    issue(family, vault, AN)
    yield family
    chips.reset_caches()


def state(engine, account_id):
    with engine.connect() as conn:
        row = accounts.get_account(conn, account_id)
        causes = sorted(r.cause for r in accounts.open_locks(conn, account_id))
        return row.state, causes


def events_of(engine, account_id):
    with engine.connect() as conn:
        return [(r.kind, r.from_state, r.to_state) for r in conn.execute(
            sa.select(account_events).where(account_events.c.account_id == account_id)
            .order_by(account_events.c.event_id))]


def sweep(engine, now=None):
    with engine.begin() as conn:
        return locks.sweep(conn, now=now)


def test_card_revoked_locks_then_a_new_card_and_the_sweep_unlock(reg, vault):
    account_id = enroll(reg, vault, AN, level=2)["account_id"]
    with reg.begin() as conn:
        lifecycle.revoke_card(conn, NATIONAL, AN, "data_changed")
    assert state(reg, account_id) == ("locked", ["card_revoked"])
    with pytest.raises(RuleViolation) as e:
        with reg.begin() as conn:
            locks.unlock(conn, account_id, actor="officer:1", reason="asked")
    assert e.value.code == "cause_persists"
    assert sweep(reg) == {"locked": {}, "lifted": {}}
    issue(reg, vault, AN)  # re-issued for the changed data
    assert sweep(reg)["lifted"] == {"card_revoked": 1}
    assert state(reg, account_id) == ("active", [])
    # a level-2 enrolment registers a TOTP second factor (kept in the history)
    assert [k for k, _, _ in events_of(reg, account_id)] == ["created", "totp_enabled", "locked", "unlocked"]


def test_a_card_reported_lost_locks_until_the_new_one(reg, vault):
    account_id = enroll(reg, vault, AN, level=2)["account_id"]
    issue(reg, vault, AN, kind="reissue_lost")  # revoked "lost" at the application, new card handed over
    assert state(reg, account_id) == ("locked", ["card_revoked"])
    with reg.begin() as conn:
        assert locks.unlock(conn, account_id, actor="officer:1", reason="Đã có thẻ mới") == ["card_revoked"]
    assert state(reg, account_id) == ("active", [])


def test_a_replaced_card_locks_nothing(reg, vault):
    account_id = enroll(reg, vault, AN, level=2)["account_id"]
    issue(reg, vault, AN, kind="reissue_damaged")
    assert state(reg, account_id) == ("active", [])


def test_death_locks_through_both_hooks_once(reg, vault):
    account_id = enroll(reg, vault, AN, level=2)["account_id"]
    record(reg, "death", pid=AN, date_of_death=(TODAY - dt.timedelta(days=1)).isoformat())
    assert state(reg, account_id) == ("locked", ["death"])
    with reg.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(account_locks)).scalar_one() == 1
    with pytest.raises(auth.LoginRefused) as e:
        with reg.begin() as conn:
            auth.authenticate(conn, AN, PASSCODE)
    assert e.value.code == "account_locked"
    assert sweep(reg) == {"locked": {}, "lifted": {}}  # nothing more to do


def test_expired_card_is_locked_by_the_sweep(reg, vault):
    account_id = enroll(reg, vault, AN, level=2)["account_id"]
    with reg.begin() as conn:
        conn.execute(cards.update().values(expiry_date=TODAY - dt.timedelta(days=1)))
    assert sweep(reg)["locked"] == {"card_expired": 1}
    assert state(reg, account_id) == ("locked", ["card_expired"])
    assert sweep(reg)["locked"] == {}
    with reg.begin() as conn:
        conn.execute(cards.update().values(expiry_date=TODAY + dt.timedelta(days=1)))
    assert sweep(reg)["lifted"] == {"card_expired": 1}


def test_death_recorded_without_the_hook_is_found_by_the_sweep(reg, vault):
    account_id = enroll(reg, vault, BINH)["account_id"]
    with reg.begin() as conn:
        conn.execute(persons.update().where(persons.c.pid == BINH).values(status="dead"))
    assert sweep(reg)["locked"] == {"death": 1}
    with reg.begin() as conn:
        conn.execute(persons.update().where(persons.c.pid == BINH).values(status="alive"))
    assert sweep(reg)["lifted"] == {"death": 1}
    assert state(reg, account_id) == ("active", [])


def test_owner_and_card_locks_are_lifted_separately(reg, vault):
    account_id = enroll(reg, vault, AN, level=2)["account_id"]
    with reg.begin() as conn:
        auth.lock_by_owner(conn, account_id, "Mất điện thoại")
        lifecycle.revoke_card(conn, NATIONAL, AN, "lost")
    assert state(reg, account_id) == ("locked", ["card_revoked", "owner"])
    with pytest.raises(RuleViolation) as e:
        with reg.begin() as conn:
            locks.unlock(conn, account_id, actor="owner", reason="found", causes=["card_revoked"], source="owner")
    assert e.value.code == "not_owner_lock"
    with reg.begin() as conn:
        assert locks.unlock(conn, account_id, actor="owner", reason="found", causes=["owner"],
                            source="owner") == ["owner"]
    assert state(reg, account_id) == ("locked", ["card_revoked"])
    kinds = [k for k, _, _ in events_of(reg, account_id)]
    assert kinds == ["created", "totp_enabled", "locked", "lock_added", "lock_lifted"]  # TOTP: level-2 enrolment
    with pytest.raises(InvalidInput):
        with reg.begin() as conn:
            locks.unlock(conn, account_id, actor="x", reason="y", causes=["nonsense"])


def test_breach_lock_and_revocation_by_an_officer(reg, vault):
    account_id = enroll(reg, vault, BINH)["account_id"]
    with reg.begin() as conn:
        locks.lock(conn, account_id, "breach", source="officer", actor="officer:1", reason="Vi phạm điều khoản")
        assert locks.unlock(conn, account_id, actor="officer:1", reason="Đã xử lý") == ["breach"]
        with pytest.raises(Conflict):
            locks.unlock(conn, account_id, actor="officer:1", reason="again")
        locks.revoke(conn, account_id, actor="officer:1", reason="Thu hồi theo đề nghị")
        assert locks.lock(conn, account_id, "breach", source="officer", actor="o", reason="r") is None
        with pytest.raises(Conflict):
            locks.revoke(conn, account_id, actor="officer:1", reason="again")
    assert state(reg, account_id) == ("revoked", [])
    # the person may enrol again: the same account row, with its history
    again = enroll(reg, vault, BINH)
    assert again["account_id"] == account_id and again["state"] == "active"


def test_working_days_and_lock_requests(reg, vault):
    assert locks.add_working_days(dt.date(2026, 11, 26), 2) == dt.date(2026, 11, 30)  # Thu -> Mon
    assert locks.add_working_days(dt.date(2026, 11, 27), 2) == dt.date(2026, 12, 1)  # Fri -> Tue
    assert locks.add_working_days(dt.date(2026, 11, 29), 2) == dt.date(2026, 12, 1)  # Sun -> Tue
    account_id = enroll(reg, vault, AN)["account_id"]
    other = enroll(reg, vault, CHAU)["account_id"]
    with reg.begin() as conn:
        # at the module's NOW: TODAY is its day in Việt Nam, and a run crossing midnight there (17:00
        # UTC) would otherwise give the request tomorrow's date and its deadline a day later
        first = locks.request_lock(conn, account_id, authority="Cơ quan điều tra", reason="Nghi lừa đảo",
                                   actor="officer:9", now=NOW)
        second = locks.request_lock(conn, other, authority="Ngân hàng", reason="Nghi mạo danh", actor="officer:9",
                                    now=NOW)
    assert first["status"] == "pending" and first["deadline"] == locks.add_working_days(TODAY, 2).isoformat()
    assert state(reg, account_id) == ("active", [])  # waits for the police
    later = NOW + dt.timedelta(days=6)
    with reg.connect() as conn:
        assert locks.list_lock_requests(conn, overdue=True) == []
        overdue = locks.list_lock_requests(conn, overdue=True, now=later)
        assert [r["request_id"] for r in overdue] == [first["request_id"], second["request_id"]]
        assert all(r["overdue"] for r in overdue)
    with reg.begin() as conn:
        done = locks.decide_lock_request(conn, first["request_id"], approve=True, reason="Đủ căn cứ",
                                         actor="officer:1")
        locks.decide_lock_request(conn, second["request_id"], approve=False, reason="Không đủ căn cứ",
                                  actor="officer:1")
        with pytest.raises(Conflict):
            locks.decide_lock_request(conn, first["request_id"], approve=False, reason="x", actor="officer:1")
        assert locks.list_lock_requests(conn, overdue=True, now=later) == []
    assert done["status"] == "approved" and state(reg, account_id) == ("locked", ["authority"])
    assert state(reg, other) == ("active", [])
    with reg.connect() as conn:
        assert conn.execute(sa.select(lock_requests.c.lock_id).where(
            lock_requests.c.request_id == first["request_id"])).scalar_one() is not None


def test_foreigner_documents_expire_and_are_renewed(reg, vault):
    with reg.begin() as conn:
        counter.add_foreigner(conn, number="F0000001", full_name="John Smith", date_of_birth=dt.date(1980, 1, 1),
                              sex="male", nationality="GBR", passport_number="P1234567",
                              passport_expiry=TODAY + dt.timedelta(days=400), residence_card_number="TT123456",
                              residence_card_expiry=TODAY + dt.timedelta(days=10), phone="0912000111",
                              actor="officer:1")
        out = counter.enroll_foreigner(conn, vault, "F0000001", level=2, passcode=PASSCODE, actor="officer:1",
                                       face=b"face", fingerprint=b"finger")
        with pytest.raises(Conflict):
            counter.add_foreigner(conn, number="F0000001", full_name="John Smith", date_of_birth=dt.date(1980, 1, 1),
                                  sex="male", nationality="GBR", passport_number="P1", passport_expiry=TODAY,
                                  actor="officer:1")
        who = auth.authenticate(conn, "F0000001", PASSCODE)
        claims = auth.claims(conn, who.account_id)
    assert (out["kind"], out["level"], who.kind, who.username) == ("foreigner", 2, "foreigner", "F0000001")
    assert claims["urn:dinhdanh:foreigner_number"] == "F0000001" and "urn:dinhdanh:pid" not in claims
    assert claims["nationality"] == "GBR"
    later = NOW + dt.timedelta(days=30)
    assert sweep(reg, later)["locked"] == {"residence_card_expired": 1}
    with reg.begin() as conn:
        counter.renew_foreigner_documents(conn, "F0000001", residence_card_expiry=TODAY + dt.timedelta(days=700))
    assert sweep(reg, later)["lifted"] == {"residence_card_expired": 1}
    assert state(reg, out["account_id"]) == ("active", [])
    with reg.begin() as conn:
        counter.add_foreigner(conn, number="F0000002", full_name="Anna Lee", date_of_birth=dt.date(1990, 1, 1),
                              sex="female", nationality="KOR", passport_number="P7654321",
                              passport_expiry=TODAY + dt.timedelta(days=100), actor="officer:1")
        with pytest.raises(RuleViolation) as e:
            counter.enroll_foreigner(conn, vault, "F0000002", level=1, passcode=PASSCODE, actor="officer:1")
    assert e.value.code == "residence_card_expired"


def test_organisation_by_a_level2_representative_and_its_dissolution(reg, vault):
    level1 = enroll(reg, vault, BINH)["account_id"]
    with reg.begin() as conn:
        with pytest.raises(RuleViolation) as e:
            counter.register_organisation(conn, level1, name="Công ty TNHH Bình An", founding_date=dt.date(2020, 1, 1),
                                          address="1 Tràng Tiền, Hà Nội", passcode="112233")
        assert e.value.code == "representative_not_level2"
    rep = enroll(reg, vault, AN, level=2)["account_id"]
    with reg.begin() as conn:
        org = counter.register_organisation(conn, rep, name="Công ty TNHH Bình An", founding_date=dt.date(2020, 1, 1),
                                            address="1 Tràng Tiền, Hà Nội", passcode="112233")
        who = auth.authenticate(conn, org["code"], "112233")
        claims = auth.claims(conn, who.account_id)
    assert (who.kind, who.level, who.person_id) == ("organisation", None, None)
    assert claims["name"] == "Công ty TNHH Bình An" and claims["urn:dinhdanh:representative_pid"] == AN
    with reg.begin() as conn:
        locks.dissolve_organisation(conn, org["code"], on=TODAY, actor="officer:1", reason="Giải thể")
        with pytest.raises(Conflict):
            locks.dissolve_organisation(conn, org["code"], on=TODAY, actor="officer:1", reason="again")
    assert state(reg, org["account_id"]) == ("locked", ["dissolution"])
    with reg.connect() as conn:
        assert conn.execute(sa.select(eid_accounts.c.state).where(eid_accounts.c.account_id == rep)).scalar_one() \
            == "active"


def test_a_state_change_from_a_state_read_before_a_lock_is_refused(reg, vault):
    """An account read active, then locked by another transaction (its card revoked) before the
    first moves it: the move is a Conflict, the lock stands (an UPDATE by id alone overwrote it)."""
    account_id = enroll(reg, vault, AN)["account_id"]
    with reg.connect() as conn:
        read_before = accounts.get_account(conn, account_id)
    with reg.begin() as conn:
        lifecycle.revoke_card(conn, NATIONAL, AN, "lost")
    with pytest.raises(Conflict) as e:
        with reg.begin() as conn:
            accounts.set_state(conn, read_before, "active", kind="level_2", source="officer", actor="officer:7",
                               level=2)
    assert e.value.code == "account_changed"
    assert state(reg, account_id) == ("locked", ["card_revoked"])
