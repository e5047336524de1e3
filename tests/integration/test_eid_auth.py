"""The e-ID contract (``dinhdanh.eid.auth``) on SQLite and PostgreSQL: counter enrolment and its rules,
passcode login and lockout back-off, second factors (device key, TOTP), claims, principals, login
history and the owner's lock."""

from __future__ import annotations

import datetime as dt

import pyotp
import pytest
import sqlalchemy as sa

from dinhdanh.cards import pki
from dinhdanh.eid import auth
from dinhdanh.eid.tables import account_events, eid_accounts
from dinhdanh.registry.errors import Conflict, InvalidInput, NotFound, RuleViolation
from tests import chips
from tests.chips import AN, BINH, CHAU, DUC, DUNG, HOA
from tests.eid_support import PASSCODE, device_key, enroll, issue, newborn, prove, record

NOW = dt.datetime.now(dt.UTC)


@pytest.fixture
def vault():
    return chips.new_vault()


@pytest.fixture
def reg(family, vault):
    chips.reset_caches()
    with family.begin() as conn:
        pki.init_pki(conn, vault)
    yield family
    chips.reset_caches()


def login(engine, username, passcode=PASSCODE, now=None):
    """authenticate() as a caller must use it: the transaction commits even when it refuses.

    The clock is this module's NOW unless given: a slow suite must not run past a lockout window."""
    with engine.begin() as conn:
        try:
            return auth.authenticate(conn, username, passcode, now=now or NOW)
        except auth.LoginRefused as refused:
            return refused


def test_enroll_level1_then_login_gives_the_principal(reg, vault):
    out = enroll(reg, vault, AN)
    assert out == {"account_id": out["account_id"], "kind": "citizen", "pid": AN, "level": 1, "state": "active"}
    who = login(reg, AN)
    assert isinstance(who, auth.Principal)
    assert (who.kind, who.level, who.username, who.account_id) == ("citizen", 1, AN, out["account_id"])
    assert len(who.subject) == 32 and who.subject.isalnum() and AN not in who.subject
    with reg.connect() as conn:
        stored = conn.execute(sa.select(eid_accounts.c.passcode_hash)).scalar_one()
        assert stored.startswith("$argon2id$v=19$m=7168,t=5,p=1$") and PASSCODE not in stored
        assert auth.principal(conn, out["account_id"]) == who


def test_enroll_rules(reg, vault):
    with pytest.raises(RuleViolation) as e:
        enroll(reg, vault, AN, level=2)  # no card yet
    assert e.value.code == "no_valid_card"
    with pytest.raises(InvalidInput) as e:
        enroll(reg, vault, AN, passcode="12345")
    assert e.value.field == "passcode"
    with pytest.raises(InvalidInput):
        enroll(reg, vault, AN, level=3)
    with pytest.raises(NotFound):
        enroll(reg, vault, "001099999999")
    issue(reg, vault, AN)
    assert enroll(reg, vault, AN, level=2)["level"] == 2
    with pytest.raises(Conflict) as e:
        enroll(reg, vault, AN, level=1)
    assert e.value.code == "account_exists"
    # 6-13 on request: Dung is 11
    assert enroll(reg, vault, DUNG)["state"] == "active"
    record(reg, "death", pid=HOA, date_of_death=(dt.date.today() - dt.timedelta(days=1)).isoformat())
    with pytest.raises(RuleViolation) as e:
        enroll(reg, vault, HOA)
    assert e.value.code == "person_dead"


def test_under_six_needs_a_guardians_level2_account_and_level1(reg, vault):
    baby = newborn(reg, years=3)
    with pytest.raises(RuleViolation) as e:
        enroll(reg, vault, baby)
    assert e.value.code == "guardian_required"
    with pytest.raises(RuleViolation) as e:
        enroll(reg, vault, baby, guardian=AN)  # An has no account
    assert e.value.code == "guardian_not_level2"
    issue(reg, vault, AN)
    enroll(reg, vault, AN, level=2)
    issue(reg, vault, DUC)
    enroll(reg, vault, DUC, level=2)
    with pytest.raises(RuleViolation) as e:
        enroll(reg, vault, baby, guardian=DUC)  # not a parent
    assert e.value.code == "not_guardian"
    with pytest.raises(RuleViolation) as e:
        enroll(reg, vault, baby, level=2, guardian=AN)
    assert e.value.code == "level2_under_6"
    out = enroll(reg, vault, baby, guardian=AN)
    assert out["level"] == 1
    with reg.connect() as conn:
        guardian = conn.execute(sa.select(eid_accounts.c.guardian_account_id)
                                .where(eid_accounts.c.account_id == out["account_id"])).scalar_one()
        assert guardian == auth.find_login(conn, AN).account_id


def test_wrong_passcodes_lock_temporarily_with_growing_backoff_and_success_resets(reg, vault):
    enroll(reg, vault, BINH)
    unknown = login(reg, "001099999999")
    wrong = login(reg, BINH, "000000")
    assert unknown.code == wrong.code == "bad_credentials" and unknown.message == wrong.message
    for _ in range(3):
        assert login(reg, BINH, "000000").code == "bad_credentials"
    fifth = login(reg, BINH, "000000")
    assert fifth.code == "temporarily_locked" and fifth.retry_after == 300
    assert "phút" in fifth.message and "5" in fifth.message_en
    # even the right passcode waits
    assert login(reg, BINH).code == "temporarily_locked"
    later = NOW + dt.timedelta(minutes=6)
    for _ in range(4):
        login(reg, BINH, "111111", now=later)
    second = login(reg, BINH, "111111", now=later)
    assert second.code == "temporarily_locked" and second.retry_after == 15 * 60
    after = later + dt.timedelta(minutes=16)
    assert isinstance(login(reg, BINH, now=after), auth.Principal)
    with reg.connect() as conn:
        row = conn.execute(sa.select(eid_accounts)).one()
        assert (row.failed_attempts, row.lockouts, row.locked_until) == (0, 0, None)
        kinds = conn.execute(sa.select(account_events.c.kind)).scalars().all()
        assert kinds.count("temporarily_locked") == 2


def test_device_proof_and_totp_as_second_factor(reg, vault):
    account_id = enroll(reg, vault, AN)["account_id"]
    key, public = device_key()
    with reg.begin() as conn:
        thumb = auth.register_device(conn, account_id, public)
        challenge = auth.new_challenge()
        assert auth.verify_second_factor(conn, account_id, device_proof=prove(key, challenge), challenge=challenge)
        assert auth.verify_second_factor(conn, account_id, device_proof=prove(key, challenge, thumb),
                                         challenge=challenge)
        assert not auth.verify_second_factor(conn, account_id, device_proof=prove(key, challenge),
                                             challenge=auth.new_challenge())
        other, _ = device_key()
        assert not auth.verify_second_factor(conn, account_id, device_proof=prove(other, challenge),
                                             challenge=challenge)
        for junk in ("", "a.b.c", "x" * 5000, "eyJhbGciOiJub25lIn0.."):
            assert not auth.verify_second_factor(conn, account_id, device_proof=junk, challenge=challenge)
        # two wrong proofs, then the junk: the fifth wrong factor in a row locks for 5 minutes
        refused = auth.temporarily_locked(conn, account_id)
        assert refused is not None and refused.code == "temporarily_locked" and 290 < refused.retry_after <= 300
        assert not auth.verify_second_factor(conn, account_id, device_proof=prove(key, challenge), challenge=challenge)
        with pytest.raises(auth.LoginRefused) as e:
            auth.authenticate(conn, AN, PASSCODE)
        assert e.value.code == "temporarily_locked"
        conn.execute(eid_accounts.update().values(locked_until=None))
        assert not auth.verify_second_factor(conn, account_id, device_proof=None, challenge=challenge)
        with pytest.raises(InvalidInput):
            auth.register_device(conn, account_id, {"kty": "RSA", "n": "x", "e": "AQAB"})
        with pytest.raises(InvalidInput):
            auth.register_device(conn, account_id, key.as_dict(private=True))
        uri = auth.enable_totp(conn, account_id)
        assert uri.startswith("otpauth://totp/") and AN in uri
        secret = pyotp.parse_uri(uri).secret
        stored = conn.execute(sa.select(eid_accounts.c.totp_secret)).scalar_one()
        assert secret.encode() not in stored
        code = pyotp.TOTP(secret).now()
        assert not auth.verify_second_factor(conn, account_id, totp="12345x")
        assert auth.verify_second_factor(conn, account_id, totp=code)
        assert not auth.verify_second_factor(conn, account_id, totp=code)  # once
        assert not auth.verify_second_factor(conn, 999_999, totp=code)


def test_claims_from_the_register(reg, vault):
    account_id = enroll(reg, vault, AN)["account_id"]
    with reg.connect() as conn:
        claims = auth.claims(conn, account_id)
    assert claims["name"] == "Nguyễn Văn An"
    assert (claims["family_name"], claims["middle_name"], claims["given_name"]) == ("Nguyễn", "Văn", "An")
    assert claims["birthdate"] == "1985-03-04" and claims["gender"] == "male"
    assert claims["urn:dinhdanh:pid"] == AN and claims["urn:dinhdanh:level"] == 1
    assert claims["urn:dinhdanh:kind"] == "citizen"
    assert claims["address"]["country"] == "VN" and claims["address"]["locality"]
    assert all(v is not None for v in claims.values())


def test_owner_lock_principal_and_login_history(reg, vault):
    account_id = enroll(reg, vault, CHAU)["account_id"]
    with reg.begin() as conn:
        auth.record_login(conn, account_id, client_id="dvc", acr="urn:dinhdanh:loa:1", outcome="success",
                          ip="127.0.0.1", user_agent="x" * 1000)
        view = auth.lock_by_owner(conn, account_id, "Mất điện thoại")
        assert view["state"] == "locked" and view["locks"][0]["cause"] == "owner"
        with pytest.raises(auth.LoginRefused) as e:
            auth.principal(conn, account_id)
        assert e.value.code == "account_locked"
        with pytest.raises(auth.LoginRefused) as e:
            auth.principal(conn, 999_999)
        assert e.value.code == "not_active"
        history = auth.login_history(conn, account_id)
        assert history[0]["client_id"] == "dvc" and len(history[0]["user_agent"]) == 300
        with pytest.raises(InvalidInput):
            auth.lock_by_owner(conn, account_id, " ")
    assert login(reg, CHAU).code == "account_locked"
    assert login(reg, CHAU, "999999").code == "bad_credentials"  # the state is told only to the right passcode


def test_refused_login_keeps_nothing_when_the_caller_rolls_back(reg, vault):
    """The documented caveat: counters are written on the caller's connection."""
    enroll(reg, vault, AN)
    with pytest.raises(auth.LoginRefused):
        with reg.begin() as conn:
            auth.authenticate(conn, AN, "000000")
    with reg.connect() as conn:
        assert conn.execute(sa.select(eid_accounts.c.failed_attempts)).scalar_one() == 0
    login(reg, AN, "000000")
    with reg.connect() as conn:
        assert conn.execute(sa.select(eid_accounts.c.failed_attempts)).scalar_one() == 1
