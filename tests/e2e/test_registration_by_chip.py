"""Registration by chip card over HTTP, on SQLite and PostgreSQL (issue 11): the app reads the card
over NFC and sends the SOD and data groups with the chip's Active Authentication signature over the
server's challenge. Chips are the register's own (tests.chips), the AA signature is made with the
card's own key; the face matcher is the e-ID tests' deterministic one (the card's photo matches).

Every failed proof (a replayed or expired challenge, a signature by another key, a data group
altered after signing, a SOD by an untrusted signer, a replaced card, someone else's face) gets the
same bytes back; concurrent requests with one challenge get it once."""

from __future__ import annotations

import base64
import datetime as dt
import threading
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from dinhdanh.audit.tables import access_log
from dinhdanh.cards import chip, pki
from dinhdanh.cards.tables import cards
from dinhdanh.eid import faces, registration
from dinhdanh.eid.tables import eid_accounts, eid_registration_challenges, eid_registrations
from dinhdanh.registry.tables import persons
from dinhdanh.store.outbox import outbox
from dinhdanh.web.app import create_app
from tests import chips
from tests.chips import AN, DUC
from tests.eid_support import PHONES, FakeMatcher, counts, enroll, jpeg, last_code, with_phones


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


@dataclass
class ChipApi:
    client: TestClient
    engine: sa.Engine
    vault: object

    def post(self, url, body=None, headers=None):
        return self.client.post(url, json=body, headers=headers or {})

    def challenge(self) -> tuple[str, bytes]:
        r = self.post("/api/v1/eid/registrations/challenges")
        assert r.status_code == 201, r.text
        out = r.json()
        assert set(out) == {"challenge_id", "challenge", "expires_in"} and out["expires_in"] == 120
        raw = base64.urlsafe_b64decode(out["challenge"] + "=" * (-len(out["challenge"]) % 4))
        assert len(raw) == 8 and "=" not in out["challenge"]
        return out["challenge_id"], raw

    def card(self, pid: str):
        """The person's issued card (its ``cards`` row: chip files, the chip's sealed AA key)."""
        with self.engine.connect() as conn:
            return conn.execute(sa.select(cards).join(persons, persons.c.person_id == cards.c.person_id)
                                .where(persons.c.pid == pid, cards.c.status == "issued")).one()

    def body(self, card, challenge: tuple[str, bytes], *, files=None, signer=None, face=None, msisdn=None) -> dict:
        """What the app sends after reading ``card`` (its chip answering ``challenge``)."""
        files = files or chips.files_of(card, self.vault)
        challenge_id, raw = challenge
        signature = chip.respond_to_challenge(signer if signer is not None else card, self.vault, raw)
        holder = person_pid(self.engine, card.person_id)
        return {"challenge_id": challenge_id, "sod": b64(files[-1]), "dg1": b64(files[1]), "dg2": b64(files[2]),
                "dg13": b64(files[13]), "dg14": b64(files[14]), "dg15": b64(files[15]),
                "aa_signature": b64(signature),
                "face_image": b64(face if face is not None else portrait(card, self.vault)),
                "msisdn": msisdn or PHONES[holder]}

    def register(self, body, lang="en"):
        return self.post("/api/v1/eid/registrations/chip", body, {"Accept-Language": lang})


def person_pid(engine, person_id: int) -> str:
    with engine.connect() as conn:
        return conn.execute(sa.select(persons.c.pid).where(persons.c.person_id == person_id)).scalar_one()


def portrait(card, vault) -> bytes:
    return registration.card_portrait(card, vault)


def checks_of(engine, pid: str) -> list[tuple[str, str, str, str]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(
            sa.select(access_log.c.actor, access_log.c.action, access_log.c.purpose, access_log.c.outcome)
            .join(persons, persons.c.person_id == access_log.c.person_id)
            .where(persons.c.pid == pid, access_log.c.action == "eid_registration_check")
            .order_by(access_log.c.access_id))]


@pytest.fixture
def api(family, monkeypatch) -> ChipApi:
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
    yield ChipApi(TestClient(app, raise_server_exceptions=False), family, vault)
    chips.reset_caches()


def test_a_chip_read_with_its_signature_over_our_challenge_registers_and_is_audited(api):
    card = api.card(AN)
    challenge_id, raw = challenge = api.challenge()
    with api.engine.connect() as conn:  # kept sealed, found by the hash of its id: neither in clear
        row = conn.execute(sa.select(eid_registration_challenges)).one()
    assert challenge_id not in row.challenge_id_hash and raw not in row.challenge and row.used_at is None
    r = api.register(api.body(card, challenge, msisdn=PHONES[AN]) | {"email": "an@example.vn"})
    assert r.status_code == 201, r.text
    out = r.json()
    assert (out["status"], out["channel"], out["level"], out["code_sent_to"]) == ("approved", "chip", 1, "091****001")
    with api.engine.connect() as conn:
        row = conn.execute(sa.select(eid_registrations)).one()
        assert row.checks["chip"] == "verified" and row.checks["face"]["outcome"] == "match"
        assert conn.execute(sa.select(eid_accounts.c.state)).scalar_one() == "pending"
        assert conn.execute(sa.select(eid_registration_challenges.c.used_at)).scalar_one() is not None
    assert checks_of(api.engine, AN) == [("anonymous:registration", "eid_registration_check", "identity_check",
                                          "match")]
    # the code sent to the holder's phone activates the account
    r = api.post("/api/v1/eid/activations", {"registration_id": out["registration_id"], "code": last_code(api.engine),
                                             "passcode": "135790"})
    assert r.status_code == 200 and r.json()["state"] == "active", r.text


def test_without_a_face_matcher_an_officer_compares_with_the_chips_portrait(api, monkeypatch):
    monkeypatch.setattr(faces, "_default", [None])
    card = api.card(AN)
    selfie = jpeg((90, 60, 40))
    r = api.register(api.body(card, api.challenge(), face=selfie))
    assert r.status_code == 202 and r.json()["status"] == "pending_review", r.text
    with api.engine.connect() as conn:
        detail, _ = registration.registration_detail(conn, api.vault, r.json()["registration_id"])
        assert conn.execute(sa.select(sa.func.count()).select_from(eid_accounts)).scalar_one() == 0
    # the reviewer sees the captured face and the DG2 portrait the chip sent
    assert base64.b64decode(detail["face_image"]) == selfie
    assert base64.b64decode(detail["card_photo"]) == portrait(card, api.vault)
    assert detail["checks"]["face"] == {"outcome": "not_checked", "matcher": None}
    assert checks_of(api.engine, AN)[-1][-1] == "match"


def test_every_failed_proof_is_one_identical_refusal(api, monkeypatch):
    from dinhdanh.eid import chip_registration

    reasons = []  # what failed, as the service knows it (never sent): each case fails where it should
    monkeypatch.setattr(chip_registration, "chip_refused",
                        lambda why: reasons.append({check for check, _ in why}) or registration.chip_refused(why))
    an, duc = api.card(AN), api.card(DUC)
    good = api.body(an, api.challenge())  # its challenge is spent below, by a refused attempt
    answers = {}

    # a replayed challenge: spent by a first (refused) attempt, then sent again with everything right
    spent = api.challenge()
    answers["wrong signer"] = api.register(api.body(an, spent, signer=duc))  # DUC's chip key signs AN's chip
    answers["replay"] = api.register(api.body(an, spent))
    # an expired challenge
    late = api.challenge()
    with api.engine.begin() as conn:
        conn.execute(eid_registration_challenges.update()
                     .where(eid_registration_challenges.c.used_at.is_(None))
                     .values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))
    answers["expired"] = api.register(api.body(an, late))
    # a data group altered after signing (the portrait: still a JPEG, no longer the signed one)
    files = chips.files_of(an, api.vault)
    altered = {**files, 2: chips.flip(files[2], len(files[2]) // 2)}
    answers["altered DG2"] = api.register(api.body(an, api.challenge(), files=altered))
    # the same data groups under a SOD signed by a Document Signer no trusted CSCA vouches for
    foreign = chips.foreign_pki("ec", "VN")
    untrusted = {**files, -1: foreign.sign_sod(chips.dgs(files))}
    answers["untrusted SOD"] = api.register(api.body(an, api.challenge(), files=untrusted))
    # DUC's genuine chip, signing correctly, with someone else's face
    answers["someone else's face"] = api.register(api.body(duc, api.challenge(), face=portrait(an, api.vault)))

    for case, r in answers.items():
        assert r.status_code == 422, (case, r.text)
    assert reasons == [{"active_authentication"}, {"challenge", "active_authentication"},
                       {"challenge", "active_authentication"}, {"data_groups"},
                       {"chain", "register_card", "register_person", "register_data"},
                       {"face"}], reasons
    first = answers["replay"].content
    assert all(r.content == first for r in answers.values()), {c: r.text for c, r in answers.items()}
    error = answers["replay"].json()["error"]
    assert (error["code"], error["field"]) == ("chip_not_verified", None)
    assert error["message"] == registration.CHIP_REFUSAL
    with api.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(eid_registrations)).scalar_one() == 0
    # every chip of ours was a check of its holder, refused; the foreign-signed SOD read nothing
    assert [c[-1] for c in checks_of(api.engine, AN)] == ["mismatch"] * 4
    assert [c[-1] for c in checks_of(api.engine, DUC)] == ["mismatch"]

    # Vietnamese by default, and the same whichever check failed
    vi = [api.register(api.body(an, api.challenge(), signer=duc), lang="vi"),
          api.register(api.body(duc, api.challenge(), face=portrait(an, api.vault)), lang="vi")]
    assert vi[0].content == vi[1].content and "thẻ căn cước gắn chíp" in vi[0].json()["error"]["message"]

    # the control: what was refused above passes with a fresh challenge and everything right
    good["challenge_id"], raw = api.challenge()
    good["aa_signature"] = b64(chip.respond_to_challenge(an, api.vault, raw))
    assert api.register(good).status_code == 201


def test_a_replaced_card_no_longer_registers(api):
    old = api.card(AN)
    chips.issue(api.engine, api.vault, AN, kind="reissue_damaged")  # the old card is revoked ("replaced")
    r = api.register(api.body(old, api.challenge()))
    assert r.status_code == 422 and r.json()["error"]["code"] == "chip_not_verified", r.text
    new = api.card(AN)
    assert new.card_id != old.card_id
    assert api.register(api.body(new, api.challenge())).status_code == 201


def test_a_proven_holder_is_told_what_stands_in_the_way(api):
    an = api.card(AN)
    r = api.register(api.body(an, api.challenge(), msisdn=PHONES[DUC]))
    assert r.status_code == 409 and (r.json()["error"]["code"], r.json()["error"]["field"]) == \
        ("msisdn_not_owned", "msisdn"), r.text
    enroll(api.engine, api.vault, AN)
    r = api.register(api.body(an, api.challenge()))
    assert r.status_code == 409 and r.json()["error"]["code"] == "account_exists", r.text
    assert [c[-1] for c in checks_of(api.engine, AN)] == ["mismatch", "mismatch"]
    with api.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(eid_registrations)).scalar_one() == 0


@pytest.mark.parametrize(("change", "field"), [
    ({"dg2": "!!! not base64 !!!"}, "dg2"),
    ({"dg15": None}, "dg15"),
    ({"sod": "A" * 64_001}, "sod"),
    ({"aa_signature": 7}, "aa_signature"),
    ({"challenge_id": "short"}, "challenge_id"),
    ({"face_image": b64(b"GIF89a not a jpeg")}, "face_image"),
    ({"sod": b64(b"\x77\x03\x30\x01\x00")}, "sod"),  # base64, but not a SignedData
    ({"extra": 1}, "extra"),
])
def test_malformed_input_is_a_422_naming_the_field(api, change, field):
    body = api.body(api.card(AN), api.challenge())
    body = {k: v for k, v in {**body, **change}.items() if v is not None}
    before = counts(api.engine, eid_registrations, eid_accounts, outbox, access_log)
    r = api.register(body)
    assert r.status_code == 422 and r.json()["error"]["field"] == field, r.text
    assert counts(api.engine, eid_registrations, eid_accounts, outbox, access_log) == before


def test_concurrent_requests_with_one_challenge_get_past_it_once(api):
    card = api.card(AN)
    body = api.body(card, api.challenge())
    start, answers, lock = threading.Barrier(8), [], threading.Lock()

    def send():
        start.wait()
        r = api.register(body)
        with lock:
            answers.append((r.status_code, r.json()["error"]["code"] if r.status_code >= 400 else r.json()["status"]))

    threads = [threading.Thread(target=send) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(answers) == [(201, "approved")] + [(422, "chip_not_verified")] * 7, answers
    with api.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(eid_registrations)).scalar_one() == 1
    assert sorted(c[-1] for c in checks_of(api.engine, AN)) == ["match"] + ["mismatch"] * 7
