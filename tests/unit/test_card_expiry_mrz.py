"""Cards that do not expire: the MRZ carries 991231 (ICAO 9303 has no "no expiry" in the MRZ),
independent readers accept it, and an expiry of fillers is refused by them and by us."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from mrz.checker.td1 import TD1CodeChecker  # the PyPI ``mrz`` package, an independent reader
from typer.testing import CliRunner

from dinhdanh.cli import app
from dinhdanh.ids import mrz
from dinhdanh.ids.lds import dg1

ELDER = dict(pid="001060012345", date_of_birth=dt.date(1960, 5, 6), sex="male", expiry_date=None,
             full_name="Đặng Văn Đức")


def _with_expiry(lines, field: str) -> tuple[str, str, str]:
    """The same MRZ with another expiry field (7 characters with its check), composite redone."""
    l1, l2, l3 = lines
    l2 = l2[:8] + field + l2[15:29]
    return l1, l2 + mrz.calc_check_digit(l1[5:30] + l2[0:7] + l2[8:15] + l2[18:29]), l3


def test_a_card_without_expiry_carries_991231_and_the_pypi_checker_accepts_it():
    lines = mrz.build_vn_card(**ELDER)
    assert lines[1][8:15] == "9912315"
    checker = TD1CodeChecker("\n".join(lines))
    assert bool(checker), checker.report.falses
    assert checker.fields().expiry_date == "991231"
    ours = mrz.validate(lines)
    assert (ours.expiry_date, ours.pid, ours.valid) == ("991231", "001060012345", True)
    assert dg1.decode(dg1.encode(lines)) == lines


@pytest.mark.parametrize("field", ["<<<<<<<", "<<<<<<0"])
def test_an_expiry_of_fillers_is_refused_by_the_pypi_checker_and_by_ours(field):
    lines = _with_expiry(mrz.build_vn_card(**ELDER), field)
    assert not TD1CodeChecker("\n".join(lines))
    assert not mrz.is_valid(lines)
    assert {"check": "expiry_date", "expected": "YYMMDD", "found": "<<<<<<"} in mrz.parse(lines).errors


def test_mrz_check_cli_refuses_an_expiry_of_fillers_and_accepts_991231():
    runner = CliRunner()
    good = mrz.build_vn_card(**ELDER)
    ok = runner.invoke(app, ["mrz", "check", *good])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["expiry_date"] == "991231"
    bad = runner.invoke(app, ["mrz", "check", *_with_expiry(good, "<<<<<<<")])
    assert bad.exit_code == 1
    out = json.loads(bad.stdout)
    assert out["valid"] is False
    assert out["errors"] == [{"check": "expiry_date", "expected": "YYMMDD", "found": "<<<<<<"}]


def test_agrees_with_the_pypi_checker_on_dated_cards():
    for expiry in (dt.date(2026, 1, 2), dt.date(2045, 12, 31)):
        lines = mrz.build_vn_card(**{**ELDER, "expiry_date": expiry, "date_of_birth": dt.date(2001, 1, 2)})
        assert bool(TD1CodeChecker("\n".join(lines))) and mrz.is_valid(lines)


@pytest.mark.parametrize("mrz_expiry, dg13_expiry, consistent", [
    (None, "Không thời hạn", True),                         # 991231 in the MRZ, the text in DG13
    (dt.date(2035, 5, 6), "Không thời hạn", False),         # a dated MRZ and a card said not to expire
    (None, "06/05/2035", False),                            # 991231 and a real date in DG13
    (dt.date(2035, 5, 6), "06/05/2035", True),
])
def test_dg1_and_dg13_agree_on_a_card_that_does_not_expire(mrz_expiry, dg13_expiry, consistent):
    from dinhdanh.ids import mrz as mrzfmt
    from dinhdanh.ids.lds import dg1, dg13, passive

    lines = mrzfmt.build_vn_card(pid="001060012345", date_of_birth=dt.date(1960, 5, 6), sex="male",
                                 expiry_date=mrz_expiry, full_name="Đặng Văn Đức")
    personal = dg13.VnPersonalData(pid="001060012345", full_name="Đặng Văn Đức", date_of_birth="06/05/1960",
                                   sex="Nam", nationality="Việt Nam", expiry_date=dg13_expiry)
    report = passive.consistency(dg1.encode(lines), dg13.encode(personal))
    assert report["status"] == ("consistent" if consistent else "inconsistent"), report
    if not consistent:
        assert [m["field"] for m in report["mismatches"]] == ["expiry_date"]
