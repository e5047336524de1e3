"""Name keys for whole columns at once: ``names.match_key`` and ``names.fold``, vectorised.

Arrow's kernels (NFC, lower case, RE2 regular expressions) and DuckDB's (``strip_accents``) are
not Python's (``str.casefold``, Unicode ``\\s``, ``unicodedata.combining``), and they may ship
other Unicode versions. They agree on the characters names are written with, and on those only:
the *safe* characters, each checked against the Python functions when this module is first used.
A value holding any other character (before or after NFC) gets its keys from ``names.match_key``
and ``names.fold`` themselves: a handful of rows in a real file.

- ``match_key``: Arrow. NFC only for values holding a combining mark (a safe character alone is
  NFC already), lower case, and the space rules only for values with odd spacing.
- the folded key: DuckDB SQL (``FOLD_SQL``) over the match key, evaluated by the matching query
  only for rows whose exact key differs; ``fold_fallback`` gives the Python fold of unsafe rows.

The property tests in ``tests/unit/test_match_keys.py`` hold both paths equal to ``names``.
"""

from __future__ import annotations

import unicodedata
from functools import cache

import pyarrow as pa
import pyarrow.compute as pc

from dinhdanh.ids import names

__all__ = ["match_key", "match_key_and_odd", "fold", "fold_fallback", "unsafe", "FOLD_SQL"]

# Candidates: printable ASCII, the Latin blocks Vietnamese (and most romanised names) use, the
# combining diacritics (decomposed input), and the right single quote that fold treats as a separator.
_CANDIDATES = (
    [0x09, 0x0A, 0x0C, 0x0D]
    + list(range(0x20, 0x7F))
    + list(range(0xC0, 0x250))
    + list(range(0x300, 0x370))
    + list(range(0x1E00, 0x1F00))
    + [0x2019]
)
_MARKS = r"[\x{300}-\x{36f}]"
_ODD_SPACING = r"[\t\n\f\r]|  |^ | $"

# names.fold of a match key, in DuckDB (the match key is already NFC, lower case, single spaces)
FOLD_SQL = ("trim(regexp_replace(replace(replace(strip_accents({x}), 'đ', 'd'), 'ð', 'd'), "
            "'[\\t\\n\\f\\r \\-''’.,_]+', ' ', 'g'))")


def _arrow_match_key(values: pa.Array) -> pa.Array:
    text = pc.utf8_lower(pc.utf8_normalize(values, "NFC"))
    return pc.utf8_trim(pc.replace_substring_regex(text, r"[\t\n\f\r ]+", " "), " ")


def _duckdb_fold(match_keys: pa.Array) -> pa.Array:
    import duckdb

    con = duckdb.connect()
    try:
        con.register("t", pa.table({"k": match_keys}))
        return con.sql(f"SELECT {FOLD_SQL.format(x='k')} AS f FROM t").to_arrow_table()["f"].combine_chunks()
    finally:
        con.close()


@cache
def _unsafe_pattern() -> str:
    """A regular expression matching any character outside the checked set."""
    chars = [chr(cp) for cp in _CANDIDATES]
    arr = pa.array(chars, pa.string())
    mk = _arrow_match_key(arr)
    fd = _duckdb_fold(mk).to_pylist()
    nfc = pc.utf8_normalize(arr, "NFC").to_pylist()
    safe = []
    for c, a_mk, a_fd, a_nfc in zip(chars, mk.to_pylist(), fd, nfc):
        mark = 0x300 <= ord(c) < 0x370
        if c.isspace() and c not in "\t\n\f\r ":
            continue  # Python's \s is wider than RE2's
        if c.casefold() != c.lower() or a_nfc != unicodedata.normalize("NFC", c):
            continue
        if not mark and a_nfc != c:
            continue  # a safe character without marks must be NFC already (NFC is skipped then)
        if mark and not unicodedata.combining(c):
            continue  # fold strips what Python calls combining, strip_accents what it calls a mark
        if a_mk != names.match_key(c) or a_fd != names.fold(c):
            continue
        safe.append(c)
    ranges, start, prev = [], None, None
    for cp in sorted(ord(c) for c in safe):
        if start is None:
            start = prev = cp
        elif cp == prev + 1:
            prev = cp
        else:
            ranges.append((start, prev))
            start = prev = cp
    ranges.append((start, prev))
    body = "".join(f"\\x{{{a:x}}}" if a == b else f"\\x{{{a:x}}}-\\x{{{b:x}}}" for a, b in ranges)
    return f"[^{body}]"


def _string_array(values) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    return values if values.type == pa.string() else values.cast(pa.string())


def _on_subset(values: pa.Array, mask: pa.Array, fn) -> pa.Array:
    """``fn`` applied only where ``mask`` is true."""
    if not pc.any(mask).as_py():
        return values
    return pc.replace_with_mask(values, mask, fn(values.filter(mask)))


def unsafe(values: pa.Array) -> pa.Array:
    """True where a value holds a character the vectorised keys are not checked for."""
    values = _string_array(values)
    return pc.fill_null(pc.match_substring_regex(values, _unsafe_pattern()), False)


def match_key(values) -> pa.Array:
    """``names.match_key`` of every value (nulls stay null)."""
    return match_key_and_odd(values)[0]


def match_key_and_odd(values) -> tuple[pa.Array, pa.Array]:
    """The match keys, and where they came from Python (the unsafe values: see ``fold_fallback``)."""
    values = _string_array(values)
    pattern = _unsafe_pattern()
    odd = unsafe(values)
    marked = pc.fill_null(pc.and_not(pc.match_substring_regex(values, _MARKS), odd), False)
    text = _on_subset(values, marked, lambda v: pc.utf8_normalize(v, "NFC"))
    # composing can make an unsafe character of safe ones: "I" + U+0307 -> "İ"
    odd = pc.or_(odd, pc.fill_null(pc.and_(marked, pc.match_substring_regex(text, pattern)), False))
    text = pc.utf8_lower(text)
    spaced = pc.fill_null(pc.match_substring_regex(text, _ODD_SPACING), False)
    text = _on_subset(text, spaced, lambda v: pc.utf8_trim(pc.replace_substring_regex(v, r"[\t\n\f\r ]+", " "), " "))
    return _on_subset(text, odd, lambda _: pa.array([None if s is None else names.match_key(s)
                                                     for s in values.filter(odd).to_pylist()], pa.string())), odd


def fold_fallback(values, odd: pa.Array) -> pa.Array:
    """``names.fold`` where ``odd`` (from ``match_key_and_odd``), null elsewhere: FOLD_SQL does those."""
    values = _string_array(values)
    out = pa.nulls(len(values), pa.string())
    return _on_subset(out, odd, lambda _: pa.array([None if s is None else names.fold(s)
                                                    for s in values.filter(odd).to_pylist()], pa.string()))


def fold(values) -> pa.Array:
    """``names.fold`` of every value, the way batch matching computes it (tests, benchmarks)."""
    values = _string_array(values)
    mk, odd = match_key_and_odd(values)
    return pc.if_else(odd, fold_fallback(values, odd), _duckdb_fold(mk))
