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


@settings(max_examples=300, deadline=None)
@given(st.lists(name, min_size=1, max_size=20), st.booleans())
def test_vectorised_fold_matches_the_reference(full_names, decompose):
    if decompose:
        full_names = [unicodedata.normalize("NFD", n) for n in full_names]
    nfc = [names.normalize(n) for n in full_names]
    arr = pa.array(nfc, pa.string())
    assert _fold(arr).to_pylist() == [names.fold(n) for n in nfc]
