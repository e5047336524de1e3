"""The vectorised name keys of batch matching agree with ``names.match_key`` and ``names.fold``."""

from __future__ import annotations

import unicodedata

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from dinhdanh.exchange import keys
from dinhdanh.ids import names

VIETNAMESE = "aăâbcdđeêghiklmnoôơpqrstuưvxyAĂÂBCDĐEÊGHIKLMNOÔƠPQRSTUƯVXY" + "àáảãạằắẳẵặầấẩẫậèéẻẽẹềếểễệìíỉĩịòóỏõọồốổỗộờớởỡợùúủũụừứửữựỳýỷỹỵ"
MARKS = "\u0300\u0301\u0303\u0309\u0323\u0302\u0306\u031b"
name_text = st.text(alphabet=st.sampled_from(VIETNAMESE + MARKS + "  \t-'’._,ßſÐðǅ\u00a0\u2028İ"), max_size=30)
forms = st.sampled_from(["NFC", "NFD", "NFKC", None])


def check(values: list[str | None]) -> None:
    arr = pa.array(values, pa.string())
    assert keys.match_key(arr).to_pylist() == [None if v is None else names.match_key(v) for v in values]
    assert keys.fold(arr).to_pylist() == [None if v is None else names.fold(v) for v in values]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(name_text, forms), max_size=20))
def test_vietnamese_like_text(items):
    check([v if f is None else unicodedata.normalize(f, v) for v, f in items])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(max_size=20)), max_size=20))
def test_any_text(values):
    check(values)


def test_known_cases():
    check(["I\u0307", "NGUYỄN  văn an", unicodedata.normalize("NFD", "Trần Thị Bình"), " Đặng-Văn  Đức ", "Straße",
           "a\u2028b", "", None, "ǅuro", "İstanbul", "Σίσυφος"])
    assert keys.match_key(pa.array(["NGUYỄN  văn an"])).to_pylist() == ["nguyễn văn an"]
    assert keys.fold(pa.array(["Nguyễn Văn Đức"])).to_pylist() == ["nguyen van duc"]
