"""Unit and property tests for ``dinhdanh.ids.names`` (Vietnamese personal names)."""

from __future__ import annotations

import re
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dinhdanh.ids import names
from dinhdanh.ids.exceptions import InvalidFormat, ValidationError
from dinhdanh.ids.names import NameParts

# --- the Vietnamese alphabet -----------------------------------------------------------------------

# Twelve vowels and their bare ASCII letter.
VOWELS = {"a": "a", "ă": "a", "â": "a", "e": "e", "ê": "e", "i": "i",
          "o": "o", "ô": "o", "ơ": "o", "u": "u", "ư": "u", "y": "y"}
# Level tone (no mark), huyền, sắc, ngã, hỏi, nặng.
TONES = ["", "\u0300", "\u0301", "\u0303", "\u0309", "\u0323"]


def _toned(vowel: str, tone: str) -> str:
    return unicodedata.normalize("NFC", vowel + tone)


TONED_VOWELS: dict[str, str] = {}
for _v, _base in VOWELS.items():
    for _t in TONES:
        TONED_VOWELS[_toned(_v, _t)] = _base
        TONED_VOWELS[_toned(_v.upper(), _t)] = _base

CONSONANTS = "bcdđghklmnpqrstvx"
VIETNAMESE_LETTERS = (
    "".join(TONED_VOWELS) + CONSONANTS + CONSONANTS.upper() + "fjwz" + "FJWZ"
)


def test_toned_vowel_set_is_complete():
    assert len(TONED_VOWELS) == 12 * 6 * 2
    assert all(len(ch) == 1 for ch in TONED_VOWELS), "every toned vowel has a precomposed form"
    assert len({ch for ch in TONED_VOWELS if ch.islower()}) == 72
    assert len({ch for ch in TONED_VOWELS if ch.isupper()}) == 72
    assert "ặ" in TONED_VOWELS and "Ữ" in TONED_VOWELS and "ỵ" in TONED_VOWELS


# --- fold --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ch,base", sorted(TONED_VOWELS.items()))
def test_fold_every_toned_vowel(ch, base):
    assert names.fold(ch) == base
    assert names.fold(unicodedata.normalize("NFD", ch)) == base
    assert names.transliterate(ch) == base.upper()


@pytest.mark.parametrize("ch", ["Đ", "đ"])
def test_fold_d_with_stroke(ch):
    assert names.fold(ch) == "d"
    assert names.transliterate(ch) == "D"
    assert names.fold(ch + "ặng") == "dang"


def test_fold_examples():
    assert names.fold("ĐẶNG  văn   Đức") == "dang van duc"
    assert names.fold("Nguyễn Thị Minh Khai") == "nguyen thi minh khai"
    assert names.fold("Trương Mỹ Lan") == "truong my lan"
    assert names.fold("Phạm Nhật Vượng") == "pham nhat vuong"
    assert names.fold("Hoà") == names.fold("Hòa") == "hoa"  # old and new tone placement


def test_fold_separators():
    assert names.fold("H'Hen Niê") == "h hen nie"
    assert names.fold("H’Hen Niê") == "h hen nie"
    assert names.fold("Bà Rịa - Vũng Tàu") == "ba ria vung tau"
    assert names.fold("a.b,c_d") == "a b c d"
    assert names.fold("  \t\n ") == ""
    assert names.fold("") == ""


def test_fold_keeps_digits_and_other_scripts():
    assert names.fold("Văn 3") == "van 3"
    assert names.fold("ΑΒΓ") == "αβγ"


word = st.text(alphabet=VIETNAMESE_LETTERS, min_size=1, max_size=8)
vietnamese_name = st.lists(word, min_size=1, max_size=6).map(" ".join)
whitespace = st.text(alphabet=" \t\n\u00a0\u3000", min_size=1, max_size=3)


@settings(max_examples=300)
@given(vietnamese_name)
def test_fold_nfd_equals_nfc(name):
    nfc = unicodedata.normalize("NFC", name)
    nfd = unicodedata.normalize("NFD", name)
    assert names.fold(nfd) == names.fold(nfc)
    assert names.match_key(nfd) == names.match_key(nfc)
    assert names.transliterate(nfd) == names.transliterate(nfc)


@settings(max_examples=300)
@given(vietnamese_name)
def test_fold_output_is_lower_ascii(name):
    folded = names.fold(name)
    assert folded.isascii()
    assert re.fullmatch(r"[a-z]+( [a-z]+)*", folded)
    assert len(folded.split(" ")) == len(name.split(" "))


@settings(max_examples=300)
@given(vietnamese_name)
def test_fold_case_insensitive(name):
    assert names.fold(name.upper()) == names.fold(name.lower()) == names.fold(name)
    assert names.fold(name.swapcase()) == names.fold(name)


@settings(max_examples=200)
@given(st.lists(word, min_size=1, max_size=5), st.data())
def test_fold_whitespace_insensitive(words, data):
    gaps = [data.draw(whitespace) for _ in range(len(words) + 1)]
    spaced = gaps[0] + "".join(w + g for w, g in zip(words, gaps[1:]))
    assert names.fold(spaced) == names.fold(" ".join(words))
    assert names.match_key(spaced) == names.match_key(" ".join(words))


@settings(max_examples=300)
@given(st.one_of(vietnamese_name, st.text()))
def test_fold_idempotent(text):
    once = names.fold(text)
    assert names.fold(once) == once


@settings(max_examples=200)
@given(st.text())
def test_fold_never_leaves_combining_marks_or_runs_of_space(text):
    folded = names.fold(text)
    assert not any(unicodedata.combining(c) for c in folded)
    assert "  " not in folded
    assert folded == folded.strip()


@settings(max_examples=200)
@given(vietnamese_name)
def test_fold_agrees_with_a_reference(name):
    def reference(text: str) -> str:
        text = unicodedata.normalize("NFD", text).replace("Đ", "d").replace("đ", "d")
        text = "".join(c for c in text if not unicodedata.combining(c))
        return " ".join(text.lower().split())

    assert names.fold(name) == reference(name)


# --- normalize and match_key -----------------------------------------------------------------------


def test_normalize():
    assert names.normalize("  Nguyễn   Thị  Mai ") == "Nguyễn Thị Mai"
    assert names.normalize("Nguye\u0302\u0303n") == "Nguyễn"
    assert names.normalize("NGUYỄN\tthị") == "NGUYỄN thị"


def test_match_key_keeps_diacritics():
    assert names.match_key("Nguyễn Thị Mai") != names.match_key("Nguyen Thi Mai")
    assert names.match_key("Đức") != names.match_key("Dức")
    assert names.match_key("Lê") != names.match_key("Lễ")
    assert names.match_key("Nguyễn Thị Mai") == "nguyễn thị mai"


def test_match_key_ignores_case_and_spacing():
    assert names.match_key("NGUYỄN  thị   MAI") == names.match_key("Nguyễn Thị Mai")
    assert names.match_key(" ĐẶNG\tVĂN\nĐỨC ") == "đặng văn đức"
    assert names.match_key("Nguye\u0302\u0303n") == names.match_key("Nguyễn")


@settings(max_examples=200)
@given(vietnamese_name)
def test_match_key_properties(name):
    key = names.match_key(name)
    assert key == names.match_key(name.upper()) == names.match_key(name.lower())
    assert names.match_key(key) == key
    assert unicodedata.is_normalized("NFC", key)
    # a folded match_key is the fold
    assert names.fold(key) == names.fold(name)


# --- transliterate -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name,expected",
    [
        ("Đặng Thị Ngọc Ánh", "DANG THI NGOC ANH"),
        ("Nguyễn Thị Minh Khai", "NGUYEN THI MINH KHAI"),
        ("Trần Hưng Đạo", "TRAN HUNG DAO"),
        ("  Lý   Thường  Kiệt ", "LY THUONG KIET"),
        ("H'Hen Niê", "H HEN NIE"),
        ("Ksor Ơi", "KSOR OI"),
        ("Nguyễn Phúc Ưng Lịch", "NGUYEN PHUC UNG LICH"),
    ],
)
def test_transliterate_examples(name, expected):
    assert names.transliterate(name) == expected


@settings(max_examples=300)
@given(vietnamese_name)
def test_transliterate_is_upper_ascii_and_spaces(name):
    out = names.transliterate(name)
    assert re.fullmatch(r"[A-Z]+( [A-Z]+)*", out)
    assert out == names.fold(name).upper()


# --- split ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name,parts",
    [
        ("Mai", ("", "", "Mai")),
        ("Nguyễn Mai", ("Nguyễn", "", "Mai")),
        ("Nguyễn Thị Mai", ("Nguyễn", "Thị", "Mai")),
        ("Nguyễn Thị Minh Khai", ("Nguyễn", "Thị Minh", "Khai")),
        ("Nguyễn Văn Thanh Tùng Anh", ("Nguyễn", "Văn Thanh Tùng", "Anh")),
        ("  nguyễn   thị   mai ", ("nguyễn", "thị", "mai")),
        ("Tôn Thất Thuyết", ("Tôn Thất", "", "Thuyết")),
        ("Tôn Thất Đạm Anh", ("Tôn Thất", "Đạm", "Anh")),
        ("Tôn Nữ Thị Ninh", ("Tôn Nữ", "Thị", "Ninh")),
        ("TÔN NỮ THỊ NINH", ("TÔN NỮ", "THỊ", "NINH")),
        ("Nguyễn Phúc Vĩnh Lộc", ("Nguyễn Phúc", "Vĩnh", "Lộc")),
        ("Âu Dương Phong", ("Âu Dương", "", "Phong")),
        ("Hoàng Phủ Ngọc Tường", ("Hoàng Phủ", "Ngọc", "Tường")),
        ("Tư Mã Ý", ("Tư Mã", "", "Ý")),
        ("Gia Cát Lượng", ("Gia Cát", "", "Lượng")),
        # two words: the first is the surname even when it starts a compound
        ("Tôn Thất", ("Tôn", "", "Thất")),
        # not a compound surname
        ("Tôn Đức Thắng", ("Tôn", "Đức", "Thắng")),
        ("Nguyễn Văn Phúc", ("Nguyễn", "Văn", "Phúc")),
    ],
)
def test_split(name, parts):
    assert names.split(name) == NameParts(*parts)


def test_split_nfd_input():
    nfd = unicodedata.normalize("NFD", "Tôn Nữ Thị Ninh")
    assert names.split(nfd) == NameParts("Tôn Nữ", "Thị", "Ninh")


@pytest.mark.parametrize("name", ["", "   ", "\t\n"])
def test_split_empty(name):
    with pytest.raises(InvalidFormat):
        names.split(name)


@settings(max_examples=200)
@given(st.lists(word, min_size=1, max_size=6))
def test_split_reassembles(words):
    parts = names.split(" ".join(words))
    joined = " ".join(p for p in (parts.surname, parts.middle, parts.given) if p)
    assert joined == unicodedata.normalize("NFC", " ".join(words))
    assert parts.given == unicodedata.normalize("NFC", words[-1])
    if len(words) >= 2:
        assert parts.surname


# --- validate ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "H'Hen Niê",
        "Nguyễn Thị Minh Khai",
        "Mai",
        "Y-Moan Ênuôl",
        "Đinh Thị Hoa",
        "Nguyễn Văn A",
        "Tôn Nữ Thị Ninh",
        "Ksor H'Luôn",
        "Mary-Jane O'Neil",
        "J.R.Smith",
        "Ông Ích Khiêm",
        "Иван Петров",
        "王 小明",
    ],
)
def test_validate_accepts(name):
    assert names.validate(name) == name


def test_validate_normalises():
    assert names.validate("  Nguyễn   Thị\tMai ") == "Nguyễn Thị Mai"
    nfd = unicodedata.normalize("NFD", "Nguyễn Thị Mai")
    assert names.validate(nfd) == "Nguyễn Thị Mai"
    assert unicodedata.is_normalized("NFC", names.validate(nfd))


def test_ideographs_that_count_as_numerals_are_letters_of_a_name():
    """Hypothesis found '㠪' accepted while the fuzz test asked for no ``isnumeric`` character: '五'
    (five), '一' (one) are letters (category Lo) that names are written with ('五郎'), numerals only
    in Unihan's tables. A name in its own script keeps them; numbers proper stay refused (below)."""
    for name in ("五郎", "一郎", "㠪"):
        assert names.validate(name) == name


@pytest.mark.parametrize(
    "name,bad",
    [
        ("Nguyễn Văn 3", "3"),
        ("Nguyen1", "1"),
        ("Lê ٣", "٣"),
        ("Lê ３", "３"),
        ("Lê Văn²", "²"),  # superscript two
        ("Lê ½", "½"),
        ("Lê Ⅻ", "Ⅻ"),  # Roman numeral twelve
        ("Mai_Anh", "_"),
        ("Mai@Anh", "@"),
        ("Mai, Anh", ","),
        ("Mai!", "!"),
    ],
)
def test_validate_rejects_non_letters(name, bad):
    with pytest.raises(InvalidFormat) as exc:
        names.validate(name)
    message = str(exc.value)
    assert "not a letter" in message
    assert repr(bad) in message
    assert "\n" not in message


@pytest.mark.parametrize("name", ["", "   ", "\t\n"])
def test_validate_rejects_empty(name):
    with pytest.raises(InvalidFormat, match="empty"):
        names.validate(name)


def test_validate_length_limit():
    assert names.validate("A" * 100) == "A" * 100
    with pytest.raises(InvalidFormat, match="longer than 100"):
        names.validate("A" * 101)
    long_name = " ".join(["Nguyễn"] * 15)  # 104 characters
    with pytest.raises(InvalidFormat, match="100"):
        names.validate(long_name)


@pytest.mark.parametrize(
    "name",
    ["-Mai", "Mai-", "'Mai", "Mai'", ".Mai", "Mai.", "Nguyễn Văn A.", "Mai--Anh", "Mai '-Anh",
     "Mai - Anh", "-", "'", "."],
)
def test_validate_rejects_separator_not_between_letters(name):
    with pytest.raises(InvalidFormat) as exc:
        names.validate(name)
    assert "separator" in str(exc.value)


@pytest.mark.parametrize("value", [None, 42, b"Mai", ["Mai"], 3.5])
def test_validate_rejects_non_text(value):
    with pytest.raises(InvalidFormat, match="not text"):
        names.validate(value)


@settings(max_examples=300)
@given(vietnamese_name)
def test_validate_accepts_vietnamese_names(name):
    if len(name) <= 100:
        assert names.validate(name) == unicodedata.normalize("NFC", name)


@settings(max_examples=300)
@given(st.text(max_size=120))
def test_validate_fuzz(text):
    try:
        out = names.validate(text)
    except ValidationError as e:
        assert isinstance(e, InvalidFormat)
        assert str(e) and "\n" not in str(e)
    else:
        assert out == names.normalize(text)
        assert 0 < len(out) <= 100
        # no number of any kind (digits, numerals as '²', '½', 'Ⅻ': Unicode's N categories); an
        # ideograph that also counts as a numeral ('五', '㠪': ``isnumeric``) is a letter (Lo)
        assert not any(unicodedata.category(c)[0] == "N" for c in out)
        assert all(c.isalpha() or c in " '-." for c in out)
        assert out[0].isalpha() and out[-1].isalpha()
