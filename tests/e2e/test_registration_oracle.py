"""The typed registration is no longer an oracle (issue 11), over HTTP on SQLite and PostgreSQL.

Outside testers recovered a person's date of birth in 195 anonymous requests to
``POST /api/v1/eid/registrations``, which named each field that differed from the register. Now
every refusal about the person is the same bytes as an unknown PID's; the attempts are limited per
source address and per PID in the database's counters (shared by every process); each check of a
real person is in that person's access log, and a PID nobody holds leaves nothing there."""

from __future__ import annotations

import base64
import datetime as dt
import itertools

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from dinhdanh.audit.service import access_log_of
from dinhdanh.audit.tables import access_log
from dinhdanh.cards import pki
from dinhdanh.eid import attempts, faces, registration
from dinhdanh.eid.tables import eid_accounts, eid_registrations
from dinhdanh.exchange import limits
from dinhdanh.registry.tables import persons
from dinhdanh.store.outbox import outbox
from dinhdanh.web.app import create_app
from dinhdanh.web.portal import TEXT
from tests import chips
from tests.chips import AN, BINH, DUC
from tests.eid_support import PHONES, FakeMatcher, card_photo, counts, jpeg, with_phones

AN_BORN = dt.date(1985, 3, 4)
UNKNOWN = "001085999999"  # a well-formed PID nobody holds
_ADDRESSES = (f"198.51.100.{n}" for n in itertools.count(1))


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


class Attacker:
    """Clients of one app, each from its own source address (as many as it likes)."""

    def __init__(self, app):
        self.app = app

    def client(self, address: str | None = None) -> TestClient:
        return TestClient(self.app, raise_server_exceptions=False, client=(address or next(_ADDRESSES), 50000))

    def try_(self, pid: str, born: dt.date, *, client: TestClient | None = None, face: bytes | None = None,
             msisdn: str = "0912345001", name: str = "Nguyễn Văn An", sex: str = "male"):
        body = {"pid": pid, "full_name": name, "date_of_birth": born.isoformat(), "sex": sex, "msisdn": msisdn,
                "face_image": b64(face if face is not None else jpeg())}
        return (client or self.client()).post("/api/v1/eid/registrations", json=body)


@pytest.fixture
def app(family, monkeypatch):
    vault = chips.new_vault()
    chips.reset_caches()
    with family.begin() as conn:
        pki.init_pki(conn, vault)
    with_phones(family)
    chips.issue(family, vault, AN)
    chips.issue(family, vault, DUC)
    monkeypatch.setattr(faces, "_default", [FakeMatcher()])
    app = create_app(family)
    app.state.vault = vault
    yield app
    chips.reset_caches()


def entries(engine, pid: str) -> list[dict]:
    with engine.connect() as conn:
        person_id = conn.execute(sa.select(persons.c.person_id).where(persons.c.pid == pid)).scalar_one()
        return [e for e in access_log_of(conn, person_id, limit=100)["items"]
                if e["action"] == "eid_registration_check"]


def test_the_195_request_attack_no_longer_works(app, family):
    attacker = Attacker(app)
    unknown = attacker.try_(UNKNOWN, AN_BORN)
    assert unknown.status_code == 422
    # one request per candidate date of birth, each from a fresh address: the true one is the 100th
    candidates = [AN_BORN + dt.timedelta(days=n - 99) for n in range(195)]
    answers = [attacker.try_(AN, born) for born in candidates]
    refused = [r for r in answers if r.status_code == 422]
    limited = [r for r in answers if r.status_code == 429]
    assert len(refused) == attempts.PID_ATTEMPTS and len(limited) == 195 - attempts.PID_ATTEMPTS
    # before the limit, every wrong date got the very bytes an unknown PID gets (and no field)
    assert all(r.content == unknown.content and r.headers.get("content-length") == unknown.headers["content-length"]
               for r in refused)
    assert unknown.json()["error"]["code"] == "registration_refused" and unknown.json()["error"]["field"] is None
    # the true date came after the limit: refused as every other one, telling nothing
    assert answers[99].status_code == 429 and answers[99].json()["error"]["code"] == "rate_limited"
    assert all(0 < int(r.headers["Retry-After"]) <= 86400 for r in limited)
    assert len({r.content for r in limited}) == 1
    with family.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(eid_registrations)).scalar_one() == 0
    # An sees the five checks that reached the register
    assert [e["outcome"] for e in entries(family, AN)] == ["mismatch"] * attempts.PID_ATTEMPTS


def test_every_refusal_about_the_person_is_the_unknown_pids(app, family):
    """Dead, wrong name / date / sex, no card, a number not theirs, an account held, a face not
    theirs: the answer is the one an unknown PID gets, byte for byte."""
    from tests.eid_support import enroll, record

    attacker = Attacker(app)
    an_face = card_photo(family, app.state.vault, AN)
    baseline = attacker.try_(UNKNOWN, AN_BORN).content
    cases = {
        "wrong name": lambda: attacker.try_(AN, AN_BORN, name="Nguyễn Văn Ân", face=an_face),
        "wrong sex": lambda: attacker.try_(AN, AN_BORN, sex="female", face=an_face),
        "not their number": lambda: attacker.try_(AN, AN_BORN, msisdn=PHONES[DUC], face=an_face),
        "not their face": lambda: attacker.try_(AN, AN_BORN),
        "no valid card": lambda: attacker.try_(BINH, dt.date(1987, 5, 6), name="Trần Thị Bình", sex="female",
                                               msisdn=PHONES[BINH]),
    }
    answers = {case: send() for case, send in cases.items()}
    enroll(family, app.state.vault, DUC)
    answers["account held"] = attacker.try_(DUC, dt.date(1990, 9, 10), name="Lê Văn Đức", msisdn=PHONES[DUC],
                                            face=card_photo(family, app.state.vault, DUC))
    record(family, "death", pid=DUC, date_of_death=(dt.date.today() - dt.timedelta(days=1)).isoformat())
    answers["dead"] = attacker.try_(DUC, dt.date(1990, 9, 10), name="Lê Văn Đức", msisdn=PHONES[DUC])
    for case, r in answers.items():
        assert (r.status_code, r.content) == (422, baseline), (case, r.text)
    # and in Vietnamese, alike
    vi = [attacker.client().post("/api/v1/eid/registrations", headers={"Accept-Language": "vi"}, json={
        "pid": pid, "full_name": "Nguyễn Văn An", "date_of_birth": "1985-03-05", "sex": "male",
        "msisdn": PHONES[AN], "face_image": b64(jpeg())}) for pid in (BINH, UNKNOWN)]
    assert vi[0].content == vi[1].content and "cơ quan Công an" in vi[0].json()["error"]["message"]
    # the right details with the holder's face still register (the refusals were about the data; this
    # is An's fifth attempt today, the last the limit allows)
    r = attacker.try_(AN, AN_BORN, face=an_face)
    assert r.status_code == 201 and r.json()["status"] == "approved", r.text


def test_input_that_says_nothing_of_the_register_is_still_named(app):
    attacker = Attacker(app)
    r = attacker.try_(AN, AN_BORN, face=b"GIF89a not a jpeg")
    assert r.status_code == 422 and r.json()["error"]["field"] == "face_image"
    r = attacker.client().post("/api/v1/eid/registrations", json={
        "pid": "00108500000", "full_name": "An", "date_of_birth": "1985-03-04", "sex": "male",
        "msisdn": "0912345001", "face_image": b64(jpeg())})
    assert r.status_code == 422 and r.json()["error"]["field"] == "pid"


def test_the_limit_per_source_address(app, family):
    attacker = Attacker(app)
    one = attacker.client("203.0.113.9")
    # different PIDs, held or not: only the address's limit applies
    pids = [f"0010859{n:05d}" for n in range(attempts.SOURCE_ATTEMPTS)]
    assert {attacker.try_(pid, AN_BORN, client=one).status_code for pid in pids} == {422}
    r = attacker.try_(AN, AN_BORN, client=one)
    assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limited", r.text
    assert 0 < int(r.headers["Retry-After"]) <= 3600
    assert "police counter" in r.json()["error"]["message"] or "Công an" in r.json()["error"]["message"]
    assert entries(family, AN) == []  # refused before the register was read
    assert attacker.try_(AN, AN_BORN).status_code == 422  # another address is not held back


def test_the_limits_hold_across_processes(app, family):
    """Two apps on one database (two API processes, each with its own limiter): one count."""
    other = create_app(family)
    other.state.vault = app.state.vault
    assert app.state.limiter is not other.state.limiter
    apps = itertools.cycle([Attacker(app), Attacker(other)])
    codes = [next(apps).try_(UNKNOWN, AN_BORN).status_code for _ in range(attempts.PID_ATTEMPTS + 2)]
    assert codes == [422] * attempts.PID_ATTEMPTS + [429, 429]


def test_the_limits_fail_closed(app):
    class Unreachable:
        def now(self):
            return dt.datetime.now(dt.UTC).timestamp()

        def count(self, key, limit, window_end):
            raise limits.LimiterUnavailable("the counters do not answer")

        take = count

    app.state.limiter = Unreachable()
    r = Attacker(app).try_(AN, AN_BORN)
    assert r.status_code == 503 and r.json()["error"]["code"] == "rate_limiter_unavailable", r.text
    assert r.headers["Retry-After"] == "5"


def test_the_real_persons_access_log_shows_the_checks_and_an_unknown_pid_writes_nothing(app, family):
    attacker = Attacker(app)
    before = counts(family, access_log)
    for _ in range(3):
        assert attacker.try_(UNKNOWN, AN_BORN).status_code == 422
    assert counts(family, access_log) == before  # nobody holds it: nobody's log
    assert attacker.try_(AN, AN_BORN + dt.timedelta(days=1)).status_code == 422
    assert attacker.try_(AN, AN_BORN, face=card_photo(family, app.state.vault, AN)).status_code == 201
    seen = entries(family, AN)  # newest first, as the citizen's page shows them
    assert [(e["who"]["label"], e["outcome"], e["purpose"]["code"]) for e in seen] == [
        ("anonymous:registration", "match", "identity_verification"),
        ("anonymous:registration", "mismatch", "identity_verification")]
    assert seen[0]["fields"] == list(registration.AUDIT_FIELDS)
    assert seen[0]["purpose"]["text"]  # a purpose the page can name
    # the portal names the action in both languages
    assert TEXT["vi"]["actions"]["eid_registration_check"] and TEXT["en"]["actions"]["eid_registration_check"]
    assert {e["outcome"] for e in seen} <= set(TEXT["vi"]["outcomes"])
    assert counts(family, eid_accounts, outbox)[0] == 1


def test_an_unknown_pid_takes_the_same_steps_as_a_mismatch(app, family):
    """No early return: the statements run for an unknown PID and for a wrong date of birth are the
    same in number (the unknown PID's former-PID lookup stands where the real person's access-log
    entry is written)."""
    statements = []

    def count(conn, cursor, statement, *args):
        if "limit_" not in statement:  # the attempt counters (on PostgreSQL, in the same database)
            statements.append(statement.split()[0].upper())

    attacker = Attacker(app)
    client = attacker.client()
    sa.event.listen(family, "before_cursor_execute", count)
    try:
        ran = []
        for pid, born in ((UNKNOWN, AN_BORN), (AN, AN_BORN + dt.timedelta(days=1))):
            statements.clear()
            assert attacker.try_(pid, born, client=client).status_code == 422
            ran.append(list(statements))
    finally:
        sa.event.remove(family, "before_cursor_execute", count)
    assert len(ran[0]) == len(ran[1]), ran
    assert ran[1].count("INSERT") == 1 and ran[0].count("INSERT") == 0  # the access-log entry


def _activate(client: TestClient, **body):
    return client.post("/api/v1/eid/activations", headers={"Accept-Language": "en"},
                       json={"code": "000000", "passcode": "135790", **body})


def test_activation_tells_nothing_before_the_code_is_right(app, family):
    """Outside testers read An's date of birth from the activation route: a passcode shaped like it was
    refused as ``weak_passcode`` before the code was checked (667 requests), and a PID nobody holds,
    one with no registration and one awaiting activation were three answers. Now the code comes first
    and by PID every refusal is one answer; the route is limited per address."""
    attacker = Attacker(app)
    r = attacker.try_(AN, AN_BORN, face=card_photo(family, app.state.vault, AN))
    assert r.status_code == 201, r.text
    registration_id = r.json()["registration_id"]
    # a passcode that is An's date of birth, with a wrong code: the code is what is refused
    for passcode in ("040385", "030485", "850304"):
        r = _activate(attacker.client(), registration_id=registration_id, passcode=passcode)
        assert (r.status_code, r.json()["error"]["code"]) == (422, "invalid_code"), r.text
        assert "birth" not in r.text
    # by PID: an unknown PID, a PID with nothing to activate, a PID awaiting activation answer alike
    answers = [_activate(attacker.client(), pid=pid) for pid in (UNKNOWN, DUC, AN)]
    assert {(a.status_code, a.content) for a in answers} == {(answers[0].status_code, answers[0].content)}
    assert answers[0].status_code == 422 and answers[0].json()["error"]["code"] == "invalid_code"
    # and once An's attempts are spent, still the same answer (the attempts were counted)
    with family.connect() as conn:
        spent = conn.execute(sa.select(eid_registrations.c.code_attempts)
                             .where(eid_registrations.c.registration_id == registration_id)).scalar_one()
    assert spent == 4
    assert _activate(attacker.client(), pid=AN).content == answers[0].content
    assert _activate(attacker.client(), pid=AN).content == answers[0].content  # past the fifth attempt
    # one address is limited
    one = attacker.client("203.0.113.77")
    codes = [_activate(one, pid=f"0010859{n:05d}").status_code for n in range(attempts.ACTIVATION_SOURCE_ATTEMPTS + 1)]
    assert codes[:-1] == [422] * attempts.ACTIVATION_SOURCE_ATTEMPTS and codes[-1] == 429


def test_registration_challenges_are_limited_per_address(app):
    """Each challenge is a row until it expires: one address cannot fill the table."""
    one, other = Attacker(app).client("203.0.113.78"), Attacker(app).client()
    codes = [one.post("/api/v1/eid/registrations/challenges").status_code
             for _ in range(attempts.CHALLENGE_SOURCE_ATTEMPTS + 1)]
    assert codes[:-1] == [201] * attempts.CHALLENGE_SOURCE_ATTEMPTS and codes[-1] == 429
    assert other.post("/api/v1/eid/registrations/challenges").status_code == 201
