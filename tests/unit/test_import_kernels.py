"""The importer's vectorised name kernels must agree with ``dinhdanh.ids.names`` exactly."""

from __future__ import annotations

import unicodedata

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from dinhdanh.ids import names
from dinhdanh.population.importer import _fold, _split

VIETNAMESE = "aăâbcdđeêghiklmnoôơpqrstuưvxyàáảãạằắẳẵặầấẩẫậèéẻẽẹềếểễệìíỉĩịòóỏõọồốổỗộờớởỡợùúủũụừứửữựỳýỷỹỵ"
LETTERS = VIETNAMESE + VIETNAMESE.upper() + "ÐðøßŁłİ"
word = st.text(alphabet=LETTERS, min_size=1, max_size=8)
name = st.lists(word, min_size=1, max_size=5).map(" ".join)


@settings(max_examples=300, deadline=None)
@given(st.lists(name, min_size=1, max_size=20), st.booleans())
def test_vectorised_fold_and_split_match_the_reference(full_names, decompose):
    if decompose:
        full_names = [unicodedata.normalize("NFD", n) for n in full_names]
    nfc = [names.normalize(n) for n in full_names]
    arr = pa.array(nfc, pa.string())
    assert _fold(arr).to_pylist() == [names.fold(n) for n in nfc]
    surname, middle, given_ = _split(arr)
    expected = [names.split(n) for n in nfc]
    assert surname.to_pylist() == [p.surname for p in expected]
    assert middle.to_pylist() == [p.middle for p in expected]
    assert given_.to_pylist() == [p.given for p in expected]


def test_compound_surnames_take_the_reference_path():
    arr = pa.array(["Tôn Thất Thuyết", "Âu Dương Phong", "Nguyễn Văn An", "An"], pa.string())
    surname, middle, given_ = _split(arr)
    assert surname.to_pylist() == ["Tôn Thất", "Âu Dương", "Nguyễn", ""]
    assert given_.to_pylist() == ["Thuyết", "Phong", "An", "An"]
