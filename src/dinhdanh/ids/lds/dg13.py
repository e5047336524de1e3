"""DG13 of the Vietnamese chip ID card: the holder's personal data, in Vietnamese.

This is an observed layout, not a published specification::

    6D { 30 { INTEGER 1, OID 1.0.10646.1.0.8 (UTF-8), SET { 30 { INTEGER n, value } ... } } }

one entry per field number ``n``: 1 PID, 2 full name, 3 date of birth ``dd/mm/yyyy``, 4 sex
(``Nam`` / ``Nữ``), 5 nationality, 6 ethnicity, 7 religion, 8 hometown, 9 place of residence,
10 identifying marks, 11 issue date, 12 expiry date (text such as ``Không thời hạn`` when the
card does not expire), 13 father and mother, 14 spouse, 15 old CMND number, 16 a 16-character
value of unknown meaning. Cards seen in public write the numbers and dates (1, 3, 11, 15, 16)
as PrintableString and the rest as UTF8String; field 13 is ``30 { 02 01 0D, 30 { 0C father },
30 { 0C mother } }`` and field 14 ``30 { 02 01 0E, 30 { 0C spouse } }``, or only ``30 03 02 01 0E``
without a spouse. Entries come in field order.

Reading is tolerant: fields may be missing, in any order, or unknown (kept raw in ``unknown``);
strings may use any ASN.1 string type; father and mother may also be two strings in one
SEQUENCE. Text is NFC-normalised. Anything that is not this structure raises :class:`LdsError`.

>>> person = VnPersonalData(pid="001095012345", full_name="Nguyễn Thị Mai",
...     date_of_birth="15/03/1995", sex="Nữ", nationality="Việt Nam", father="Nguyễn Văn An",
...     mother="Trần Thị Bình", expiry_date="15/03/2035")
>>> raw = encode(person)
>>> raw[:1].hex(), decode(raw) == person
('6d', True)
>>> decode(raw).as_dict()["mother"]
'Trần Thị Bình'
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, fields

from dinhdanh.ids.lds import tlv
from dinhdanh.ids.lds.tlv import LdsError, TLVError

__all__ = ["TAG", "VnPersonalData", "encode", "decode", "FIELD_NUMBERS", "UTF8_OID"]

TAG = 0x6D
UTF8_OID = "1.0.10646.1.0.8"
_UTF8_OID_DER = bytes.fromhex("28d316010008")  # DER contents of 1.0.10646.1.0.8

INTEGER, OID, UTF8STRING, PRINTABLESTRING, SEQUENCE, SET = 0x02, 0x06, 0x0C, 0x13, 0x30, 0x31

FIELD_NUMBERS = {
    "pid": 1, "full_name": 2, "date_of_birth": 3, "sex": 4, "nationality": 5, "ethnicity": 6,
    "religion": 7, "hometown": 8, "residence": 9, "identifying_marks": 10, "issue_date": 11,
    "expiry_date": 12, "father": 13, "mother": 13, "spouse": 14, "old_id": 15, "field16": 16,
}
_SIMPLE = {n: name for name, n in FIELD_NUMBERS.items() if n not in (13, 14)}
_PRINTABLE_FIELDS = {1, 3, 11, 15, 16}
_PRINTABLE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 '()+,-./:=?")

# Universal string types and how their bytes become text.
_STRING_CODECS = {
    0x04: "utf-8",  # OCTET STRING
    0x0C: "utf-8",  # UTF8String
    0x12: "utf-8",  # NumericString
    0x13: "utf-8",  # PrintableString
    0x14: "utf-8",  # T61String
    0x15: "utf-8",  # VideotexString
    0x16: "utf-8",  # IA5String
    0x19: "utf-8",  # GraphicString
    0x1A: "utf-8",  # VisibleString
    0x1B: "utf-8",  # GeneralString
    0x1C: "utf-32-be",  # UniversalString
    0x1E: "utf-16-be",  # BMPString
}


@dataclass(frozen=True, slots=True)
class VnPersonalData:
    pid: str | None = None
    full_name: str | None = None
    date_of_birth: str | None = None  # as on the chip, dd/mm/yyyy
    sex: str | None = None  # "Nam" / "Nữ"
    nationality: str | None = None
    ethnicity: str | None = None
    religion: str | None = None
    hometown: str | None = None
    residence: str | None = None
    identifying_marks: str | None = None
    issue_date: str | None = None
    expiry_date: str | None = None  # dd/mm/yyyy or text for a card that does not expire
    father: str | None = None
    mother: str | None = None
    spouse: str | None = None
    old_id: str | None = None
    field16: str | None = None
    unknown: tuple[tuple[int, bytes], ...] = ()  # (field number, raw TLVs after the INTEGER)

    def as_dict(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "unknown"}
        out["unknown"] = [[n, raw.hex()] for n, raw in self.unknown]
        return out


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


# ---------------------------------------------------------------- encoding


def _integer(n: int) -> bytes:
    size = ((n if n >= 0 else ~n).bit_length() + 8) // 8  # minimal, with room for the sign bit
    return tlv.encode(INTEGER, n.to_bytes(size, "big", signed=True))


def _string(text: str, printable: bool) -> bytes:
    if not isinstance(text, str):
        raise LdsError(f"DG13 value {text!r} is not a string.")
    text = _nfc(text)
    if printable and all(c in _PRINTABLE for c in text):
        return tlv.encode(PRINTABLESTRING, text.encode("ascii"))
    try:
        raw = text.encode("utf-8")
    except UnicodeEncodeError:
        raise LdsError(f"DG13 value {text!r} cannot be encoded as UTF-8.") from None
    return tlv.encode(UTF8STRING, raw)


def _person(name: str | None) -> bytes:
    return tlv.encode(SEQUENCE, b"" if name is None else _string(name, False))


def encode(data: VnPersonalData) -> bytes:
    """DG13 for ``data``, entries in field order (unknown ones after known ones of equal number).

    Field 13 is written when the father or the mother is known (an empty SEQUENCE stands for
    the missing one); field 14 is always written, empty without a spouse, as on real cards.
    """
    entries: list[tuple[int, bytes]] = []
    for n, name in _SIMPLE.items():
        value = getattr(data, name)
        if value is not None:
            entries.append((n, _string(value, n in _PRINTABLE_FIELDS)))
    if data.father is not None or data.mother is not None:
        entries.append((13, _person(data.father) + _person(data.mother)))
    entries.append((14, b"" if data.spouse is None else _person(data.spouse)))
    for n, raw in data.unknown:
        if not isinstance(n, int) or not isinstance(raw, (bytes, bytearray)) or not -(1 << 31) <= n < 1 << 31:
            raise LdsError(f"DG13 unknown field {n!r} must be (32-bit int, bytes).")
        entries.append((n, bytes(raw)))
    entries.sort(key=lambda e: e[0])  # stable: known fields stay before unknown ones
    body = b"".join(tlv.encode(SEQUENCE, _integer(n) + content) for n, content in entries)
    inner = _integer(1) + tlv.encode(OID, _UTF8_OID_DER) + tlv.encode(SET, body)
    return tlv.encode(TAG, tlv.encode(SEQUENCE, inner))


# ---------------------------------------------------------------- decoding


def _text(tag: int, value: bytes, n: int) -> str | None:
    codec = _STRING_CODECS.get(tag)
    if codec is None:
        return None
    try:
        return _nfc(value.decode(codec))
    except UnicodeDecodeError as exc:
        raise LdsError(
            f"DG13 field {n}: invalid {codec.upper()} in string tag 0x{tag:02X} at byte {exc.start}."
        ) from None


def _first_text(value: bytes, n: int) -> tuple[bool, str | None]:
    """(understood, text) for the content of a person SEQUENCE: empty -> (True, None)."""
    items = list(tlv.iter_decode(value))
    if not items:
        return True, None
    text = _text(items[0][0], items[0][1], n)
    return text is not None, text


def _people(items: list[tuple[int, bytes]], n: int) -> tuple[bool, list[str | None]]:
    """Names in a field 13/14 entry: one person per SEQUENCE, or strings directly."""
    if len(items) == 1 and items[0][0] == SEQUENCE:
        inner = list(tlv.iter_decode(items[0][1]))
        if len(inner) > 1 and all(t in _STRING_CODECS for t, _ in inner):
            items = inner  # { 30 { father, mother } } variant
    names: list[str | None] = []
    for tag, value in items:
        if tag == SEQUENCE:
            ok, text = _first_text(value, n)
        else:
            text = _text(tag, value, n)
            ok = text is not None
        if not ok:
            return False, []
        names.append(text)
    return True, names


def _field_number(value: bytes) -> int:
    if not value or len(value) > 4:
        raise LdsError(f"DG13 field number INTEGER has {len(value)} bytes (1 to 4 expected).")
    return int.from_bytes(value, "big", signed=True)


def decode(raw: bytes) -> VnPersonalData:
    """Parse DG13 (see the module documentation for the layout)."""
    try:
        return _decode(raw)
    except TLVError as exc:
        raise LdsError(f"DG13: {exc.message}") from None


def _decode(raw: bytes) -> VnPersonalData:
    body = tlv.decode_one(raw, TAG)
    content = tlv.decode_one(body, SEQUENCE)
    field_set = next((v for t, v in tlv.iter_decode(content) if t == SET), None)
    if field_set is None:
        raise LdsError("DG13: the SEQUENCE in tag 0x6D holds no SET of fields (tag 0x31).")
    values: dict[str, str | None] = {}
    unknown: list[tuple[int, bytes]] = []
    offset = 0
    while offset < len(field_set):
        at = offset
        tag, entry, offset = tlv.decode(field_set, offset)
        if tag != SEQUENCE:
            raise LdsError(f"DG13: entry at offset {at} of the SET has tag 0x{tag:X}, not a SEQUENCE.")
        itag, ivalue, rest_at = tlv.decode(entry, 0)
        if itag != INTEGER:
            raise LdsError(f"DG13: entry at offset {at} of the SET does not start with an INTEGER.")
        n = _field_number(ivalue)
        rest = entry[rest_at:]
        try:
            done = _known(n, rest, values)
        except TLVError:
            done = False  # a known number with content we cannot read: kept raw
        if not done:
            unknown.append((n, rest))
    return VnPersonalData(**values, unknown=tuple(unknown))


def _known(n: int, rest: bytes, values: dict[str, str | None]) -> bool:
    """Store a known field in ``values``; False when ``n`` is unknown, repeated or not understood."""
    if n in _SIMPLE:
        if _SIMPLE[n] in values:
            return False
        items = list(tlv.iter_decode(rest))
        text = _text(items[0][0], items[0][1], n) if len(items) == 1 else None
        if text is None:
            return False
        values[_SIMPLE[n]] = text
        return True
    if n == 13 and "father" not in values:
        ok, names = _people(list(tlv.iter_decode(rest)), n)
        if not ok or len(names) > 2:
            return False
        names += [None] * (2 - len(names))
        values["father"], values["mother"] = names
        return True
    if n == 14 and "spouse" not in values:
        ok, names = _people(list(tlv.iter_decode(rest)), n)
        if not ok or len(names) > 1:
            return False
        values["spouse"] = names[0] if names else None
        return True
    return False
