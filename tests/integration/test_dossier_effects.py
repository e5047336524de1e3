"""An approved dossier changes the register on SQLite and PostgreSQL, in the approval's unit of
work, through the register's life events (recorded by the approving officer): temporary residence,
birth (alone, and first in the linked group: the child's new PID carried to the residence
sub-dossier), death; a refusal of the register refuses the approval (409, its code) and leaves the
dossier undecided and the register unchanged."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from dinhdanh.dossiers import effects
from dinhdanh.ids import pid as pidfmt
from dinhdanh.registry import records
from dinhdanh.registry.errors import RuleViolation
from dinhdanh.registry.tables import events
from dinhdanh.store.base import vietnam_date
from dinhdanh.store.outbox import outbox
from tests.integration.test_dossier_groups import (BINH_PID, BIRTH_GROUP, HA_NOI, HOAN_KIEM, act, birth_form,
                                                   children, view)
from tests.integration.test_dossier_groups import file as file_as
from tests.integration.test_dossiers import AN, BEN_THANH, FREE, pay, temporary_form
from tests.integration.test_dossiers import register  # noqa: F401  (the fixture)


def record(engine, pid: str) -> dict:
    with engine.connect() as conn:
        return records.read_record(conn, pid)


def received(register, code: str, form: dict, pid: str, area) -> dict:
    engine, _ = register
    filed = file_as(engine, code, form, pid=pid)
    if filed["fee_amount"]:
        pay(engine, filed["code"], filed["fee_amount"])
    act(register, filed["dossier_id"], "receive", area=area)
    return filed


def death_form(pid: str = AN) -> dict:
    return {"applicant": {"pid": BINH_PID, "full_name": "Trần Thị Bình", "date_of_birth": "1987-05-06"},
            "relation": "spouse", "delivery": {"method": "electronic"},
            "deceased": {"pid": pid, "date_of_death": (vietnam_date() - dt.timedelta(days=2)).isoformat(),
                         "place_of_death": "Bệnh viện Bạch Mai"}}


def register_events(engine) -> list:
    with engine.connect() as conn:
        return conn.execute(sa.select(events.c.event_id, events.c.kind, events.c.actor)
                            .order_by(events.c.event_id)).all()


def test_temporary_residence_is_set_by_the_approval(register):
    engine, _ = register
    filed = received(register, effects.TEMPORARY_RESIDENCE, temporary_form(**FREE), AN, BEN_THANH)
    assert record(engine, AN)["temporary_residence"] is None
    done = act(register, filed["dossier_id"], "approve", area=BEN_THANH)
    assert done["status"] == "approved" and done["result_code"]
    assert done["effect"]["event"] == "temporary-residence" and done["effect"]["pid"] == AN
    temp = record(engine, AN)["temporary_residence"]
    assert temp["commune_code"] == "26743" and temp["address"] == "12 Lê Lợi" and temp["until"] == "2027-12-10"
    (last, *_) = reversed(register_events(engine))
    assert (last.event_id, last.kind, last.actor) == (done["effect"]["event_id"], "temporary-residence", "officer:1")
    with engine.connect() as conn:
        topics = conn.execute(sa.select(outbox.c.topic)).scalars().all()
    assert "person.moved" in topics


def test_birth_gives_the_child_a_pid_linked_to_the_parents(register):
    engine, _ = register
    form = {"applicant": {"pid": BINH_PID, "full_name": "Trần Thị Bình", "date_of_birth": "1987-05-06"},
            "applicant_role": "mother", "other_parent": {"pid": AN},
            "child": {"full_name": "Nguyễn Bảo Ngọc", "sex": "female",
                      "date_of_birth": (vietnam_date() - dt.timedelta(days=5)).isoformat(),
                      "place_of_birth": "Bệnh viện Phụ sản Hà Nội", "ethnicity": "Kinh"},
            "registration_commune_code": "00070", "delivery": {"method": "electronic"}}
    filed = received(register, effects.BIRTH, form, BINH_PID, HOAN_KIEM)
    done = act(register, filed["dossier_id"], "approve")
    child = done["effect"]["pid"]
    info = pidfmt.parse(child)
    assert info.sex == "female" and done["effect"]["event"] == "birth"
    kid = record(engine, child)
    assert kid["full_name"] == "Nguyễn Bảo Ngọc" and kid["status"] == "alive"
    assert kid["relatives"]["mother"]["pid"] == BINH_PID and kid["relatives"]["father"]["pid"] == AN
    assert kid["household"]["number"] == "0100000001" == done["effect"]["household"]
    assert register_events(engine)[-1].actor == "officer:1"


def test_the_birth_group_carries_the_new_pid_to_its_other_sub_dossiers(register):
    engine, _ = register
    filed = file_as(engine, BIRTH_GROUP, birth_form())
    kids = {k: c["dossier_id"] for k, c in children(filed).items()}
    act(register, kids["birth_registration"], "receive")
    birth = act(register, kids["birth_registration"], "approve")
    child = birth["effect"]["pid"]
    pidfmt.parse(child)
    kid = record(engine, child)
    assert kid["relatives"]["father"]["pid"] == AN and kid["household"]["relation_to_head"] == "child"
    act(register, kids["permanent_residence"], "receive")
    residence = act(register, kids["permanent_residence"], "approve")
    assert residence["effect"]["event"] is None and residence["effect"]["pid"] == child
    assert residence["effect"]["household"] == kid["household"]["number"]
    act(register, kids["health_insurance_card"], "receive", area=HA_NOI)
    card = act(register, kids["health_insurance_card"], "approve", area=HA_NOI)
    assert card["effect"] == {"event": None, "pid": child, "note": card["effect"]["note"]}
    assert [e.kind for e in register_events(engine)].count("birth") == 1


def test_death_is_recorded_and_a_refusal_of_the_register_changes_nothing(register):
    engine, _ = register
    first = received(register, effects.DEATH, death_form(), BINH_PID, HOAN_KIEM)
    again = received(register, effects.DEATH, death_form(), BINH_PID, HOAN_KIEM)
    done = act(register, first["dossier_id"], "approve")
    assert done["effect"]["event"] == "death" and done["effect"]["pid"] == AN
    dead = record(engine, AN)
    assert dead["status"] == "dead" and dead["date_of_death"] == death_form()["deceased"]["date_of_death"]
    assert record(engine, BINH_PID)["marital_status"] == "widowed"
    before = register_events(engine)
    with pytest.raises(RuleViolation) as refused:  # the register's refusal: 409 with its code
        act(register, again["dossier_id"], "approve")
    assert isinstance(refused.value, effects.RegisterRefused)
    assert refused.value.code == "person_dead" and refused.value.field == "deceased.pid"
    assert register_events(engine) == before
    undecided = view(engine, again["dossier_id"], BINH_PID)
    assert undecided["status"] == "received" and undecided["result_code"] is None and undecided["effect"] is None
    assert [d["kind"] for d in undecided["documents"]] == ["receipt"]
    assert [h["action"] for h in undecided["history"]] == ["file", "receive"]
    act(register, again["dossier_id"], "refuse", reason="Người chết đã được đăng ký khai tử")  # still decidable


def test_permanent_residence_moves_and_temporary_absence_is_declared(register):
    engine, _ = register
    hoa = {"pid": "079193000006", "full_name": "Phạm Thị Hoa", "date_of_birth": "1993-11-12"}
    move = {"applicant": hoa, "basis": "family", "owner_consent": True,
            "new_address": {"province_code": "01", "commune_code": "00070", "street": "5 Hàng Bạc"},
            "household": {"head_pid": AN, "relation_to_head": "other"}, **FREE}
    filed = received(register, effects.PERMANENT_RESIDENCE, move, hoa["pid"], HOAN_KIEM)
    done = act(register, filed["dossier_id"], "approve")
    assert done["effect"]["event"] == "permanent-residence" and done["effect"]["household"] == "0100000001"
    moved = record(engine, hoa["pid"])
    assert moved["permanent_residence"]["commune_code"] == "00070"
    assert moved["permanent_residence"]["dossier_number"] == filed["code"]
    assert moved["household"]["number"] == "0100000001" and moved["household"]["relation_to_head"] == "other"
    start = vietnam_date() + dt.timedelta(days=3)
    away = {"applicant": {"pid": AN, "full_name": "Nguyễn Văn An", "date_of_birth": "1985-03-04"},
            "absent_from": start.isoformat(), "absent_until": (start + dt.timedelta(days=400)).isoformat(),
            "destination": {"province_code": "79", "commune_code": "26743", "street": "7 Nguyễn Huệ"},
            "reason": "Đi làm việc xa nhà", "case": "long_absence"}
    filed = received(register, effects.TEMPORARY_ABSENCE, away, AN, HOAN_KIEM)
    assert act(register, filed["dossier_id"], "approve")["effect"]["event"] == "temporary-absence"
    assert record(engine, AN)["temporary_absence"] == {"from": away["absent_from"], "until": away["absent_until"],
                                                       "destination": "7 Nguyễn Huệ"}


def card_form(kind: str, reason: str) -> dict:
    return {"applicant": {"pid": AN, "full_name": "Nguyễn Văn An", "date_of_birth": "1985-03-04"},
            "kind": kind, "reason": reason, "delivery": {"method": "in_person"}}


def test_an_id_card_dossier_files_and_approves_the_card_application(register):
    """Cấp lại thẻ căn cước (lost): the approval files the card application in the dossier's name,
    approves it by the officer and revokes the lost card; a second one while it is open is the card
    register's refusal (409 application_open) and changes nothing."""
    from dinhdanh.cards import lifecycle, pki
    from dinhdanh.cards.tables import card_applications, cards
    from dinhdanh.registry.events import Actor

    engine, vault = register
    with engine.begin() as conn:
        pki.init_pki(conn, vault)
        lifecycle.issue_card(conn, vault, Actor("officer:9"), AN, "first")
    filed = received(register, effects.ID_CARD, card_form("reissue", "lost"), AN, HOAN_KIEM)
    again = received(register, effects.ID_CARD, card_form("reissue", "damaged"), AN, HOAN_KIEM)
    done = act(register, filed["dossier_id"], "approve", area=HOAN_KIEM)
    effect = done["effect"]
    assert effect["event"] == "card_application" and effect["pid"] == AN
    assert (effect["kind"], effect["status"]) == ("reissue_lost", "approved")
    with engine.connect() as conn:
        app = conn.execute(sa.select(card_applications).where(
            card_applications.c.application_id == effect["application_id"])).one()
        statuses = conn.execute(sa.select(cards.c.status, cards.c.revocation_reason)).all()
    assert (app.submitted_by, app.decided_by) == (f"dossier:{filed['code']}", "officer:1")
    assert list(statuses) == [("revoked", "lost")]
    with pytest.raises(effects.RegisterRefused) as refused:
        act(register, again["dossier_id"], "approve", area=HOAN_KIEM)
    assert refused.value.code == "application_open"
    assert view(engine, again["dossier_id"], AN)["status"] == "received"


def stay_form(days: int, guest: str = BINH_PID) -> dict:
    start = vietnam_date() + dt.timedelta(days=1)
    return {"applicant": {"pid": AN, "full_name": "Nguyễn Văn An", "date_of_birth": "1985-03-04"},
            "stay_address": {"province_code": "79", "commune_code": "26743", "street": "12 Lê Lợi"},
            "guest": {"pid": guest}, "from": start.isoformat(),
            "until": (start + dt.timedelta(days=days)).isoformat(), "reason": "Thăm người thân"}


def test_a_stay_notification_records_the_guests_current_place_and_a_long_stay_is_refused(register):
    """Thông báo lưu trú: the host files it; the approval records the guest's stay (their current place
    of living while it lasts) as the register's event, with the host; 30 days or more is a temporary
    residence: the register refuses it (409 stay_too_long on ``until``) and nothing changes."""
    engine, _ = register
    place = effects.STAY
    filed = received(register, place, stay_form(5), AN, BEN_THANH)
    done = act(register, filed["dossier_id"], "approve", area=BEN_THANH)
    assert done["effect"]["event"] == "stay-notification" and done["effect"]["pid"] == BINH_PID
    assert record(engine, BINH_PID)["current_address"].startswith("12 Lê Lợi, ")
    (last, *_) = reversed(register_events(engine))
    assert (last.kind, last.actor) == ("stay-notification", "officer:1")
    long = received(register, place, stay_form(40), AN, BEN_THANH)
    before = register_events(engine)
    with pytest.raises(effects.RegisterRefused) as refused:
        act(register, long["dossier_id"], "approve", area=BEN_THANH)
    assert (refused.value.code, refused.value.field) == ("stay_too_long", "until")
    assert register_events(engine) == before
