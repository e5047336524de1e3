"""DG1, the machine readable zone (ICAO Doc 9303 Part 10, section 4.7.1).

``61 L { 5F1F L <MRZ characters> }``: the MRZ lines are stored one after the other without line
breaks. The length tells the format: 90 characters are a TD1 card (3 lines of 30, the Vietnamese
chip ID card), 72 a TD2 document (2 x 36) and 88 a TD3 passport (2 x 44).

>>> lines = ("IDVNM0950123451001095012345<<8",
...          "9503154F3503157VNM<<<<<<<<<<<6",
...          "NGUYEN<<THI<MAI<<<<<<<<<<<<<<<")
>>> raw = encode(lines)
>>> raw[:5].hex(" ")
'61 5d 5f 1f 5a'
>>> decode(raw) == lines
True
>>> decode(encode(["P<VNMNGUYEN<<VAN<AN" + "<" * 25, "C1234567<4VNM9001011M3001011<<<<<<<<<<<<<<02"]))[1][:9]
'C1234567<'
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from dinhdanh.ids.lds import tlv
from dinhdanh.ids.lds.tlv import LdsError

__all__ = ["TAG", "MRZ_TAG", "FORMATS", "encode", "decode"]

TAG = 0x61
MRZ_TAG = 0x5F1F
FORMATS = {90: (3, 30), 72: (2, 36), 88: (2, 44)}  # total length -> (lines, line length)
_NAMES = {90: "TD1", 72: "TD2", 88: "TD3"}
_BAD = re.compile(r"[^A-Z0-9<]")


def _check(mrz: str) -> None:
    if len(mrz) not in FORMATS:
        raise LdsError(f"MRZ has {len(mrz)} characters; expected 90 (TD1), 72 (TD2) or 88 (TD3).")
    bad = _BAD.search(mrz)
    if bad:
        raise LdsError(f"MRZ character {bad.group()!r} at position {bad.start()} is not A-Z, 0-9 or '<'.")


def encode(lines: Sequence[str]) -> bytes:
    """DG1 for the given MRZ lines (a single string is taken as the lines joined or newline-separated)."""
    if isinstance(lines, str):
        lines = lines.split()
    lines = list(lines)
    mrz = "".join(lines)
    _check(mrz)
    count, size = FORMATS[len(mrz)]
    if len(lines) != 1 and (len(lines) != count or any(len(line) != size for line in lines)):
        raise LdsError(
            f"{_NAMES[len(mrz)]} MRZ must be {count} lines of {size} characters, "
            f"got lengths {[len(line) for line in lines]}."
        )
    return tlv.encode(TAG, tlv.encode(MRZ_TAG, mrz.encode("ascii")))


def decode(data: bytes) -> tuple[str, ...]:
    """The MRZ lines stored in DG1."""
    raw = None
    with tlv.lds_errors("DG1"):
        for tag, value in tlv.iter_decode(tlv.decode_one(data, TAG)):
            if tag == MRZ_TAG:
                raw = value
                break
    if raw is None:
        raise LdsError(f"DG1 has no MRZ element (tag 0x{MRZ_TAG:X}).")
    try:
        mrz = raw.decode("ascii")
    except UnicodeDecodeError:
        raise LdsError("DG1 MRZ element 0x5F1F is not ASCII.") from None
    _check(mrz)
    count, size = FORMATS[len(mrz)]
    return tuple(mrz[i * size:(i + 1) * size] for i in range(count))
