"""Level-1 registration in the app, the officer's review, activation, and level 2 in person, on SQLite
and PostgreSQL. The face matcher is a test double (the real one is an optional extra); without one,
every registration waits for an officer."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from dinhdanh.store.unit_of_work import UnitOfWork
from dinhdanh.cards import pki
from dinhdanh.eid import auth, counter, registration
from dinhdanh.eid.tables import (account_events, eid_accounts, eid_biometrics, eid_level2_checks,
                                 eid_registrations, mobile_subscriptions)
from dinhdanh.notify.service import opened
from dinhdanh.registry.errors import Conflict, InvalidInput, RuleViolation
from dinhdanh.store.outbox import outbox
from dinhdanh.store.vault import of_bind
from tests import chips
from tests.chips import AN, BINH, DUC, GIANG, HOA
from tests.eid_support import (PHONES, FakeMatcher, card_photo, counts, device_key, enroll, issue, jpeg, last_code,
                               prove, record, with_phones)

AN_DATA = {"pid": AN, "full_name": "nguyễn  văn AN", "date_of_birth": dt.date(1985, 3, 4), "sex": "male",
           "msisdn": PHONES[AN], "email": "an@example.vn"}


@pytest.fixture
def vault():
    return chips.new_vault()


@pytest.fixture
def reg(family, vault):
    chips.reset_caches()
    with family.begin() as conn:
        pki.init_pki(conn, vault)
    with_phones(family)
    issue(family, vault, AN)
    issue(family, vault, DUC)
    yield family
    chips.reset_caches()


def register(engine, vault, matcher=None, face=None, **fields):
    data = {**AN_DATA, **fields}
    with engine.begin() as conn:
        return registration.register(conn, vault, face_image=face if face is not None else jpeg(), matcher=matcher,
                                     **data)


def activate(engine, **kw):
    with UnitOfWork(engine).begin() as conn:  # as the app writes: BEGIN IMMEDIATE
        try:
            return registration.activate(conn, **kw)
        except registration.ActivationRefused as exc:
            return exc


def test_approved_in_the_app_then_activated_with_the_code(reg, vault):
    out = register(reg, vault, FakeMatcher(), face=card_photo(reg, vault, AN))
    assert out["status"] == "approved" and out["code_sent_to"] == "091****001"
    code = last_code(reg)
    assert last_code(reg, "notify.email") == code
    with reg.connect() as conn:
        account = conn.execute(sa.select(eid_accounts)).one()
        assert (account.state, account.level, account.msisdn_verified) == ("pending", 1, False)
        row = conn.execute(sa.select(eid_registrations)).one()
        assert row.checks["face"]["outcome"] == "match" and code not in str(row.checks)
        assert row.code_hash != code and len(row.code_hash) == 64
    with pytest.raises(auth.LoginRefused):
        with reg.begin() as conn:
            auth.authenticate(conn, AN, "135790")
    wrong = "000000" if code != "000000" else "111111"
    refused = activate(reg, registration_id=out["registration_id"], code=wrong, passcode="135790")
    assert refused.code == "invalid_code" and "4 attempts" in refused.message
    key, public = device_key()
    done = activate(reg, pid=AN, code=code, passcode="135790", device_key=public, totp=True)
    assert done["state"] == "active" and done["username"] == AN and done["totp_uri"].startswith("otpauth://")
    with reg.begin() as conn:
        who = auth.authenticate(conn, AN, "135790")
        challenge = auth.new_challenge()
        assert auth.verify_second_factor(conn, who.account_id, device_proof=prove(key, challenge), challenge=challenge)
        assert conn.execute(sa.select(eid_accounts.c.msisdn_verified)).scalar_one() is True
        assert auth.claims(conn, who.account_id)["phone_number"] == "+84912345001"
        assert auth.claims(conn, who.account_id)["phone_number_verified"] is True
    # the code works once
    with pytest.raises(Conflict):
        activate(reg, registration_id=out["registration_id"], code=code, passcode="135790")


def test_without_a_face_matcher_an_officer_reviews(reg, vault):
    out = register(reg, vault, None)
    assert out["status"] == "pending_review" and out["code_sent_to"] is None
    with reg.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(outbox)
                            .where(outbox.c.topic.like("notify.%"))).scalar_one() == 0
        assert conn.execute(sa.select(sa.func.count()).select_from(eid_accounts)).scalar_one() == 0
        detail, person_id = registration.registration_detail(conn, vault, out["registration_id"])
        assert detail["face_image"] and detail["card_photo"] and detail["pid"] == AN
        assert registration.list_registrations(conn)[0]["registration_id"] == out["registration_id"]
    with reg.begin() as conn:
        reviewed = registration.review(conn, out["registration_id"], approve=True, reason="Khớp ảnh",
                                       actor="officer:1")
    assert reviewed["status"] == "approved"
    assert activate(reg, registration_id=out["registration_id"], code=last_code(reg), passcode="135790")["state"] \
        == "active"
    with pytest.raises(Conflict):
        with reg.begin() as conn:
            registration.review(conn, out["registration_id"], approve=False, reason="x", actor="officer:1")


def test_a_review_approved_after_the_person_got_an_account_elsewhere_changes_nothing(reg, vault):
    out = register(reg, vault, None)
    assert out["status"] == "pending_review"
    account_id = enroll(reg, vault, AN)["account_id"]  # meanwhile, at a counter
    with pytest.raises(Conflict) as e:
        with reg.begin() as conn:
            registration.review(conn, out["registration_id"], approve=True, reason="Khớp ảnh", actor="officer:1")
    assert e.value.code == "account_exists"
    with reg.connect() as conn:
        row = conn.execute(sa.select(eid_accounts).where(eid_accounts.c.account_id == account_id)).one()
    assert (row.state, row.level) == ("active", 1)  # not set back to pending


def test_refused_review_sends_word_and_leaves_no_account(reg, vault):
    out = register(reg, vault, None)
    with reg.begin() as conn:
        assert registration.review(conn, out["registration_id"], approve=False, reason="Ảnh không phải của người "
                                   "này", actor="officer:1")["status"] == "refused"
    with reg.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(eid_accounts)).scalar_one() == 0
        payload = conn.execute(sa.select(outbox.c.payload).where(outbox.c.topic == "notify.sms")).scalar_one()
        assert "khong duoc chap nhan" in opened(of_bind(reg), payload)["text"]


@pytest.mark.parametrize(("fields", "expected"), [
    ({"pid": "001099999999"}, [("not_in_register", "pid")]),
    ({"full_name": "Nguyễn Văn Ân", "date_of_birth": dt.date(1985, 3, 5)},
     [("register_mismatch", "full_name"), ("register_mismatch", "date_of_birth")]),
    ({"sex": "female"}, [("register_mismatch", "sex")]),
    ({"msisdn": PHONES[BINH]}, [("msisdn_not_owned", "msisdn")]),
    ({"msisdn": "0999999999"}, [("msisdn_not_owned", "msisdn")]),
    ({"pid": BINH, "full_name": "Trần Thị Bình", "date_of_birth": dt.date(1987, 5, 6), "sex": "female",
      "msisdn": PHONES[BINH]}, [("no_valid_card", "pid")]),
    ({"pid": HOA, "full_name": "Phạm Thị Hoa", "date_of_birth": dt.date(1993, 11, 12), "sex": "female",
      "msisdn": PHONES[AN]}, [("no_valid_card", "pid"), ("msisdn_not_owned", "msisdn")]),
])
def test_every_failed_check_gets_one_generic_refusal_and_nothing_is_written(reg, vault, fields, expected):
    before = counts(reg, eid_registrations, eid_accounts, outbox, account_events)
    with pytest.raises(registration.RegistrationRefused) as e:
        register(reg, vault, FakeMatcher(), face=card_photo(reg, vault, AN), **fields)
    # the caller is told one thing, whatever failed; what failed is known inside only
    assert_generic(e.value)
    assert e.value.reasons == expected
    assert counts(reg, eid_registrations, eid_accounts, outbox, account_events) == before


def assert_generic(refusal) -> None:
    assert (refusal.code, refusal.field, refusal.status) == ("registration_refused", None, 422)
    assert refusal.problems == [{"code": "registration_refused", "field": None,
                                 "message": registration.GENERIC_REFUSAL}]


def test_dead_locked_subscription_existing_account_and_faces(reg, vault):
    with pytest.raises(registration.RegistrationRefused) as e:
        register(reg, vault, FakeMatcher(), face=jpeg())  # not the card's face
    assert_generic(e.value)
    assert e.value.reasons == [("face_mismatch", "face_image")]
    with pytest.raises(InvalidInput) as e:
        register(reg, vault, FakeMatcher(), face=b"\xff\xd8\xff not really")
    assert e.value.field == "face_image"
    with reg.begin() as conn:
        conn.execute(mobile_subscriptions.update().where(mobile_subscriptions.c.msisdn == PHONES[AN])
                     .values(status="locked_oneway"))
    with pytest.raises(registration.RegistrationRefused) as e:
        register(reg, vault, FakeMatcher(), face=card_photo(reg, vault, AN))
    assert_generic(e.value)
    assert e.value.reasons == [("msisdn_not_owned", "msisdn")]
    with reg.begin() as conn:
        conn.execute(mobile_subscriptions.update().values(status="active"))
    enroll(reg, vault, AN)
    with pytest.raises(registration.RegistrationRefused) as e:
        register(reg, vault, FakeMatcher(), face=card_photo(reg, vault, AN))
    assert_generic(e.value)
    assert e.value.reasons == [("account_exists", "pid")]
    record(reg, "death", pid=DUC, date_of_death=(dt.date.today() - dt.timedelta(days=1)).isoformat())
    with pytest.raises(registration.RegistrationRefused) as e:
        register(reg, vault, FakeMatcher(), pid=DUC, full_name="Lê Văn Đức", date_of_birth=dt.date(1990, 9, 10),
                 msisdn=PHONES[DUC])
    assert_generic(e.value)
    # dead: the card was revoked with the death, and a dead person's number is no longer standardised
    assert e.value.reasons[0] == ("person_dead", "pid") and ("no_valid_card", "pid") in e.value.reasons


def test_activation_code_expires_and_allows_five_attempts(reg, vault):
    out = register(reg, vault, FakeMatcher(), face=card_photo(reg, vault, AN))
    code = last_code(reg)
    late = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=16)
    with pytest.raises(RuleViolation) as e:
        activate(reg, registration_id=out["registration_id"], code=code, passcode="135790", now=late)
    assert e.value.code == "code_expired"
    wrong = "999999" if code != "999999" else "888888"
    for _ in range(5):
        assert activate(reg, registration_id=out["registration_id"], code=wrong, passcode="135790").code \
            == "invalid_code"
    with pytest.raises(RuleViolation) as e:
        activate(reg, registration_id=out["registration_id"], code=code, passcode="135790")
    assert e.value.code == "code_attempts_exceeded"
    # registering again sends a new code; the old one stops working
    again = register(reg, vault, FakeMatcher(), face=card_photo(reg, vault, AN))
    assert again["registration_id"] != out["registration_id"]
    # by PID nothing is told: a PID with nothing to activate is refused as a wrong code is
    assert activate(reg, pid=GIANG, code="123456", passcode="135790").code == "invalid_code"
    with pytest.raises(InvalidInput):
        activate(reg, pid=AN, code=last_code(reg), passcode="12345")
    assert activate(reg, pid=AN, code=last_code(reg), passcode="135790")["state"] == "active"


def test_guardian_registers_a_young_child_who_waits_for_review(reg, vault):
    from tests.eid_support import newborn

    baby = newborn(reg, years=2)
    with reg.connect() as conn:
        born = conn.execute(sa.text("SELECT date_of_birth FROM persons WHERE pid = :p"), {"p": baby}).scalar_one()
    born = born if isinstance(born, dt.date) else dt.date.fromisoformat(born)
    guardian = enroll(reg, vault, AN, level=2)["account_id"]
    with reg.begin() as conn:
        out = registration.register(conn, vault, pid=baby, full_name="Nguyễn Bảo Ngọc", date_of_birth=born,
                                    sex="female", msisdn="", email=None, face_image=jpeg(), matcher=FakeMatcher(),
                                    guardian_account_id=guardian)
    assert out["status"] == "pending_review"  # no card to compare with: an officer looks
    duc = enroll(reg, vault, DUC, level=2)["account_id"]
    with pytest.raises(registration.RegistrationRefused) as e:
        with reg.begin() as conn:
            registration.register(conn, vault, pid=baby, full_name="Nguyễn Bảo Ngọc", date_of_birth=born,
                                  sex="female", msisdn="", email=None, face_image=jpeg(), matcher=None,
                                  guardian_account_id=duc)
    assert_generic(e.value)
    assert e.value.reasons[0] == ("not_guardian", "pid")  # then what a child on their own lacks
    with reg.begin() as conn:
        registration.review(conn, out["registration_id"], approve=True, reason="ok", actor="officer:1")
    assert last_code(reg) and activate(reg, registration_id=out["registration_id"], code=last_code(reg),
                                       passcode="135790")["level"] == 1


LEVEL2 = {"chip_verdict": "valid", "face_match": "match", "fingerprint_match": "match", "consent": True}


def level2(engine, vault, pid, **kw):
    data = {**LEVEL2, "card_number": pid, "face_image": jpeg(), "fingerprint": b"WSQ-fingerprint-template",
            "matcher": None, **kw}
    with engine.begin() as conn:
        return counter.enrol_level2(conn, vault, pid, actor="officer:7", **data)[0]


def test_level2_in_person_upgrades_or_opens_the_account(reg, vault):
    enroll(reg, vault, AN, level=1)
    out = level2(reg, vault, AN)
    assert (out["level"], out["state"]) == (2, "active") and "registration" not in out
    with reg.connect() as conn:
        kinds = [r.kind for r in conn.execute(sa.select(eid_biometrics))]
        assert sorted(kinds) == ["face", "fingerprint"]
        sealed = conn.execute(sa.select(eid_biometrics.c.sealed).where(eid_biometrics.c.kind == "fingerprint")
                              ).scalar_one()
        assert b"WSQ" not in sealed and vault.open(sealed, "eid-fingerprint") == b"WSQ-fingerprint-template"
        check = conn.execute(sa.select(eid_level2_checks)).one()
        assert (check.officer, check.chip_verdict, check.consent) == ("officer:7", "valid", True)
    # Đức has no account: opened at level 2, pending until he activates with the code
    opened = level2(reg, vault, DUC)
    assert (opened["level"], opened["state"]) == (2, "pending")
    assert opened["registration"]["code_sent_to"] == "098****005"
    done = activate(reg, registration_id=opened["registration"]["registration_id"], code=last_code(reg),
                    passcode="135790")
    assert (done["level"], done["state"]) == (2, "active")
    with pytest.raises(Conflict):
        level2(reg, vault, AN)


@pytest.mark.parametrize(("change", "code"), [
    ({"card_number": "001085999999"}, "card_mismatch"),
    ({"chip_verdict": "untrusted"}, "chip_not_verified"),
    ({"consent": False}, "consent_required"),
    ({"fingerprint_match": "no_match"}, "fingerprint_mismatch"),
    ({"matcher": FakeMatcher()}, "face_mismatch"),
])
def test_level2_refusals_change_nothing(reg, vault, change, code):
    before = counts(reg, eid_accounts, eid_biometrics, eid_level2_checks, outbox)
    with pytest.raises(RuleViolation) as e:
        level2(reg, vault, AN, **change)
    assert e.value.code == code
    assert counts(reg, eid_accounts, eid_biometrics, eid_level2_checks, outbox) == before


def test_level2_needs_a_card(reg, vault):
    with pytest.raises(RuleViolation) as e:
        level2(reg, vault, BINH, card_number=BINH)
    assert e.value.code == "no_valid_card"


def test_counter_enrolment_spends_the_apps_code(reg, vault):
    out = register(reg, vault, FakeMatcher(), face=card_photo(reg, vault, AN))
    code = last_code(reg)
    assert enroll(reg, vault, AN)["state"] == "active"
    with pytest.raises(Conflict):  # the code can no longer reset the passcode
        activate(reg, registration_id=out["registration_id"], code=code, passcode="000111")


def test_the_code_rests_nowhere_in_clear_and_its_hash_is_keyed(reg, vault):
    import hashlib
    import json

    from dinhdanh.store.vault import Vault

    out = register(reg, vault, FakeMatcher(), face=card_photo(reg, vault, AN))
    rid, code = out["registration_id"], last_code(reg)
    with reg.connect() as conn:
        payloads = conn.execute(sa.select(outbox.c.payload).where(outbox.c.topic.like("notify.%"))).scalars().all()
        stored = conn.execute(sa.select(eid_registrations.c.code_hash)
                              .where(eid_registrations.c.registration_id == rid)).scalar_one()
    assert len(payloads) == 2  # SMS and e-mail, both sealed
    for payload in payloads:
        assert code not in json.dumps(payload) and "sealed" in payload and "text" not in payload
    # keyed: not the bare SHA-256 of the code, and another master key gives another hash
    assert stored not in (hashlib.sha256(f"{rid}:{code}".encode()).hexdigest(), hashlib.sha256(code.encode()).hexdigest())
    with reg.connect() as conn:
        assert stored == registration._code_hash(auth.database_vault(conn), rid, code)
    other = Vault(bytes(range(32)))
    assert registration._code_hash(other, rid, code) != stored
    assert registration._code_hash(Vault(bytes(32)), rid, code) != registration._code_hash(other, rid, code)
    # a hash in the old format (bare SHA-256) activates nothing: its code only fails, then expires
    with reg.begin() as conn:
        conn.execute(eid_registrations.update().where(eid_registrations.c.registration_id == rid)
                     .values(code_hash=hashlib.sha256(f"{rid}:{code}".encode()).hexdigest()))
    assert activate(reg, registration_id=rid, code=code, passcode="135790").code == "invalid_code"


def test_concurrent_wrong_codes_get_five_checks_at_most(reg, vault, monkeypatch):
    import threading

    out = register(reg, vault, FakeMatcher(), face=card_photo(reg, vault, AN))
    rid, code = out["registration_id"], last_code(reg)
    wrong = "999999" if code != "999999" else "888888"
    checks, lock = [], threading.Lock()
    real_hash = registration._code_hash

    def counted(*args):
        with lock:
            checks.append(args)
        return real_hash(*args)

    monkeypatch.setattr(registration, "_code_hash", counted)
    start, outcomes = threading.Barrier(20), []

    def guess():
        start.wait()
        try:
            result = activate(reg, registration_id=rid, code=wrong, passcode="135790")
            outcomes.append(getattr(result, "code", "activated"))
        except Exception as exc:  # noqa: BLE001 (what each refusal was)
            outcomes.append(getattr(exc, "code", type(exc).__name__))

    threads = [threading.Thread(target=guess) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    # every guess answered: five checked (and refused), the other fifteen refused unchecked
    assert sorted(outcomes) == ["code_attempts_exceeded"] * 15 + ["invalid_code"] * 5, outcomes
    assert len(checks) == 5
    with reg.connect() as conn:
        assert conn.execute(sa.select(eid_registrations.c.code_attempts)
                            .where(eid_registrations.c.registration_id == rid)).scalar_one() == 5
    with pytest.raises(RuleViolation) as e:  # and the right code comes too late
        activate(reg, registration_id=rid, code=code, passcode="135790")
    assert e.value.code == "code_attempts_exceeded" and len(checks) == 5


def test_the_matcher_runs_on_a_refusal_too(reg, vault):
    """The face matcher is the slow step: it runs whether the typed data agree or not, so the time an
    answer takes does not tell right data with a wrong face from wrong data (outside testers' finding)."""
    class Counting(FakeMatcher):
        calls = 0

        def compare(self, probe, reference):
            Counting.calls += 1
            return super().compare(probe, reference)

    for fields in ({"date_of_birth": dt.date(1985, 3, 5)}, {"pid": "001085999999"}, {}):
        before = Counting.calls
        with pytest.raises(registration.RegistrationRefused):
            register(reg, vault, Counting(), **fields)  # a face that is not An's card photo
        assert Counting.calls == before + 1, fields
