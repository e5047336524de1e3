"""The catalogue of online public services: the data (all 25 essential services and the two linked
groups, every form a valid JSON Schema with known sources), effective dating, fees and exemptions,
form validation, and the loader refusing broken data."""

from __future__ import annotations

import copy
import datetime as dt
import doctest
import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from dinhdanh.dossiers import catalogue
from dinhdanh.dossiers.catalogue import conditions, forms, loading
from dinhdanh.registry.errors import InvalidInput, NotFound

DAY = dt.date(2026, 12, 5)
ADDRESS = {"province_code": "01", "commune_code": "00070", "street": "12 Hàng Bạc"}
APPLICANT = {"pid": "001085000001", "full_name": "Nguyễn Văn An", "date_of_birth": "1985-03-02"}


def _all_versions():
    return [v for s in catalogue.load().by_code.values() for v in s.versions]


def _sources(schema):
    """Every x-source anywhere in a schema (array items included)."""
    if isinstance(schema, dict):
        if "x-source" in schema:
            yield schema["x-source"]
        for value in schema.values():
            yield from _sources(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from _sources(value)


def test_the_25_essential_services_and_the_two_linked_groups_are_there():
    now = catalogue.services(DAY)
    assert len(now) == 25 and len({v.code for v in now}) == 25
    sectors = [v.sector for v in now]
    assert (sectors.count("police"), sectors.count("commune"), sectors.count("other")) == (13, 6, 6)
    codes = {v.code for v in now}
    # real portal codes where they could be established
    assert {"1.001193", "1.000656", "1.000894", "1.004222", "1.004194", "1.003677", "2.001159", "1.001456"} <= codes
    groups = {v.code: v.group for v in now if v.group}
    assert set(groups) == {"3.000722", "2.002913"}
    birth_group, death_group = groups["3.000722"], groups["2.002913"]
    assert [p.key for p in birth_group.procedures][:3] == ["birth_registration", "permanent_residence",
                                                          "health_insurance_card"]
    assert (death_group.choose_min, death_group.choose_max) == (2, 4)  # the applicant picks 2, 3 or 4
    assert [p.key for p in death_group.procedures if p.mandatory] == ["death_registration"]
    # a group's procedure that is itself a catalogue service names it
    assert catalogue.service(birth_group.procedures[0].code, DAY).name.vi == "Đăng ký khai sinh"
    assert {p.agency.code for p in death_group.procedures} == {"ubnd-xa", "cong-an-xa", "bhxh"}
    for v in now:
        assert v.name.vi and v.name.en and v.legal_basis and v.online_level in ("full", "partial")
        assert v.agency.level in ("national", "province", "commune")


def test_every_form_is_a_valid_json_schema_with_known_sources_and_vietnamese_titles():
    versions = _all_versions()
    assert len(versions) > 25  # several services have past versions
    for v in versions:
        Draft202012Validator.check_schema(v.form)
        assert v.form["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert "$ref" not in json.dumps(v.form), v.version_id  # shared parts are inlined: the form stands alone
        used = set(_sources(v.form))
        assert used and used <= catalogue.SOURCES, (v.version_id, used - catalogue.SOURCES)
        assert {p.source for p in catalogue.prefill_fields(v)} == used
        for path, sub in forms.fields(v.form):
            assert sub.get("title"), (v.version_id, path)
        # the state fills what it holds; the citizen is asked the rest: some of each in every form
        asked = [p for p, sub in forms.fields(v.form) if "x-source" not in sub and sub.get("type") != "object"]
        assert asked, v.version_id


def test_wallet_sources_follow_the_wallet_kinds_of_the_eid_area():
    from dinhdanh.eid.tables import WALLET_KINDS

    assert forms.WALLET_KINDS == WALLET_KINDS


def test_register_sources_are_items_of_the_register():
    from dinhdanh.registry.tables import persons

    columns = set(persons.c.keys())
    derived = {"permanent_address", "permanent_commune_code", "temporary_address", "household_number"}
    assert forms.REGISTER_ITEMS - derived <= columns


def test_prefill_says_where_each_value_comes_from():
    birth = catalogue.service("1.001193", DAY)
    fields = {p.field: p for p in catalogue.prefill_fields(birth)}
    assert fields["applicant.full_name"].source == "register:full_name"
    assert fields["other_parent.full_name"].source == "register:spouse.full_name"
    assert "child.full_name" not in fields  # asked: the child is not in the register yet
    death = {p.field: p for p in catalogue.prefill_fields(catalogue.service("1.000656", DAY))}
    assert death["deceased.full_name"].source == "register:full_name"
    assert death["deceased.full_name"].of == "deceased.pid"  # the deceased's record, found by the PID given
    licence = {p.field: p.source for p in catalogue.prefill_fields(catalogue.service("3.000347", DAY))}
    assert licence["licence_number"] == "wallet:driving_licence"
    assert catalogue.service("2.001195", DAY).prefill[-1].source == "card:number"


def test_effective_dating_picks_the_version_in_force_and_keeps_old_ones():
    code = "3.000722"  # the linked birth group: Decree 63/2024, the card step in 2025, Decree 301/2026
    assert catalogue.service(code, dt.date(2025, 6, 30)).version_id == "3.000722@2024-07-01"
    assert catalogue.service(code, dt.date(2025, 7, 1)).version_id == "3.000722@2025-07-01"
    assert catalogue.service(code, dt.date(2026, 8, 31)).version_id == "3.000722@2025-07-01"
    assert catalogue.service(code, dt.date(2026, 9, 1)).version_id == "3.000722@2026-09-01"
    old = catalogue.service(code, dt.date(2025, 1, 1))
    assert (old.group.choose_min, old.group.choose_max, len(old.group.procedures)) == (3, 3, 3)
    assert old.effective_to == dt.date(2025, 7, 1)
    new = catalogue.service(code, DAY)
    assert new.group.choose_max == 4 and "301/2026" in new.group.legal_basis
    # a dossier filed under the old rules finds them by the id it kept
    assert catalogue.version("3.000722@2024-07-01") is old
    assert any(p.field == "procedures" for p in catalogue.validate_form(
        old, {"procedures": ["birth_registration", "permanent_residence", "health_insurance_card", "id_card"]}))
    # a former portal code still finds the service
    assert catalogue.service("2.000986", dt.date(2025, 1, 1)).code == code
    # the agency changes with the version: driving licences moved to the police on 1 March 2025
    licence = "3.000347"
    assert catalogue.service(licence, dt.date(2025, 2, 28)).agency.code == "so-giao-thong-van-tai"
    assert catalogue.service(licence, dt.date(2025, 3, 1)).agency.code == "ca-tinh-canh-sat-giao-thong"
    with pytest.raises(catalogue.NotInForce) as gone:
        catalogue.service(code, dt.date(2024, 6, 30))
    assert gone.value.field == "on"
    with pytest.raises(NotFound) as unknown:
        catalogue.service("9.999999", DAY)
    assert unknown.value.field == "code" and unknown.value.code == "not_found"
    with pytest.raises(NotFound):
        catalogue.version("3.000722@2024-07-02")
    assert all(v.code != code for v in catalogue.services(dt.date(2024, 6, 30)))


def test_on_time_birth_and_death_registration_are_free():
    birth = catalogue.service("1.001193", DAY)
    born = {"child": {"date_of_birth": "2026-10-06"}}  # 60 days before DAY
    fee = catalogue.fee_for(birth, "01", "online", DAY, born)
    assert (fee.amount, fee.base_amount, fee.exemption.code) == (0, 8000, "on_time_birth")
    late = catalogue.fee_for(birth, "01", "online", DAY, {"child": {"date_of_birth": "2026-10-05"}})
    assert (late.amount, late.exemption) == (8000, None)
    death = catalogue.service("1.000656", DAY)
    assert catalogue.fee_for(death, "79", "counter", DAY, {"deceased": {"date_of_death": "2026-11-20"}}).amount == 0
    assert catalogue.fee_for(death, "79", "counter", DAY, {"deceased": {"date_of_death": "2026-11-19"}}).amount == 8000
    group = catalogue.service("2.002913", DAY)  # the linked death group carries the same exemption
    assert catalogue.fee_for(group, "79", "online", DAY, {"deceased": {"date_of_death": "2026-12-01"}}).amount == 0
    with pytest.raises(catalogue.FactRequired) as missing:
        catalogue.fee_for(birth, "01", "online", DAY, {})
    assert missing.value.field == "child.date_of_birth" and missing.value.code == "fact_required"


def test_online_filing_is_cheaper_and_rates_are_dated():
    residence = catalogue.service("1.004222", DAY)
    adult = {"applicant": {"date_of_birth": "1985-03-02"}}
    assert catalogue.fee_for(residence, "01", "counter", DAY, adult).amount == 20000
    assert catalogue.fee_for(residence, "01", "online", DAY, adult).amount == 10000
    # exemptions: age on the day (whole years), or a ground the applicant declares
    assert catalogue.fee_for(residence, "01", "online", DAY, {"applicant": {"date_of_birth": "2010-12-06"}}).amount == 0
    assert catalogue.fee_for(residence, "01", "online", DAY, {"applicant": {"date_of_birth": "2010-12-05"}}).amount == 10000
    declared = catalogue.fee_for(residence, "01", "online", DAY, {**adult, "fee_exemption_ground": "disability"})
    assert (declared.amount, declared.exemption.code) == (0, "exempt_group")
    temporary = catalogue.service("1.004194", DAY)
    facts = {**adult, "registration": "individual"}
    assert catalogue.fee_for(temporary, "48", "online", DAY, facts).amount == 7000
    assert catalogue.fee_for(temporary, "48", "online", DAY, {**facts, "registration": "by_list"}).amount == 5000
    licence = "3.000347"  # the online rate starts on 1 January 2024
    before, after = dt.date(2023, 6, 1), dt.date(2024, 6, 1)
    assert catalogue.fee_for(catalogue.service(licence, before), "01", "online", before).amount == 135000
    assert catalogue.fee_for(catalogue.service(licence, after), "01", "online", after).amount == 115000
    assert catalogue.fee_for(catalogue.service(licence, after), "01", "counter", after).amount == 135000


def test_fees_per_province_and_by_facts_of_the_dossier():
    motorbike = catalogue.service("dd.motorbike-registration", DAY)

    def fee(province, value):
        return catalogue.fee_for(motorbike, province, "online", DAY, {"vehicle": {"value": value}}).amount

    assert (fee("01", 14_000_000), fee("01", 30_000_000), fee("79", 50_000_000)) == (1_000_000, 2_000_000, 4_000_000)
    assert (fee("48", 14_000_000), fee("48", 30_000_000), fee("31", 50_000_000)) == (200_000, 400_000, 800_000)
    assert fee("75", 50_000_000) == 150_000  # elsewhere: the national rate
    with pytest.raises(catalogue.FactRequired) as missing:
        catalogue.fee_for(motorbike, "01", "online", DAY, {})
    assert missing.value.field == "vehicle.value"
    with pytest.raises(InvalidInput) as province:
        catalogue.fee_for(motorbike, "001", "online", DAY, {"vehicle": {"value": 1}})
    assert province.value.field == "province_code"
    with pytest.raises(InvalidInput) as channel:
        catalogue.fee_for(motorbike, "01", "post", DAY, {"vehicle": {"value": 1}})
    assert channel.value.field == "channel"
    card = catalogue.service("2.001195", DAY)
    assert catalogue.fee_for(card, "01", "online", DAY, {"kind": "reissue", "reason": "lost"}).amount == 70000
    assert catalogue.fee_for(card, "01", "online", DAY, {"kind": "renewal", "reason": "damaged"}).amount == 50000
    assert catalogue.fee_for(card, "01", "online", DAY, {"kind": "renewal", "reason": "age_milestone"}).amount == 0
    summary = catalogue.fee_summary(catalogue.service("1.004222", DAY), DAY)
    assert summary == {"currency": "VND", "online": 10000, "counter": 20000, "varies": False,
                       "exemptions": ["child_or_elderly", "exempt_group"], "refund_on_refusal": "full"}


def test_form_validation_names_each_field():
    temporary = catalogue.service("1.004194", DAY)
    good = {"applicant": APPLICANT, "registration": "individual", "stay_address": ADDRESS, "from": "2026-12-01",
            "until": "2027-12-01", "basis": "rented", "host_pid": "001090000002", "host_consent": True}
    assert catalogue.validate_form(temporary, good) == []
    bad = copy.deepcopy(good)
    del bad["applicant"]["date_of_birth"]
    bad["stay_address"]["commune_code"] = "7"
    bad["from"] = "2026-13-01"
    bad["basis"] = "tent"
    bad["colour"] = "red"
    problems = {(p.field, p.code) for p in catalogue.validate_form(temporary, bad)}
    assert problems == {("applicant.date_of_birth", "required"), ("stay_address.commune_code", "pattern"),
                        ("from", "format"), ("basis", "enum"), ("colour", "unknown_field")}
    vi = {p.field: p.message for p in catalogue.validate_form(temporary, bad)}
    assert vi["applicant.date_of_birth"] == "Cần khai Ngày, tháng, năm sinh."
    assert "2026-13-01" not in json.dumps([p.as_dict(english=True) for p in catalogue.validate_form(temporary, bad)])
    with pytest.raises(InvalidInput) as refused:
        catalogue.require_valid_form(temporary, bad)
    assert refused.value.code == "invalid_form" and refused.value.field == "applicant.date_of_birth"
    assert catalogue.validate_form(temporary, [])[0].code == "type"
    # a linked group: the applicant picks 2, 3 or 4 procedures, death registration always
    group = catalogue.service("2.002913", DAY)
    picked = {p.field: p.code for p in catalogue.validate_form(group, {"procedures": ["death_registration"]})}
    assert picked["procedures"] == "minItems"
    assert "procedures" not in {p.field for p in catalogue.validate_form(
        group, {"procedures": ["death_registration", "residence_removal", "funeral_allowance"]})}


def test_numbers_that_are_not_finite_are_named_and_the_problems_are_capped():
    """JSON's NaN and Infinity (which Python's parser takes) are refused wherever they are, though
    ``minimum: 0`` lets NaN through; a body of thousands of unknown keys gets at most MAX_PROBLEMS."""
    temporary = catalogue.service("1.004194", DAY)
    good = {"applicant": APPLICANT, "registration": "individual", "stay_address": ADDRESS, "from": "2026-12-01",
            "until": "2027-12-01", "basis": "rented", "host_pid": "001090000002", "host_consent": True}
    for value in (float("nan"), float("inf"), float("-inf")):
        bad = copy.deepcopy(good) | {"extra": {"deep": [1.5, value]}}
        problems = {(p.field, p.code) for p in catalogue.validate_form(temporary, bad)}
        assert ("extra.deep.1", "not_finite") in problems
    flood = good | {f"k{i}": i for i in range(5000)}
    assert len(catalogue.validate_form(temporary, flood)) == forms.MAX_PROBLEMS
    # a number field whose schema has a minimum: NaN is not stopped by it
    residence = next(v for v in catalogue.services(DAY) if "floor_area_per_person" in json.dumps(v.form))
    nan = {(p.field, p.code) for p in catalogue.validate_form(residence, {"floor_area_per_person": float("nan")})}
    assert ("floor_area_per_person", "not_finite") in nan


def test_texts_with_control_or_invisible_characters_are_named():
    """A form's text may not hold a control character (a NUL PostgreSQL cannot store, a terminal
    escape) nor an invisible format character that makes it read otherwise than it is stored (a
    right-to-left override turning "fdp.exe" into "exe.pdf", a zero-width space splitting a name);
    tab and line breaks are text, and so is every Vietnamese letter."""
    temporary = catalogue.service("1.004194", DAY)
    good = {"applicant": APPLICANT, "registration": "individual", "stay_address": ADDRESS, "from": "2026-12-01",
            "until": "2027-12-01", "basis": "rented", "host_pid": "001090000002", "host_consent": True}
    assert catalogue.validate_form(temporary, good) == []
    for bad in ("12\x00 Lê Lợi", "12 Lê \x1b[2J Lợi", "12 Lê\u202e Lợi", "12 Lê\u200b Lợi", "\ufeff12 Lê Lợi",
                "12 Lê\u2066 Lợi", "12 Lê\x85 Lợi"):
        data = copy.deepcopy(good)
        data["stay_address"]["street"] = bad
        problems = {(p.field, p.code) for p in catalogue.validate_form(temporary, data)}
        assert ("stay_address.street", "unsafe_character") in problems, (bad, problems)
    data = copy.deepcopy(good)
    data["stay_address"]["street"] = "Số 12, ngõ 3\tđường Nguyễn Thị Minh Khai\r\nPhường Bến Thành"
    assert catalogue.validate_form(temporary, data) == []


def test_conditions_and_the_modules_examples():
    assert conditions.holds({"years_since": "d", "lt": 1}, {"d": "2024-02-29"}, dt.date(2025, 2, 28))
    assert not conditions.holds({"years_since": "d", "lt": 1}, {"d": "2024-02-29"}, dt.date(2025, 3, 1))
    for bad in ({}, {"all": []}, {"fact": "a"}, {"fact": "a", "eq": 1, "lt": 2}, {"days_since": "a", "lte": "60"},
                {"fact": "a", "in": "xy"}, {"not": {"fact": "a", "eq": 1}, "x": 1}):
        with pytest.raises(conditions.BadCondition):
            conditions.check(bad)
    assert sorted(conditions.paths({"all": [{"fact": "a", "eq": 1}, {"not": {"days_since": "b.c", "lt": 3}}]})) == ["a", "b.c"]
    for module in (conditions, catalogue):
        assert doctest.testmod(module).failed == 0


# ---------------------------------------------------------------- the loader refuses broken data

@pytest.fixture
def data(tmp_path):
    """A catalogue directory holding one real service; ``write`` changes it."""
    original = json.loads((loading.SERVICES / "temporary-residence-registration.json").read_text("utf-8"))

    def write(change=None):
        raw = copy.deepcopy(original)
        if change:
            change(raw)
        (tmp_path / "service.json").write_text(json.dumps(raw, ensure_ascii=False), "utf-8")
        return tmp_path

    return write


def test_the_loader_accepts_good_data_and_names_what_is_wrong(data):
    assert set(loading.read_services(data())) == {"1.004194"}

    def form(raw):
        return raw["versions"][0]["form"]

    cases = [
        (lambda r: form(r)["properties"]["from"].update({"x-source": "register:shoe_size"}), "unknown source"),
        (lambda r: form(r)["properties"]["from"].update({"type": 5}), "not a valid JSON Schema"),
        (lambda r: form(r)["properties"]["from"].pop("title"), "title"),
        (lambda r: form(r)["required"].append("nothing"), "'nothing'"),
        (lambda r: form(r)["properties"].update({"x": {"$ref": "common.json#/$defs/nope", "title": "x"}}), "shared part"),
        (lambda r: r["versions"][0]["fee"]["rates"][0].update({"when": {"fact": "vehicle.value", "lte": 1}}),
         "'vehicle.value' is not a field of the form"),
        (lambda r: r["versions"][0]["fee"]["rates"][0].update({"province": "99"}), "no province has code 99"),
        (lambda r: r["versions"].append({"effective_from": "2023-01-01"}), "same day"),
        (lambda r: r["versions"][0].pop("processing_days"), "processing_days not given"),
        (lambda r: r.update({"online_level": "half"}), "online_level"),
        (lambda r: r["versions"][0]["fee"]["exemptions"][0].update({"when": {"fact": "a", "lt": 1, "gt": 0}}), "exactly one"),
    ]
    for change, expected in cases:
        with pytest.raises(loading.CatalogueError) as refused:
            loading.read_services(data(change))
        assert expected in str(refused.value) and "service.json" in str(refused.value)


def test_load_is_explicit_and_cached():
    assert catalogue.load() is catalogue.load()
    assert set(catalogue.load().by_code) == {v.code for v in catalogue.services(DAY)}
    with pytest.raises(loading.CatalogueError):
        catalogue.load(Path("/nonexistent-catalogue"))
