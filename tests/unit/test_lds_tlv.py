"""Unit and property tests for ``dinhdanh.ids.lds.tlv`` (strict BER-TLV)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dinhdanh.ids.exceptions import InvalidFormat
from dinhdanh.ids.lds import tlv
from dinhdanh.ids.lds.tlv import LdsError, TLVError


def test_errors_are_invalid_format():
    assert issubclass(TLVError, InvalidFormat)
    assert issubclass(LdsError, InvalidFormat)
    assert not issubclass(TLVError, LdsError) and not issubclass(LdsError, TLVError)


@pytest.mark.parametrize(
    "tag, value, expected",
    [
        (0x61, b"", "6100"),
        (0x02, b"\x01", "020101"),
        (0x5F1F, b"AB", "5f1f024142"),
        (0x7F61, b"\x00" * 0x7F, "7f617f" + "00" * 0x7F),
        (0x75, b"\x00" * 0x80, "758180" + "00" * 0x80),
        (0x75, b"\x00" * 0xFF, "7581ff" + "00" * 0xFF),
        (0x75, b"\x00" * 0x100, "75820100" + "00" * 0x100),
        (0x75, b"\x00" * 0x10000, "7583010000" + "00" * 0x10000),
        (0x5F8101, b"", "5f810100"),  # three-byte tag
    ],
)
def test_encode_vectors_use_minimal_lengths(tag, value, expected):
    raw = tlv.encode(tag, value)
    assert raw.hex() == expected
    assert tlv.decode(raw) == (tag, value, len(raw))
    assert tlv.decode_one(raw, tag) == value


def test_icao_tags_with_small_numbers_in_long_form_are_accepted():
    # 5F01 (LDS version) is tag number 1 in the long form: ICAO uses it, X.690 would not.
    assert tlv.decode(bytes.fromhex("5f0102abcd")) == (0x5F01, b"\xab\xcd", 5)
    assert tlv.encode(0x5F01, b"") == bytes.fromhex("5f0100")


def test_non_minimal_long_form_is_read_but_never_written():
    raw = bytes.fromhex("6181035f1f00")
    assert tlv.decode(raw) == (0x61, bytes.fromhex("5f1f00"), 6)
    assert tlv.decode(bytes.fromhex("61840000000100")) == (0x61, b"\x00", 7)
    assert tlv.encode(0x61, bytes.fromhex("5f1f00")) == bytes.fromhex("61035f1f00")


@pytest.mark.parametrize(
    "data, fragment",
    [
        (b"", "Missing tag at offset 0"),
        (bytes.fromhex("5f"), "Truncated tag"),
        (bytes.fromhex("7f81"), "Truncated tag"),
        (bytes.fromhex("5f81818101"), "longer than 3 bytes"),
        (bytes.fromhex("5f800100"), "non-minimal"),
        (bytes.fromhex("61"), "Missing length for tag 0x61 at offset 1"),
        (bytes.fromhex("6180"), "Indefinite length (0x80) for tag 0x61 at offset 1"),
        (bytes.fromhex("618500000000010000"), "5 length bytes"),
        (bytes.fromhex("61ff"), "127 length bytes"),
        (bytes.fromhex("618201"), "Truncated length for tag 0x61"),
        (bytes.fromhex("610301"), "Truncated value for tag 0x61 at offset 0: 3 bytes announced, 1 available"),
        (bytes.fromhex("7f618401000000"), "16777216 bytes announced"),
    ],
)
def test_malformed_input_is_rejected_with_a_one_line_message(data, fragment):
    with pytest.raises(TLVError) as info:
        tlv.decode(data)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_decode_at_an_offset_and_past_the_end():
    data = tlv.encode(0x80, b"\x01") + tlv.encode(0x81, b"\x02\x03")
    assert tlv.decode(data, 3) == (0x81, b"\x02\x03", 7)
    with pytest.raises(TLVError, match="offset 7"):
        tlv.decode(data, 7)
    with pytest.raises(TLVError):
        tlv.decode(data, -1)


def test_decode_one_trailing_bytes_and_wrong_tag():
    with pytest.raises(TLVError, match=r"^2 trailing bytes after tag 0x61 "):
        tlv.decode_one(bytes.fromhex("6100ffff"), 0x61)
    with pytest.raises(TLVError, match=r"Expected tag 0x6D, found 0x61"):
        tlv.decode_one(bytes.fromhex("6100"), 0x6D)
    assert tlv.decode_one(bytes.fromhex("6101aa")) == b"\xaa"


def test_iter_decode():
    data = tlv.encode(0x5F01, b"0107") + tlv.encode(0x5C, b"\x61\x75") + tlv.encode(0x30, b"")
    assert list(tlv.iter_decode(data)) == [(0x5F01, b"0107"), (0x5C, b"\x61\x75"), (0x30, b"")]
    assert list(tlv.iter_decode(b"")) == []
    with pytest.raises(TLVError, match="tag 0x4 at offset 13"):
        list(tlv.iter_decode(data + bytes.fromhex("0405aa")))  # last object announces too many bytes


def test_header_and_total_length_need_only_the_header():
    assert tlv.header_length(bytes.fromhex("61")+ b"\x5d") == 2
    assert tlv.header_length(bytes.fromhex("7f6182ffff")) == 5
    assert tlv.total_length(bytes.fromhex("7582ffff")) == 4 + 0xFFFF
    assert tlv.total_length(bytes.fromhex("00") + bytes.fromhex("6d0a"), 1) == 12
    with pytest.raises(TLVError):
        tlv.header_length(bytes.fromhex("7f61"))


@pytest.mark.parametrize("tag", [-1, 0x1F, 0x5F, 0x5F81, 0x7F8181, 0x5F818101, 0x5F80, 0x5F0101, True, "61"])
def test_encode_rejects_invalid_tags(tag):
    with pytest.raises(TLVError):
        tlv.encode(tag, b"")


def test_encode_tag_and_length_helpers():
    assert tlv.encode_tag(0x7F61) == b"\x7f\x61"
    assert tlv.encode_tag(0) == b"\x00"
    assert tlv.encode_length(0x7F) == b"\x7f"
    assert tlv.encode_length(0xFFFFFFFF) == b"\x84\xff\xff\xff\xff"
    with pytest.raises(TLVError):
        tlv.encode_length(1 << 32)
    assert tlv.decode_tag(bytes.fromhex("5f1f05"), 0) == (0x5F1F, 2)
    assert tlv.decode_length(bytes.fromhex("8200ff"), 0) == (0xFF, 3)


def test_is_constructed():
    assert tlv.is_constructed(0x61) and tlv.is_constructed(0x7F61) and tlv.is_constructed(0xA1)
    assert not tlv.is_constructed(0x5F1F) and not tlv.is_constructed(0x02) and not tlv.is_constructed(0x80)


def test_lds_errors_context_converts_tlv_errors():
    with pytest.raises(LdsError, match=r"^DG1: Truncated value for tag 0x61"):
        with tlv.lds_errors("DG1"):
            tlv.decode(bytes.fromhex("6105"))


def test_deep_nesting_does_not_recurse():
    data = b""
    for _ in range(2000):
        data = tlv.encode(0x30, data)
    value, depth = data, 0
    while value:
        value = tlv.decode_one(value, 0x30)
        depth += 1
    assert depth == 2000


def test_large_value_is_fast_and_exact():
    value = bytes(range(256)) * 4096  # 1 MiB
    raw = tlv.encode(0x75, value)
    assert raw[:5] == bytes.fromhex("7583100000")
    assert tlv.decode_one(raw, 0x75) == value


def test_bytearray_and_memoryview_are_accepted():
    raw = tlv.encode(0x61, b"x")
    assert tlv.decode(bytearray(raw)) == (0x61, b"x", 3)
    assert tlv.decode_one(memoryview(raw), 0x61) == b"x"


# ---------------------------------------------------------------- properties


def _tags():
    one = st.integers(0, 0xFF).filter(lambda b: b & 0x1F != 0x1F)
    two = st.tuples(st.integers(0, 0xFF).map(lambda b: b | 0x1F), st.integers(0, 0x7F)).map(
        lambda t: (t[0] << 8) | t[1]
    )
    three = st.tuples(
        st.integers(0, 0xFF).map(lambda b: b | 0x1F), st.integers(0x81, 0xFF), st.integers(0, 0x7F)
    ).map(lambda t: (t[0] << 16) | (t[1] << 8) | t[2])
    return st.one_of(one, two, three)


@settings(max_examples=300, deadline=None)
@given(_tags(), st.one_of(st.binary(max_size=300), st.integers(0, 70000).map(bytes)))
def test_round_trip(tag, value):
    raw = tlv.encode(tag, value)
    assert tlv.decode(raw) == (tag, value, len(raw))
    assert tlv.decode_one(raw, tag) == value
    assert tlv.header_length(raw) + len(value) == len(raw) == tlv.total_length(raw)
    assert list(tlv.iter_decode(raw + raw)) == [(tag, value), (tag, value)]


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=64), st.integers(0, 70))
def test_arbitrary_bytes_raise_only_tlv_error(data, offset):
    try:
        tag, value, end = tlv.decode(data, offset)
    except TLVError:
        pass
    else:
        assert offset < end <= len(data) and value == data[end - len(value):end]
    try:
        items = list(tlv.iter_decode(data))
    except TLVError:
        pass
    else:
        assert len(items) <= len(data) // 2  # each object has at least a tag and a length byte
    for expected in (None, 0x61):
        try:
            tlv.decode_one(data, expected)
        except TLVError:
            pass
