"""Life events on SQLite and PostgreSQL: effects, history, rules that refuse, nothing half-done."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from dinhdanh.ids import pid as pidfmt
from dinhdanh.registry import commands as cmd
from dinhdanh.registry import events as ev
from dinhdanh.registry.area import Area
from dinhdanh.registry.errors import Forbidden, InvalidInput, NotFound, RuleViolation
from dinhdanh.registry.records import history, read_record
from dinhdanh.registry.search import SearchQuery, search
from dinhdanh.registry.tables import changes, events, households, persons
from dinhdanh.store.outbox import outbox

CLERK = ev.Actor("officer:1")
HANOI_FATHER, HANOI_MOTHER, SON, DAUGHTER, DUC, HOA, GIANG = (
    "001085000001", "001187000002", "001212000003", "001215000004", "079090000005", "079193000006", "079095000007")


def record(engine, kind, actor=CLERK, **fields):
    command = cmd.EVENT_KINDS[kind].model_validate(fields)
    with engine.begin() as conn:
        return ev.record_event(conn, actor, kind, command)


def read(engine, number, **kw):
    with engine.connect() as conn:
        return read_record(conn, number, **kw)


def snapshot(engine):
    with engine.connect() as conn:
        return tuple(conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
                     for t in (persons, events, changes, households, outbox))


def test_birth_gives_a_consistent_pid_links_parents_and_joins_the_household(family):
    out = record(family, "birth", full_name="Nguyễn Bảo Ngọc", sex="female", date_of_birth="2024-02-29",
                 commune_code="00070", father_pid=HANOI_FATHER, mother_pid=HANOI_MOTHER)
    info = pidfmt.parse(out.pid)
    assert (info.place_code, info.sex, info.birth_year) == ("001", "female", 2024)
    baby = read(family, out.pid)
    assert baby["relatives"]["father"]["pid"] == HANOI_FATHER
    assert baby["household"]["number"] == "0100000001" and baby["household"]["relation_to_head"] == "child"
    assert baby["permanent_residence"]["commune_code"] == "00070"
    assert out.pid in [c["pid"] for c in read(family, HANOI_MOTHER)["relatives"]["children"]]
    with family.connect() as conn:
        entries = history(conn, out.pid)
    assert entries[0]["kind"] == "birth" and entries[0]["actor"] == "officer:1"


@pytest.mark.parametrize("fields, code", [
    ({"date_of_birth": "1980-01-01"}, "child_before_parent"),  # before the father (1985)
    ({"date_of_birth": "1995-01-01"}, "parent_too_young"),  # father would be 9
    ({"date_of_birth": (dt.date.today() + dt.timedelta(days=40)).isoformat()}, "date_in_future"),
])
def test_birth_rules(family, fields, code):
    before = snapshot(family)
    base = {"full_name": "Nguyễn Văn Bé", "sex": "male", "date_of_birth": "2020-01-01", "commune_code": "00070",
            "father_pid": HANOI_FATHER}
    with pytest.raises(RuleViolation) as err:
        record(family, "birth", **{**base, **fields})
    assert err.value.code == code
    assert snapshot(family) == before


def test_birth_with_a_mother_recorded_as_father_is_refused(family):
    with pytest.raises(RuleViolation, match="father must be recorded as male"):
        record(family, "birth", full_name="Nguyễn Văn Bé", sex="male", date_of_birth="2020-01-01",
               commune_code="00070", father_pid=HANOI_MOTHER)


def test_birth_outside_the_officers_commune_is_forbidden(family):
    with pytest.raises(Forbidden):
        record(family, "birth", actor=ev.Actor("officer:2", Area(commune="26743")), full_name="Nguyễn Văn Bé",
               sex="male", date_of_birth="2020-01-01", commune_code="00070", mother_pid=HANOI_MOTHER)


def test_death_widows_the_spouse_hands_the_household_on_and_bars_marriage(family):
    out = record(family, "death", pid=HANOI_FATHER, date_of_death="2024-05-01", legal_basis="Luật Hộ tịch 2014")
    dead = read(family, HANOI_FATHER)
    assert (dead["status"], dead["date_of_death"], dead["household"]) == ("dead", "2024-05-01", None)
    widow = read(family, HANOI_MOTHER)
    assert widow["marital_status"] == "widowed" and widow["relatives"]["spouse"] is None
    assert widow["household"]["relation_to_head"] == "head"  # the spouse becomes head
    assert read(family, SON)["household"]["head"]["pid"] == HANOI_MOTHER
    with family.connect() as conn:
        topics = conn.execute(sa.select(outbox.c.topic).where(outbox.c.payload["event_id"].as_integer()
                                                               == out.event_id)).scalars().all()
    assert "person.died" in topics
    with pytest.raises(RuleViolation) as err:
        record(family, "marriage", pid=HANOI_FATHER, spouse_pid=HOA, date="2024-06-01")
    assert err.value.code == "person_dead"
    with pytest.raises(RuleViolation):
        record(family, "death", pid=HANOI_FATHER, date_of_death="2024-05-02")


@pytest.mark.parametrize("a, b, date, code", [
    (DUC, HOA, "2030-01-01", "date_in_future"),
    (DUC, GIANG, "2024-01-01", "same_sex"),
    (SON, HOA, "2024-01-01", "under_marriage_age"),
    (HANOI_FATHER, HOA, "2024-01-01", "already_married"),
    (HANOI_FATHER, DAUGHTER, "2024-01-01", "already_married"),
])
def test_marriage_rules(family, a, b, date, code):
    before = snapshot(family)
    with pytest.raises(RuleViolation) as err:
        record(family, "marriage", pid=a, spouse_pid=b, date=date)
    assert err.value.code == code
    assert snapshot(family) == before


def test_marriage_between_siblings_is_refused(family):
    record(family, "correction", pid=SON, fields={"date_of_birth": "2000-01-02"}, reason="sai năm sinh")
    son = read(family, SON)["pid"]  # a new PID: the year changed
    record(family, "correction", pid=DAUGHTER, fields={"date_of_birth": "2001-07-08"}, reason="sai năm sinh")
    daughter = read(family, DAUGHTER)["pid"]
    with pytest.raises(RuleViolation) as err:
        record(family, "marriage", pid=son, spouse_pid=daughter, date="2024-01-01")
    assert err.value.code == "close_kin"


def test_marriage_then_divorce(family):
    record(family, "marriage", pid=DUC, spouse_pid=HOA, date="2024-01-01")
    assert read(family, DUC)["relatives"]["spouse"]["pid"] == HOA
    assert read(family, HOA)["marital_status"] == "married"
    with pytest.raises(RuleViolation) as err:
        record(family, "divorce", pid=DUC, spouse_pid=GIANG, date="2024-06-01")
    assert err.value.code == "not_married"
    record(family, "divorce", pid=HOA, spouse_pid=DUC, date="2024-06-01")
    assert read(family, DUC)["marital_status"] == "divorced" and read(family, HOA)["relatives"]["spouse"] is None


def test_moving_households(family):
    record(family, "permanent-residence", pid=HANOI_FATHER, commune_code="26743", address="5 Lê Lợi",
           new_household=True)
    moved = read(family, HANOI_FATHER)
    assert moved["permanent_residence"]["province_code"] == "79"
    assert moved["household"]["relation_to_head"] == "head"
    assert read(family, SON)["household"]["head"]["pid"] == HANOI_MOTHER  # the old household got a new head
    number = moved["household"]["number"]
    record(family, "permanent-residence", pid=DUC, commune_code="26743", address="5 Lê Lợi",
           household_number=number, relation_to_head="other")
    assert read(family, DUC)["household"]["head"]["pid"] == HANOI_FATHER
    with pytest.raises(InvalidInput):
        record(family, "permanent-residence", pid=GIANG, commune_code="00070", address="x",
               household_number=number)  # the household is in another commune
    with pytest.raises(InvalidInput):
        record(family, "permanent-residence", pid=GIANG, commune_code="00070", address="x")


def test_temporary_residence_and_absence(family):
    today = dt.date.today()
    record(family, "temporary-residence", pid=DUC, commune_code="00070", address="1 Tràng Tiền",
           until=(today + dt.timedelta(days=300)).isoformat())
    rec = read(family, DUC)
    assert rec["temporary_residence"]["commune_code"] == "00070"
    # now visible to the officers of Hoàn Kiếm as well
    with family.connect() as conn:
        assert read_record(conn, DUC, Area(commune="00070"))["pid"] == DUC
    with pytest.raises(InvalidInput):
        record(family, "temporary-residence", pid=HOA, commune_code="00070", address="x",
               until=(today + dt.timedelta(days=1000)).isoformat())
    record(family, "temporary-absence", pid=HOA, from_date="2025-01-01", until="2025-06-01", destination="Hàn Quốc")
    assert read(family, HOA)["temporary_absence"]["destination"] == "Hàn Quốc"
    with pytest.raises(InvalidInput):
        record(family, "temporary-absence", pid=HOA, from_date="2025-06-01", until="2025-01-01", destination="x")


def test_name_change_keeps_history_and_the_past_reads_back(family):
    yesterday = dt.date.today() - dt.timedelta(days=1)
    with family.begin() as conn:  # make the record older than today, as if loaded last week
        conn.execute(persons.update().values(created_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC)))
    record(family, "name-change", pid=HOA, full_name="Phạm Thị Hồng Hoa", reason="Quyết định đổi tên",
           legal_basis="Luật Hộ tịch 2014, Điều 26")
    assert read(family, HOA)["full_name"] == "Phạm Thị Hồng Hoa"
    assert read(family, HOA, as_of=yesterday)["full_name"] == "Phạm Thị Hoa"
    with pytest.raises(NotFound):
        read(family, HOA, as_of=dt.date(2019, 1, 1))
    with family.connect() as conn:
        entries = history(conn, HOA)
        found = search(conn, SearchQuery(name="pham thi hong hoa")).items
    change = entries[-1]
    assert change["kind"] == "name-change" and change["reason"] == "Quyết định đổi tên"
    assert change["legal_basis"] == "Luật Hộ tịch 2014, Điều 26"
    assert {"field": "full_name", "old": "Phạm Thị Hoa", "new": "Phạm Thị Hồng Hoa"} in change["changes"]
    assert [p["pid"] for p in found] == [HOA]
    with pytest.raises(RuleViolation):
        record(family, "name-change", pid=HOA, full_name="Phạm Thị Hồng Hoa", reason="again")


def test_sex_change_gives_a_new_pid_and_keeps_the_old_one(family, monkeypatch):
    out = record(family, "sex-change", pid=GIANG, sex="female", reason="Quyết định của tòa án")
    assert out.pid != GIANG
    info = pidfmt.parse(out.pid)
    assert (info.place_code, info.sex, info.birth_year) == ("079", "female", 1995)
    rec = read(family, GIANG)  # the old number still finds the person
    assert rec["pid"] == out.pid and rec["former_pids"][0]["pid"] == GIANG
    # the retired number is never given again: the generator is forced to offer it first
    offered = iter([GIANG, "079395123456"])
    monkeypatch.setattr(pidfmt, "generate", lambda *a, **k: next(offered))
    baby = record(family, "birth", full_name="Lê Thị Mai", sex="female", date_of_birth="2020-01-01",
                  commune_code="26743", household_number="7900000001")
    assert baby.pid == "079395123456"


def test_correction_needs_valid_values_and_changes_nothing_otherwise(family):
    before = snapshot(family)
    for fields in ({"phone": "12"}, {"email": "x"}, {"blood_type": "C+"}, {"full_name": "Lê 3"},
                   {"date_of_birth": "1990-02-30"}, {"nationality": None}):
        with pytest.raises(InvalidInput) as err:
            record(family, "correction", pid=DUC, fields=fields, reason="sửa")
        assert err.value.field == "fields." + next(iter(fields))
    assert snapshot(family) == before
    record(family, "correction", pid=DUC, fields={"phone": "0912345678", "blood_type": "O+"}, reason="bổ sung")
    assert read(family, DUC)["phone"] == "0912345678"


def test_commands_refuse_unknown_fields_and_wrong_types():
    from pydantic import ValidationError

    for kind, fields in [
        ("death", {"pid": DUC, "date_of_death": "2024-01-01", "cause": "x"}),
        ("death", {"pid": DUC, "date_of_death": 20240101}),
        ("death", {"pid": 79090000005, "date_of_death": "2024-01-01"}),
        ("marriage", {"pid": DUC, "spouse_pid": "ABC", "date": "2024-01-01"}),
        ("birth", {"full_name": "A", "sex": "x", "date_of_birth": "2024-01-01", "commune_code": "00070"}),
        ("birth", {"full_name": "A", "sex": "male", "date_of_birth": "2024-01-01", "commune_code": "99999"}),
        ("permanent-residence", {"pid": DUC, "commune_code": "00070", "address": "x", "new_household": "yes"}),
    ]:
        with pytest.raises(ValidationError):
            cmd.EVENT_KINDS[kind].model_validate(fields)


def test_out_of_area_people_are_not_found(family):
    commune_officer = ev.Actor("officer:3", Area(commune="00070"))
    with pytest.raises(NotFound):
        record(family, "death", actor=commune_officer, pid=DUC, date_of_death="2024-01-01")
    with family.connect() as conn:
        with pytest.raises(NotFound):
            read_record(conn, DUC, Area(province="01"))
        assert read_record(conn, DUC, Area(province="79"))["pid"] == DUC
