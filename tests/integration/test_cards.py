"""The card lifecycle on SQLite and PostgreSQL: the path from application to hand-over, its rules and
refusals, revocation by life events, what the card and its chip carry, the key-use log and the
rotation of Document Signers.

The register is FAMILY (tests/support.py); the PKI is made per test with a fresh vault.
"""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from dinhdanh.cards import chip, lifecycle, pki
from dinhdanh.cards.tables import card_applications, cards, pki_key_uses, pki_keys
from dinhdanh.cards.validity import expiry_date as rule_expiry
from dinhdanh.ids import mrz, qr
from dinhdanh.ids.lds import certs, cms, dg1, dg2, dg13, masterlist
from dinhdanh.registry import commands as cmd
from dinhdanh.registry import events as ev
from dinhdanh.registry.area import Area
from dinhdanh.registry.errors import Conflict, InvalidInput, NotFound, RuleViolation
from dinhdanh.registry.records import history
from dinhdanh.registry.tables import events, persons
from dinhdanh.store.outbox import outbox
from dinhdanh.store.vault import Vault, VaultError
from tests import chips
from tests.chips import AN, BINH, CHAU, DUC, DUNG, GIANG, HOA, NATIONAL

TODAY = dt.datetime.now(dt.UTC).date()
HANOI_OFFICER = ev.Actor("officer:hanoi", Area("commune", "00070"))
HCMC_OFFICER = ev.Actor("officer:hcmc", Area("province", "79"))
APPROVER = ev.Actor("officer:approver")  # national; approves what NATIONAL ("test") files
HANOI_APPROVER = ev.Actor("officer:hanoi-approver", Area("commune", "00070"))


@pytest.fixture(autouse=True)
def _fresh_caches():
    chips.reset_caches()
    yield
    chips.reset_caches()


@pytest.fixture
def vault() -> Vault:
    return chips.new_vault()


@pytest.fixture
def reg(family, vault):
    """FAMILY with the national PKI."""
    with family.begin() as conn:
        pki.init_pki(conn, vault)
    return family


def submit(engine, pid, kind=None, actor=NATIONAL, reason=None) -> dict:
    with engine.begin() as conn:
        return lifecycle.submit_application(conn, actor, pid, kind, reason)


def step(engine, fn, *args, **kw):
    with engine.begin() as conn:
        return fn(conn, *args, **kw)


def record(engine, kind, actor=NATIONAL, **fields):
    with engine.begin() as conn:
        return ev.record_event(conn, actor, kind, cmd.EVENT_KINDS[kind].model_validate(fields))


def card_rows(engine, pid) -> list:
    with engine.connect() as conn:
        person_id = conn.execute(sa.select(persons.c.person_id).where(persons.c.pid == pid)).scalar_one()
        return conn.execute(sa.select(cards).where(cards.c.person_id == person_id)
                            .order_by(cards.c.card_id)).all()


def card_history(engine, pid) -> list[dict]:
    with engine.connect() as conn:
        return [e for e in history(conn, pid) if e["kind"].startswith("card.")]


def counts(engine) -> tuple[int, ...]:
    with engine.connect() as conn:
        return tuple(conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
                     for t in (cards, card_applications, events, outbox, pki_keys, pki_key_uses))


def refused(engine, exc_type, code, fn, *args, field="<any>", **kw):
    """``fn`` raises ``exc_type`` with ``code`` and changes nothing."""
    before = counts(engine)
    with pytest.raises(exc_type) as info:
        with engine.begin() as conn:
            fn(conn, *args, **kw)
    assert info.value.code == code, (info.value.code, info.value.message)
    if field != "<any>":
        assert info.value.field == field, info.value.field
    assert counts(engine) == before
    return info.value


# ------------------------------------------------------------------------------- the path


def test_the_path_step_by_step_with_history_and_outbox(reg, vault):
    app = submit(reg, AN, reason="first card")
    assert (app["kind"], app["status"], app["card_id"], app["reason"]) == ("first", "submitted", None, "first card")
    approved = step(reg, lifecycle.approve_application, HANOI_OFFICER, app["application_id"])
    assert approved["status"] == "approved" and approved["decided_at"] is not None
    made = step(reg, lifecycle.produce_card, vault, NATIONAL, app["application_id"])
    assert (made["status"], made["card_number"], made["issued_at"]) == ("produced", AN, None)
    issued = step(reg, lifecycle.hand_over, NATIONAL, made["card_id"])
    assert (issued["status"], issued["card_id"], issued["application_id"]) == (
        "issued", made["card_id"], app["application_id"])
    assert issued["issued_at"] is not None and issued["revoked_at"] is None

    listing = step(reg, lifecycle.cards_of, NATIONAL, AN)
    assert [c["status"] for c in listing["cards"]] == ["issued"]
    assert [(a["kind"], a["status"], a["card_id"]) for a in listing["applications"]] == [
        ("first", "issued", made["card_id"])]

    entries = card_history(reg, AN)
    assert [e["kind"] for e in entries] == ["card.applied", "card.approved", "card.produced", "card.issued"]
    assert [e["actor"] for e in entries] == ["test", "officer:hanoi", "test", "test"]
    assert all(len(e["changes"]) == 1 and e["changes"][0]["field"] == "id_card" for e in entries)
    assert entries[0]["changes"][0]["new"] == {"application_id": app["application_id"], "kind": "first",
                                               "status": "submitted"}
    assert entries[0]["reason"] == "first card"
    handed = entries[3]["changes"][0]
    assert handed["old"] is None
    assert handed["new"] == {"card_id": made["card_id"], "card_number": AN, "status": "issued",
                             "issue_date": made["issue_date"], "expiry_date": made["expiry_date"]}
    assert entries[3]["legal_basis"] == "Luật Căn cước 2023"

    with reg.connect() as conn:
        messages = conn.execute(sa.select(outbox.c.topic, outbox.c.payload)
                                .where(outbox.c.topic.like("card.%"))).all()
    assert [(m.topic, m.payload) for m in messages] == [
        ("card.issued", {"pid": AN, "card_id": made["card_id"], "expiry_date": made["expiry_date"]})]


def test_issue_card_runs_the_whole_path_at_once(reg, vault):
    card = step(reg, lifecycle.issue_card, vault, NATIONAL, HOA)
    assert card["status"] == "issued"
    assert [e["kind"] for e in card_history(reg, HOA)] == [
        "card.applied", "card.approved", "card.produced", "card.issued"]
    with reg.connect() as conn:
        app = conn.execute(sa.select(card_applications)).one()
    assert (app.kind, app.status, app.card_id, app.submitted_by, app.decided_by) == (
        "first", "issued", card["card_id"], "test", "test")


def test_reject_closes_the_application_and_allows_a_new_one(reg, vault):
    app = submit(reg, DUC)
    rejected = step(reg, lifecycle.reject_application, NATIONAL, app["application_id"], "photo unusable")
    assert (rejected["status"], rejected["reason"]) == ("rejected", "photo unusable")
    refused(reg, Conflict, "not_submitted", lifecycle.approve_application, APPROVER, app["application_id"])
    refused(reg, Conflict, "not_approved", lifecycle.produce_card, vault, NATIONAL, app["application_id"])
    again = submit(reg, DUC)
    assert again["kind"] == "first"  # a rejected application gave no card
    assert [e["kind"] for e in card_history(reg, DUC)] == ["card.applied", "card.rejected", "card.applied"]
    assert card_history(reg, DUC)[1]["reason"] == "photo unusable"


def test_refusals_of_the_path_name_their_code_and_change_nothing(reg, vault):
    app = submit(reg, AN)
    refused(reg, Conflict, "application_open", lifecycle.submit_application, NATIONAL, AN)
    refused(reg, Conflict, "not_approved", lifecycle.produce_card, vault, NATIONAL, app["application_id"])
    step(reg, lifecycle.approve_application, APPROVER, app["application_id"])
    refused(reg, Conflict, "not_submitted", lifecycle.approve_application, APPROVER, app["application_id"])
    refused(reg, Conflict, "not_submitted", lifecycle.reject_application, NATIONAL, app["application_id"], "x")
    made = step(reg, lifecycle.produce_card, vault, NATIONAL, app["application_id"])
    refused(reg, Conflict, "not_approved", lifecycle.produce_card, vault, NATIONAL, app["application_id"])
    step(reg, lifecycle.hand_over, NATIONAL, made["card_id"])
    refused(reg, Conflict, "not_produced", lifecycle.hand_over, NATIONAL, made["card_id"])
    refused(reg, NotFound, "not_found", lifecycle.hand_over, NATIONAL, 999_999, field="card_id")
    refused(reg, NotFound, "not_found", lifecycle.approve_application, APPROVER, 999_999, field="application_id")

    # the kinds of application and what the register says
    refused(reg, RuleViolation, "not_first_card", lifecycle.submit_application, NATIONAL, AN, "first", field="kind")
    refused(reg, RuleViolation, "card_still_valid", lifecycle.submit_application, NATIONAL, AN, "renewal",
            field="kind")
    refused(reg, RuleViolation, "card_still_valid", lifecycle.submit_application, NATIONAL, AN, None,
            field="kind")  # worked out as a renewal: refused just the same
    for kind in ("renewal", "reissue_lost", "reissue_damaged", "reissue_changed"):
        refused(reg, RuleViolation, "no_card_yet", lifecycle.submit_application, NATIONAL, BINH, kind, field="kind")
    refused(reg, InvalidInput, "invalid_input", lifecycle.submit_application, NATIONAL, BINH, "upgrade",
            field="kind")
    refused(reg, NotFound, "not_found", lifecycle.submit_application, NATIONAL, "001099999999", field="pid")
    refused(reg, InvalidInput, "invalid_input", lifecycle.revoke_card, NATIONAL, AN, "stolen", field="reason")
    refused(reg, NotFound, "not_found", lifecycle.revoke_card, NATIONAL, BINH, "lost", field="pid")
    assert [c.status for c in card_rows(reg, AN)] == ["issued"]


def test_officers_act_only_in_their_area(reg, vault):
    refused(reg, NotFound, "not_found", lifecycle.submit_application, HANOI_OFFICER, DUC, field="pid")
    refused(reg, NotFound, "not_found", lifecycle.cards_of, HCMC_OFFICER, AN, field="pid")
    refused(reg, NotFound, "not_found", lifecycle.issue_card, vault, HCMC_OFFICER, AN, field="pid")
    app = submit(reg, AN, actor=HANOI_OFFICER)
    refused(reg, NotFound, "not_found", lifecycle.approve_application, HCMC_OFFICER, app["application_id"],
            field="application_id")
    step(reg, lifecycle.approve_application, HANOI_APPROVER, app["application_id"])
    refused(reg, NotFound, "not_found", lifecycle.produce_card, vault, HCMC_OFFICER, app["application_id"],
            field="application_id")
    made = step(reg, lifecycle.produce_card, vault, HANOI_OFFICER, app["application_id"])
    refused(reg, NotFound, "not_found", lifecycle.hand_over, HCMC_OFFICER, made["card_id"], field="card_id")
    step(reg, lifecycle.hand_over, HANOI_OFFICER, made["card_id"])
    refused(reg, NotFound, "not_found", lifecycle.revoke_card, HCMC_OFFICER, AN, "lost", field="pid")
    assert step(reg, lifecycle.cards_of, HANOI_OFFICER, AN)["cards"][0]["status"] == "issued"


def test_a_card_needs_a_pki(family, vault):
    app = submit(family, AN)
    step(family, lifecycle.approve_application, APPROVER, app["application_id"])
    error = refused(family, NotFound, "not_found", lifecycle.produce_card, vault, NATIONAL, app["application_id"],
                    field="pki")
    assert "pki init" in error.message


# ------------------------------------------------------------------------- renewal, re-issue


def test_renewal_opens_two_years_before_expiry_and_replaces_the_card(reg, vault):
    first = chips.issue(reg, vault, BINH)
    # a card that expires within two years: renewal is open (the rule's edge: exactly 730 days)
    with reg.begin() as conn:
        conn.execute(cards.update().where(cards.c.card_id == first.card_id)
                     .values(expiry_date=TODAY + dt.timedelta(days=731)))
    refused(reg, RuleViolation, "card_still_valid", lifecycle.submit_application, NATIONAL, BINH, "renewal")
    with reg.begin() as conn:
        conn.execute(cards.update().where(cards.c.card_id == first.card_id)
                     .values(expiry_date=TODAY + dt.timedelta(days=730)))
    app = submit(reg, BINH)
    assert app["kind"] == "renewal"
    assert [c.status for c in card_rows(reg, BINH)] == ["issued"]  # the old card serves until hand-over
    step(reg, lifecycle.approve_application, APPROVER, app["application_id"])
    made = step(reg, lifecycle.produce_card, vault, NATIONAL, app["application_id"])
    assert [c.status for c in card_rows(reg, BINH)] == ["issued", "produced"]
    step(reg, lifecycle.hand_over, NATIONAL, made["card_id"])
    old, new = card_rows(reg, BINH)
    assert (old.status, old.revocation_reason, new.status) == ("revoked", "replaced", "issued")
    kinds = [(e["kind"], e["reason"]) for e in card_history(reg, BINH)]
    assert kinds[-3:] == [("card.produced", None), ("card.revoked", "replaced"), ("card.issued", None)]
    issued = card_history(reg, BINH)[-1]["changes"][0]
    assert issued["old"]["card_id"] == first.card_id and issued["new"]["card_id"] == made["card_id"]


def test_an_expired_card_is_renewed_and_shows_as_expired_meanwhile(reg, vault):
    first = chips.issue(reg, vault, GIANG)
    with reg.begin() as conn:
        conn.execute(cards.update().where(cards.c.card_id == first.card_id)
                     .values(expiry_date=TODAY - dt.timedelta(days=1)))
    assert step(reg, lifecycle.cards_of, NATIONAL, GIANG)["cards"][0]["status"] == "expired"
    assert submit(reg, GIANG)["kind"] == "renewal"


def test_a_card_that_does_not_expire_is_not_renewed(reg, vault):
    chips.issue(reg, vault, DUC)
    with reg.begin() as conn:
        conn.execute(cards.update().values(expiry_date=None))
    error = refused(reg, RuleViolation, "card_still_valid", lifecycle.submit_application, NATIONAL, DUC, "renewal")
    assert "does not expire" in error.message


def conn_kind(engine, application_id: int) -> str:
    with engine.connect() as conn:
        return conn.execute(sa.select(card_applications.c.kind)
                            .where(card_applications.c.application_id == application_id)).scalar_one()


def test_reissue_lost_revokes_the_card_at_once(reg, vault):
    lost = chips.issue(reg, vault, HOA)
    app = submit(reg, HOA, "reissue_lost", reason="lost in the market")
    assert app["kind"] == "reissue_lost"
    (row,) = card_rows(reg, HOA)
    assert (row.status, row.revocation_reason) == ("revoked", "lost") and row.revoked_at is not None
    entries = card_history(reg, HOA)
    assert [(e["kind"], e["reason"]) for e in entries[-2:]] == [("card.revoked", "lost"),
                                                                ("card.applied", "lost in the market")]
    assert entries[-2]["changes"][0]["old"]["status"] == "issued"
    assert entries[-2]["changes"][0]["new"]["status"] == "revoked"
    with reg.connect() as conn:
        revoked = conn.execute(sa.select(outbox.c.payload).where(outbox.c.topic == "card.revoked")).scalars().all()
    assert revoked == [{"card_id": lost.card_id, "reason": "lost"}]
    # a rejected re-issue leaves the lost card revoked; the person may apply again for the lost
    # card (not for a damaged one: it was lost)
    step(reg, lifecycle.reject_application, NATIONAL, app["application_id"], "no proof of identity")
    assert card_rows(reg, HOA)[0].status == "revoked"
    refused(reg, RuleViolation, "no_current_card", lifecycle.submit_application, NATIONAL, HOA, "reissue_damaged")
    again = chips.issue(reg, vault, HOA)
    assert conn_kind(reg, again.application_id) == "reissue_lost"
    assert [(c.status, c.revocation_reason) for c in card_rows(reg, HOA)] == [
        ("revoked", "lost"), ("issued", None)]
    assert again.status == "issued"


def test_reissue_damaged_keeps_the_card_until_the_new_one_is_handed_over(reg, vault):
    chips.issue(reg, vault, DUC)
    new = chips.issue(reg, vault, DUC, kind="reissue_damaged")
    assert [(c.status, c.revocation_reason) for c in card_rows(reg, DUC)] == [
        ("revoked", "replaced"), ("issued", None)]
    assert new.card_id == card_rows(reg, DUC)[1].card_id


# --------------------------------------------------------------------------- life events


def test_death_revokes_the_card_and_no_card_is_issued_afterwards(reg, vault):
    card = chips.issue(reg, vault, AN)
    record(reg, "death", pid=AN, date_of_death=TODAY.isoformat())
    (row,) = card_rows(reg, AN)
    assert (row.status, row.revocation_reason) == ("revoked", "death")
    entries = card_history(reg, AN)
    assert (entries[-1]["kind"], entries[-1]["reason"]) == ("card.revoked", "death")
    assert entries[-1]["changes"][0]["new"] == {"card_id": card.card_id, "card_number": AN, "status": "revoked",
                                                "issue_date": card.issue_date.isoformat(),
                                                "expiry_date": card.expiry_date.isoformat()}
    refused(reg, RuleViolation, "person_dead", lifecycle.submit_application, NATIONAL, AN, field="pid")
    refused(reg, NotFound, "not_found", lifecycle.revoke_card, NATIONAL, AN, "death")


@pytest.mark.parametrize("kind, fields", [
    ("name-change", {"full_name": "Lê Minh Đức", "reason": "theo nguyện vọng"}),
    ("sex-change", {"sex": "female", "reason": "xác định lại giới tính"}),
    ("correction", {"fields": {"date_of_birth": "1990-09-11"}, "reason": "sai ngày sinh"}),
    ("correction", {"fields": {"hometown": "Huế"}, "reason": "ghi thiếu quê quán"}),
])
def test_a_change_of_printed_data_revokes_the_card(reg, vault, kind, fields):
    chips.issue(reg, vault, DUC)
    result = record(reg, kind, pid=DUC, **fields)
    (row,) = card_rows(reg, result.pid)
    assert (row.status, row.revocation_reason) == ("revoked", "data_changed")
    entries = card_history(reg, result.pid)
    assert (entries[-1]["kind"], entries[-1]["reason"]) == ("card.revoked", "data_changed")
    # the person applies for the card with the new data
    new = chips.issue(reg, vault, result.pid, kind="reissue_changed")
    assert new.card_number == result.pid
    assert dg13.decode(new.dg13).pid == result.pid


def test_changes_that_are_not_printed_leave_the_card_alone(reg, vault):
    chips.issue(reg, vault, GIANG)
    chips.issue(reg, vault, HOA)
    record(reg, "marriage", pid=GIANG, spouse_pid=HOA, date=TODAY.isoformat())
    record(reg, "correction", pid=GIANG, fields={"phone": "0912345678"}, reason="số mới")
    assert [c.status for c in card_rows(reg, GIANG)] == ["issued"]
    assert [c.status for c in card_rows(reg, HOA)] == ["issued"]


def test_after_a_name_change_the_default_application_is_a_reissue_for_changed_data(reg, vault):
    chips.issue(reg, vault, DUC)
    record(reg, "name-change", pid=DUC, full_name="Lê Minh Đức", reason="theo nguyện vọng")
    assert submit(reg, DUC)["kind"] == "reissue_changed"


def test_a_card_produced_before_a_death_is_not_handed_over(reg, vault):
    app = submit(reg, AN)
    step(reg, lifecycle.approve_application, APPROVER, app["application_id"])
    made = step(reg, lifecycle.produce_card, vault, NATIONAL, app["application_id"])
    record(reg, "death", pid=AN, date_of_death=TODAY.isoformat())
    with pytest.raises(RuleViolation) as info:
        step(reg, lifecycle.hand_over, NATIONAL, made["card_id"])
    assert info.value.code == "person_dead"
    assert [c.status for c in card_rows(reg, AN)] != ["issued"]


def test_a_card_produced_before_a_name_change_is_not_handed_over_with_the_old_name(reg, vault):
    from dinhdanh.registry.errors import RegistryError

    app = submit(reg, DUC)
    step(reg, lifecycle.approve_application, APPROVER, app["application_id"])
    made = step(reg, lifecycle.produce_card, vault, NATIONAL, app["application_id"])
    record(reg, "name-change", pid=DUC, full_name="Lê Minh Đức", reason="theo nguyện vọng")
    try:
        step(reg, lifecycle.hand_over, NATIONAL, made["card_id"])
    except RegistryError:
        return  # refusing is right
    issued = [c for c in card_rows(reg, DUC) if c.status == "issued"]
    assert [c.printed["full_name"] for c in issued] in ([], ["Lê Minh Đức"])


# ------------------------------------------------------------------------- the card's contents


def test_mrz_qr_and_chip_carry_the_record(reg, vault):
    card = chips.issue(reg, vault, AN)
    lines = card.mrz.split("\n")
    machine = mrz.parse(lines)
    expiry = card.expiry_date
    assert machine.valid and machine.errors == ()
    assert (machine.format, machine.document_code, machine.issuing_state, machine.nationality) == (
        "TD1", "ID", "VNM", "VNM")
    assert (machine.pid, machine.document_number) == (AN, AN[3:])
    assert (machine.date_of_birth, machine.sex, machine.expiry_date) == ("850304", "M", expiry.strftime("%y%m%d"))
    assert (machine.surname, machine.given_names) == ("NGUYEN", "VAN AN")
    assert dg1.decode(card.dg1) == tuple(lines)

    code = qr.parse(card.qr)
    assert (code.pid, code.old_id, code.full_name, code.date_of_birth, code.sex, code.issue_date) == (
        AN, None, "Nguyễn Văn An", dt.date(1985, 3, 4), "Nam", card.issue_date)
    assert code.address == card.printed["residence"] == "Phường Hoàn Kiếm, Thành phố Hà Nội"

    personal = dg13.decode(card.dg13)
    assert (personal.pid, personal.full_name, personal.date_of_birth, personal.sex, personal.nationality) == (
        AN, "Nguyễn Văn An", "04/03/1985", "Nam", "Việt Nam")
    assert (personal.issue_date, personal.expiry_date) == (card.issue_date.strftime("%d/%m/%Y"),
                                                           expiry.strftime("%d/%m/%Y"))
    assert (personal.spouse, personal.father, personal.mother) == ("Trần Thị Bình", None, None)
    assert personal.residence == card.printed["residence"]

    # issued today, after 1 July 2024: the 2023 "căn cước" model (tests/unit/test_card_model_2023.py)
    assert card.printed == {
        "model": "2023", "pid": AN, "full_name": "Nguyễn Văn An", "date_of_birth": "04/03/1985", "sex": "Nam",
        "nationality": "Việt Nam", "birth_registration_place": "Hà Nội",
        "residence": "Phường Hoàn Kiếm, Thành phố Hà Nội",
        "issue_date": card.issue_date.strftime("%d/%m/%Y"), "expiry_date": expiry.strftime("%d/%m/%Y"),
        "issuing_authority": "BỘ CÔNG AN"}
    assert expiry == rule_expiry(dt.date(1985, 3, 4), card.issue_date)


def test_a_childs_chip_names_both_parents(reg, vault):
    card = chips.issue(reg, vault, CHAU)
    personal = dg13.decode(card.dg13)
    assert (personal.father, personal.mother, personal.spouse) == ("Nguyễn Văn An", "Trần Thị Bình", None)
    assert mrz.parse(card.mrz).given_names == "MINH CHAU"


@pytest.mark.parametrize("pid, issued, expiry", [
    (DUNG, dt.date(2021, 6, 1), dt.date(2029, 7, 8)),    # 5: to 14
    (CHAU, dt.date(2024, 6, 1), dt.date(2037, 1, 2)),    # 12, within two years of 14: to 25
    (HOA, dt.date(2019, 11, 11), dt.date(2033, 11, 12)),  # 25 the day before turning 26: to 40
    (BINH, dt.date(2025, 5, 5), dt.date(2027, 5, 6)),    # 37: to 40
    (GIANG, dt.date(2033, 1, 1), dt.date(2055, 1, 1)),   # 38 on the birthday: to 60
    (AN, dt.date(2043, 3, 3), dt.date(2045, 3, 4)),      # 57: to 60
    (DUC, dt.date(2048, 9, 10), None),                   # 58 on the birthday: never expires
])
def test_expiry_follows_the_milestones(reg, vault, pid, issued, expiry):
    at = dt.datetime.combine(issued, dt.time(9), tzinfo=dt.UTC)
    while True:  # decades ahead: the CSCA's five-year key usage period calls for rollovers
        with reg.begin() as conn:
            csca = conn.execute(sa.select(pki_keys).where(pki_keys.c.role == "csca",
                                                          pki_keys.c.status == "active")).one()
            if csca.usage_ends >= at:
                break
            pki.rollover_csca(conn, vault, now=csca.usage_ends)
    card = chips.issue(reg, vault, pid, at=at)
    assert (card.issue_date, card.expiry_date) == (issued, expiry)
    machine = mrz.parse(card.mrz)
    assert machine.valid
    assert machine.expiry_date == (expiry.strftime("%y%m%d") if expiry else mrz.NO_EXPIRY)  # 991231
    assert card.printed["expiry_date"] == (expiry.strftime("%d/%m/%Y") if expiry else "Không thời hạn")
    assert dg13.decode(card.dg13).expiry_date == card.printed["expiry_date"]
    assert qr.parse(card.qr).issue_date == issued


def test_the_face_and_the_chip_key_are_sealed_at_rest(reg, vault):
    card = chips.issue(reg, vault, BINH)
    with reg.connect() as conn:
        stored = conn.execute(sa.select(cards.c.dg2, cards.c.chip_key)).one()
    face = vault.open(stored.dg2, "dg2")
    assert face[:1] == b"\x75" and dg2.decode(face).image[:3] == b"\xff\xd8\xff"
    assert stored.dg2 != face and b"\xff\xd8\xff" not in stored.dg2 and face[4:40] not in stored.dg2
    assert b"\x75" + face[1:20] not in stored.dg2
    with pytest.raises(VaultError):
        vault.open(stored.dg2, "chip-key")  # the purpose is bound
    with pytest.raises(VaultError):
        chips.new_vault().open(stored.dg2, "dg2")  # another master key
    key_der = vault.open(stored.chip_key, "chip-key")
    assert key_der[:1] == b"\x30" and key_der not in stored.chip_key
    with reg.connect() as conn:
        sealed_keys = conn.execute(sa.select(pki_keys.c.key_id, pki_keys.c.private_key)).all()
    for key_id, sealed in sealed_keys:
        assert vault.open(sealed, f"pki-key:{key_id}")[:1] == b"\x30"
        assert b"\x30\x81" not in sealed[:16]
    assert card.dg2 == stored.dg2


# --------------------------------------------------------------------- the PKI and its key log


def test_every_sod_signature_is_in_the_key_use_log(reg, vault):
    made = [chips.issue(reg, vault, pid) for pid in (AN, BINH, DUC)]
    with reg.connect() as conn:
        uses = conn.execute(sa.select(pki_key_uses).where(pki_key_uses.c.purpose == "sign_sod")
                            .order_by(pki_key_uses.c.use_id)).all()
        status = {k["key_id"]: k for k in pki.pki_status(conn)}
        log = pki.key_uses(conn, made[0].signer_id)
    assert len(uses) == 3
    for use, card in zip(uses, made, strict=True):
        signed_attrs = cms.parse(chips.sod_content(card.sod)).signed_attrs
        assert (use.key_id, use.reference, use.digest) == (
            card.signer_id, f"application:{card.application_id}", chips.sha256(signed_attrs))
    dsc = status[made[0].signer_id]
    assert (dsc["role"], dsc["status"], dsc["uses"]) == ("dsc", "active", 3)
    assert [entry["purpose"] for entry in log] == ["sign_sod"] * 3
    csca = next(k for k in status.values() if k["role"] == "csca")
    assert csca["uses"] == 4  # its own certificate, the DSC's, the Master List Signer's, the first CRL
    with reg.connect() as conn:
        purposes = sorted(conn.execute(sa.select(pki_key_uses.c.purpose)
                                       .where(pki_key_uses.c.key_id == csca["key_id"])).scalars())
    assert purposes == ["sign_certificate"] * 3 + ["sign_crl"]


def test_master_list_signatures_are_logged_too(reg, vault):
    with reg.begin() as conn:
        pki.master_list(conn, vault)
        mls = next(k for k in pki.pki_status(conn) if k["role"] == "mls")
        assert [u["purpose"] for u in pki.key_uses(conn, mls["key_id"])] == ["sign_master_list"]


def test_pki_is_made_once(reg, vault):
    with pytest.raises(Conflict) as info:
        with reg.begin() as conn:
            pki.init_pki(conn, vault)
    assert info.value.code == "pki_exists"


def test_the_document_signer_rotates_after_its_usage_period_and_old_cards_still_verify(reg, vault):
    old = chips.issue(reg, vault, AN)
    later = chips.now() + dt.timedelta(days=91)
    new = chips.issue(reg, vault, BINH, at=later)
    assert new.signer_id != old.signer_id
    with reg.connect() as conn:
        rows = {r.key_id: r for r in conn.execute(sa.select(pki_keys).where(pki_keys.c.role == "dsc"))}
    assert (rows[old.signer_id].status, rows[new.signer_id].status) == ("retired", "active")
    assert rows[new.signer_id].subject == "CN=Document Signer 0002,O=Bo Cong An,C=VN"
    assert rows[new.signer_id].usage_ends == later + pki.DSC_USAGE
    for card, at in ((old, None), (old, later + dt.timedelta(days=1)), (new, later + dt.timedelta(days=1))):
        report = chips.verify(reg, chips.files_of(card, vault), at=at)
        assert (report["verdict"], report["chain"]["status"], report["failures"]) == ("valid", "trusted", [])
    # a third card in the new period keeps the new signer
    third = chips.issue(reg, vault, DUC, at=later + dt.timedelta(days=2))
    assert third.signer_id == new.signer_id


def test_the_master_list_is_still_published_after_its_signer_is_revoked(reg, vault):
    with reg.begin() as conn:
        mls = next(k for k in pki.pki_status(conn) if k["role"] == "mls")
        pki.revoke_key(conn, vault, mls["key_id"], "superseded")
    with reg.begin() as conn:
        listed = masterlist.verify(pki.master_list(conn, vault))
        assert listed == tuple(pki.csca_certificates(conn))


def test_no_document_signer_is_signed_after_the_cscas_usage_period(reg, vault):
    from dinhdanh.registry.errors import RegistryError

    with reg.connect() as conn:
        csca = conn.execute(sa.select(pki_keys).where(pki_keys.c.role == "csca")).one()
    later = csca.usage_ends + dt.timedelta(days=1)
    try:
        with reg.begin() as conn:
            signer = pki.document_signer(conn, vault, later)
            issuer_id = conn.execute(sa.select(pki_keys.c.issuer_id)
                                     .where(pki_keys.c.key_id == signer.key_id)).scalar_one()
            issuer = conn.execute(sa.select(pki_keys).where(pki_keys.c.key_id == issuer_id)).one()
    except RegistryError:
        return  # refusing is a right answer too
    assert issuer.usage_ends >= later, (issuer.key_id, issuer.usage_ends, later)


@pytest.mark.parametrize("algorithm", pki.ALGORITHMS)
def test_every_pki_algorithm_issues_cards_that_verify(family, algorithm):
    vault = chips.new_vault()
    with family.begin() as conn:
        info = pki.init_pki(conn, vault, algorithm=algorithm)
    assert info["algorithm"] == algorithm
    card = chips.issue(family, vault, HOA)
    report = chips.verify(family, chips.files_of(card, vault))
    assert (report["verdict"], report["failures"]) == ("valid", [])
    assert report["hash_algorithm"] == ("sha384" if algorithm.endswith("p384") else "sha256")


# ------------------------------------------------------------------- the cache of opened keys


def test_a_rolled_back_rotation_leaves_no_key_behind(sqlite_engine):
    vault = chips.new_vault()
    with sqlite_engine.begin() as conn:
        pki.init_pki(conn, vault)
    later = chips.now() + dt.timedelta(days=91)
    with pytest.raises(RuntimeError):
        with sqlite_engine.begin() as conn:
            pki.document_signer(conn, vault, later)
            raise RuntimeError("the card could not be stored")
    with sqlite_engine.begin() as conn:
        signer = pki.document_signer(conn, vault, later)
        stored = conn.execute(sa.select(pki_keys.c.certificate)
                              .where(pki_keys.c.key_id == signer.key_id)).scalar_one()
    assert signer.certificate == stored


def test_two_registers_with_one_vault_keep_their_keys_apart(tmp_path):
    from dinhdanh.population.importer import import_population
    from dinhdanh.store.engine import make_engine, upgrade
    from tests.support import FAMILY, write_people

    vault = chips.new_vault()
    engines = []
    for name in ("a", "b"):
        engine = make_engine(f"sqlite:///{tmp_path / name}.sqlite")
        upgrade(engine)
        import_population(engine, write_people(tmp_path / f"{name}.csv", FAMILY))
        with engine.begin() as conn:
            pki.init_pki(conn, vault)
        engines.append(engine)
    try:
        with engines[1].connect() as conn:
            csca = pki.csca_certificates(conn)
            dsc = conn.execute(sa.select(pki_keys.c.certificate).where(pki_keys.c.role == "dsc")).scalar_one()
        chain = certs.TrustStore(csca).chain(certs.parse_certificate(dsc), chips.now())
        assert (chain.status, chain.reason) == ("trusted", chain.reason), chain.reason
    finally:
        for engine in engines:
            engine.dispose()


# ------------------------------------------------------------------------------ batch issuance


def test_batch_issuance_of_first_cards(reg, vault):
    from dinhdanh.cards import batch

    chips.issue(reg, vault, GIANG)  # already has a card
    record(reg, "death", pid=HOA, date_of_death=TODAY.isoformat())
    submit(reg, DUC)  # an application is open
    with reg.begin() as conn:
        out = batch.issue_first_cards(conn, vault, NATIONAL, [AN, BINH, AN, "001099999999", HOA, GIANG, DUC, CHAU])
    assert [c["card_number"] for c in out["issued"]] == [AN, BINH, CHAU]
    assert out["skipped"] == [
        {"pid": "001099999999", "reason": "not in the register"},
        {"pid": HOA, "reason": "recorded as dead"},
        {"pid": GIANG, "reason": "already had a card or has an application open"},
        {"pid": DUC, "reason": "already had a card or has an application open"}]
    with reg.connect() as conn:
        uses = {u.reference: u for u in conn.execute(sa.select(pki_key_uses).where(
            pki_key_uses.c.purpose == "sign_sod"))}
        messages = conn.execute(sa.select(outbox.c.payload).where(outbox.c.topic == "card.issued")
                                .order_by(outbox.c.seq)).scalars().all()
    for brief in out["issued"]:
        pid = brief["card_number"]
        (row,) = card_rows(reg, pid)
        assert (row.card_id, row.status, row.issue_date.isoformat()) == (brief["card_id"], "issued",
                                                                          brief["issue_date"])
        files = chips.files_of(row, vault)
        challenge = b"\x01" * 8
        report = chips.verify(reg, files, challenge=challenge,
                              response=chip.respond_to_challenge(row, vault, challenge))
        assert (report["verdict"], report["failures"], report["register"]["card"]) == ("valid", [], "current")
        use = uses[f"application:{row.application_id}"]
        assert (use.key_id, use.digest) == (row.signer_id, chips.sha256(cms.parse(chips.sod_content(row.sod))
                                                                        .signed_attrs))
        entries = card_history(reg, pid)
        assert [e["kind"] for e in entries] == ["card.applied", "card.approved", "card.produced", "card.issued"]
        assert entries[-1]["changes"][0]["new"] == brief
        assert mrz.parse(row.mrz).valid and dg13.decode(row.dg13).pid == pid
        assert b"\xff\xd8\xff" not in row.dg2
    assert [m["pid"] for m in messages[-3:]] == [AN, BINH, CHAU]
    personal = dg13.decode(card_rows(reg, CHAU)[0].dg13)
    assert (personal.father, personal.mother) == ("Nguyễn Văn An", "Trần Thị Bình")


def test_batch_issuance_stays_in_the_officers_area(reg, vault):
    from dinhdanh.cards import batch

    with reg.begin() as conn:
        out = batch.issue_first_cards(conn, vault, HANOI_OFFICER, [AN, DUC])
    assert [c["card_number"] for c in out["issued"]] == [AN]
    assert out["skipped"] == [{"pid": DUC, "reason": "not in the register"}]
    assert card_rows(reg, DUC) == []


def test_batch_issuance_after_a_rejected_application(reg, vault):
    from dinhdanh.cards import batch

    app = submit(reg, BINH)
    step(reg, lifecycle.reject_application, NATIONAL, app["application_id"], "ảnh mờ")
    with reg.begin() as conn:
        out = batch.issue_first_cards(conn, vault, NATIONAL, [BINH])
    assert [c["card_number"] for c in out["issued"]] == [BINH]


def test_a_card_revoked_as_damaged_is_reissued_by_default(reg, vault):
    chips.issue(reg, vault, DUC)
    with reg.begin() as conn:
        lifecycle.revoke_card(conn, NATIONAL, DUC, "damaged")
    app = submit(reg, DUC)
    assert app["kind"] == "reissue_damaged"
    with pytest.raises(RuleViolation) as info:
        submit(reg, HOA, "reissue_lost")  # Hoa never lost a card
    assert info.value.code in ("no_card_yet", "no_current_card")
