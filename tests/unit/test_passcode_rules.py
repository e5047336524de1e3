"""The passcode rules (``dinhdanh.eid.passcodes``): one digit repeated, runs (wrap-around included),
the date of birth in its 6-digit forms, the PID's last six digits."""

from __future__ import annotations

import datetime as dt

import pytest

from dinhdanh.eid import passcodes
from dinhdanh.registry.errors import InvalidInput

BORN = dt.date(1985, 3, 4)
PID = "001085123987"


@pytest.mark.parametrize("passcode, why", [
    *[(d * 6, "same_digit") for d in "0123456789"],
    ("123456", "ascending"), ("456789", "ascending"), ("012345", "ascending"),
    ("890123", "ascending"), ("901234", "ascending"), ("789012", "ascending"),  # wrap-around
    ("654321", "descending"), ("987654", "descending"), ("543210", "descending"),
    ("109876", "descending"), ("210987", "descending"),  # wrap-around
    ("040385", "date_of_birth"),  # DDMMYY
    ("030485", "date_of_birth"),  # MMDDYY
    ("850304", "date_of_birth"),  # YYMMDD
    ("850403", "date_of_birth"),  # YYDDMM
    ("040319", "date_of_birth"),  # DDMMYYYY, first six
    ("031985", "date_of_birth"),  # MMYYYY (DDMMYYYY, last six)
    ("198503", "date_of_birth"),  # YYYYMM (YYYYMMDD, first six)
    ("041985", "date_of_birth"),  # DDYYYY
    ("198504", "date_of_birth"),  # YYYYDD
    ("431985", "date_of_birth"),  # D M YYYY without leading zeros
    ("341985", "date_of_birth"),  # M D YYYY without leading zeros
    ("123987", "username"),  # the PID's last six digits
])
def test_weak_passcodes_are_refused(passcode, why):
    assert passcodes.weakness(passcode, born=BORN, username=PID) == why
    with pytest.raises(InvalidInput) as e:
        passcodes.check_strength(passcode, born=BORN, username=PID)
    assert (e.value.code, e.value.field) == ("weak_passcode", "passcode")


@pytest.mark.parametrize("passcode", ["246810", "135790", "111222", "120456", "859034", "000001", "192837"])
def test_other_passcodes_pass(passcode):
    assert passcodes.check_strength(passcode, born=BORN, username=PID) == passcode


def test_date_forms_of_a_two_digit_day_and_month():
    forms = passcodes.date_forms(dt.date(1990, 12, 25))
    assert {"251290", "122590", "901225", "902512", "251219", "121990", "199012", "251990", "199025"} == forms
