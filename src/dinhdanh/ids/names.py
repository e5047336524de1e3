"""Vietnamese personal names: normalisation, search keys, MRZ transliteration, splitting.

Names keep their diacritics in the register (NFC). Comparisons use two keys:

- ``match_key``: NFC, case-folded, single spaces: "NGUYỄN  thị Mai" and "Nguyễn Thị Mai" agree.
- ``fold``: the same with every diacritic removed and Đ/đ mapped to d: the search key, so a name
  typed without diacritics finds the record. Stripping combining marks alone leaves "đ" (it is a
  letter of its own, not d plus a mark): it is mapped explicitly.

>>> normalize("  Nguyễn   Thị  Mai ")
'Nguyễn Thị Mai'
>>> fold("ĐẶNG  văn   Đức")
'dang van duc'
>>> fold("Nguye\u0302\u0303n Thi\u0323 Mai") == fold("Nguyễn Thị Mai")
True
>>> match_key("NGUYỄN thị MAI") == match_key("Nguyễn Thị Mai")
True
>>> transliterate("Đặng Thị Ngọc Ánh")
'DANG THI NGOC ANH'
>>> split("Nguyễn Thị Mai")
NameParts(surname='Nguyễn', middle='Thị', given='Mai')
>>> split("Tôn Thất Thuyết")
NameParts(surname='Tôn Thất', middle='', given='Thuyết')
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from dinhdanh.ids.exceptions import InvalidFormat

__all__ = ["NameParts", "normalize", "fold", "match_key", "transliterate", "split", "validate"]

_SPACES = re.compile(r"\s+")
_FOLD_SEPARATORS = re.compile(r"[\s\-'’.,_]+")

# Surnames of two syllables; anything else takes the first word as the surname.
COMPOUND_SURNAMES = frozenset(
    {"tôn thất", "tôn nữ", "nguyễn phúc", "âu dương", "hoàng phủ", "tư mã", "gia cát", "tôn thất"}
)


@dataclass(frozen=True, slots=True)
class NameParts:
    surname: str
    middle: str
    given: str


def _build_fold_table() -> dict[int, str]:
    """Map every precomposed Latin letter to its bare ASCII base, lower case.

    Built once from Unicode data, so one ``str.translate`` folds a name: the import folds a
    hundred thousand names a second through this path.
    """
    table: dict[int, str] = {}
    for cp in range(0x00C0, 0x1F00):
        ch = chr(cp)
        if not ch.isalpha():
            continue
        base = "".join(c for c in unicodedata.normalize("NFD", ch) if not unicodedata.combining(c))
        if len(base) == 1 and base.isascii():
            table[cp] = base.lower()
    table[ord("Đ")] = table[ord("đ")] = "d"
    # Icelandic eth, which old Vietnamese data often has where Đ was meant
    table[ord("Ð")] = table[ord("ð")] = "d"
    for upper in "ABCDEFGHIJKLMNOPQRSTUVWXYZ":
        table[ord(upper)] = upper.lower()
    return table


_FOLD_TABLE = _build_fold_table()


def normalize(name: str) -> str:
    """The stored form: NFC, single spaces, trimmed. Case is kept as given."""
    return _SPACES.sub(" ", unicodedata.normalize("NFC", name)).strip()


def match_key(name: str) -> str:
    """Key for an exact comparison: NFC, case-folded, single spaces (diacritics kept)."""
    return _SPACES.sub(" ", unicodedata.normalize("NFC", name).casefold()).strip()


def fold(name: str) -> str:
    """Search key: lower-case ASCII letters and single spaces; diacritics gone, Đ/đ -> d.

    Hyphens, apostrophes and dots separate words like spaces do. Characters with no Latin base
    (digits, other scripts) are kept as they are, lower-cased.
    """
    text = unicodedata.normalize("NFC", name).translate(_FOLD_TABLE)
    if not text.isascii():
        # Leftover combining marks (a decomposed input NFC could not recompose) or other scripts.
        text = "".join(
            c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c)
        ).translate(_FOLD_TABLE).lower()
    return _FOLD_SEPARATORS.sub(" ", text).strip()


def transliterate(name: str) -> str:
    """Upper-case ASCII for machine-readable zones: no diacritics, Đ -> D, words by single spaces."""
    return fold(name).upper()


def split(full_name: str) -> NameParts:
    """Split a name written in Vietnamese order: surname, middle name(s), given name."""
    words = normalize(full_name).split(" ")
    if not words or words == [""]:
        raise InvalidFormat("The name is empty.")
    if len(words) == 1:
        return NameParts(surname="", middle="", given=words[0])
    take = 2 if len(words) >= 3 and " ".join(words[:2]).lower() in COMPOUND_SURNAMES else 1
    surname = " ".join(words[:take])
    given = words[-1]
    middle = " ".join(words[take:-1])
    return NameParts(surname=surname, middle=middle, given=given)


_NAME_SEPARATORS = re.compile(r"[ '’\-.]")


def _well_formed(text: str) -> bool:
    # Every word between separators is non-empty and letters only. ``str.isalpha`` rather than
    # the regex class ``[^\W\d_]``, which lets numerals such as '²', '½' or 'Ⅻ' through.
    return all(word and word.isalpha() for word in _NAME_SEPARATORS.split(text))


def validate(name: str) -> str:
    """Return the normalised name, or raise ``InvalidFormat`` naming the problem.

    A name holds letters (any script, with diacritics), single spaces, hyphens, apostrophes and
    dots between letters; no digits; at most 100 characters.

    >>> validate("Nguyễn Văn 3")
    Traceback (most recent call last):
        ...
    dinhdanh.ids.exceptions.InvalidFormat: The name contains a character that is not a letter: '3'.
    """
    if not isinstance(name, str):
        raise InvalidFormat("The name is not text.")
    text = normalize(name)
    if not text:
        raise InvalidFormat("The name is empty.")
    if len(text) > 100:
        raise InvalidFormat("The name is longer than 100 characters.")
    if not _well_formed(text):
        bad = next((c for c in text if not (c.isalpha() or c in " '’-.")), None)
        if bad is not None:
            raise InvalidFormat(f"The name contains a character that is not a letter: {bad!r}.")
        raise InvalidFormat("The name has a separator that is not between two letters.")
    return text
