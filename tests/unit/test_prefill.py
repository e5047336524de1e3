"""The prefill's mapping: every source a form may name (``forms.SOURCES``) maps to a value of a
person's view, or is asked when the state holds none; fields of another person are always asked."""

from __future__ import annotations

import pytest

from dinhdanh.dossiers import catalogue
from dinhdanh.dossiers.catalogue.forms import SOURCES
from dinhdanh.dossiers.prefill import address_text, prefill, value_of

RESIDENCE = {"province_code": "01", "province_name": "Thành phố Hà Nội", "commune_code": "00070",
             "commune_name": "Phường Hoàn Kiếm", "address": "12 Hàng Bạc", "dossier_number": None}
RELATIVE = {"pid": "001085000001", "full_name": "Nguyễn Văn An", "date_of_birth": "1985-03-04",
            "nationality": "VN", "permanent_residence": RESIDENCE}
DOCUMENT = {"number": "AB123", "issuer": "Sở Giao thông vận tải", "issued_on": "2020-01-01", "valid_until": "2030-01-01"}
PERSON = {
    "record": {
        "pid": "001187000002", "full_name": "Trần Thị Bình", "other_names": "Bình Trần", "date_of_birth": "1987-05-06",
        "sex": "female", "place_of_birth": "Hà Nội", "hometown": "Nam Định", "ethnicity": "Kinh",
        "religion": "Không", "nationality": "VN", "blood_type": "O", "old_id_number": "012345678",
        "marital_status": "married", "phone": "0912345678", "email": "binh@example.vn", "date_of_death": "2099-01-01",
        "current_address": "12 Hàng Bạc, Hoàn Kiếm, Hà Nội",
        "permanent_residence": RESIDENCE,
        "temporary_residence": {**RESIDENCE, "address": "5 Lê Lợi", "until": "2027-01-01"},
        "household": {"number": "0100000001", "relation_to_head": "spouse", "head": None},
    },
    "relatives": {who: RELATIVE for who in ("father", "mother", "spouse", "representative")},
    "card": {"number": "001187000002", "issue_date": "2024-07-01", "expiry_date": "2047-05-06"},
    "wallet": {kind: DOCUMENT for kind in ("driving_licence", "vehicle_registration", "health_insurance",
                                           "social_insurance")},
}
NOBODY = {"record": {"pid": "001187000002"}, "relatives": {}, "card": None, "wallet": {}}


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_every_source_maps_to_a_value_or_is_asked(source):
    value = value_of(source, PERSON)
    assert value not in (None, ""), source
    assert isinstance(value, str)
    if source != "register:pid":
        assert value_of(source, NOBODY) is None, source  # the state holds nothing: asked


def test_the_values_are_the_records():
    assert value_of("register:permanent_address", PERSON) == "12 Hàng Bạc, Phường Hoàn Kiếm, Thành phố Hà Nội"
    assert value_of("register:temporary_address", PERSON) == "5 Lê Lợi, Phường Hoàn Kiếm, Thành phố Hà Nội"
    assert value_of("register:permanent_commune_code", PERSON) == "00070"
    assert value_of("register:household_number", PERSON) == "0100000001"
    assert value_of("register:relation_to_head", PERSON) == "spouse"
    assert value_of("register:spouse.pid", PERSON) == "001085000001"
    assert value_of("register:father.permanent_address", PERSON).startswith("12 Hàng Bạc")
    assert value_of("card:number", PERSON) == "001187000002"
    assert value_of("wallet:driving_licence", PERSON) == "AB123"
    assert value_of("wallet:driving_licence.valid_until", PERSON) == "2030-01-01"
    assert address_text(None) is None and address_text({"address": " "}) is None


def test_an_unknown_source_is_an_error():
    for source in ("register:salary", "card:chip", "wallet:passport", "wallet:driving_licence.colour", "x:y"):
        with pytest.raises(KeyError):
            value_of(source, PERSON)


def test_every_catalogue_form_is_prefilled_or_asked():
    for version in catalogue.services():
        out = prefill(version, PERSON)
        paths = [f.field for f in catalogue.prefill_fields(version)]
        assert sorted([f["field"] for f in out["fields"]] + out["ask"]) == sorted(paths)
        others = {f.field for f in catalogue.prefill_fields(version) if f.of is not None}
        assert others <= set(out["ask"])  # another person's: the citizen names them first
        assert not others & {f["field"] for f in out["fields"]}
        assert all(f["label"] for f in out["fields"])
        empty = prefill(version, NOBODY)
        assert [f["field"] for f in empty["fields"]] == [p for p in paths if p == "applicant.pid"]


def test_a_death_registration_asks_for_the_deceased():
    version = catalogue.service("1.000656")
    out = prefill(version, PERSON)
    assert out["service"] == "1.000656" and out["version"] == version.version_id
    assert {"deceased.full_name", "deceased.date_of_birth", "deceased.sex", "deceased.permanent_address"} <= set(out["ask"])
    assert {"field": "applicant.full_name", "value": "Trần Thị Bình", "source": "register:full_name",
            "label": "Họ, chữ đệm và tên"} in out["fields"]
