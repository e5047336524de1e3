"""A card issued at 60 or older: the register says it never expires, its MRZ (printed and in the
chip's DG1) carries 991231 as ICAO 9303 wants a date there, and independent readers accept it."""

from __future__ import annotations

import datetime as dt

import pytest
from mrz.checker.td1 import TD1CodeChecker  # the PyPI ``mrz`` package

from dinhdanh.cards import lifecycle, pki
from dinhdanh.cards.production import NO_EXPIRY as PRINTED_NO_EXPIRY
from dinhdanh.ids import mrz
from dinhdanh.ids.lds import dg1, dg13
from dinhdanh.population.importer import import_population
from tests import chips
from tests.chips import NATIONAL
from tests.support import write_people

ELDER = "001055000008"  # born 1955: 60 or older on any day these tests run
ELDER_ROW = ("001055000008", "Đặng Văn Thọ", "1955-05-06", "male", "01", "00070", "0100000009", "head",
             "", "", "", "single")


@pytest.fixture(autouse=True)
def _fresh_caches():
    chips.reset_caches()
    yield
    chips.reset_caches()


@pytest.fixture
def vault():
    return chips.new_vault()


@pytest.fixture
def register(engine, vault, tmp_path):
    report = import_population(engine, write_people(tmp_path / "elder.csv", [ELDER_ROW]))
    assert report.loaded == 1, report
    with engine.begin() as conn:
        pki.init_pki(conn, vault)
    return engine


def test_a_card_issued_at_60_or_older_never_expires_and_its_mrz_reads_everywhere(register, vault):
    card = chips.issue(register, vault, ELDER)
    # the register's meaning: no expiry, on the record, the printed card and DG13
    assert card.expiry_date is None
    assert card.printed["expiry_date"] == PRINTED_NO_EXPIRY == "Không thời hạn"
    assert dg13.decode(card.dg13).expiry_date == "Không thời hạn"
    view = lifecycle.card_view(card, today=dt.date(2150, 1, 1))
    assert (view["expiry_date"], view["status"]) == (None, "issued")  # long after 2099: still valid

    # the MRZ: 991231 and its check digit 5, as on the Ministry's cards
    lines = tuple(card.mrz.split("\n"))
    assert lines[1][8:15] == "9912315"
    checker = TD1CodeChecker(card.mrz)
    assert bool(checker), checker.report.falses
    assert (checker.fields().expiry_date, checker.fields().birth_date) == ("991231", "550506")
    ours = mrz.validate(lines)
    assert (ours.pid, ours.expiry_date, ours.date_of_birth) == (ELDER, mrz.NO_EXPIRY, "550506")

    # the chip's DG1 holds the same MRZ, and the chip passes verification (DG1 agrees with DG13)
    assert dg1.decode(card.dg1) == lines
    report = chips.verify(register, chips.files_of(card, vault))
    assert report["verdict"] == "valid", report["failures"]
    assert report["consistency"] == {"status": "consistent", "mismatches": []}
    assert report["register"]["card"] == "current"
