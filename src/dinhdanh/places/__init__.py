"""Vietnam's administrative units: pure data and lookups, no I/O beyond the packaged data.

Two tables live side by side, because records made before the 1 July 2025 reform keep their old
names: the 34 provinces and 3,321 communes of 2025 (from the ``vietnam-provinces`` package), and
the 63 provinces before it, whose three-digit codes personal ID numbers still carry.

>>> province("79").name
'Thành phố Hồ Chí Minh'
>>> province("79").short_name
'Hồ Chí Minh'
>>> find_province("ho chi minh").code
'79'
>>> old_province("077").name, old_province("077").successor
('Bà Rịa - Vũng Tàu', '79')
>>> commune("00070").name, commune("00070").province_code
('Phường Hoàn Kiếm', '01')
>>> len(PROVINCES), len(COMMUNES), len(OLD_PROVINCES)
(34, 3321, 63)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from vietnam_provinces.lookup import PROVINCE_MAPPING, WARD_MAPPING

from dinhdanh.ids.names import fold
from dinhdanh.places.legacy import OLD_PROVINCES as _OLD_NAMES
from dinhdanh.places.legacy import SUCCESSION, SUCCESSOR

__all__ = [
    "Province", "Commune", "OldProvince", "PROVINCES", "COMMUNES", "OLD_PROVINCES",
    "SUCCESSION", "UnknownPlace", "province", "commune", "old_province", "find_province",
    "find_communes", "communes_of", "successor_of", "name_key",
]


class UnknownPlace(LookupError):
    """No administrative unit has this code or name."""


@dataclass(frozen=True, slots=True)
class Province:
    code: str  # two digits, 2025 code
    name: str  # official, with its type prefix where it has one ("Thành phố Hà Nội")
    short_name: str  # without the prefix ("Hà Nội")
    kind: str  # "tỉnh" or "thành phố trung ương"
    predecessors: tuple[str, ...]  # old three-digit codes it was formed from


@dataclass(frozen=True, slots=True)
class Commune:
    code: str  # five digits
    name: str  # with its type ("Phường Hoàn Kiếm", "Xã ...", "Đặc khu ...")
    kind: str  # "xã", "phường" or "đặc khu"
    province_code: str


@dataclass(frozen=True, slots=True)
class OldProvince:
    code: str  # three digits, as in personal ID numbers
    name: str
    successor: str  # two-digit 2025 province code


_PREFIX = re.compile(r"^(thanh pho|tinh|tp\.?|xa|phuong|dac khu|thi tran)\s+")


def name_key(text: str) -> str:
    """Fold a place name for lookup: lower case, no diacritics (Đ -> d), single spaces."""
    return fold(text.replace(",", " "))


def _strip_prefix(key: str) -> str:
    return _PREFIX.sub("", key)


def _lookup_keys(name: str) -> tuple[str, ...]:
    """The keys to look a typed name up under: as typed, then without a type prefix.

    Both, because a name may itself begin with a word that folds like a prefix ("Phường Phương
    Liệt", "Xã Tịnh Khê", "Xã Xa Dung"): typed without its type, "Phương Liệt" must not lose
    "phuong".
    """
    key = name_key(name)
    bare = _strip_prefix(key)
    return (key, bare) if bare != key else (key,)


_KIND_OF_PREFIX = {"xa": "xã", "phuong": "phường", "dac khu": "đặc khu"}


def _short(name: str) -> str:
    for prefix in ("Thành phố ", "Tỉnh "):
        if name.startswith(prefix):
            return name[len(prefix):]
    return name


PROVINCES: dict[str, Province] = {
    f"{int(p.code):02d}": Province(
        code=f"{int(p.code):02d}", name=p.name, short_name=_short(p.name),
        kind=p.division_type.value, predecessors=SUCCESSION[f"{int(p.code):02d}"],
    )
    for p in sorted(PROVINCE_MAPPING.values(), key=lambda p: int(p.code))
}

COMMUNES: dict[str, Commune] = {
    f"{int(w.code):05d}": Commune(
        code=f"{int(w.code):05d}", name=w.name, kind=w.division_type.value,
        province_code=f"{int(w.province_code):02d}",
    )
    for w in sorted(WARD_MAPPING.values(), key=lambda w: int(w.code))
}

OLD_PROVINCES: dict[str, OldProvince] = {
    code: OldProvince(code=code, name=name, successor=SUCCESSOR[code]) for code, name in _OLD_NAMES.items()
}


@cache
def _communes_by_province() -> dict[str, tuple[Commune, ...]]:
    out: dict[str, list[Commune]] = {code: [] for code in PROVINCES}
    for c in COMMUNES.values():
        out[c.province_code].append(c)
    return {k: tuple(v) for k, v in out.items()}


@cache
def _province_names() -> dict[str, Province]:
    index: dict[str, Province] = {}
    for p in PROVINCES.values():
        index[_strip_prefix(name_key(p.name))] = p
    # common short forms
    index["hcm"] = index["tp hcm"] = index["sai gon"] = PROVINCES["79"]
    index["thua thien hue"] = PROVINCES["46"]
    return index


@cache
def _commune_names() -> dict[str, tuple[Commune, ...]]:
    index: dict[str, list[Commune]] = {}
    for c in COMMUNES.values():
        index.setdefault(_strip_prefix(name_key(c.name)), []).append(c)
    return {k: tuple(v) for k, v in index.items()}


def _code(code: str | int, width: int) -> str:
    text = str(code).strip()
    if not text.isdigit() or not text.isascii():
        raise UnknownPlace(f"not a place code: {code!r}")
    return text.zfill(width) if len(text) <= width else text


def province(code: str | int) -> Province:
    """The 2025 province with this two-digit code ("79" or 79)."""
    key = _code(code, 2)
    try:
        return PROVINCES[key]
    except KeyError:
        raise UnknownPlace(f"no province has code {code!r}") from None


def commune(code: str | int) -> Commune:
    """The 2025 commune (xã, phường, đặc khu) with this five-digit code."""
    key = _code(code, 5)
    try:
        return COMMUNES[key]
    except KeyError:
        raise UnknownPlace(f"no commune has code {code!r}") from None


def old_province(code: str | int) -> OldProvince:
    """The pre-2025 province with this three-digit code (as in a personal ID number)."""
    key = _code(code, 3)
    try:
        return OLD_PROVINCES[key]
    except KeyError:
        raise UnknownPlace(f"no pre-2025 province has code {code!r}") from None


def successor_of(old_code: str | int) -> Province:
    """The 2025 province that a pre-2025 province became part of."""
    return province(old_province(old_code).successor)


def communes_of(province_code: str | int) -> tuple[Commune, ...]:
    """Every commune of a 2025 province, by code order."""
    return _communes_by_province()[province(province_code).code]


def find_province(name: str) -> Province:
    """A 2025 province by name, with or without diacritics or its "Tỉnh"/"Thành phố" prefix.

    A pre-2025 name finds the province it became part of:

    >>> find_province("Tỉnh Bình Dương").code
    '79'
    """
    keys = _lookup_keys(name)
    for key in keys:
        found = _province_names().get(key)
        if found is not None:
            return found
    for key in keys:
        for old in OLD_PROVINCES.values():
            if _strip_prefix(name_key(old.name)) == key:
                return PROVINCES[old.successor]
    raise UnknownPlace(f"no province is named {name!r}")


def find_communes(name: str, province_code: str | int | None = None) -> tuple[Commune, ...]:
    """Communes with this name (names repeat across provinces), optionally in one province.

    >>> [c.code for c in find_communes("hoan kiem")]
    ['00070']
    """
    index = _commune_names()
    keys = _lookup_keys(name)
    found = index.get(keys[0], ())
    if len(keys) == 2:
        # The typed name had (or began with a word like) a type prefix: also the bare name,
        # preferring communes of the type the prefix names (a "Xã X" of old may be "Phường X" now).
        bare = index.get(keys[1], ())
        kind = _KIND_OF_PREFIX.get(keys[0][: len(keys[0]) - len(keys[1])].strip())
        bare = tuple(c for c in bare if c.kind == kind) or bare
        found = tuple(sorted(set(found + bare), key=lambda c: c.code))
    if province_code is not None:
        pcode = province(province_code).code
        found = tuple(c for c in found if c.province_code == pcode)
    return found
