"""Unit and property tests for ``dinhdanh.ids.pid`` (personal identification number)."""

from __future__ import annotations

import datetime as dt
import random
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dinhdanh.ids import pid
from dinhdanh.ids.exceptions import (
    InvalidComponent,
    InvalidFormat,
    InvalidLength,
    ValidationError,
)

# Province codes as written in domain.md section 2 (an independent copy of the table).
DOMAIN_PROVINCES = {
    "001": "Hà Nội", "002": "Hà Giang", "004": "Cao Bằng", "006": "Bắc Kạn", "008": "Tuyên Quang",
    "010": "Lào Cai", "011": "Điện Biên", "012": "Lai Châu", "014": "Sơn La", "015": "Yên Bái",
    "017": "Hòa Bình", "019": "Thái Nguyên", "020": "Lạng Sơn", "022": "Quảng Ninh",
    "024": "Bắc Giang", "025": "Phú Thọ", "026": "Vĩnh Phúc", "027": "Bắc Ninh", "030": "Hải Dương",
    "031": "Hải Phòng", "033": "Hưng Yên", "034": "Thái Bình", "035": "Hà Nam", "036": "Nam Định",
    "037": "Ninh Bình", "038": "Thanh Hóa", "040": "Nghệ An", "042": "Hà Tĩnh",
    "044": "Quảng Bình", "045": "Quảng Trị", "046": "Thừa Thiên Huế", "048": "Đà Nẵng",
    "049": "Quảng Nam", "051": "Quảng Ngãi", "052": "Bình Định", "054": "Phú Yên",
    "056": "Khánh Hòa", "058": "Ninh Thuận", "060": "Bình Thuận", "062": "Kon Tum",
    "064": "Gia Lai", "066": "Đắk Lắk", "067": "Đắk Nông", "068": "Lâm Đồng", "070": "Bình Phước",
    "072": "Tây Ninh", "074": "Bình Dương", "075": "Đồng Nai", "077": "Bà Rịa - Vũng Tàu",
    "079": "Hồ Chí Minh", "080": "Long An", "082": "Tiền Giang", "083": "Bến Tre",
    "084": "Trà Vinh", "086": "Vĩnh Long", "087": "Đồng Tháp", "089": "An Giang",
    "091": "Kiên Giang", "092": "Cần Thơ", "093": "Hậu Giang", "094": "Sóc Trăng",
    "095": "Bạc Liêu", "096": "Cà Mau",
}
FOREIGN = [f"{c:03d}" for c in range(101, 296)]
UNKNOWN = sorted(
    f"{c:03d}" for c in range(1000) if f"{c:03d}" not in DOMAIN_PROVINCES and not 101 <= c <= 295
)
ALL_PLACES = sorted(DOMAIN_PROVINCES) + FOREIGN

ASCII12 = re.compile(r"[0-9]{12}")
FAR_FUTURE = dt.date(2400, 1, 1)


def make(place: str = "001", g: int = 0, yy: int = 95, serial: str = "012345") -> str:
    return f"{place}{g}{yy:02d}{serial}"


# --- place codes ---------------------------------------------------------------------------------


def test_domain_table_has_63_codes():
    assert len(DOMAIN_PROVINCES) == 63


def test_module_province_table_matches_domain():
    assert pid.OLD_PROVINCES == DOMAIN_PROVINCES


@pytest.mark.parametrize("code,name", sorted(DOMAIN_PROVINCES.items()))
def test_every_province_code_decodes_to_its_name(code, name):
    info = pid.parse(make(code))
    assert info.place_code == code
    assert info.place_name == name
    assert info.foreign_birth is False
    assert pid.is_valid(make(code))


@pytest.mark.parametrize("code", ["101", "102", "150", "200", "294", "295"])
def test_foreign_codes_are_foreign_births(code):
    for strict in (True, False):
        info = pid.parse(make(code), strict=strict)
        assert info.foreign_birth is True
        assert info.place_name is None
        assert info.place_code == code


def test_all_foreign_codes_accepted_strict():
    for code in FOREIGN:
        assert pid.validate(make(code)) == make(code)


def test_foreign_code_range_bounds():
    assert pid.FOREIGN_CODES == range(101, 296)
    for code in ("100", "296"):
        with pytest.raises(InvalidComponent):
            pid.validate(make(code))


@pytest.mark.parametrize("code", ["000", "003", "005", "099", "100", "296", "500", "999"])
def test_unknown_place_code_strict_vs_lenient(code):
    number = make(code)
    with pytest.raises(InvalidComponent) as exc:
        pid.validate(number)
    assert code in str(exc.value)
    assert "place code" in str(exc.value)
    assert not pid.is_valid(number)
    assert pid.validate(number, strict=False) == number
    assert pid.is_valid(number, strict=False)
    info = pid.parse(number, strict=False)
    assert info.place_name is None
    assert info.foreign_birth is False
    assert info.place_code == code


def test_every_unknown_code_rejected_strict():
    for code in UNKNOWN:
        assert not pid.is_valid(make(code)), code
        assert pid.is_valid(make(code), strict=False), code


# --- century-and-sex digit -------------------------------------------------------------------------

G_TABLE = [
    # (G, sex, century start)
    (0, "male", 1900), (1, "female", 1900),
    (2, "male", 2000), (3, "female", 2000),
    (4, "male", 2100), (5, "female", 2100),
    (6, "male", 2200), (7, "female", 2200),
    (8, "male", 2300), (9, "female", 2300),
]


@pytest.mark.parametrize("g,sex,century", G_TABLE)
def test_g_digit_decodes(g, sex, century):
    for yy in (0, 1, 45, 99):
        info = pid.parse(make("001", g, yy), strict=False)
        assert info.sex == sex
        assert info.birth_year == century + yy
        # strict accepts it when "today" is late enough
        assert pid.validate(make("001", g, yy), today=FAR_FUTURE) == make("001", g, yy)


@pytest.mark.parametrize("g,sex,century", G_TABLE)
def test_g_digit_encodes(g, sex, century):
    for yy in (0, 37, 99):
        assert pid.century_sex_digit(sex, century + yy) == g
        number = pid.generate("001", sex, century + yy, serial=7)
        assert number[3] == str(g)
        assert number[4:6] == f"{yy:02d}"


def test_g_rules_spelled_out():
    assert pid.parse(make(g=0, yy=95)).birth_year == 1995
    assert pid.parse(make(g=0, yy=95)).sex == "male"
    assert pid.parse(make(g=1, yy=0)).birth_year == 1900
    assert pid.parse(make(g=1, yy=0)).sex == "female"
    assert pid.parse(make(g=2, yy=5)).birth_year == 2005
    assert pid.parse(make(g=2, yy=5)).sex == "male"
    assert pid.parse(make(g=3, yy=1)).birth_year == 2001
    assert pid.parse(make(g=3, yy=1)).sex == "female"


@given(st.integers(0, 9))
def test_female_iff_g_odd(g):
    info = pid.parse(make("079", g, 0), strict=False)
    assert (info.sex == "female") == (g % 2 == 1)


@pytest.mark.parametrize("year", [1899, 2400, 0, -1, 10_000])
def test_century_sex_digit_rejects_years(year):
    with pytest.raises(InvalidComponent):
        pid.century_sex_digit("male", year)


@pytest.mark.parametrize("sex", ["M", "F", "Nam", "Nữ", "", "MALE", None, 1])
def test_century_sex_digit_rejects_sex(sex):
    with pytest.raises(InvalidComponent):
        pid.century_sex_digit(sex, 1990)


# --- generate / parse round trip -----------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    place=st.sampled_from(ALL_PLACES),
    sex=st.sampled_from(["male", "female"]),
    year=st.integers(1900, 2025),
    serial=st.integers(0, 999_999),
)
def test_round_trip_generate_parse(place, sex, year, serial):
    number = pid.generate(place, sex, year, serial=serial)
    assert ASCII12.fullmatch(number)
    assert pid.validate(number, today=dt.date(2025, 12, 31)) == number
    info = pid.parse(number)
    assert info.pid == number
    assert info.place_code == place
    assert info.sex == sex
    assert info.birth_year == year
    assert info.serial == f"{serial:06d}"
    assert info.foreign_birth == (101 <= int(place) <= 295)
    assert info.place_name == (None if info.foreign_birth else DOMAIN_PROVINCES[place])
    assert info.as_dict()["birth_year"] == year


@settings(max_examples=100, deadline=None)
@given(
    place=st.sampled_from(ALL_PLACES),
    sex=st.sampled_from(["male", "female"]),
    year=st.integers(1900, 2399),
    seed=st.integers(0, 2**32),
)
def test_round_trip_random_serial(place, sex, year, seed):
    number = pid.generate(int(place), sex, year, rng=random.Random(seed))
    assert ASCII12.fullmatch(number)
    # same seed, same number
    assert number == pid.generate(place, sex, year, rng=random.Random(seed))
    info = pid.parse(number, strict=False)
    assert (info.place_code, info.sex, info.birth_year) == (place, sex, year)


def test_generate_without_rng_is_random_and_valid():
    numbers = {pid.generate("001", "male", 1990) for _ in range(20)}
    assert len(numbers) > 1
    assert all(pid.is_valid(n) for n in numbers)


def test_generate_place_code_forms():
    assert pid.generate(1, "male", 1990, serial=1) == "001090000001"
    assert pid.generate("1", "male", 1990, serial=1) == "001090000001"
    assert pid.generate("01", "male", 1990, serial=1) == "001090000001"
    assert pid.generate(101, "female", 2001, serial=999_999) == "101301999999"


def test_generate_docstring_example():
    assert pid.generate("001", "female", 1995, serial=42) == "001195000042"


@pytest.mark.parametrize(
    "place", ["003", "999", 0, "000", "1000", -1, "abc", "", "٠٠١", "١٠١", "０１", True]
)
def test_generate_rejects_place(place):
    with pytest.raises(InvalidComponent):
        pid.generate(place, "male", 1990, serial=1)


@pytest.mark.parametrize("serial", [-1, 1_000_000, "42", 4.2, True])
def test_generate_rejects_serial(serial):
    with pytest.raises(InvalidComponent):
        pid.generate("001", "male", 1990, serial=serial)


@pytest.mark.parametrize("year", [1899, 2400, "1990", 1990.0])
def test_generate_rejects_year(year):
    with pytest.raises(InvalidComponent):
        pid.generate("001", "male", year, serial=1)


def test_generate_rejects_sex():
    with pytest.raises(InvalidComponent):
        pid.generate("001", "Nam", 1990, serial=1)


# --- compact and format ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "001095012345", "001 095 012345", "001.095.012345", "001-095-012345",
        "001 0 95 012345", " 001095012345 ", "0 0 1 0 9 5 0 1 2 3 4 5", "001\t095\t012345",
        "001. 095 -012345",
    ],
)
def test_compact_strips_separators(text):
    assert pid.compact(text) == "001095012345"
    assert pid.validate(text) == "001095012345"


def test_compact_keeps_other_characters():
    assert pid.compact("00A 095") == "00A095"


def test_compact_rejects_non_text():
    with pytest.raises(InvalidFormat):
        pid.compact(1095012345)


@given(st.text(alphabet=" .-\t", max_size=5), st.text(alphabet=" .-\t", max_size=5))
def test_separators_anywhere(pre, post):
    digits = "079301000123"
    text = pre + digits[:3] + post + digits[3:6] + pre + digits[6:] + post
    assert pid.validate(text) == digits


def test_format():
    assert pid.format("079301000123") == "079301000123"
    assert pid.format("079301000123", grouped=True) == "079 3 01 000123"
    assert pid.format("079 301 000 123", grouped=True) == "079 3 01 000123"
    assert pid.format("079-3-01-000123") == "079301000123"


@settings(max_examples=100)
@given(st.sampled_from(ALL_PLACES), st.integers(0, 9), st.integers(0, 99), st.integers(0, 999_999))
def test_format_grouped_round_trips(place, g, yy, serial):
    number = make(place, g, yy, f"{serial:06d}")
    grouped = pid.format(number, grouped=True)
    assert re.fullmatch(r"\d{3} \d \d{2} \d{6}", grouped)
    assert pid.compact(grouped) == number
    assert pid.validate(grouped, strict=False) == number


# --- length and format errors ----------------------------------------------------------------------


@pytest.mark.parametrize("strict", [True, False])
@pytest.mark.parametrize("text", ["00109501234", "0010950123456", "1", "0" * 24, "001 095 01234"])
def test_wrong_length(text, strict):
    with pytest.raises(InvalidLength) as exc:
        pid.validate(text, strict=strict)
    digits = len(pid.compact(text))
    assert f"{digits} digits" in str(exc.value)
    assert "12" in str(exc.value)
    assert not pid.is_valid(text, strict=strict)


@pytest.mark.parametrize("strict", [True, False])
@pytest.mark.parametrize("text", ["", "   ", " .-"])
def test_empty(text, strict):
    with pytest.raises(InvalidLength) as exc:
        pid.validate(text, strict=strict)
    assert "empty" in str(exc.value)


def test_invalid_length_is_a_format_error():
    assert issubclass(InvalidLength, InvalidFormat)
    assert issubclass(InvalidFormat, ValidationError)
    assert issubclass(InvalidComponent, ValidationError)
    assert issubclass(ValidationError, ValueError)


@pytest.mark.parametrize("strict", [True, False])
@pytest.mark.parametrize(
    "text,bad",
    [
        ("00109501234A", "A"),
        ("a01095012345", "a"),
        ("001095O12345", "O"),
        ("001095012345x", "x"),  # a letter wins over the length
        ("٠٠١٠٩٥٠١٢٣٤٥", "٠"),  # Arabic-Indic digits
        ("００１０９５０１２３４５", "０"),  # fullwidth digits
        ("00109501234٥", "٥"),
        ("00109501234５", "５"),
        ("001095012345\u00b2", "\u00b2"),  # superscript two: isdigit() but not a digit here
        ("001_095_012345", "_"),
        ("001/095/012345", "/"),
        ("+84001095012", "+"),
        ("00109501234\u0663", "\u0663"),
    ],
)
def test_non_digits(text, bad, strict):
    with pytest.raises(InvalidFormat) as exc:
        pid.validate(text, strict=strict)
    assert not isinstance(exc.value, InvalidLength)
    assert "not a digit" in str(exc.value)
    assert repr(bad) in str(exc.value)
    assert not pid.is_valid(text, strict=strict)


@pytest.mark.parametrize("value", [None, 1095012345, 1.0, b"001095012345", ["001095012345"]])
def test_non_text(value):
    with pytest.raises(InvalidFormat):
        pid.validate(value)
    assert pid.is_valid(value) is False
    assert pid.is_valid(value, strict=False) is False


# --- strict checks on the year ---------------------------------------------------------------------


def test_birth_year_after_today_rejected_in_strict():
    number = make("001", 2, 30)  # born 2030
    today = dt.date(2025, 7, 1)
    with pytest.raises(InvalidComponent) as exc:
        pid.validate(number, today=today)
    message = str(exc.value)
    assert "2030" in message and "2025" in message and "birth year" in message
    assert pid.validate(number, strict=False, today=today) == number
    assert pid.validate(number, today=dt.date(2030, 1, 1)) == number
    assert pid.validate(number, today=dt.date(2031, 1, 1)) == number


def test_birth_year_this_year_accepted():
    assert pid.validate(make("001", 3, 25), today=dt.date(2025, 1, 1)) == make("001", 3, 25)
    with pytest.raises(InvalidComponent):
        pid.validate(make("001", 3, 26), today=dt.date(2025, 12, 31))


def test_far_future_century_rejected_with_default_today():
    number = make("001", 9, 99)  # 2399
    assert not pid.is_valid(number)
    assert pid.is_valid(number, strict=False)
    assert pid.parse(number, strict=False).birth_year == 2399


@settings(max_examples=200)
@given(st.integers(0, 9), st.integers(0, 99), st.dates(dt.date(1900, 1, 1), dt.date(2399, 12, 31)))
def test_strict_year_rule(g, yy, today):
    number = make("079", g, yy)
    year = (19 + g // 2) * 100 + yy
    ok = year <= today.year
    try:
        pid.validate(number, today=today)
    except InvalidComponent:
        assert not ok
    else:
        assert ok
    assert pid.validate(number, strict=False, today=today) == number


# --- fuzzing ---------------------------------------------------------------------------------------

_pid_like = st.text(alphabet="0123456789 .-\t", min_size=0, max_size=20)


@settings(max_examples=500)
@given(st.one_of(st.text(), _pid_like), st.booleans())
def test_validate_fuzz(text, strict):
    try:
        out = pid.validate(text, strict=strict)
    except ValidationError as e:
        message = str(e)
        assert message and "\n" not in message and "\r" not in message
        assert message == e.message
    else:
        assert ASCII12.fullmatch(out)
        assert out == pid.compact(text)
        info = pid.parse(out, strict=False)
        assert info.pid == out


@settings(max_examples=300)
@given(
    st.one_of(
        st.text(), _pid_like, st.none(), st.integers(), st.binary(), st.floats(),
        st.lists(st.text(max_size=3), max_size=3),
    ),
    st.booleans(),
)
def test_is_valid_never_raises(value, strict):
    result = pid.is_valid(value, strict=strict)
    assert isinstance(result, bool)


@settings(max_examples=300)
@given(st.text(alphabet="0123456789", min_size=12, max_size=12))
def test_lenient_accepts_any_12_digits(digits):
    assert pid.validate(digits, strict=False) == digits
    assert pid.is_valid(digits, strict=False)
    info = pid.parse(digits, strict=False)
    assert info.place_code == digits[:3]
    assert info.serial == digits[6:]
    strict_ok = pid.is_valid(digits)
    if strict_ok:
        assert info.foreign_birth or info.place_name is not None


@pytest.mark.parametrize(
    "text,words",
    [
        ("00109501234", ["11 digits", "12"]),
        ("0010950123456", ["13 digits", "12"]),
        ("00109501234A", ["not a digit", "'A'"]),
        ("003095012345", ["place code", "003"]),
        ("001995012345", ["birth year", "2395"]),
        ("", ["empty"]),
    ],
)
def test_error_messages_name_the_problem(text, words):
    with pytest.raises(ValidationError) as exc:
        pid.validate(text, today=dt.date(2025, 1, 1))
    message = str(exc.value)
    assert "\n" not in message
    assert message.endswith(".")
    for word in words:
        assert word in message


def test_docstring_examples():
    assert pid.validate("001 095 012345") == "001095012345"
    info = pid.parse("079301000123")
    assert (info.place_name, info.sex, info.birth_year, info.foreign_birth) == (
        "Hồ Chí Minh", "female", 2001, False,
    )


def test_pidinfo_is_frozen():
    info = pid.parse("079301000123")
    with pytest.raises(AttributeError):
        info.sex = "male"  # type: ignore[misc]
    assert info.as_dict() == {
        "pid": "079301000123", "place_code": "079", "place_name": "Hồ Chí Minh",
        "foreign_birth": False, "sex": "female", "birth_year": 2001, "serial": "000123",
    }
