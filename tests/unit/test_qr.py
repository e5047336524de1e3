"""Unit and property tests for ``dinhdanh.ids.qr`` (the chip ID card's QR payload)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from dinhdanh.ids import qr
from dinhdanh.ids.exceptions import InvalidComponent, InvalidFormat, InvalidLength, ValidationError

PAYLOAD = ("079301000123|025123456|Nguyễn Thị Mai|02012001|Nữ|"
           "Số 12 Đường Lê Lợi, Phường Bến Nghé, Quận 1, TP Hồ Chí Minh|15072021")
AS_DICT_KEYS = {"pid", "old_id", "full_name", "date_of_birth", "sex", "address", "issue_date",
                "layout", "extra"}


def nfd(text: str) -> str:
    return unicodedata.normalize("NFD", text)


def card(**changes) -> qr.CardQr:
    fields = dict(pid="079301000123", old_id="025123456", full_name="Nguyễn Thị Mai",
                  date_of_birth=dt.date(2001, 1, 2), sex="Nữ",
                  address="Số 12 Đường Lê Lợi, Phường Bến Nghé, Quận 1, TP Hồ Chí Minh",
                  issue_date=dt.date(2021, 7, 15))
    fields.update(changes)
    return qr.CardQr(**fields)


# --- the 2021 layout -----------------------------------------------------------------------------


def test_parse_2021_payload():
    c = qr.parse(PAYLOAD)
    assert c == card(layout="cccd-2021", extra=())
    assert c.layout == "cccd-2021"


def test_empty_old_id_is_none():
    c = qr.parse(PAYLOAD.replace("|025123456|", "||"))
    assert c.old_id is None
    assert qr.build(c) == PAYLOAD.replace("|025123456|", "||")


def test_twelve_digit_old_id():
    assert qr.parse(PAYLOAD.replace("025123456", "025123456789")).old_id == "025123456789"


def test_as_dict():
    data = qr.parse(PAYLOAD).as_dict()
    assert set(data) == AS_DICT_KEYS
    assert data["date_of_birth"] == "2001-01-02" and data["issue_date"] == "2021-07-15"
    assert data["layout"] == "cccd-2021" and data["extra"] == []
    assert json.loads(json.dumps(data, ensure_ascii=False)) == data


@pytest.mark.parametrize("text", [
    "\ufeff" + PAYLOAD,
    "  " + PAYLOAD + "\r\n",
    "\ufeff  " + PAYLOAD + "\n",
    " \ufeff" + PAYLOAD,
    PAYLOAD + "|",
    PAYLOAD + "|||  |",
    PAYLOAD.replace("|", " | "),
    nfd(PAYLOAD),
    PAYLOAD.encode("utf-8"),
    "\ufeff".encode("utf-8") + PAYLOAD.encode("utf-8"),
])
def test_real_world_variants_are_tolerated(text):
    c = qr.parse(text)
    assert c == qr.parse(PAYLOAD)
    assert c.extra == ()


def test_extra_trailing_fields_are_kept():
    c = qr.parse(PAYLOAD + "|abc|| Nguye\u0302\u0303n |")
    assert c.extra == ("abc", "", "Nguyễn")
    assert c.as_dict()["extra"] == ["abc", "", "Nguyễn"]
    assert qr.build(c) == PAYLOAD + "|abc||Nguyễn"


@pytest.mark.parametrize("written", ["Nam", "NAM", "nam", "Male", "MALE", "male", " Nam "])
def test_male_spellings(written):
    assert qr.parse(PAYLOAD.replace("|Nữ|", f"|{written}|")).sex == "Nam"


@pytest.mark.parametrize("written", ["Nữ", "NỮ", "nữ", "Nu", "NU", "nu", nfd("Nữ"), nfd("NỮ"),
                                     "Female", "FEMALE"])
def test_female_spellings(written):
    c = qr.parse(PAYLOAD.replace("|Nữ|", f"|{written}|"))
    assert c.sex == "Nữ"
    assert c.sex == unicodedata.normalize("NFC", "Nữ")


@pytest.mark.parametrize("written", ["Khác", "", "X", "N"])
def test_other_sex_is_refused(written):
    with pytest.raises(InvalidComponent, match="sex"):
        qr.parse(PAYLOAD.replace("|Nữ|", f"|{written}|"))


def test_names_and_address_keep_diacritics_nfc():
    c = qr.parse(nfd(PAYLOAD).replace("Nguyễn Thị", "Nguyễn   Thị"))
    assert c.full_name == "Nguyễn Thị Mai"
    assert unicodedata.is_normalized("NFC", c.full_name)
    assert c.address == "Số 12 Đường Lê Lợi, Phường Bến Nghé, Quận 1, TP Hồ Chí Minh"
    assert unicodedata.is_normalized("NFC", c.address)


@pytest.mark.parametrize("field,value,error,message", [
    (0, "07930100012", InvalidComponent, "PID '07930100012' must be 12 digits"),
    (0, "0793010001234", InvalidComponent, "PID"),
    (0, "07930100012A", InvalidComponent, "PID"),
    (0, "０７９３０１０００１２３", InvalidComponent, "PID"),
    (0, "", InvalidComponent, "PID"),
    (1, "0251234567", InvalidComponent, "old ID number"),
    (1, "02512345A", InvalidComponent, "old ID number"),
    (2, "  ", InvalidComponent, "full name is empty"),
    (3, "31022001", InvalidComponent, "date of birth '31022001' is not a date"),
    (3, "2001-01-02", InvalidComponent, "date of birth"),
    (3, "0201200", InvalidComponent, "date of birth"),
    (3, "00000000", InvalidComponent, "date of birth"),
    (5, "", InvalidComponent, "address is empty"),
    (6, "32072021", InvalidComponent, "issue date '32072021' is not a date"),
    (6, "01012000", InvalidComponent, "issue date '01012000' is before the date of birth"),
])
def test_bad_fields_are_named(field, value, error, message):
    fields = PAYLOAD.split("|")
    fields[field] = value
    with pytest.raises(error, match=message):
        qr.parse("|".join(fields))


@pytest.mark.parametrize("text,message", [
    ("", "empty"),
    ("  \r\n", "empty"),
    ("\ufeff", "empty"),
    ("079301000123|025123456|Nguyễn Thị Mai|02012001|Nữ|Hà Nội", "has 6 fields"),
    ("hello world", "has 1 fields"),
    (b"\xff\xfe\x00", "not UTF-8"),
])
def test_not_a_payload(text, message):
    with pytest.raises(InvalidFormat, match=message):
        qr.parse(text)


@pytest.mark.parametrize("value", [None, 5, ["a", "b"]])
def test_non_text_is_refused(value):
    with pytest.raises(InvalidFormat):
        qr.parse(value)


# --- building ------------------------------------------------------------------------------------


def test_build_round_trip():
    assert qr.build(qr.parse(PAYLOAD)) == PAYLOAD
    assert qr.build(card()) == PAYLOAD


def test_build_writes_the_canonical_form():
    messy = card(full_name="  nguye\u0302\u0303n  Thị Mai ", sex="FEMALE", extra=("x", "", ""))
    assert qr.build(messy) == PAYLOAD.replace("Nguyễn", "nguyễn") + "|x"


@pytest.mark.parametrize("changes,message", [
    ({"full_name": "Nguyễn|Mai"}, "full name contains the field separator"),
    ({"address": "a|b"}, "address"),
    ({"pid": "123"}, "PID"),
    ({"pid": None}, "PID"),
    ({"old_id": "12"}, "old ID"),
    ({"date_of_birth": "02012001"}, "date of birth is not a date"),
    ({"issue_date": None}, "issue date"),
    ({"sex": "Other"}, "sex"),
    ({"extra": ("a|b",)}, "extra field"),
    ({"extra": "abc"}, "extra fields"),
])
def test_build_refuses_bad_cards(changes, message):
    with pytest.raises(InvalidComponent, match=message):
        qr.build(card(**changes))


def test_build_refuses_other_things():
    with pytest.raises(InvalidComponent, match="CardQr"):
        qr.build({"pid": "079301000123"})  # type: ignore[arg-type]
    with pytest.raises(InvalidComponent, match="no QR layout named 'cccd-1999'"):
        qr.build(card(), layout="cccd-1999")
    with pytest.raises(InvalidComponent, match="no QR layout"):
        qr.parse(PAYLOAD, layout="nope")


# --- layouts -------------------------------------------------------------------------------------


def test_registered_layouts():
    assert list(qr.LAYOUTS) == ["cccd-2021", "cccd-2024"]
    for name, layout in qr.LAYOUTS.items():
        assert layout.name == name
        assert isinstance(layout, qr.QrLayout)


PAYLOAD_2024 = PAYLOAD + "|012345678, 001095012345|Nguyễn Văn An|Trần Thị Bình"


def test_provisional_2024_layout_by_name():
    c = qr.parse(PAYLOAD_2024, layout="cccd-2024")
    assert c.layout == "cccd-2024"
    assert c.extra == ("012345678,001095012345", "Nguyễn Văn An", "Trần Thị Bình")
    assert qr.build(c, layout="cccd-2024") == PAYLOAD_2024.replace("678, 001", "678,001")
    assert qr.parse(qr.build(c, layout="cccd-2024"), layout=qr.LAYOUTS["cccd-2024"]) == c


def test_2024_payload_without_a_layout_reads_as_2021_with_extras():
    c = qr.parse(PAYLOAD_2024)
    assert c.layout == "cccd-2021"
    assert c.extra == ("012345678, 001095012345", "Nguyễn Văn An", "Trần Thị Bình")


def test_2024_layout_checks_its_fields():
    with pytest.raises(InvalidComponent, match="cancelled ID number '12345'"):
        qr.parse(PAYLOAD + "|12345|A|B", layout="cccd-2024")
    with pytest.raises(InvalidFormat, match="has 7 fields.*cccd-2024 layout has 10"):
        qr.parse(PAYLOAD, layout="cccd-2024")


def test_2024_build_of_a_card_without_parents_pads_the_fields():
    text = qr.build(card(), layout="cccd-2024")
    assert text == PAYLOAD + "|||"
    assert qr.parse(text, layout="cccd-2024").extra == ("", "", "")
    assert qr.parse(text).extra == ()


class ReversedLayout:
    """A made-up layout for the plug point: "REV" then the 2021 fields but the old ID, reversed."""

    name = "test-reversed"

    def parse(self, fields):
        if len(fields) != 7 or fields[0] != "REV":
            raise InvalidFormat("not a reversed payload")
        pid, *rest = reversed(fields[1:])
        return dataclasses.replace(qr.Cccd2021Layout().parse([pid, "", *rest]), layout=self.name)

    def build(self, card):
        raise NotImplementedError


def test_a_registered_layout_is_picked_when_first(monkeypatch):
    monkeypatch.setattr(qr, "LAYOUTS", dict(qr.LAYOUTS))
    layout = qr.register_layout(ReversedLayout(), first=True)
    assert list(qr.LAYOUTS)[0] == "test-reversed"
    reversed_text = "REV|15072021|Hà Nội|Nam|02012001|Lê Văn Tám|079301000123"
    c = qr.parse(reversed_text)
    assert (c.pid, c.full_name, c.sex, c.old_id) == ("079301000123", "Lê Văn Tám", "Nam", None)
    assert (c.date_of_birth, c.issue_date, c.layout) == (
        dt.date(2001, 1, 2), dt.date(2021, 7, 15), "test-reversed")
    assert qr.parse(PAYLOAD).layout == "cccd-2021"  # the made-up layout refuses, the next reads
    qr.register_layout(layout)  # registering again moves it to the end
    assert list(qr.LAYOUTS)[-1] == "test-reversed"


def test_when_no_layout_accepts_the_first_error_is_raised(monkeypatch):
    monkeypatch.setattr(qr, "LAYOUTS", dict(qr.LAYOUTS))
    qr.register_layout(ReversedLayout(), first=True)
    with pytest.raises(InvalidFormat, match="not a reversed payload"):
        qr.parse("a|b")


def test_register_layout_refuses_what_is_not_a_layout():
    with pytest.raises(TypeError):
        qr.register_layout(object())  # type: ignore[arg-type]


# --- images --------------------------------------------------------------------------------------


def test_png_round_trip():
    png = qr.render_png(PAYLOAD)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    text = qr.read_image(png)
    assert text == PAYLOAD
    assert qr.parse(text) == qr.parse(PAYLOAD)


def test_png_scale():
    small, large = qr.render_png(PAYLOAD, scale=2), qr.render_png(PAYLOAD, scale=6)
    with Image.open(io.BytesIO(small)) as a, Image.open(io.BytesIO(large)) as b:
        assert b.size[0] == a.size[0] * 3


def test_jpeg_round_trip():
    with Image.open(io.BytesIO(qr.render_png(PAYLOAD, scale=5))) as image:
        out = io.BytesIO()
        image.convert("RGB").save(out, format="JPEG", quality=60)
    assert out.getvalue()[:2] == b"\xff\xd8"
    assert qr.parse(qr.read_image(out.getvalue())) == qr.parse(PAYLOAD)


def test_short_vietnamese_payload_stays_utf8():
    # a short payload with few non-ASCII bytes is where a decoder is most tempted to guess Latin-1
    assert qr.read_image(qr.render_png("Đ")) == "Đ"
    assert qr.read_image(qr.render_png("Nữ|Hà")) == "Nữ|Hà"


def test_qr_on_a_transparent_background():
    with Image.open(io.BytesIO(qr.render_png(PAYLOAD))) as image:
        gray = image.convert("L")
    rgba = Image.new("RGBA", gray.size, (0, 0, 0, 0))
    rgba.putalpha(gray.point(lambda v: 255 - v))  # black modules opaque, the rest transparent
    out = io.BytesIO()
    rgba.save(out, format="PNG")
    assert qr.read_image(out.getvalue()) == PAYLOAD


def test_image_without_a_qr_code():
    out = io.BytesIO()
    Image.new("L", (120, 120), 255).save(out, format="PNG")
    with pytest.raises(InvalidFormat, match="^no QR code found in the image$"):
        qr.read_image(out.getvalue())


@pytest.mark.parametrize("data", [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n\x00\x00",
                                  qr.render_png("x")[:60], "text", None])
def test_not_an_image(data):
    with pytest.raises(InvalidFormat, match="^not an image$"):
        qr.read_image(data)


def test_render_refuses_bad_input():
    with pytest.raises(InvalidLength, match="too long"):
        qr.render_png("Đ" * 3000)
    with pytest.raises(InvalidFormat):
        qr.render_png("")
    with pytest.raises(InvalidComponent, match="scale"):
        qr.render_png("x", scale=0)


# --- properties ----------------------------------------------------------------------------------

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(st.one_of(
    st.text(),
    st.binary(),
    st.lists(st.text(max_size=15), min_size=6, max_size=12).map("|".join),
    st.lists(st.text(alphabet="0123456789|NamữuF ", max_size=14), min_size=7, max_size=10)
    .map("|".join),
))
def test_parse_raises_only_validation_errors(value):
    for layout in (None, "cccd-2021", "cccd-2024"):
        try:
            c = qr.parse(value, layout=layout)
        except ValidationError:
            continue
        assert set(c.as_dict()) == AS_DICT_KEYS


VIETNAMESE = "aăâbcdđeêghiklmnoôơpqrstuưvxyàáạảãầấậẩẫằắặẳẵèéẹẻẽềếệểễìíịỉĩòóọỏõồốộổỗờớợởỡùúụủũừứựửữỳýỵỷỹ"
name_words = st.text(alphabet=VIETNAMESE + VIETNAMESE.upper(), min_size=1, max_size=7)
names = st.lists(name_words, min_size=1, max_size=4).map(" ".join)
digits = st.from_regex(r"[0-9]{12}", fullmatch=True)


old_ids = st.one_of(st.none(), st.from_regex(r"[0-9]{9}|[0-9]{12}", fullmatch=True))


@FAST
@given(pid=digits, old_id=old_ids,
       full_name=names, address=st.lists(st.one_of(names, st.just(",")), min_size=1, max_size=6)
       .map(" ".join), sex=st.sampled_from(["Nam", "Nữ"]),
       dob=st.dates(dt.date(1900, 1, 1), dt.date(2020, 12, 31)),
       days=st.integers(0, 40000), extra=st.lists(st.text(alphabet="abc123 ", max_size=5),
                                                  max_size=3).map(tuple))
def test_build_parse_round_trip(pid, old_id, full_name, address, sex, dob, days, extra):
    issue = dob + dt.timedelta(days=days)
    extra = tuple(e.strip() for e in extra)
    while extra and extra[-1] == "":
        extra = extra[:-1]
    c = qr.CardQr(pid=pid, old_id=old_id, full_name=full_name, date_of_birth=dob, sex=sex,
                  address=address, issue_date=issue, extra=extra)
    text = qr.build(c)
    assert qr.parse(text) == c
    assert qr.build(qr.parse(text)) == text
