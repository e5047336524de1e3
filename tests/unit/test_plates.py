"""Unit and property tests for ``dinhdanh.vehicles.plates``: the printed form and its round trip,
plates refused with the part that is wrong, the series in turn, and a plate code for every 2025
province (the merged ones keeping every code of their predecessors)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dinhdanh.places import OLD_PROVINCES, PROVINCES, SUCCESSION
from dinhdanh.vehicles import plates
from dinhdanh.vehicles.plates import (LETTERS, OLD_PLATE_CODES, PLATE_CODES, InvalidNumber, InvalidPlateFormat,
                                      InvalidSeries, Plate, PlateError, UnknownPlateCode)


@pytest.mark.parametrize("text, printed", [
    ("29-HA 002.33", "29-HA 002.33"),
    ("29ha00233", "29-HA 002.33"),
    (" 51 - kz  999.99 ", "51-KZ 999.99"),
    ("29-B1 123.45", "29-B1 123.45"),
    ("29B11234", "29-B1 1234"),  # a one-letter series always has its digit: B1, then 1234
    ("29-B1 1234", "29-B1 1234"),
    ("59-MĐ1 123.45", "59-MĐ1 123.45"),
    ("59-mđ1 12345", "59-MĐ1 123.45"),
    ("72-AA 000.01", "72-AA 000.01"),
])
def test_the_printed_form(text, printed):
    assert plates.validate(text) == printed == plates.format(text)
    assert plates.is_valid(text)
    assert str(plates.parse(printed)) == printed


def test_parse_gives_the_parts():
    assert plates.parse("29-HA 002.33") == Plate("29", "HA", 233, 5)
    assert plates.parse("29-B1 1234") == Plate("29", "B1", 1234, 4)
    assert plates.parse("72-AA 000.01").province == "79"  # Bà Rịa - Vũng Tàu is Hồ Chí Minh City now


@pytest.mark.parametrize("text, error, field", [
    ("", InvalidPlateFormat, "code"),
    ("HA-29 002.33", InvalidPlateFormat, "code"),
    ("29-HA", InvalidNumber, "number"),
    ("29-HAB 002.33", InvalidPlateFormat, "plate"),
    ("29-HA 002.33X", InvalidPlateFormat, "plate"),
    ("29-HA 1234567", InvalidPlateFormat, "plate"),
    ("80-HA 002.33", UnknownPlateCode, "code"),  # the central agencies' cars, no locality
    ("10-HA 002.33", UnknownPlateCode, "code"),
    ("29-HI 002.33", InvalidSeries, "series"),
    ("29-OA 002.33", InvalidSeries, "series"),
    ("29-W1 123.45", InvalidSeries, "series"),
    ("29-B0 123.45", InvalidSeries, "series"),
    ("29-Đ1 123.45", InvalidSeries, "series"),
    ("29-HA 000.00", InvalidNumber, "number"),
    ("29-HA 12", InvalidNumber, "number"),
    ("29-HA 123", InvalidNumber, "number"),
    ("29-B1 0000", InvalidNumber, "number"),
])
def test_bad_plates_are_refused_naming_the_part(text, error, field):
    with pytest.raises(error) as refused:
        plates.parse(text)
    assert refused.value.field == field
    assert isinstance(refused.value, PlateError) and isinstance(refused.value, ValueError)
    assert not plates.is_valid(text)


def test_a_plate_is_text():
    with pytest.raises(InvalidPlateFormat):
        plates.parse(29)  # type: ignore[arg-type]


@given(code=st.sampled_from(sorted(plates.PROVINCE_OF_CODE)),
       series=st.tuples(st.sampled_from(LETTERS), st.sampled_from(LETTERS)).map("".join),
       number=st.integers(1, plates.MAX_NUMBER))
def test_compose_parse_round_trip(code, series, number):
    plate = plates.compose(code, series, number)
    printed = str(plate)
    assert plates.parse(printed) == plate
    assert plates.parse(plates.compact(printed)) == plate
    assert plates.validate(printed.lower()) == printed
    assert len(printed) == 12 and printed[2] == "-" and printed[9] == "."


@given(st.text(max_size=14))
def test_anything_parses_or_is_refused_with_a_field(text):
    try:
        plate = plates.parse(text)
    except PlateError as exc:
        assert exc.field in ("plate", "code", "series", "number")
    else:
        assert plates.parse(str(plate)) == plate


@pytest.mark.parametrize("code, series, number, field", [
    ("80", "AA", 1, "code"), ("29", "B1", 1, "series"), ("29", "HI", 1, "series"), ("29", "AA", 0, "number"),
    ("29", "AA", 100000, "number"), ("29", "AA", True, "number"),
])
def test_compose_refuses(code, series, number, field):
    with pytest.raises(PlateError) as refused:
        plates.compose(code, series, number)
    assert refused.value.field == field


def test_series_are_taken_in_turn():
    assert plates.next_series("AA") == "AB"
    assert plates.next_series("AH") == "AK"  # no I, J
    assert plates.next_series("AZ") == "BA"
    seen, s = ["AA"], "AA"
    while s != "ZZ":
        s = plates.next_series(s)
        seen.append(s)
    assert len(seen) == len(set(seen)) == 400 and seen == sorted(seen)
    with pytest.raises(InvalidSeries):
        plates.next_series("ZZ")
    with pytest.raises(InvalidSeries):
        plates.next_series("B1")


def test_every_province_of_places_has_its_plate_codes():
    assert set(PLATE_CODES) == set(PROVINCES) and len(PLATE_CODES) == 34
    assert set(OLD_PLATE_CODES) == set(OLD_PROVINCES) and len(OLD_PLATE_CODES) == 63
    every = [c for codes in OLD_PLATE_CODES.values() for c in codes]
    assert len(every) == len(set(every)), "a plate code belongs to one province"
    assert all(len(c) == 2 and c.isdigit() and 11 <= int(c) <= 99 for c in every)
    for new, olds in SUCCESSION.items():  # a merged province keeps all its predecessors' codes
        assert PLATE_CODES[new] == tuple(c for old in olds for c in OLD_PLATE_CODES[old])
        assert all(plates.province_of(c) == new for c in PLATE_CODES[new])
        assert plates.plate_codes(new)[0] == OLD_PLATE_CODES[olds[0]][0]
    assert PLATE_CODES["01"] == ("29", "30", "31", "32", "33", "40")
    assert PLATE_CODES["79"] == ("41", "50", "51", "52", "53", "54", "55", "56", "57", "58", "59", "61", "72")
    assert PLATE_CODES["31"] == ("15", "16", "34")  # Hải Phòng and Hải Dương
    assert PLATE_CODES["48"] == ("43", "92")  # Đà Nẵng and Quảng Nam
    assert PLATE_CODES["75"] == ("39", "60", "93")  # Đồng Nai and Bình Phước
    with pytest.raises(UnknownPlateCode) as refused:
        plates.plate_codes("02")
    assert refused.value.field == "province"
    with pytest.raises(UnknownPlateCode):
        plates.province_of("80")
