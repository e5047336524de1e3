"""The importer's vectorised name key must agree with ``dinhdanh.ids.names.fold`` exactly."""

from __future__ import annotations

import unicodedata

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from dinhdanh.ids import names
from dinhdanh.population.importer import _fold

VIETNAMESE = "aăâbcdđeêghiklmnoôơpqrstuưvxyàáảãạằắẳẵặầấẩẫậèéẻẽẹềếểễệìíỉĩịòóỏõọồốổỗộờớởỡợùúủũụừứửữựỳýỷỹỵ"
LETTERS = VIETNAMESE + VIETNAMESE.upper() + "ÐðøßŁłİ"
word = st.text(alphabet=LETTERS, min_size=1, max_size=8)
name = st.lists(word, min_size=1, max_size=5).map(" ".join)
SEPARATORS = st.sampled_from([" ", "  ", "-", " - ", "'", "’", ".", ". ", ",", "_", "\t"])
# names as files carry them: separators of every kind, at either end, marks after a separator
odd_name = st.lists(st.one_of(word, SEPARATORS, st.sampled_from(["\u0301", "\u0323", "\u00a0", "x\u0301", "1"])),
                    min_size=1, max_size=9).map("".join)


@settings(max_examples=300, deadline=None)
@given(st.lists(name, min_size=1, max_size=20), st.booleans())
def test_vectorised_fold_matches_the_reference(full_names, decompose):
    if decompose:
        full_names = [unicodedata.normalize("NFD", n) for n in full_names]
    nfc = [names.normalize(n) for n in full_names]
    arr = pa.array(nfc, pa.string())
    assert _fold(arr).to_pylist() == [names.fold(n) for n in nfc]


@settings(max_examples=500, deadline=None)
@given(st.lists(st.one_of(name, odd_name), min_size=1, max_size=20), st.booleans(), st.booleans())
def test_vectorised_fold_matches_the_reference_with_any_separators(full_names, nfc, with_null):
    if nfc:
        full_names = [unicodedata.normalize("NFC", n) for n in full_names]
    arr = pa.array(full_names + ([None] if with_null else []), pa.string())
    assert _fold(arr).to_pylist() == [names.fold(n) for n in full_names] + ([None] if with_null else [])
    assert _fold(arr.slice(1)).to_pylist() == _fold(arr).to_pylist()[1:]  # a slice of a batch


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.none(), st.dates()), max_size=30))
def test_dates_are_written_as_iso_text(dates):
    import datetime as dt

    from dinhdanh.population.importer import _iso

    got = _iso(pa.array(dates, pa.date32())).to_pylist()
    assert got == [None if d is None else d.isoformat() for d in dates]
    assert _iso(pa.array([dt.date(1, 1, 1), dt.date(999, 12, 31)], pa.date32())).to_pylist() == [
        "0001-01-01", "0999-12-31"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(max_size=6)), max_size=12), st.integers(0, 5), st.integers(0, 5))
def test_a_nul_anywhere_is_found(values, start, length):
    from dinhdanh.population.importer import _has_nul

    arr = pa.array(values, pa.string())
    window = arr.slice(start, length)  # a slice shares the whole text buffer: only its own text counts
    assert _has_nul(arr) == any(v is not None and "\x00" in v for v in values)
    assert _has_nul(window) == any(v is not None and "\x00" in v for v in window.to_pylist())
    assert _has_nul(pa.nulls(3, pa.string())) is False


SPACES = " \t\n\r\x0b\x0c\u00a0\u1680\u2000\u2003\u200a\u2028\u2029\u202f\u205f\u3000\u200b\u180e\ufeff\x85"


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(alphabet=SPACES, max_size=4),
                          st.text(alphabet=SPACES + "aĐ", max_size=5)), max_size=15))
def test_blank_cells_become_null_exactly_as_trimming_said(values):
    import pyarrow.compute as pc

    from dinhdanh.population.importer import _blank_as_null

    arr = pa.array(values, pa.string())
    trimmed_empty = pc.if_else(pc.equal(pc.utf8_trim_whitespace(arr), ""), pa.scalar(None, pa.string()), arr)
    assert _blank_as_null(arr).to_pylist() == trimmed_empty.to_pylist()
