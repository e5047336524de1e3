"""Counters that hold under concurrency, on SQLite and PostgreSQL, with real threads and processes:
wrong passcodes (at most five Argon2 checks per lockout window, the ladder exact), wrong second
factors, a TOTP code accepted once, and the database limiter's quotas and buckets (exact under 200
concurrent requests, kept by a new limiter, shared by two processes)."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pyotp
import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher, Type

from dinhdanh.cards import pki
from dinhdanh.eid import auth
from dinhdanh.eid.tables import account_events, eid_accounts
from dinhdanh.exchange import limits
from dinhdanh.exchange.tables import limit_buckets, limit_counters
from dinhdanh.store.unit_of_work import UnitOfWork
from tests import chips
from tests.chips import AN
from tests.eid_support import PASSCODE, enroll

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
WRONG = "000000"


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


class CountingHasher:
    """The module's hasher, counting verifications (what a guesser gets checked); ``delay`` makes a
    cheap hash take as long as a real one, so that the checks overlap."""

    def __init__(self, inner: PasswordHasher, delay: float = 0.0):
        self.inner, self.delay, self.verified = inner, delay, 0
        self._lock = threading.Lock()

    def verify(self, stored, passcode):
        with self._lock:
            self.verified += 1
        if self.delay:
            time.sleep(self.delay)
        return self.inner.verify(stored, passcode)

    def __getattr__(self, name):
        return getattr(self.inner, name)


CHEAP = PasswordHasher(time_cost=1, memory_cost=64, parallelism=1, hash_len=16, salt_len=16, type=Type.ID)


def at_once(n: int, work: Callable[[int], object], workers: int | None = None) -> list:
    """``work(i)`` for i < n, in ``workers`` threads (n by default) released together."""
    workers = workers or n
    gate = threading.Barrier(min(n, workers))

    def run(i):
        if i < workers:
            gate.wait(timeout=30)
        return work(i)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(run, range(n)))


def account_row(engine):
    with engine.connect() as conn:
        return conn.execute(sa.select(eid_accounts)).one()


def lock_events(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(account_events)
                            .where(account_events.c.kind == "temporarily_locked")).scalar_one()


# ------------------------------------------------------------------------------ passcodes


def test_forty_wrong_passcodes_at_once_get_five_real_argon2_checks(reg, vault, monkeypatch):
    """The real hasher (Argon2id, 7 MiB, t=5): 40 guesses at once, five checked, one lock; then the
    right passcode sent among 39 wrong ones while locked is refused unchecked."""
    enroll(reg, vault, AN)
    hasher = CountingHasher(auth.HASHER)
    monkeypatch.setattr(auth, "HASHER", hasher)
    units = UnitOfWork(reg)
    checks = at_once(40, lambda i: auth.check_login(units, AN, WRONG, now=NOW), workers=20)
    codes = [c.refusal.code for c in checks]
    assert hasher.verified == 5
    assert codes.count("bad_credentials") == 4 and codes.count("temporarily_locked") == 36
    assert {c.refusal.retry_after for c in checks if c.refusal.code == "temporarily_locked"} == {300}
    row = account_row(reg)
    assert (row.failed_attempts, row.lockouts, row.locked_until) == (0, 1, NOW + dt.timedelta(minutes=5))
    assert lock_events(reg) == 1

    later = NOW + dt.timedelta(minutes=2)  # still locked
    checks = at_once(40, lambda i: auth.check_login(units, AN, PASSCODE if i == 30 else WRONG, now=later),
                     workers=20)
    assert hasher.verified == 5  # nothing more was checked
    assert all(c.refusal is not None and c.refusal.code == "temporarily_locked" for c in checks)
    assert checks[30].refusal.retry_after == 180
    assert account_row(reg).lockouts == 1


def test_the_ladder_never_loses_a_step(reg, vault, monkeypatch):
    """Three windows of 40 concurrent wrong guesses: five checks in each, three steps (5, 15, 60 min)."""
    monkeypatch.setattr(auth, "HASHER", CHEAP)
    enroll(reg, vault, AN)
    hasher = CountingHasher(CHEAP, delay=0.02)
    monkeypatch.setattr(auth, "HASHER", hasher)
    units = UnitOfWork(reg)
    now = NOW
    for window, wait in enumerate((5, 15, 60), start=1):
        checks = at_once(40, lambda i: auth.check_login(units, AN, WRONG, now=now))
        assert hasher.verified == 5 * window
        assert sum(c.refusal.code == "bad_credentials" for c in checks) == 4
        row = account_row(reg)
        assert (row.failed_attempts, row.lockouts) == (0, window)
        assert row.locked_until == now + dt.timedelta(minutes=wait)
        now = row.locked_until + dt.timedelta(seconds=1)
    assert lock_events(reg) == 3
    # the right passcode after the wait: in, and the ladder starts again
    assert auth.check_login(units, AN, PASSCODE, now=now).ok
    row = account_row(reg)
    assert (row.failed_attempts, row.lockouts, row.locked_until) == (0, 0, None)


def test_the_right_passcode_among_forty_is_checked_only_within_the_budget(reg, vault, monkeypatch):
    monkeypatch.setattr(auth, "HASHER", CHEAP)
    enroll(reg, vault, AN)
    hasher = CountingHasher(CHEAP, delay=0.02)
    monkeypatch.setattr(auth, "HASHER", hasher)
    units = UnitOfWork(reg)
    checks = at_once(40, lambda i: auth.check_login(units, AN, PASSCODE if i == 31 else WRONG, now=NOW))
    assert hasher.verified <= 5
    right = checks[31]
    wrong_checked = sum(c.refusal is not None and c.refusal.code == "bad_credentials" for c in checks)
    if right.ok:  # it was among the five checked
        assert wrong_checked <= 4
    else:
        assert right.refusal.code == "temporarily_locked" and hasher.verified == 5


def test_unknown_usernames_cost_a_check_and_count_nothing(reg, vault, monkeypatch):
    monkeypatch.setattr(auth, "HASHER", CHEAP)
    enroll(reg, vault, AN)
    hasher = CountingHasher(CHEAP)
    monkeypatch.setattr(auth, "HASHER", hasher)
    checks = at_once(10, lambda i: auth.check_login(reg, "001099999999", PASSCODE, now=NOW))
    assert hasher.verified == 10 and {c.refusal.code for c in checks} == {"bad_credentials"}
    assert {c.account_id for c in checks} == {None}
    assert account_row(reg).failed_attempts == 0


def test_a_check_cut_short_counts_as_a_failure(reg, vault, monkeypatch):
    """A crash between the claim and the settling (here: the hash raises) leaves the attempt counted."""
    monkeypatch.setattr(auth, "HASHER", CHEAP)
    enroll(reg, vault, AN)

    class Crash(Exception):
        pass

    def crash(*_):
        raise Crash

    monkeypatch.setattr(auth, "_verify", crash)
    for _ in range(5):
        with pytest.raises(Crash):
            auth.check_login(reg, AN, PASSCODE, now=NOW)
    row = account_row(reg)
    assert (row.failed_attempts, row.lockouts, row.locked_until) == (0, 1, NOW + dt.timedelta(minutes=5))


# ------------------------------------------------------------------------------ second factors


def _totp_account(reg, vault):
    account_id = enroll(reg, vault, AN)["account_id"]
    with reg.begin() as conn:
        secret = pyotp.parse_uri(auth.enable_totp(conn, account_id, vault)).secret
    return account_id, pyotp.TOTP(secret)


def _factor(reg, vault, account_id, code, now):
    with UnitOfWork(reg).begin() as conn:  # as the app does: one unit, committed even on False
        return auth.verify_second_factor(conn, account_id, totp=code, now=now, vault=vault)


def test_twenty_wrong_second_factors_at_once_five_checked_one_step(reg, vault, monkeypatch):
    account_id, totp = _totp_account(reg, vault)
    valid = {totp.at(NOW + dt.timedelta(seconds=s)) for s in (-30, 0, 30)}
    wrong = next(c for c in ("000000", "111111", "222222", "333333") if c not in valid)
    checked = []
    real = auth._check_totp
    monkeypatch.setattr(auth, "_check_totp", lambda *a: checked.append(1) or real(*a))
    answers = at_once(20, lambda i: _factor(reg, vault, account_id, wrong, NOW))
    assert not any(answers) and len(checked) == 5
    row = account_row(reg)
    assert (row.factor_failures, row.lockouts, row.locked_until) == (0, 1, NOW + dt.timedelta(minutes=5))
    assert lock_events(reg) == 1


def test_a_totp_code_sent_by_twenty_at_once_is_accepted_once(reg, vault):
    account_id, totp = _totp_account(reg, vault)
    answers = at_once(20, lambda i: _factor(reg, vault, account_id, totp.at(NOW), NOW))
    assert sum(answers) == 1
    assert account_row(reg).totp_last_step == totp.timecode(NOW)


# ------------------------------------------------------------------------------ the database limiter


class Clock:
    def __init__(self, at: float):
        self.at = at

    def __call__(self) -> float:
        return self.at


@pytest.fixture
def clock():
    return Clock(limits.vietnam_day_end(time.time()) - 3600.0)  # 23:00 in Hanoi tonight


def test_two_hundred_concurrent_requests_on_a_quota_of_fifty(engine, clock):
    limiter = limits.DatabaseLimiter(engine, wall=clock)
    end = limits.vietnam_day_end(clock())
    waits = at_once(200, lambda i: limiter.count("partner:q", 50, end), workers=50)
    assert waits.count(0.0) == 50
    assert all(w == pytest.approx(3600.0) for w in waits if w)
    # a restart: a new limiter on the same database keeps the day's count (two processes: below)
    again = limits.DatabaseLimiter(engine, wall=clock)
    assert again.count("partner:q", 50, end) == pytest.approx(3600.0)
    assert again.count("partner:other", 50, end) == 0.0
    clock.at = end + 1.0  # 00:00:01 in Hanoi: a new day
    assert again.count("partner:q", 50, limits.vietnam_day_end(clock())) == 0.0


def test_concurrent_takes_share_one_bucket_and_match_the_memory_limiter(engine, clock):
    limiter = limits.DatabaseLimiter(engine, wall=clock)
    waits = at_once(100, lambda i: limiter.take("partner:b", 30), workers=25)
    assert waits.count(0.0) == 30 and all(w == pytest.approx(2.0) for w in waits if w)  # one token per 2 s
    memory = limits.MemoryLimiter(clock=clock, wall=clock)
    for step in (0, 0, 0, 0, 0.5, 0, 3, 0, 0, 0, 20, 0, 0, 0, 0, 0, 0, 0, 90, 0):
        clock.at += step
        assert limiter.take("partner:m", 5) == pytest.approx(memory.take("partner:m", 5), abs=1e-6)
    assert limiter.take("partner:z", 0) == float("inf")


def test_past_days_are_swept(engine, clock):
    limiter = limits.DatabaseLimiter(engine, wall=clock)
    end = limits.vietnam_day_end(clock())
    limiter.count("partner:old", 5, end - 86400)
    limiter.count("partner:now", 5, end)
    limiter.take("partner:idle", 5)
    clock.at += 2 * 86400
    limiter.sweep()
    with limiter.engine.connect() as conn:
        assert conn.execute(sa.select(limit_counters.c.key)).scalars().all() == []
        assert conn.execute(sa.select(limit_buckets.c.key)).scalars().all() == []


def test_leased_quota_never_serves_more_than_the_day_and_a_clean_stop_gives_units_back(engine, clock, monkeypatch):
    # a quota of 8,000 leases 4 units at a time (2,000 writes to serve it); leasing 40 at a time
    # here (200 writes) checks the same invariants without a two-thousand-transaction storm
    assert limits.lease_size(8000, *limits.DatabaseLimiter.QUOTA_LEASE) == 4
    monkeypatch.setattr(limits.DatabaseLimiter, "QUOTA_LEASE", (200, 64))
    lease = limits.lease_size(8000, *limits.DatabaseLimiter.QUOTA_LEASE)
    assert lease == 40
    # two limiters are two server processes
    first, second = limits.DatabaseLimiter(engine, wall=clock), limits.DatabaseLimiter(engine, wall=clock)
    end = limits.vietnam_day_end(clock())
    waits = at_once(8200, lambda i: (first, second)[i % 2].count("partner:lease", 8000, end), workers=16)
    served = waits.count(0.0)
    unspent = sum(first._units_left.values()) + sum(second._units_left.values())
    # never more than the quota; what is held is at most one lease's remainder per thread that leased at once
    assert served + unspent == 8000 and unspent <= 16 * (lease - 1)
    assert all(w == pytest.approx(3600.0) for w in waits if w)

    def counted() -> int:
        with first.engine.connect() as conn:
            return conn.execute(sa.select(limit_counters.c.hits).where(limit_counters.c.key == "partner:lease")
                                ).scalar_one()

    assert counted() >= 8000  # every lease asked for is counted, granted or not
    # a restart: a process that stops cleanly gives back what it had not spent
    fresh = limits.DatabaseLimiter(engine, wall=clock)
    fresh.count("partner:gift", 8000, end)  # leases 40, spends 1
    fresh.close()
    with first.engine.connect() as conn:
        assert conn.execute(sa.select(limit_counters.c.hits).where(limit_counters.c.key == "partner:gift")
                            ).scalar_one() == 1


def test_leased_tokens_never_exceed_the_bucket_and_expire(engine, clock, monkeypatch):
    # 2,400 a minute leases 4 tokens; the bucket holds one minute's worth. What is tested is the
    # count, not the wait for SQLite's writer: 2,600 units queue for it, and a full suite on a busy
    # machine once stalled one past the default 5 s (DatabaseBusy)
    monkeypatch.setenv("DINHDANH_DB_LOCK_TIMEOUT", "60")
    first, second = limits.DatabaseLimiter(engine, wall=clock), limits.DatabaseLimiter(engine, wall=clock)
    waits = at_once(2600, lambda i: (first, second)[i % 2].take("partner:burst", 2400), workers=16)
    assert waits.count(0.0) <= 2400
    assert waits.count(0.0) >= 2400 - 2 * 3  # at most one lease's remainder stranded per process
    assert all(0 < w <= 1 / 40 + 1e-9 for w in waits if w)  # 40 tokens a second
    # a leased token is spent within TOKEN_HOLD or not at all: the bucket refills, not the lease
    clock.at += 0.1  # four tokens back in the bucket
    assert first.take("partner:burst", 2400) == 0.0
    clock.at += limits.DatabaseLimiter.TOKEN_HOLD + 0.01
    spent = sum(first.take("partner:burst", 2400) == 0.0 for _ in range(200))
    assert spent <= 4 + 40 * 1.11 + 4  # what refilled in the meantime, plus one lease


WORKER = textwrap.dedent("""
    import sys
    from dinhdanh.exchange.limits import DatabaseLimiter
    from dinhdanh.store.engine import make_engine

    url, schema, at, end = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
    engine = make_engine(url, **({"connect_args": {"options": f"-csearch_path={schema}"}} if schema else {}))
    limiter = DatabaseLimiter(engine, wall=lambda: at)
    sys.stdin.readline()  # both processes start together
    print(sum(limiter.count("partner:two", 50, end) == 0.0 for _ in range(60)))
""")


def test_two_processes_share_one_quota(engine, clock):
    url = engine.url.render_as_string(hide_password=False)
    schema = ""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            schema = conn.execute(sa.text("SELECT current_schema()")).scalar_one()
    limits.DatabaseLimiter(engine, wall=clock)  # the tables exist before the processes race for them
    end = limits.vietnam_day_end(clock())
    workers = [subprocess.Popen([sys.executable, "-c", WORKER, url, schema, repr(clock()), str(end)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(2)]
    time.sleep(1.0)  # both imported and connected
    outs = [w.communicate("go\n", timeout=60) for w in workers]
    assert [w.returncode for w in workers] == [0, 0], [err for _, err in outs]
    assert sum(int(out) for out, _ in outs) == 50
    with limits.DatabaseLimiter(engine).engine.connect() as conn:
        assert conn.execute(sa.select(limit_counters.c.hits).where(limit_counters.c.key == "partner:two")
                            ).scalar_one() == 120


def test_the_app_counts_in_the_database_without_redis(engine, monkeypatch):
    from dinhdanh.web.app import create_app

    monkeypatch.delenv("DINHDANH_REDIS_URL", raising=False)
    app = create_app(engine)
    assert isinstance(app.state.limiter, limits.DatabaseLimiter)
    monkeypatch.setenv("DINHDANH_REDIS_URL", "redis://127.0.0.1:1/0")
    limiter = create_app(engine).state.limiter
    assert isinstance(limiter, limits.RedisLimiter)
    limiter.close()


# ------------------------------------------------------------------------------ life events


def test_one_death_however_many_registrations_at_once(reg):
    """Six officers register the same death at once: one death event, one notice; the others are
    refused (the row's version read before their update, or the death already there). Châu is a
    child of a household, without a spouse: no other row the units would meet on."""
    from dinhdanh.registry.errors import Conflict, RuleViolation
    from dinhdanh.registry.tables import events, persons
    from dinhdanh.store.outbox import outbox
    from tests.chips import CHAU
    from tests.eid_support import record

    def attempt(i):
        try:
            return record(reg, "death", pid=CHAU, date_of_death=(NOW.date() - dt.timedelta(days=1)).isoformat())
        except (Conflict, RuleViolation) as exc:
            return exc

    done = at_once(6, attempt)
    assert sum(not isinstance(d, Exception) for d in done) == 1, done
    with reg.connect() as conn:
        person_id = conn.execute(sa.select(persons.c.person_id).where(persons.c.pid == CHAU)).scalar_one()
        assert conn.execute(sa.select(sa.func.count()).select_from(events).where(
            events.c.person_id == person_id, events.c.kind == "death")).scalar_one() == 1
        assert conn.execute(sa.select(sa.func.count()).select_from(outbox).where(
            outbox.c.person_id == person_id, outbox.c.topic == "person.died")).scalar_one() == 1


def test_moves_in_opposite_directions_at_once_both_go_through(reg):
    """Dung moves from the Hà Nội household to Đức's in Hồ Chí Minh City while Giang moves the
    other way, at the same moment, six times back and forth: each leaves a household and joins the
    other's, and both are moved every time. Each unit locked the household it left, then the one it
    joined: on PostgreSQL each held one and waited for the other (a deadlock: one refused, 503)."""
    from dinhdanh.registry.tables import households, persons
    from tests.eid_support import record
    from tests.support import FAMILY

    dung, giang = FAMILY[3][0], FAMILY[6][0]
    hanoi, hcmc = ("00070", "0100000001"), ("26743", "7900000001")
    record(reg, "permanent-residence", pid=giang, commune_code=hcmc[0], household_number=hcmc[1],
           address="1 Lê Lợi")  # Đức's household: Đức (head) and Giang; neither mover is a head

    def move(pid, to):
        return record(reg, "permanent-residence", pid=pid, commune_code=to[0], household_number=to[1],
                      address="2 Hàng Bài" if to is hanoi else "1 Lê Lợi")

    for round_ in range(6):
        there, back = (hcmc, hanoi) if round_ % 2 == 0 else (hanoi, hcmc)
        done = at_once(2, lambda i: move(dung, there) if i == 0 else move(giang, back))
        assert all(d.kind == "permanent-residence" for d in done), done
    with reg.connect() as conn:
        homes = dict(conn.execute(sa.select(persons.c.pid, households.c.number)
                                  .join(households, households.c.household_id == persons.c.household_id)
                                  .where(persons.c.pid.in_([dung, giang]))).all())
    assert homes == {dung: hanoi[1], giang: hcmc[1]}  # six moves each: back where they started


# ------------------------------------------------------------------------------ cards


def test_one_card_application_and_one_revocation_however_many_at_once(reg, vault):
    """Six officers file Đức's first card application at once: one is open, the others are told
    one is in progress. Later six revoke his card at once: one revocation, one notice."""
    from dinhdanh.cards import lifecycle
    from dinhdanh.cards.tables import card_applications
    from dinhdanh.registry.errors import Conflict, NotFound
    from dinhdanh.registry.events import Actor
    from dinhdanh.store.outbox import outbox
    from tests.chips import DUC

    def apply(i):
        try:
            with UnitOfWork(reg).begin() as conn:
                return lifecycle.submit_application(conn, Actor(f"officer:{i}"), DUC)
        except Conflict as exc:
            return exc

    done = at_once(6, apply)
    made = [d for d in done if isinstance(d, dict)]
    assert len(made) == 1 and all(d.code == "application_open" for d in done if isinstance(d, Conflict))
    with reg.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(card_applications)).scalar_one() == 1
    officer = Actor("officer:1")
    with UnitOfWork(reg).begin() as conn:
        lifecycle._approve(conn, officer, made[0]["application_id"], separate=False)
        card = lifecycle.produce_card(conn, vault, officer, made[0]["application_id"])
        lifecycle.hand_over(conn, officer, card["card_id"])

    def revoke(i):
        try:
            with UnitOfWork(reg).begin() as conn:
                return lifecycle.revoke_card(conn, Actor(f"officer:{i}"), DUC, "lost")
        except NotFound as exc:  # no issued card any more
            return exc

    done = at_once(6, revoke)
    assert sum(isinstance(d, dict) for d in done) == 1, done
    with reg.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(outbox)
                            .where(outbox.c.topic == "card.revoked")).scalar_one() == 1


def test_a_worn_out_document_signer_is_rotated_once_by_units_at_once(reg, vault):
    from dinhdanh.cards import pki
    from dinhdanh.cards.tables import pki_keys

    later = NOW + pki.DSC_USAGE + dt.timedelta(days=1)  # the current signer's usage period is over

    def sign(i):
        with UnitOfWork(reg).begin() as conn:
            return pki.document_signer(conn, vault, later).key_id

    keys = at_once(6, sign)
    assert len(set(keys)) == 1
    with reg.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(pki_keys).where(
            pki_keys.c.role == "dsc", pki_keys.c.status == "active")).scalar_one() == 1


def test_one_successor_when_an_officers_token_is_rotated_twice_at_once(reg):
    from dinhdanh.officers import credentials
    from dinhdanh.officers.tables import officer_tokens
    from dinhdanh.registry.errors import NotFound
    from dinhdanh.officers.service import add_officer

    with reg.begin() as conn:
        officer_id = add_officer(conn, "Cán bộ", "national", None, roles=["registrar"])[0].officer_id
        token_id = conn.execute(sa.select(officer_tokens.c.token_id)
                                .where(officer_tokens.c.officer_id == officer_id)).scalar_one()

    def rotate(i):
        try:
            with UnitOfWork(reg).begin() as conn:
                return credentials.rotate(conn, officer_id, token_id=token_id)
        except NotFound as exc:
            return exc

    done = at_once(4, rotate)
    assert sum(not isinstance(d, NotFound) for d in done) == 1, done
    with reg.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(officer_tokens).where(
            officer_tokens.c.officer_id == officer_id)).scalar_one() == 2  # the old one and one successor
