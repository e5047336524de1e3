"""The linked groups of Decree 63/2024 on SQLite and PostgreSQL: one filing makes a parent and a
sub-dossier per procedure and agency (own code, clock, slips, result); the others wait for the
birth (death) registration and are received only once it is approved, and are refused with it;
the group's status is derived; an invalid choice of procedures names the field."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from dinhdanh.dossiers import service, workflow
from dinhdanh.dossiers.tables import dossiers
from dinhdanh.registry.area import Area
from dinhdanh.registry.errors import InvalidInput, RuleViolation
from dinhdanh.store.base import vietnam_date
from dinhdanh.store.outbox import outbox
from dinhdanh.store.unit_of_work import UnitOfWork
from tests.integration.test_dossiers import AN, BASE, pid_of, register  # noqa: F401  (register: the fixture)

BINH_PID = "001187000002"

BIRTH_GROUP, DEATH_GROUP = "3.000722", "2.002913"
HOAN_KIEM = Area.of_code("00070")  # the applicants' commune: the place of the procedures
HA_NOI = Area.of_code("01")  # the province: the social insurance agency's sub-dossiers


def birth_form(procedures=("birth_registration", "permanent_residence", "health_insurance_card")) -> dict:
    born = (vietnam_date() - dt.timedelta(days=10)).isoformat()
    return {"procedures": list(procedures),
            "applicant": {"pid": AN, "full_name": "Nguyễn Văn An", "date_of_birth": "1985-03-04"},
            "applicant_role": "father",
            "child": {"full_name": "Nguyễn Minh Khang", "sex": "male", "date_of_birth": born,
                      "place_of_birth": "Bệnh viện Phụ sản Hà Nội", "ethnicity": "Kinh"},
            "residence": {"with": "father", "relation_to_head": "child"},
            "health_insurance": {"initial_care_facility": "Bệnh viện Đa khoa Hà Đông"},
            "delivery": {"method": "electronic"}}


def death_form(procedures) -> dict:
    died = (vietnam_date() - dt.timedelta(days=3)).isoformat()
    return {"procedures": list(procedures),
            "applicant": {"pid": BINH_PID, "full_name": "Trần Thị Bình", "date_of_birth": "1987-05-06"},
            "relation": "spouse",
            "deceased": {"pid": AN, "date_of_death": died, "place_of_death": "Bệnh viện Bạch Mai"},
            "delivery": {"method": "electronic"}}


def file(engine, code, form, pid=AN) -> dict:
    with UnitOfWork(engine).begin() as conn:
        return service.file(conn, pid_of(engine, pid), code, form)


def act(register, dossier_id, action, area=HOAN_KIEM, **kw) -> dict:
    engine, vault = register
    with UnitOfWork(engine).begin() as conn:
        return service.act(conn, vault, dossier_id, action, actor="officer:1", area=area, base_url=BASE, **kw)


def view(engine, dossier_id, pid=AN) -> dict:
    with engine.connect() as conn:
        return service.view(conn, dossier_id, person_id=pid_of(engine, pid))


def children(filed) -> dict[str, dict]:
    return {c["procedure"]: c for c in filed["children"]}


def test_group_1_files_one_sub_dossier_per_agency(register):
    engine, _ = register
    filed = file(engine, BIRTH_GROUP, birth_form())
    assert filed["status"] == "in_progress" and filed["fee_amount"] == 0  # an on-time birth is free
    kids = children(filed)
    assert list(kids) == ["birth_registration", "permanent_residence", "health_insurance_card"]
    assert [c["agency"] for c in kids.values()] == ["ubnd-xa", "cong-an-xa", "bhxh"]
    codes = [filed["code"]] + [c["code"] for c in kids.values()]
    assert len(set(codes)) == 4
    assert kids["health_insurance_card"]["code"].startswith("G01-")  # a province-level agency
    assert kids["permanent_residence"]["code"].startswith("G00070-")
    birth = kids["birth_registration"]
    assert birth["due_date"] >= vietnam_date().isoformat() and birth["waits_for"] is None
    assert {c["waits_for"] for c in list(kids.values())[1:]} == {birth["dossier_id"]}
    with engine.connect() as conn:
        rows = conn.execute(sa.select(dossiers).order_by(dossiers.c.dossier_id)).all()
        notices = conn.execute(sa.select(outbox.c.payload).where(outbox.c.topic == service.TOPIC)).all()
    assert [(r.kind, r.parent_id, r.procedure, r.service_code) for r in rows] == [
        ("group", None, None, BIRTH_GROUP), ("single", filed["dossier_id"], "birth_registration", "1.001193"),
        ("single", filed["dossier_id"], "permanent_residence", "1.004222"),
        ("single", filed["dossier_id"], "health_insurance_card", BIRTH_GROUP)]
    assert len(notices) == 4
    parent = view(engine, filed["dossier_id"])
    assert parent["kind"] == "group" and parent["status"] == "in_progress"
    assert [c["code"] for c in parent["children"]] == [c["code"] for c in kids.values()]
    waiting = view(engine, kids["permanent_residence"]["dossier_id"])
    assert waiting["status"] == "submitted" and waiting["status_label"] == workflow.WAITING_LABEL
    assert waiting["waiting_for"]["code"] == birth["code"] and waiting["parent_id"] == filed["dossier_id"]
    with engine.connect() as conn:  # officers work on the sub-dossiers only
        page, _ = service.worklist(conn, HOAN_KIEM)
    assert sorted(d["code"] for d in page["items"]) == sorted(c["code"] for c in kids.values())
    with pytest.raises(RuleViolation) as group:
        act(register, filed["dossier_id"], "receive")
    assert group.value.code == "group_dossier"


def test_the_others_wait_for_the_birth_then_are_received(register):
    engine, _ = register
    filed = file(engine, BIRTH_GROUP, birth_form())
    kids = {k: c["dossier_id"] for k, c in children(filed).items()}
    with pytest.raises(RuleViolation) as waits:
        act(register, kids["permanent_residence"], "receive")
    assert waits.value.code == "waiting_for_linked" and waits.value.field == "action"
    with pytest.raises(RuleViolation):
        act(register, kids["health_insurance_card"], "refuse", area=HA_NOI, reason="x")
    act(register, kids["birth_registration"], "receive")
    birth = act(register, kids["birth_registration"], "approve")
    assert birth["status"] == "approved" and birth["due_date"] == birth["received_on"]  # the same working day
    residence = act(register, kids["permanent_residence"], "receive")
    assert residence["status"] == "received" and residence["waiting_for"] is None
    assert [d["kind"] for d in residence["documents"]] == ["receipt"]
    assert view(engine, filed["dossier_id"])["status"] == "in_progress"
    act(register, kids["permanent_residence"], "approve")
    act(register, kids["health_insurance_card"], "receive", area=HA_NOI)
    card = act(register, kids["health_insurance_card"], "approve", area=HA_NOI)
    assert card["result_code"] and card["result_code"] != birth["result_code"]
    parent = view(engine, filed["dossier_id"])
    assert parent["status"] == "completed" and all(c["result_code"] for c in parent["children"])
    with engine.connect() as conn:
        last = conn.execute(sa.select(outbox.c.payload).where(outbox.c.topic == service.TOPIC)
                            .order_by(outbox.c.seq.desc()).limit(1)).scalar_one()
    assert last["dossier"] == filed["code"] and last["status"] == "completed"


def test_refusing_the_birth_refuses_the_others_with_their_slips(register):
    engine, _ = register
    filed = file(engine, BIRTH_GROUP, birth_form())
    kids = {k: c["dossier_id"] for k, c in children(filed).items()}
    act(register, kids["birth_registration"], "receive")
    act(register, kids["birth_registration"], "refuse", reason="Giấy chứng sinh không hợp lệ")
    parent = view(engine, filed["dossier_id"])
    assert parent["status"] == "refused"
    for key in ("permanent_residence", "health_insurance_card"):
        out = view(engine, kids[key])
        assert out["status"] == "refused" and [d["kind"] for d in out["documents"]] == ["refusal"]
        assert out["history"][-1]["reason"] == "Thủ tục liên thông bị từ chối: Đăng ký khai sinh"
        assert out["history"][-1]["actor"] == service.LINKED
    with pytest.raises(workflow.InvalidTransition) as wrong:
        act(register, kids["permanent_residence"], "receive")
    assert wrong.value.state == "refused"


def test_group_2_with_the_mandatory_two_or_all_four(register):
    engine, _ = register
    two = file(engine, DEATH_GROUP, death_form(["death_registration", "residence_removal"]), pid=BINH_PID)
    assert [(c["procedure"], c["agency"]) for c in two["children"]] == [
        ("death_registration", "ubnd-xa"), ("residence_removal", "cong-an-xa")]
    every = ["survivor_allowance", "death_registration", "funeral_allowance", "residence_removal"]
    four = file(engine, DEATH_GROUP, death_form(every), pid=BINH_PID)
    kids = {k: c["dossier_id"] for k, c in children(four).items()}
    assert list(kids) == ["death_registration", "residence_removal", "funeral_allowance", "survivor_allowance"]
    act(register, kids["death_registration"], "receive")
    act(register, kids["death_registration"], "approve")
    for key, area in (("residence_removal", HOAN_KIEM), ("funeral_allowance", HA_NOI),
                      ("survivor_allowance", HA_NOI)):
        act(register, kids[key], "receive", area=area)
    act(register, kids["residence_removal"], "approve")
    act(register, kids["funeral_allowance"], "refuse", area=HA_NOI, reason="Không đủ điều kiện hưởng")
    assert view(engine, four["dossier_id"], BINH_PID)["status"] == "in_progress"
    act(register, kids["survivor_allowance"], "approve", area=HA_NOI)
    assert view(engine, four["dossier_id"], BINH_PID)["status"] == "partly_refused"
    # the citizen withdraws the other group: every undecided sub-dossier with it
    with UnitOfWork(engine).begin() as conn:
        out = service.withdraw(conn, two["dossier_id"], pid_of(engine, BINH_PID))
    assert out["status"] == "withdrawn" and {c["status"] for c in out["children"]} == {"withdrawn"}


@pytest.mark.parametrize("procedures, field, code", [
    (["residence_removal", "funeral_allowance"], "procedures", "mandatory_procedure_missing"),
    (["death_registration", "lottery"], "procedures", "invalid_form"),
    (["death_registration"], "procedures", "invalid_form"),
])
def test_an_invalid_choice_names_the_field(register, procedures, field, code):
    engine, _ = register
    with pytest.raises(InvalidInput) as refused:
        file(engine, DEATH_GROUP, death_form(procedures), pid=BINH_PID)
    assert refused.value.field.startswith(field) and refused.value.code == code, (refused.value.field,
                                                                                   refused.value.code)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(dossiers)).scalar_one() == 0
