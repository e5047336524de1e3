"""BER-TLV as used by the ICAO LDS (ICAO Doc 9303 Part 10, ISO/IEC 7816-4 and X.690).

A data object is a tag (one to three bytes; ``0x61``, ``0x5F1F``, ``0x7F61``), a length (short
form ``0x00``-``0x7F`` or long form ``0x81``-``0x84`` followed by one to four bytes) and the value.
Tags are handled as integers made of their bytes, so ``5F 1F`` is ``0x5F1F``.

Reading is strict but bounded: an indefinite length (``0x80``), a length of length above 4, a
tag of more than three bytes or a value running past the end of the buffer raise
:class:`TLVError`; nothing reads past the buffer, loops without progress or recurses. A long
form that is longer than needed (``81 05``) is accepted when reading, since real chips write it,
but :func:`encode` always writes the minimal (DER) form.

>>> encode(0x5F1F, b"ABC").hex(" ")
'5f 1f 03 41 42 43'
>>> tag, value, end = decode(bytes.fromhex("615d5f1f5a") + b"<" * 90)
>>> hex(tag), len(value), end
('0x61', 93, 95)
>>> decode_one(encode(0x61, encode(0x5F1F, b"X")), 0x61).hex()
'5f1f0158'
>>> [(hex(t), v) for t, v in iter_decode(bytes.fromhex("800101 8100"))]
[('0x80', b'\\x01'), ('0x81', b'')]
>>> decode_one(bytes.fromhex("6100ff"), 0x61)
Traceback (most recent call last):
    ...
dinhdanh.ids.lds.tlv.TLVError: 1 trailing bytes after tag 0x61 (TLV ends at offset 2 of 3).
>>> decode(bytes.fromhex("6180"))
Traceback (most recent call last):
    ...
dinhdanh.ids.lds.tlv.TLVError: Indefinite length (0x80) for tag 0x61 at offset 1 is not allowed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from dinhdanh.ids.exceptions import InvalidFormat

__all__ = [
    "TLVError", "LdsError", "MAX_TAG_BYTES", "MAX_LENGTH_BYTES",
    "encode", "encode_tag", "encode_length", "decode", "decode_one", "iter_decode",
    "decode_tag", "decode_length", "header_length", "total_length", "is_constructed",
    "lds_errors",
]

MAX_TAG_BYTES = 3
MAX_LENGTH_BYTES = 4


class TLVError(InvalidFormat):
    """The bytes are not well-formed BER-TLV."""

    message = "The data is not well-formed BER-TLV."


class LdsError(InvalidFormat):
    """A data group or LDS file is well-formed TLV but its content is wrong."""

    message = "The LDS data is not valid."


def _bytes(data) -> bytes:
    if type(data) is bytes:
        return data
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    raise TypeError(f"expected bytes, got {type(data).__name__}")


def decode_tag(data: bytes, offset: int = 0) -> tuple[int, int]:
    """Read the tag at ``offset``; return ``(tag, offset after the tag)``."""
    data = _bytes(data)
    if offset < 0 or offset >= len(data):
        raise TLVError(f"Missing tag at offset {offset}: the data ends at offset {len(data)}.")
    first = data[offset]
    tag = first
    pos = offset + 1
    if first & 0x1F == 0x1F:
        count = 1
        while True:
            if pos >= len(data):
                raise TLVError(f"Truncated tag 0x{tag:X} at offset {offset}: the data ends inside it.")
            b = data[pos]
            if count == 1 and b == 0x80:
                raise TLVError(f"Tag at offset {offset} has a non-minimal number (leading 0x80 byte).")
            tag = (tag << 8) | b
            pos += 1
            count += 1
            if count > MAX_TAG_BYTES:
                raise TLVError(f"Tag at offset {offset} is longer than {MAX_TAG_BYTES} bytes.")
            if not b & 0x80:
                break
        # No check that the number is >= 31: ICAO itself uses 5F01, 5F02 ... (X.690 would not).
    return tag, pos


def decode_length(data: bytes, offset: int, tag: int | None = None) -> tuple[int, int]:
    """Read the length at ``offset``; return ``(length, offset after the length)``."""
    data = _bytes(data)
    what = f" for tag 0x{tag:X}" if tag is not None else ""
    if offset < 0 or offset >= len(data):
        raise TLVError(f"Missing length{what} at offset {offset}: the data ends at offset {len(data)}.")
    first = data[offset]
    if first < 0x80:
        return first, offset + 1
    if first == 0x80:
        raise TLVError(f"Indefinite length (0x80){what} at offset {offset} is not allowed.")
    count = first & 0x7F
    if count > MAX_LENGTH_BYTES:
        raise TLVError(
            f"Length{what} at offset {offset} has {count} length bytes (at most {MAX_LENGTH_BYTES})."
        )
    end = offset + 1 + count
    if end > len(data):
        raise TLVError(f"Truncated length{what} at offset {offset}: {count} length bytes announced.")
    return int.from_bytes(data[offset + 1:end], "big"), end


def header_length(data: bytes, offset: int = 0) -> int:
    """Number of tag and length bytes of the data object at ``offset`` (the value may be absent).

    >>> header_length(bytes.fromhex("7f61820100"))
    5
    """
    tag, pos = decode_tag(data, offset)
    _, pos = decode_length(data, pos, tag)
    return pos - offset


def total_length(data: bytes, offset: int = 0) -> int:
    """Encoded size of the data object whose header starts at ``offset``.

    Only the header needs to be present: a chip reader reads the first bytes of a file, then
    the rest.

    >>> total_length(bytes.fromhex("6d820102"))
    262
    """
    tag, pos = decode_tag(data, offset)
    length, pos = decode_length(data, pos, tag)
    return pos - offset + length


def decode(data: bytes, offset: int = 0) -> tuple[int, bytes, int]:
    """Decode the data object at ``offset``; return ``(tag, value, offset after it)``."""
    data = _bytes(data)
    size = len(data)
    if 0 <= offset < size - 1 and data[offset] & 0x1F != 0x1F and data[offset + 1] < 0x80:
        # the common case: a one-byte tag and a short length
        tag, length, pos = data[offset], data[offset + 1], offset + 2
    else:
        tag, pos = decode_tag(data, offset)
        length, pos = decode_length(data, pos, tag)
    end = pos + length
    if end > size:
        raise TLVError(
            f"Truncated value for tag 0x{tag:X} at offset {offset}: {length} bytes announced, "
            f"{len(data) - pos} available."
        )
    return tag, data[pos:end], end


def decode_one(data: bytes, expected_tag: int | None = None) -> bytes:
    """Decode a buffer that holds exactly one data object; return its value."""
    data = _bytes(data)
    tag, value, end = decode(data, 0)
    if expected_tag is not None and tag != expected_tag:
        raise TLVError(f"Expected tag 0x{expected_tag:X}, found 0x{tag:X} at offset 0.")
    if end != len(data):
        raise TLVError(
            f"{len(data) - end} trailing bytes after tag 0x{tag:X} "
            f"(TLV ends at offset {end} of {len(data)})."
        )
    return value


def iter_decode(data: bytes) -> Iterator[tuple[int, bytes]]:
    """Yield ``(tag, value)`` for each of the concatenated data objects in ``data``."""
    data = _bytes(data)
    offset = 0
    while offset < len(data):
        tag, value, offset = decode(data, offset)
        yield tag, value


def encode_tag(tag: int) -> bytes:
    """Bytes of a tag given as an integer (``0x5F1F`` -> ``5F 1F``), checked for well-formedness."""
    if type(tag) is int and tag in _TAG_BYTES:
        return _TAG_BYTES[tag]
    raw = _encode_tag(tag)
    if len(_TAG_BYTES) < 1024:  # an LDS uses a few dozen tags: remember them
        _TAG_BYTES[tag] = raw
    return raw


_TAG_BYTES: dict[int, bytes] = {}


def _encode_tag(tag: int) -> bytes:
    if not isinstance(tag, int) or isinstance(tag, bool) or tag < 0:
        raise TLVError(f"Invalid tag {tag!r}: not a non-negative integer.")
    size = max(1, (tag.bit_length() + 7) // 8)
    if size > MAX_TAG_BYTES:
        raise TLVError(f"Tag 0x{tag:X} is longer than {MAX_TAG_BYTES} bytes.")
    raw = tag.to_bytes(size, "big")
    try:
        parsed, end = decode_tag(raw, 0)
    except TLVError as exc:
        raise TLVError(f"Tag 0x{tag:X} is not a valid BER tag: {exc.message}") from None
    if end != size or parsed != tag:
        raise TLVError(f"Tag 0x{tag:X} is not a valid BER tag (its first byte ends the tag early).")
    return raw


def encode_length(length: int) -> bytes:
    """Minimal (DER) length bytes."""
    if not isinstance(length, int) or length < 0:
        raise TLVError(f"Invalid length {length!r}.")
    if length < 0x80:
        return bytes([length])
    size = (length.bit_length() + 7) // 8
    if size > MAX_LENGTH_BYTES:
        raise TLVError(f"Length {length} needs more than {MAX_LENGTH_BYTES} length bytes.")
    return bytes([0x80 | size]) + length.to_bytes(size, "big")


def encode(tag: int, value: bytes) -> bytes:
    """Encode one data object with a minimal length."""
    value = _bytes(value)
    return encode_tag(tag) + encode_length(len(value)) + value


def is_constructed(tag: int) -> bool:
    """True when the tag's first byte has the constructed bit (0x20) set.

    >>> is_constructed(0x7F61), is_constructed(0x5F2E), is_constructed(0x30)
    (True, False, True)
    """
    first = tag
    while first > 0xFF:
        first >>= 8
    return bool(first & 0x20)


@contextmanager
def lds_errors(what: str) -> Iterator[None]:
    """Turn a :class:`TLVError` raised inside the block into an :class:`LdsError` naming ``what``."""
    try:
        yield
    except TLVError as exc:
        raise LdsError(f"{what}: {exc.message}") from None
