"""The lockout over HTTP, on SQLite and PostgreSQL: 30 wrong passcodes posted at once to the app's
login (``POST /api/v1/eid/sessions``) get five Argon2 checks and one lock; the right passcode sent
with them while locked is refused (401, as a wrong passcode: the lock is not told) and every refusal is
in the login history."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from dinhdanh.cards import pki
from dinhdanh.eid import auth
from dinhdanh.eid.tables import eid_accounts, eid_logins
from dinhdanh.web.app import create_app
from tests import chips
from tests.chips import AN
from tests.eid_support import PASSCODE, enroll


class CountingHasher:
    def __init__(self, inner):
        self.inner, self.verified, self._lock = inner, 0, threading.Lock()

    def verify(self, stored, passcode):
        with self._lock:
            self.verified += 1
        return self.inner.verify(stored, passcode)

    def __getattr__(self, name):
        return getattr(self.inner, name)


@pytest.fixture
def app(family):
    vault = chips.new_vault()
    chips.reset_caches()
    with family.begin() as conn:
        pki.init_pki(conn, vault)
    enroll(family, vault, AN)
    app = create_app(family)
    app.state.vault = vault
    yield app
    chips.reset_caches()


def post_all(app, passcodes: list[str]) -> list:
    gate = threading.Barrier(len(passcodes))

    def one(passcode):
        client = TestClient(app, raise_server_exceptions=False)  # a client per thread, as browsers are
        gate.wait(timeout=30)
        return client.post("/api/v1/eid/sessions", json={"username": AN, "passcode": passcode})

    with ThreadPoolExecutor(max_workers=len(passcodes)) as pool:
        return list(pool.map(one, passcodes))


def test_thirty_wrong_passcodes_at_once_over_http(app, family, monkeypatch):
    hasher = CountingHasher(auth.HASHER)
    monkeypatch.setattr(auth, "HASHER", hasher)
    answers = post_all(app, ["000000"] * 30)
    statuses = sorted(r.status_code for r in answers)
    assert hasher.verified == 5
    # the lock is not told over HTTP (an unknown username could not be locked): 30 times the same 401
    assert statuses == [401] * 30, statuses
    assert {r.json()["error"]["code"] for r in answers} == {"bad_credentials"}
    assert not any("Retry-After" in r.headers for r in answers)
    with family.connect() as conn:
        row = conn.execute(sa.select(eid_accounts)).one()
        assert (row.failed_attempts, row.lockouts) == (0, 1)
        assert conn.execute(sa.select(sa.func.count()).select_from(eid_logins)).scalar_one() == 30

    answers = post_all(app, ["000000"] * 9 + [PASSCODE] + ["000000"] * 10)  # locked: nothing is checked
    assert hasher.verified == 5 and {r.status_code for r in answers} == {401}
