"""Tests of the synthetic population: reproducibility, formats, and demographic realism."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections import Counter

import numpy as np
import pyarrow as pa
import pytest

from dinhdanh import places
from dinhdanh.ids import names, pid
from dinhdanh.population import demography, synthetic

TODAY = dt.date(2025, 7, 1)
ROWS = 40_000
MEKONG = {"86", "91", "92", "96"}
NORTHERN_MOUNTAINS = {"04", "08", "11", "12", "14", "15", "19", "20", "25"}
CENTRAL_HIGHLANDS = {"51", "52", "66", "68"}


@pytest.fixture(scope="module", params=["whole", "parts"])
def table(request) -> pa.Table:
    """The population made at once, and made in 4 parts as a national one is (``generate_chunks``):
    every property below must hold for both."""
    if request.param == "whole":
        return synthetic.generate(ROWS, 2025)
    return pa.concat_tables(synthetic.generate_chunks(ROWS, 2025, chunk_rows=10_000))


@pytest.fixture(scope="module")
def people(table) -> dict[str, np.ndarray]:
    """Columns as numpy object arrays (None for nulls), plus exact ages on the reference date."""
    cols = {name: np.array(table.column(name).to_pylist(), dtype=object) for name in table.column_names}
    dob = cols["date_of_birth"].astype("datetime64[D]")
    year = dob.astype("datetime64[Y]").astype(int) + 1970
    month_day = np.array([d[5:] for d in cols["date_of_birth"]])
    cols["age"] = 2025 - year - (month_day > "07-01")
    cols["dob"] = dob
    cols["row"] = {p: i for i, p in enumerate(cols["pid"])}
    return cols


def _rows(people, column: str) -> np.ndarray:
    """Row index of the person each value of a PID column points to, -1 for null."""
    return np.array([-1 if p is None else people["row"][p] for p in people[column]])


# ------------------------------------------------------------------------------ API and reproducibility


def test_same_seed_same_table_other_seed_other_table():
    first = synthetic.generate(3000, 7)
    assert first.equals(synthetic.generate(3000, 7))
    other = synthetic.generate(3000, 8)
    assert not first.equals(other)
    assert first.column("pid").to_pylist() != other.column("pid").to_pylist()


@pytest.mark.parametrize("name", ["people.csv", "people.parquet", "PEOPLE.CSV", "people.Parquet"])
def test_write_gives_the_same_bytes_for_the_same_seed(tmp_path, name):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    synthetic.write(synthetic.generate(2000, 11), a / name)
    synthetic.write(synthetic.generate(2000, 11), b / name)
    assert (a / name).read_bytes() == (b / name).read_bytes()
    assert len((a / name).read_bytes()) > 10_000


def test_write_refuses_other_extensions(tmp_path):
    table = synthetic.generate(10, 1)
    for bad in ("people.json", "people", "people.csv.gz"):
        with pytest.raises(ValueError, match=r"unsupported extension '[^']*': use \.parquet or \.csv"):
            synthetic.write(table, tmp_path / bad)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("count", [1, 2, 3, 7, 1001])
def test_exactly_count_rows(count):
    table = synthetic.generate(count, 3)
    assert table.num_rows == count
    assert len(set(table.column("pid").to_pylist())) == count


@pytest.mark.parametrize("count", [0, -1])
def test_count_must_be_positive(count):
    with pytest.raises(ValueError, match="count"):
        synthetic.generate(count, 1)


def test_columns_are_strings_in_order(table):
    assert table.column_names == list(synthetic.COLUMNS)
    assert all(field.type == pa.string() for field in table.schema)
    assert table.num_rows == ROWS


def test_required_columns_have_no_nulls(table):
    nullable = {"old_id_number", "father_pid", "mother_pid", "spouse_pid", "blood_type", "phone", "email"}
    for name in synthetic.COLUMNS:
        if name not in nullable:
            assert table.column(name).null_count == 0, name


# -------------------------------------------------------------------------------------- identifiers


def test_pids_valid_unique_and_consistent(people):
    assert len(set(people["pid"])) == ROWS
    for p, sex, dob, code in zip(people["pid"], people["sex"], people["date_of_birth"],
                                 people["birth_registration_code"]):
        assert pid.validate(p, strict=True, today=TODAY) == p
        info = pid.parse(p)
        assert (info.sex, info.birth_year, info.place_code) == (sex, int(dob[:4]), code)
        assert not info.foreign_birth


def test_old_ids_phones_emails(people):
    age = people["age"]
    old_ids = people["old_id_number"]
    held = old_ids != None  # noqa: E711 - element-wise
    assert all(re.fullmatch(r"\d{9}", x) for x in old_ids[held])
    assert len(set(old_ids[held])) == held.sum()
    assert (age[held] >= 20).all()
    assert 0.3 < held[age >= 24].mean() < 0.8

    prefixes = {p for p, _ in demography.PHONE_PREFIXES}
    phones = people["phone"]
    held = phones != None  # noqa: E711
    assert all(re.fullmatch(r"0\d{9}", x) and x[:3] in prefixes for x in phones[held])
    assert len(set(phones[held])) == held.sum()
    assert not held[age < 15].any()
    assert 0.85 < held[age >= 15].mean() < 0.95

    emails = people["email"]
    held = emails != None  # noqa: E711
    assert all(re.fullmatch(r"[a-z0-9.]+@[a-z]+\.com", x) for x in emails[held])
    assert len(set(emails[held])) == held.sum()
    assert not held[age < 18].any()
    assert 0.2 < held[age >= 18].mean() < 0.7


def test_household_numbers(people):
    numbers = people["household_number"]
    assert all(re.fullmatch(r"\d{10}", n) for n in numbers)
    assert all(n[:2] == p for n, p in zip(numbers, people["province_code"]))


# ---------------------------------------------------------------------------------------- geography


def test_commune_belongs_to_province(people):
    for commune, province in zip(people["commune_code"], people["province_code"]):
        assert places.COMMUNES[commune].province_code == province


def test_province_shares_follow_population(people):
    population = Counter()
    for new, olds in places.SUCCESSION.items():
        population[new] = sum(demography.OLD_PROVINCE_POPULATION[o] for o in olds)
    total = sum(population.values())
    seen = Counter(people["province_code"])
    assert set(seen) == set(places.PROVINCES)
    for code, pop in population.items():
        expected = pop / total
        assert abs(seen[code] / ROWS - expected) < 0.2 * expected + 0.004, code
    assert 0.12 < seen["79"] / ROWS < 0.15  # Hồ Chí Minh City, about 14 million
    assert 0.075 < seen["01"] / ROWS < 0.10  # Hà Nội, about 8.7 million


def test_births_registered_where_people_come_from(people):
    successor = np.array([places.OLD_PROVINCES[c].successor for c in people["birth_registration_code"]])
    elsewhere = successor != people["province_code"]
    adult = people["age"] >= 18
    assert not elsewhere[~adult].any(), "children are born in the household's province"
    assert 0.08 < elsewhere[adult].mean() < 0.16
    hcmc = adult & (people["province_code"] == "79")
    assert elsewhere[hcmc].mean() > 2 * elsewhere[adult & ~hcmc].mean()


def test_place_texts(people):
    titles = {p.name if p.name != p.short_name else f"Tỉnh {p.short_name}" for p in places.PROVINCES.values()}
    for column in ("place_of_birth", "hometown"):
        for text in people[column][:2000]:
            commune, province = text.split(", ")
            assert province in titles and commune.split(" ")[0] in ("Xã", "Phường", "Đặc")
    for address, commune in zip(people["address"][:2000], people["commune_code"][:2000]):
        assert places.COMMUNES[commune].name in address
        assert re.match(r"(Số )?\d", address)


# -------------------------------------------------------------------------------------- demography


def test_age_structure(people):
    age = people["age"]
    assert age.min() >= 0 and age.max() <= 105
    assert (people["dob"] <= np.datetime64(TODAY)).all()
    assert 0.21 < (age < 15).mean() < 0.26
    assert 0.65 < ((age >= 15) & (age < 65)).mean() < 0.70
    assert 0.075 < (age >= 65).mean() < 0.11
    months = Counter(d[5:7] for d in people["date_of_birth"])
    assert len(months) == 12 and min(months.values()) > ROWS / 12 * 0.8
    assert any(d.endswith("-02-29") for d in people["date_of_birth"])


def test_sex_ratio(people):
    male, age = people["sex"] == "male", people["age"]
    assert set(people["sex"]) == {"male", "female"}
    young = age < 15
    assert 1.05 < male[young].sum() / (~male[young]).sum() < 1.18
    old = age >= 65
    assert male[old].sum() < 0.85 * (~male[old]).sum()
    assert 0.48 < male.mean() < 0.51


def test_surnames(people):
    share = Counter(people["surname"])
    assert 0.34 < share["Nguyễn"] / ROWS < 0.42
    assert 0.08 < share["Trần"] / ROWS < 0.13
    assert 0.07 < share["Lê"] / ROWS < 0.12
    south = np.isin(people["province_code"], sorted(demography.SOUTHERN_PROVINCES))
    surnames = people["surname"]
    assert (surnames[south] == "Huỳnh").mean() > 3 * (surnames[~south] == "Huỳnh").mean()
    assert (surnames[south] == "Võ").mean() > 3 * (surnames[~south] == "Võ").mean()


def test_names_are_nfc_vietnamese_order(people):
    for full, s, m, g in zip(people["full_name"], people["surname"], people["middle_name"], people["given_name"]):
        assert unicodedata.is_normalized("NFC", full)
        assert full == f"{s} {m} {g}"
        assert names.validate(full) == full
        assert names.split(full) == names.NameParts(s, m, g)
    female = people["sex"] == "female"
    middle = people["middle_name"]
    assert (middle[female] == "Văn").sum() == 0 and (middle[~female] == "Thị").sum() == 0
    older = people["age"] >= 50
    assert (middle[female & older] == "Thị").mean() > 0.8
    assert (middle[female & (people["age"] < 10)] == "Thị").mean() < 0.35


def test_ethnicity_and_religion(people):
    ethnic, province = people["ethnicity"], people["province_code"]
    share = Counter(ethnic)
    assert 0.80 < share["Kinh"] / ROWS < 0.90
    for group in ("Tày", "Thái", "Mường", "Khmer", "H'Mông", "Nùng", "Dao", "Hoa"):
        assert 0.003 < share[group] / ROWS < 0.03, group
    assert np.isin(province[ethnic == "Khmer"], sorted(MEKONG)).mean() > 0.8
    assert np.isin(province[np.isin(ethnic, ["Tày", "Nùng", "H'Mông", "Dao", "Thái"])],
                   sorted(NORTHERN_MOUNTAINS | {"38", "40"})).mean() > 0.75
    assert np.isin(province[np.isin(ethnic, ["Gia Rai", "Ê Đê", "Ba Na"])], sorted(CENTRAL_HIGHLANDS)).mean() > 0.9
    religion = Counter(people["religion"])
    assert 0.80 < religion["Không"] / ROWS < 0.90
    assert 0.045 < religion["Công giáo"] / ROWS < 0.08
    assert 0.03 < religion["Phật giáo"] / ROWS < 0.07
    assert set(religion) <= set(demography.RELIGIONS)
    an_giang = province == "91"
    assert (people["religion"][an_giang] == "Hòa Hảo").mean() > 0.08


# -------------------------------------------------------------------------------------------- families


def test_households(people):
    number, relation = people["household_number"], people["relation_to_head"]
    assert set(relation) <= set(synthetic.RELATIONS)
    heads = Counter(number[relation == "head"])
    households = set(number)
    assert set(heads) == households and set(heads.values()) == {1}
    for column in ("province_code", "commune_code", "address"):
        assert len(set(zip(number, people[column]))) == len(households), column
    sizes = np.array(list(Counter(number).values()))
    assert 3.2 < sizes.mean() < 3.7
    assert 0.07 < (sizes == 1).mean() < 0.15 and (sizes >= 5).mean() > 0.12
    # each household is listed together, head first
    starts = np.flatnonzero(np.r_[True, number[1:] != number[:-1]])
    assert len(starts) == len(households) and (relation[starts] == "head").all()


def test_spouses(people):
    spouse = _rows(people, "spouse_pid")
    married = people["marital_status"] == "married"
    assert ((spouse >= 0) == married).all(), "married people have their spouse in the register"
    i = np.flatnonzero(spouse >= 0)
    j = spouse[i]
    assert (spouse[j] == i).all()
    assert (people["sex"][i] != people["sex"][j]).all()
    assert (people["household_number"][i] == people["household_number"][j]).all()
    husband = np.where(people["sex"][i] == "male", i, j)
    wife = np.where(people["sex"][i] == "male", j, i)
    age = people["age"]
    assert (age[husband] >= 20).all() and (age[wife] >= 18).all()
    gap = age[husband] - age[wife]
    assert gap.min() >= -5 and gap.max() <= 20 and 2 < gap.mean() < 5
    status = Counter(people["marital_status"][age >= 18])
    assert status["widowed"] > status["divorced"] > 0
    assert (people["marital_status"][age < 18] == "single").all()
    widowed = people["marital_status"] == "widowed"
    assert age[widowed].mean() > 60 and (people["sex"][widowed] == "female").mean() > 0.6


def test_parents(people):
    relation, dob, sex = people["relation_to_head"], people["dob"], people["sex"]
    for column, parent_sex in (("father_pid", "male"), ("mother_pid", "female")):
        parent = _rows(people, column)
        child = np.flatnonzero(parent >= 0)
        p = parent[child]
        assert (sex[p] == parent_sex).all()
        assert (people["household_number"][p] == people["household_number"][child]).all()
        age_at_birth = (dob[child] - dob[p]).astype(int) / 365.25
        assert age_at_birth.min() >= 18, column
        if parent_sex == "female":
            assert age_at_birth.max() <= 45
        # the head's children have the head for a parent; grandchildren a child of the head
        head_row = {n: i for i, (n, r) in enumerate(zip(people["household_number"], relation)) if r == "head"}
        heads = np.array([head_row[n] for n in people["household_number"][child]])
        child_rel = relation[child]
        grand = child_rel == "grandchild"
        assert (relation[p[grand]] != "head").all()
        assert np.isin(relation[p[grand]], ["child", "other"]).all()
        assert np.isin(child_rel, ["head", "child", "grandchild"]).all()
        assert ((p == heads) | (relation[p] == "spouse") | (relation[p] == "parent") | grand).all()
    has_child = (_rows(people, "father_pid") >= 0) | (_rows(people, "mother_pid") >= 0)
    assert has_child[people["age"] < 15].mean() > 0.95
    # the head's parents ("parent") are the head's father and mother
    parents = np.flatnonzero(relation == "parent")
    head_of = {n: i for i, (n, r) in enumerate(zip(people["household_number"], relation)) if r == "head"}
    for i in parents:
        head = head_of[people["household_number"][i]]
        assert people["pid"][i] in (people["father_pid"][head], people["mother_pid"][head])


def test_children_take_the_fathers_surname_and_ethnicity(people):
    father = _rows(people, "father_pid")
    child = np.flatnonzero(father >= 0)
    assert (people["surname"][child] == people["surname"][father[child]]).mean() > 0.95
    assert (people["ethnicity"][child] == people["ethnicity"][father[child]]).all()
    assert (people["hometown"][child] == people["hometown"][father[child]]).all()


def test_blood_types_follow_the_parents(people):
    genotypes = {"O": {"OO"}, "A": {"AA", "AO"}, "B": {"BB", "BO"}, "AB": {"AB"}}

    def possible(father: str, mother: str) -> set[str]:
        children = set()
        for f in genotypes[father]:
            for m in genotypes[mother]:
                for a in f:
                    for b in m:
                        letters = set(a + b) - {"O"}
                        children.add("AB" if len(letters) == 2 else letters.pop() if letters else "O")
        return children

    blood = people["blood_type"]
    known = blood != None  # noqa: E711
    share = Counter(b[:-1] for b in blood[known])
    assert 0.38 < share["O"] / known.sum() < 0.46 and 0.26 < share["B"] / known.sum() < 0.34
    assert sum(b.endswith("-") for b in blood[known]) / known.sum() < 0.005
    father, mother = _rows(people, "father_pid"), _rows(people, "mother_pid")
    trio = np.flatnonzero((father >= 0) & (mother >= 0) & known)
    trio = trio[(blood[father[trio]] != None) & (blood[mother[trio]] != None)]  # noqa: E711
    assert len(trio) > 1000
    for i in trio:
        assert blood[i][:-1] in possible(blood[father[i]][:-1], blood[mother[i]][:-1])


# ------------------------------------------------------------------------------ made in parts


def test_parts_are_reproducible_and_one_part_is_generate():
    first = list(synthetic.generate_chunks(25_000, 3, chunk_rows=10_000))
    assert [t.num_rows for t in first] == synthetic.part_sizes(25_000, 10_000) == [8333, 8333, 8334]
    again = list(synthetic.generate_chunks(25_000, 3, chunk_rows=10_000))
    assert all(a.equals(b) for a, b in zip(first, again))
    other = list(synthetic.generate_chunks(25_000, 4, chunk_rows=10_000))
    assert first[1].column("pid").to_pylist() != other[1].column("pid").to_pylist()
    (single,) = synthetic.generate_chunks(9000, 3, chunk_rows=10_000)
    assert single.equals(synthetic.generate(9000, 3))


def test_parts_hold_whole_households_and_share_no_number():
    parts = list(synthetic.generate_chunks(30_000, 11, chunk_rows=10_000))
    seen: dict[str, set] = {c: set() for c in ("pid", "household_number", "old_id_number", "phone", "email")}
    for table in parts:
        pids = set(table.column("pid").to_pylist())
        for column in ("father_pid", "mother_pid", "spouse_pid"):  # relatives are in the same part
            assert {p for p in table.column(column).to_pylist() if p is not None} <= pids, column
        for column, before in seen.items():
            values = [v for v in table.column(column).to_pylist() if v is not None]
            assert not before & set(values), f"{column} repeated across parts"
            before.update(values)
    assert len(seen["pid"]) == 30_000


@pytest.mark.parametrize("chunk_rows", [0, 9_999, True, "10000"])
def test_parts_must_be_reasonably_large(chunk_rows):
    with pytest.raises(ValueError, match="chunk_rows"):
        list(synthetic.generate_chunks(30_000, 1, chunk_rows=chunk_rows))


@pytest.mark.parametrize("name", ["people.parquet", "people.csv"])
def test_write_chunks_writes_the_parts_in_order_and_no_partial_file(tmp_path, name):
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    out = tmp_path / name
    assert synthetic.write_chunks(22_000, 5, out, chunk_rows=10_000) == 22_000
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]
    expected = pa.concat_tables(synthetic.generate_chunks(22_000, 5, chunk_rows=10_000))
    if name.endswith(".parquet"):
        read = pq.read_table(out)
    else:
        read = pacsv.read_csv(out, convert_options=pacsv.ConvertOptions(
            column_types={c: pa.string() for c in synthetic.COLUMNS}, strings_can_be_null=True))
    assert read.column("pid").to_pylist() == expected.column("pid").to_pylist()
    assert read.num_rows == 22_000


def test_copies_of_one_household_skeleton_are_varied():
    """Households drawn from the same skeleton within a part differ (ages moved, children's sexes
    drawn anew); the share of identical household skeletons stays low."""
    reuse: list = []
    table = pa.concat_tables(synthetic.generate_chunks(60_000, 2, chunk_rows=20_000, reuse=reuse))
    assert len(reuse) == 3 and all(0 <= twins <= households for households, twins in reuse)
    number = np.array(table.column("household_number").to_pylist())
    relation = np.array(table.column("relation_to_head").to_pylist())
    sex = np.array(table.column("sex").to_pylist())
    year = np.array([d[:4] for d in table.column("date_of_birth").to_pylist()])
    marital = np.array(table.column("marital_status").to_pylist())
    starts = np.flatnonzero(np.r_[True, number[1:] != number[:-1]])
    keys = Counter(
        tuple(zip(relation[a:b], year[a:b], sex[a:b], marital[a:b]))
        for a, b in zip(starts, np.r_[starts[1:], len(number)]) if b - a >= 4)
    big = sum(keys.values())
    assert big > 3000
    repeated = sum(n for n in keys.values() if n > 1)
    assert repeated / big < 0.02, f"{repeated} of {big} households of 4 or more repeat a skeleton"
