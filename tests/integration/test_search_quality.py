"""Search by name with or without diacritics, narrowing, paging, areas; the quality report."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from dinhdanh.population.importer import import_population
from dinhdanh.registry.area import Area
from dinhdanh.registry.errors import InvalidInput
from dinhdanh.registry.quality import quality_report
from dinhdanh.registry.search import SearchQuery, search
from dinhdanh.registry.tables import persons
from tests.support import FAMILY_COLUMNS, write_people


def find(engine, area=Area(), **kw):
    with engine.connect() as conn:
        return search(conn, SearchQuery(**kw), area)


@pytest.mark.parametrize("typed", ["Nguyễn Văn An", "nguyen van an", "  NGUYEN   van AN ", "Nguyen Van",
                                   "nguyễn", "Nguye\u0302\u0303n Va\u0306n An"])
def test_name_typed_any_way_finds_the_person(family, typed):
    assert "001085000001" in [p["pid"] for p in find(family, name=typed).items]


def test_narrowing_and_paging(family):
    assert [p["pid"] for p in find(family, name="nguyen", birth_year=2015).items] == ["001215000004"]
    assert find(family, name="nguyen", province="79").items == []
    assert [p["full_name"] for p in find(family, commune="26743").items] == [
        "Hoàng Văn Giang", "Lê Văn Đức", "Phạm Thị Hoa"]
    import datetime as dt
    assert [p["pid"] for p in find(family, date_of_birth=dt.date(1990, 9, 10)).items] == ["079090000005"]
    first = find(family, name="nguyen", page_size=2)
    second = find(family, name="nguyen", page_size=2, page=2)
    assert first.next_page == 2 and second.next_page is None
    assert len({p["pid"] for p in first.items + second.items}) == 3
    assert find(family, name="dang").items == []  # Đ folds to d: "dang" is not "duc"
    assert [p["pid"] for p in find(family, name="le van duc").items] == ["079090000005"]


def test_search_stays_in_the_officers_area(family):
    assert {p["province_code"] for p in find(family, Area(commune="00070"), name="n").items} <= {"01"}
    assert find(family, Area(province="79"), name="nguyen").items == []


@pytest.mark.parametrize("kw, field", [({}, "name"), ({"name": "---"}, "name"), ({"name": "a", "page": 0}, "page"),
                                       ({"name": "a", "page_size": 500}, "page_size")])
def test_bad_searches(family, kw, field):
    with pytest.raises(InvalidInput) as err:
        find(family, **kw)
    assert err.value.field == field


def test_quality_finds_incomplete_duplicate_and_inconsistent_records(engine, tmp_path):
    columns = FAMILY_COLUMNS + ("status",)
    base = ("", "", "", "", "", "single")
    rows = [
        # two records of one person (same folded name, date and place of birth registration)
        ("001090000001", "Trần Văn Tâm", "1990-01-01", "male", "01", "00070", *base, "alive"),
        ("001090000002", "TRAN VAN TAM", "1990-01-01", "male", "01", "00070", *base, "alive"),
        # PID says a woman born in 1991, record says a man born in 1990
        ("001191000003", "Lê Văn Phúc", "1990-01-01", "male", "01", "00070", *base, "alive"),
        # child born before the father
        ("001080000004", "Ngô Văn Cha", "1980-01-01", "male", "01", "00070", *base, "alive"),
        ("001075000005", "Ngô Văn Con", "1975-01-01", "male", "01", "00070", "", "", "001080000004", "", "", "single",
         "alive"),
        # dead but still in a household
        ("079060000006", "Phan Văn Mất", "1960-01-01", "male", "79", "26743", "7900000009", "head", "", "", "",
         "single", "dead"),
    ]
    import_population(engine, write_people(tmp_path / "q.csv", rows, columns))
    with engine.connect() as conn:
        report = quality_report(conn)
        only_79 = quality_report(conn, province="79")
        commune = quality_report(conn, Area(commune="26743"))
    totals = report["totals"]
    assert totals["duplicate_candidates"] == 2
    assert totals["pid_birth_year"] == 1 and totals["pid_sex"] == 1
    assert totals["child_not_younger_than_father"] == 1
    assert totals["dead_but_resident"] == 1 and totals["dead_without_date"] == 1
    assert totals["incomplete"] == 5  # every living record here lacks hometown, ethnicity, ...
    hanoi = next(p for p in report["provinces"] if p["province_code"] == "01")
    assert hanoi["province_name"] == "Thành phố Hà Nội" and hanoi["population"] == 5
    assert hanoi["checks"]["pid_sex"]["examples"] == ["001191000003"]
    assert set(hanoi["checks"]["duplicate_candidates"]["examples"]) == {"001090000001", "001090000002"}
    assert [p["province_code"] for p in only_79["provinces"]] == ["79"]
    assert [p["province_code"] for p in commune["provinces"]] == ["79"]
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(persons)).scalar_one() == 6


def test_search_by_current_or_former_pid(family):
    from dinhdanh.registry import commands as cmd
    from dinhdanh.registry import events as ev

    assert [p["full_name"] for p in find(family, pid="079193000006").items] == ["Phạm Thị Hoa"]
    with family.begin() as conn:
        out = ev.record_event(conn, ev.Actor("officer:1"), "sex-change",
                              cmd.SexChange(pid="079095000007", sex="female", reason="Quyết định"))
    assert [p["pid"] for p in find(family, pid="079095000007").items] == [out.pid]
    assert find(family, Area(province="01"), pid="079193000006").items == []
    assert find(family, pid="001099999999").items == []
