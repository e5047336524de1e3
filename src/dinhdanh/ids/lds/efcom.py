"""EF.COM, the LDS common file (ICAO Doc 9303 Part 10, section 4.6.1), and the file tags.

``60 L { 5F01 04 "0107"  5F36 06 "040000"  5C n <one tag per data group present> }``: the LDS
version (``aabb`` for version aa.bb), the Unicode version (``aabbcc``) and the tag list.
:data:`DG_TAGS` maps a data group number to its tag, :data:`TAG_DG` the other way.

>>> raw = encode([DG_TAGS[1], DG_TAGS[2], DG_TAGS[13], DG_TAGS[14], DG_TAGS[15]])
>>> raw.hex(" ")
'60 17 5f 01 04 30 31 30 37 5f 36 06 30 34 30 30 30 30 5c 05 61 75 6d 6e 6f'
>>> com = decode(raw)
>>> com.lds_version, com.unicode_version, com.data_groups()
('0107', '040000', (1, 2, 13, 14, 15))
>>> TAG_DG[0x6D], hex(DG_TAGS[2])
(13, '0x75')
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from dinhdanh.ids.lds import tlv
from dinhdanh.ids.lds.tlv import LdsError, TLVError

__all__ = [
    "EfCom", "encode", "decode", "DG_TAGS", "TAG_DG", "COM_TAG", "SOD_TAG", "FILE_TAGS", "FIDS",
    "LDS_VERSION_TAG", "UNICODE_VERSION_TAG", "TAG_LIST_TAG",
]

COM_TAG = 0x60
SOD_TAG = 0x77
LDS_VERSION_TAG = 0x5F01
UNICODE_VERSION_TAG = 0x5F36
TAG_LIST_TAG = 0x5C

DG_TAGS: dict[int, int] = {
    1: 0x61, 2: 0x75, 3: 0x63, 4: 0x76, 5: 0x65, 6: 0x66, 7: 0x67, 8: 0x68,
    9: 0x69, 10: 0x6A, 11: 0x6B, 12: 0x6C, 13: 0x6D, 14: 0x6E, 15: 0x6F, 16: 0x70,
}
"""Data group number -> tag (ICAO Doc 9303 Part 10, table 35)."""

TAG_DG: dict[int, int] = {tag: dg for dg, tag in DG_TAGS.items()}
"""Tag -> data group number."""

FILE_TAGS: dict[str, int] = {"COM": COM_TAG, **{f"DG{n}": t for n, t in DG_TAGS.items()}, "SOD": SOD_TAG}
"""File name (``"COM"``, ``"DG1"`` ... ``"DG16"``, ``"SOD"``) -> tag."""

FIDS: dict[str, int] = {"COM": 0x011E, **{f"DG{n}": 0x0100 + n for n in DG_TAGS}, "SOD": 0x011D}
"""File name -> elementary file identifier in the LDS application (short EF id = low 5 bits)."""


@dataclass(frozen=True, slots=True)
class EfCom:
    lds_version: str  # "0107" for LDS 1.7
    unicode_version: str  # "040000" for Unicode 4.0.0
    tags: tuple[int, ...]  # data group tags, in file order

    def data_groups(self) -> tuple[int, ...]:
        """Data group numbers of the listed tags (unknown tags are left out)."""
        return tuple(TAG_DG[t] for t in self.tags if t in TAG_DG)

    def as_dict(self) -> dict:
        return {"lds_version": self.lds_version, "unicode_version": self.unicode_version,
                "tags": list(self.tags), "data_groups": list(self.data_groups())}


def _check_digits(value: str, size: int, what: str) -> str:
    if not isinstance(value, str) or len(value) != size or not value.isascii() or not value.isdigit():
        raise LdsError(f"EF.COM {what} must be {size} ASCII digits, got {value!r}.")
    return value


def encode(dg_tags: Iterable[int], lds_version: str = "0107", unicode_version: str = "040000") -> bytes:
    """EF.COM listing ``dg_tags`` (tags such as ``0x61``, not data group numbers)."""
    _check_digits(lds_version, 4, "LDS version")
    _check_digits(unicode_version, 6, "Unicode version")
    tag_list = b""
    for tag in dg_tags:
        try:
            tag_list += tlv.encode_tag(tag)
        except TLVError as exc:
            raise LdsError(f"EF.COM tag list: {exc.message}") from None
    body = (
        tlv.encode(LDS_VERSION_TAG, lds_version.encode("ascii"))
        + tlv.encode(UNICODE_VERSION_TAG, unicode_version.encode("ascii"))
        + tlv.encode(TAG_LIST_TAG, tag_list)
    )
    return tlv.encode(COM_TAG, body)


def _ascii(value: bytes, tag: int) -> str:
    try:
        text = value.decode("ascii")
    except UnicodeDecodeError:
        raise LdsError(f"EF.COM element 0x{tag:X} is not ASCII.") from None
    if not text.isdigit():
        raise LdsError(f"EF.COM element 0x{tag:X} should hold digits, got {text!r}.")
    return text


def decode(data: bytes) -> EfCom:
    """Parse EF.COM. The three elements are required; other elements are ignored."""
    with tlv.lds_errors("EF.COM"):
        return _decode(data)


def _decode(data: bytes) -> EfCom:
    body = tlv.decode_one(data, COM_TAG)
    found: dict[int, bytes] = {}
    for tag, value in tlv.iter_decode(body):
        found.setdefault(tag, value)
    for tag, what in ((LDS_VERSION_TAG, "LDS version"), (UNICODE_VERSION_TAG, "Unicode version"),
                      (TAG_LIST_TAG, "tag list")):
        if tag not in found:
            raise LdsError(f"EF.COM has no {what} (tag 0x{tag:X}).")
    tags = []
    raw, pos = found[TAG_LIST_TAG], 0
    while pos < len(raw):
        tag, pos = tlv.decode_tag(raw, pos)
        tags.append(tag)
    return EfCom(_ascii(found[LDS_VERSION_TAG], LDS_VERSION_TAG),
                 _ascii(found[UNICODE_VERSION_TAG], UNICODE_VERSION_TAG), tuple(tags))
