"""Machine-readable zones (ICAO Doc 9303): TD1 (3 x 30, ID cards), TD2 (2 x 36), TD3 (2 x 44).

An MRZ holds the characters A-Z, 0-9 and the filler ``<``. Check digits use the weights 7, 3, 1
over the values 0-9, A-Z = 10-35, ``<`` = 0, sum mod 10. ``parse`` reads the fields and records
every check digit that fails in ``errors`` (it does not raise for them: a reader wants the fields
and the list of what is wrong); it raises only when the text is not an MRZ at all. ``validate``
raises ``InvalidChecksum`` for the first failing check.

The TD1 specimen of Doc 9303:

>>> m = parse('''I<UTOD231458907<<<<<<<<<<<<<<<
...              7408122F1204159UTO<<<<<<<<<<<6
...              ERIKSSON<<ANNA<MARIA<<<<<<<<<<''')
>>> m.format, m.document_code, m.document_number, m.surname, m.given_names, m.valid
('TD1', 'I', 'D23145890', 'ERIKSSON', 'ANNA MARIA', True)
>>> m.date_of_birth, m.sex, m.expiry_date, m.nationality
('740812', 'F', '120415', 'UTO')
>>> calc_check_digit("520727")
'3'

A misread digit shows up in ``errors`` (here the birth date 740812 read as 740813):

>>> bad = parse(["I<UTOD231458907<<<<<<<<<<<<<<<", "7408132F1204159UTO<<<<<<<<<<<6",
...              "ERIKSSON<<ANNA<MARIA<<<<<<<<<<"])
>>> bad.valid, [e["check"] for e in bad.errors]
(False, ['date_of_birth', 'composite'])
>>> validate(bad.lines)
Traceback (most recent call last):
    ...
dinhdanh.ids.exceptions.InvalidChecksum: The date of birth check digit is '2'; it should be '3'.

The Vietnamese chip card (CCCD) writes the 12-digit PID in the optional data of line 1:

>>> import datetime
>>> lines = build_vn_card(pid="079301000123", date_of_birth=datetime.date(2001, 1, 2),
...                       sex="female", expiry_date=datetime.date(2026, 1, 2),
...                       full_name="Nguyễn Thị Mai")
>>> print("\\n".join(lines))
IDVNM3010001238079301000123<<8
0101022F2601021VNM<<<<<<<<<<<8
NGUYEN<<THI<MAI<<<<<<<<<<<<<<<
>>> vn = parse(lines)
>>> vn.pid, vn.document_number, vn.surname, vn.given_names, vn.valid
('079301000123', '301000123', 'NGUYEN', 'THI MAI', True)

A document that does not expire (a Vietnamese card issued at 58 or older, "Không thời hạn" on
its face) still carries a date of expiry in the MRZ: ``991231`` (``NO_EXPIRY``), with its check
digit ``5``, as the Ministry's own cards for holders over 60 do:

>>> old = build_vn_card(pid="001060012345", date_of_birth=datetime.date(1960, 5, 6), sex="male",
...                     expiry_date=None, full_name="Đặng Văn Đức")
>>> old[1]
'6005063M9912315VNM<<<<<<<<<<<8'
>>> parse(old).expiry_date, parse(old).valid
('991231', True)

Why, and not ``<<<<<<``: Doc 9303 (8th edition, 2021) has no "no expiry" value in the MRZ.
Part 5 (TD1), section 4.2.2, data structure of the MRZ: line 2, positions 9-14, date of expiry
(YYMMDD, numerics) and position 15 its check digit (numeric); Part 4 (TD3) and Part 6 (TD2),
section 4.2.2, have the same mandatory field. The only check digit that may be ``<`` is the TD3
personal number's, when that field is all fillers (Part 4, 4.2.2); Part 3, 4.9 gives the
computation (7-3-1 weights, ``<`` worth 0). Independent
readers hold to this: the PyPI ``mrz`` checker, pymrtd and the npm ``mrz`` package all refuse an
expiry of fillers, while readers of Vietnamese cards (and the BAC key, 9303 Part 11, which takes
the expiry digits) work with ``991231``. So:

- builders write ``NO_EXPIRY`` for ``expiry_date=None`` and refuse an expiry holding ``<``;
- ``parse`` reports an expiry that is not six digits (``<<<<<<`` included, whatever its check
  digit) as the failing check ``expiry_date`` (``expected`` is ``"YYMMDD"``), so ``validate``,
  ``is_valid`` and ``dinhdanh mrz check`` refuse it as the ICAO readers do;
- the MRZ alone cannot tell ``991231`` "no expiry" from a real 31 December 2099 (the century is
  not in the MRZ). The meaning "does not expire" lives in the register (``cards.expiry_date`` is
  NULL), the printed zone and DG13 field 12 (``Không thời hạn``); the chip's DG1 holds this MRZ.

Choices where Doc 9303 leaves room:

- ``sex`` is "M", "F" or "X"; the MRZ filler ``<`` (unspecified) is reported as "X", as the
  visual zone prints it. Builders take "M", "F", "X" or "<".
- Dates stay the raw six characters YYMMDD (the century is not in the MRZ). A date of birth may
  hold fillers for its unknown parts (Part 3); the date of expiry may not (see above). An unused
  TD3 personal number gets the check digit ``<`` (``0`` is accepted too: the value of ``<`` is 0,
  so the composite check digit is the same either way).
- Names too long for the field: the given names are cut first (the surname is kept whole when
  it leaves room for ``<<`` and one letter), otherwise the surname is cut and only the initial of
  the given names is kept. Trailing fillers of a cut name are dropped.
- A single string of 90, 72 or 88 characters (the MRZ as the chip's DG1 holds it, without line
  breaks) is split into lines.
- ``parse`` refuses document codes that do not belong to the size (TD1 and TD2: A, C or I;
  TD3: P), so a machine-readable visa is not read as a passport.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Sequence
from dataclasses import dataclass

from dinhdanh.ids import names as _names
from dinhdanh.ids import pid as _pid
from dinhdanh.ids.exceptions import (
    InvalidChecksum,
    InvalidComponent,
    InvalidFormat,
    InvalidLength,
    ValidationError,
)

__all__ = [
    "NO_EXPIRY", "Mrz", "calc_check_digit", "parse", "validate", "is_valid",
    "build_td1", "build_td2", "build_td3", "build_vn_card",
]

FILLER = "<"
NO_EXPIRY = "991231"  # the date of expiry written for a document that does not expire (see above)
_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789<")
_VALUES = {c: (int(c) if c.isdigit() else 0 if c == FILLER else ord(c) - 55) for c in _ALPHABET}
_WEIGHTS = (7, 3, 1)
_FIRST_LETTERS = {"TD1": "ACI", "TD2": "ACI", "TD3": "P"}
_LABELS = {
    "document_number": "document number",
    "date_of_birth": "date of birth",
    "expiry_date": "expiry date",
    "personal_number": "personal number",
    "composite": "composite",
    "pid": "PID",
}
_VN_OPTIONAL = re.compile(r"([0-9]{12})<<(.)")


def calc_check_digit(data: str) -> str:
    """The check digit of ``data`` (A-Z, 0-9 and ``<``), as one character.

    >>> calc_check_digit("AB2134<<<")
    '5'
    """
    if not isinstance(data, str):
        raise InvalidFormat("The check digit input is not text.")
    total = 0
    for i, c in enumerate(data):
        value = _VALUES.get(c)
        if value is None:
            raise InvalidFormat(f"{c!r} is not an MRZ character (A-Z, 0-9, <).")
        total += value * _WEIGHTS[i % 3]
    return str(total % 10)


@dataclass(frozen=True, slots=True)
class Mrz:
    """The fields of a machine-readable zone, fillers removed, and the failing check digits."""

    format: str  # "TD1", "TD2" or "TD3"
    lines: tuple[str, ...]
    document_code: str
    issuing_state: str
    document_number: str
    date_of_birth: str  # raw YYMMDD; unknown parts are "<"
    sex: str  # "M", "F" or "X" (the MRZ's "<")
    expiry_date: str  # raw YYMMDD; NO_EXPIRY ("991231") when the document does not expire
    nationality: str
    surname: str
    given_names: str
    optional_data: str
    optional_data_2: str
    errors: tuple[dict, ...]
    pid: str | None = None  # the 12-digit PID of a Vietnamese card, else None

    @property
    def valid(self) -> bool:
        """Whether every check digit matches."""
        return not self.errors

    @property
    def mrz_information(self) -> str:
        """Document number, date of birth and expiry date, each with its check digit, as printed
        (the full number for a long one): the input of the BAC key seed (9303 Part 11)."""
        l1, l2 = self.lines[0], self.lines[1]
        if self.format == "TD1":
            number, check, _ = _long_number(l1[5:14], l1[14], l1[15:30])
            return number + check + l2[0:7] + l2[8:15]
        number, check = l2[0:9], l2[9]
        if self.format == "TD2":
            number, check, _ = _long_number(number, check, l2[28:35])
        return number + check + l2[13:20] + l2[21:28]

    def as_dict(self) -> dict:
        """JSON-ready fields (``errors`` as a list of ``{"check", "expected", "found"}``)."""
        return {
            "valid": self.valid,
            "format": self.format,
            "document_code": self.document_code,
            "issuing_state": self.issuing_state,
            "document_number": self.document_number,
            "date_of_birth": self.date_of_birth,
            "sex": self.sex,
            "expiry_date": self.expiry_date,
            "nationality": self.nationality,
            "surname": self.surname,
            "given_names": self.given_names,
            "optional_data": self.optional_data,
            "optional_data_2": self.optional_data_2,
            "errors": [dict(e) for e in self.errors],
            "pid": self.pid,
        }


# --- parsing -------------------------------------------------------------------------------------


def _split_lines(text_or_lines) -> list[str]:
    if isinstance(text_or_lines, str):
        raw = text_or_lines.splitlines()
    elif isinstance(text_or_lines, (list, tuple)):
        raw = list(text_or_lines)
        if not all(isinstance(line, str) for line in raw):
            raise InvalidFormat("The MRZ lines must be text.")
    else:
        raise InvalidFormat("The MRZ is neither text nor a list of lines.")
    lines = [line.strip() for line in raw]
    lines = [line for line in lines if line]
    for i, line in enumerate(lines, 1):
        for j, c in enumerate(line, 1):
            if c not in _ALPHABET:
                raise InvalidFormat(
                    f"Line {i}, column {j}: {c!r} is not an MRZ character (A-Z, 0-9, <)."
                )
    if len(lines) == 1 and len(lines[0]) in (90, 72, 88):  # DG1 form: no line breaks
        width = {90: 30, 72: 36, 88: 44}[len(lines[0])]
        lines = [lines[0][i:i + width] for i in range(0, len(lines[0]), width)]
    return lines


def _size(lines: list[str]) -> str:
    if not lines:
        raise InvalidLength("The MRZ is empty.")
    if len(lines) == 3:
        for i, line in enumerate(lines, 1):
            if len(line) != 30:
                raise InvalidLength(
                    f"Line {i} has {len(line)} characters; a TD1 MRZ has 3 lines of 30."
                )
        return "TD1"
    if len(lines) == 2:
        width = len(lines[0])
        if width not in (36, 44):
            raise InvalidLength(
                f"Line 1 has {width} characters; a two-line MRZ has lines of 36 (TD2) or 44 (TD3)."
            )
        if len(lines[1]) != width:
            raise InvalidLength(f"Line 2 has {len(lines[1])} characters; line 1 has {width}.")
        return "TD2" if width == 36 else "TD3"
    raise InvalidLength(
        f"The MRZ has {len(lines)} lines; TD1 has 3 lines of 30, TD2 and TD3 2 lines of 36 or 44."
    )


def _check(errors: list[dict], name: str, data: str, found: str, *, filler_ok: bool = True) -> None:
    expected = calc_check_digit(data)
    if found == expected:
        return
    if filler_ok and found == FILLER and data.strip(FILLER) == "":  # an unused field may carry a filler
        return
    errors.append({"check": name, "expected": expected, "found": found})


def _long_number(number: str, check: str, optional: str) -> tuple[str, str, str]:
    """Document number, its check digit and the rest of the optional data (9303 long numbers).

    When the check digit position holds ``<`` after a full nine-character field, the number goes
    on in the optional data up to the next ``<``; the character before that is the check digit.
    """
    if check != FILLER or number.endswith(FILLER):
        return number, check, optional
    end = optional.find(FILLER)
    if end == -1:
        end = len(optional)
    if end == 0:
        return number, check, optional
    return number + optional[:end - 1], optional[end - 1], optional[end + 1:]


def _words(field: str) -> str:
    return " ".join(w for w in field.split(FILLER) if w)


def _name(field: str) -> tuple[str, str]:
    surname, _, given = field.rstrip(FILLER).partition("<<")
    return _words(surname), _words(given)


def _code(field: str, what: str, where: str) -> str:
    if not all(c.isalpha() or c == FILLER for c in field):
        raise InvalidComponent(f"The {what} {field!r} ({where}) may only hold letters.")
    return field.rstrip(FILLER)


def _date(field: str, what: str, where: str) -> str:
    if not all(c.isdigit() or c == FILLER for c in field):
        raise InvalidComponent(f"The {what} {field!r} ({where}) is not a YYMMDD date.")
    return field


def _sex(char: str, where: str) -> str:
    if char not in "MF<":
        raise InvalidComponent(f"The sex {char!r} ({where}) is not M, F or <.")
    return "X" if char == FILLER else char


def parse(text_or_lines: str | Sequence[str]) -> Mrz:
    """Read an MRZ given as one text (lines separated by line breaks) or a list of lines.

    Raises ``InvalidFormat`` for a character outside A-Z, 0-9, ``<`` (naming line and column),
    ``InvalidLength`` for a wrong number or length of lines and ``InvalidComponent`` for a field
    that cannot be what it stands for (letters in a date, a sex other than M, F, <). Failing
    check digits are not raised: they are listed in ``errors``.
    """
    lines = _split_lines(text_or_lines)
    fmt = _size(lines)
    l1, l2 = lines[0], lines[1]
    if l1[0] not in _FIRST_LETTERS[fmt]:
        raise InvalidComponent(
            f"The document code {l1[:2]!r} does not fit a {fmt} MRZ "
            f"(it must start with {' or '.join(_FIRST_LETTERS[fmt])})."
        )
    errors: list[dict] = []
    document_code = l1[:2].rstrip(FILLER)
    issuing_state = _code(l1[2:5], "issuing state", "line 1, columns 3-5")
    pid = None
    if fmt == "TD1":
        l3 = lines[2]
        number, check, optional = _long_number(l1[5:14], l1[14], l1[15:30])
        dob, dob_check, sex, expiry, expiry_check = l2[0:6], l2[6], l2[7], l2[8:14], l2[14]
        nationality = l2[15:18]
        optional_2 = l2[18:29]
        composite_data, composite = l1[5:30] + l2[0:7] + l2[8:15] + l2[18:29], l2[29]
        surname, given = _name(l3)
        where = {"dob": "line 2, columns 1-6", "sex": "line 2, column 8",
                 "exp": "line 2, columns 9-14", "nat": "line 2, columns 16-18"}
    else:
        width = len(l2)
        end = 35 if fmt == "TD2" else 42
        number, check, optional = l2[0:9], l2[9], l2[28:end]
        if fmt == "TD2":
            number, check, optional = _long_number(number, check, optional)
        nationality = l2[10:13]
        dob, dob_check, sex, expiry, expiry_check = l2[13:19], l2[19], l2[20], l2[21:27], l2[27]
        optional_2 = ""
        composite_data, composite = l2[0:10] + l2[13:20] + l2[21:width - 1], l2[width - 1]
        surname, given = _name(l1[5:])
        where = {"dob": "line 2, columns 14-19", "sex": "line 2, column 21",
                 "exp": "line 2, columns 22-27", "nat": "line 2, columns 11-13"}
    nationality = _code(nationality, "nationality", where["nat"])
    _date(dob, "date of birth", where["dob"])
    _date(expiry, "expiry date", where["exp"])
    sex = _sex(sex, where["sex"])

    _check(errors, "document_number", number, check)
    _check(errors, "date_of_birth", dob, dob_check)
    if expiry.isdigit():
        _check(errors, "expiry_date", expiry, expiry_check, filler_ok=False)
    else:  # 9303 has no "no expiry" in the MRZ: a date is mandatory (see the module's docstring)
        errors.append({"check": "expiry_date", "expected": "YYMMDD", "found": expiry})
    if fmt == "TD3":
        _check(errors, "personal_number", optional, l2[42])
    _check(errors, "composite", composite_data, composite)
    if fmt == "TD1" and document_code == "ID" and issuing_state == "VNM":
        vn = _VN_OPTIONAL.fullmatch(l1[15:30])
        if vn:
            pid = vn.group(1)
            _check(errors, "pid", pid, vn.group(2))

    return Mrz(
        format=fmt,
        lines=tuple(lines),
        document_code=document_code,
        issuing_state=issuing_state,
        document_number=number.rstrip(FILLER),
        date_of_birth=dob,
        sex=sex,
        expiry_date=expiry,
        nationality=nationality,
        surname=surname,
        given_names=given,
        optional_data=optional.rstrip(FILLER),
        optional_data_2=optional_2.rstrip(FILLER),
        errors=tuple(errors),
        pid=pid,
    )


def validate(text_or_lines: str | Sequence[str]) -> Mrz:
    """Parse and raise ``InvalidChecksum`` naming the first check digit that fails."""
    mrz = parse(text_or_lines)
    if mrz.errors:
        first = mrz.errors[0]
        if first["expected"] == "YYMMDD":
            raise InvalidComponent(
                f"The {_LABELS[first['check']]} {first['found']!r} is not a date YYMMDD: ICAO 9303 "
                f"requires one in the MRZ (a document that does not expire carries {NO_EXPIRY})."
            )
        raise InvalidChecksum(
            f"The {_LABELS[first['check']]} check digit is {first['found']!r}; "
            f"it should be {first['expected']!r}."
        )
    return mrz


def is_valid(text_or_lines: str | Sequence[str]) -> bool:
    """Whether the text is an MRZ whose check digits all match."""
    try:
        validate(text_or_lines)
    except ValidationError:
        return False
    return True


# --- building ------------------------------------------------------------------------------------


def _pad(text: str, width: int) -> str:
    return text + FILLER * (width - len(text))


def _chars(value, what: str, allowed: str, max_len: int, *, required: bool) -> str:
    if not isinstance(value, str):
        raise InvalidComponent(f"The {what} is not text.")
    bad = next((c for c in value if c not in allowed), None)
    if bad is not None:
        raise InvalidComponent(f"The {what} {value!r} holds {bad!r}; only {_describe(allowed)}.")
    if required and not value.strip(FILLER):
        raise InvalidComponent(f"The {what} is empty.")
    if len(value) > max_len:
        raise InvalidComponent(f"The {what} {value!r} is longer than {max_len} characters.")
    return value


_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_ALNUM = _LETTERS + "0123456789"


def _describe(allowed: str) -> str:
    if allowed == _LETTERS + FILLER:
        return "A-Z and < are allowed"
    if allowed == _ALNUM:
        return "A-Z and 0-9 are allowed"
    return "A-Z, 0-9 and < are allowed"


def _b_code(value, fmt: str) -> str:
    code = _chars(value, "document code", _LETTERS + FILLER, 2, required=True).rstrip(FILLER)
    if code[0] not in _FIRST_LETTERS[fmt]:
        raise InvalidComponent(
            f"The document code {value!r} does not fit a {fmt} MRZ "
            f"(it must start with {' or '.join(_FIRST_LETTERS[fmt])})."
        )
    return _pad(code, 2)


def _b_state(value, what: str) -> str:
    return _pad(_chars(value, what, _LETTERS + FILLER, 3, required=True).rstrip(FILLER), 3)


def _b_date(value, what: str, *, expiry: bool = False) -> str:
    """YYMMDD; for the expiry, None is ``NO_EXPIRY`` and fillers are refused (a date is mandatory)."""
    if value is None and expiry:
        return NO_EXPIRY
    if isinstance(value, _dt.date):
        return f"{value.year % 100:02d}{value.month:02d}{value.day:02d}"
    if not isinstance(value, str) or len(value) != 6 or not all(
        c.isascii() and (c.isdigit() or c == FILLER) for c in value
    ):
        raise InvalidComponent(f"The {what} {value!r} is neither a date nor YYMMDD.")
    if expiry and not value.isdigit():
        raise InvalidComponent(
            f"The {what} {value!r} holds fillers: ICAO 9303 requires a date of expiry in the MRZ; "
            f"give None for a document that does not expire (written {NO_EXPIRY})."
        )
    if value.isdigit():
        try:  # 20YY: a year of the century that accepts every 29 February the MRZ can hold
            _dt.date(2000 + int(value[:2]), int(value[2:4]), int(value[4:]))
        except ValueError:
            raise InvalidComponent(f"The {what} {value!r} is not a date.") from None
    return value


def _b_sex(value) -> str:
    if value in ("M", "F"):
        return value
    if value in ("X", FILLER):
        return FILLER
    raise InvalidComponent(f"The sex {value!r} is not M, F or X.")


def _name_words(value, what: str) -> str:
    if not isinstance(value, str):
        raise InvalidComponent(f"The {what} is not text.")
    text = value.replace("'", "").replace("\u2019", "")  # O'Neil -> ONEIL (9303)
    return re.sub(r"[^A-Z]+", FILLER, _names.transliterate(text)).strip(FILLER)


def _b_name(surname, given_names, width: int) -> str:
    primary = _name_words(surname, "surname")
    secondary = _name_words(given_names, "given names")
    if not primary:
        raise InvalidComponent(f"The surname {surname!r} has no letter an MRZ can hold.")
    if not secondary:
        return _pad(primary[:width].rstrip(FILLER), width)
    full = primary + "<<" + secondary
    if len(full) <= width:
        return _pad(full, width)
    if len(primary) + 3 <= width:
        return _pad(primary + "<<" + secondary[:width - len(primary) - 2].rstrip(FILLER), width)
    return _pad(primary[:width - 3].rstrip(FILLER) + "<<" + secondary[0], width)


def _b_number(value, max_len: int) -> str:
    return _chars(value, "document number", _ALNUM, max_len, required=True)


def build_td1(
    *,
    document_code: str,
    issuing_state: str,
    document_number: str,
    date_of_birth: _dt.date | str,
    sex: str,
    expiry_date: _dt.date | str | None,
    nationality: str,
    surname: str,
    given_names: str,
    optional_data: str = "",
    optional_data_2: str = "",
) -> tuple[str, str, str]:
    """The three lines of a TD1 (ID card) MRZ.

    A document number longer than 9 characters goes on in the optional data (9303 Part 5).

    >>> for line in build_td1(document_code="I", issuing_state="UTO", document_number="D23145890",
    ...                       date_of_birth="740812", sex="F", expiry_date="120415",
    ...                       nationality="UTO", surname="Eriksson", given_names="Anna María"):
    ...     print(line)
    I<UTOD231458907<<<<<<<<<<<<<<<
    7408122F1204159UTO<<<<<<<<<<<6
    ERIKSSON<<ANNA<MARIA<<<<<<<<<<
    """
    code = _b_code(document_code, "TD1")
    state = _b_state(issuing_state, "issuing state")
    number = _b_number(document_number, 9 + 14)
    optional = _chars(optional_data, "optional data", _ALPHABET, 15, required=False)
    if len(number) <= 9:
        field = _pad(number, 9)
        line1 = code + state + field + calc_check_digit(field) + _pad(optional, 15)
    else:
        tail = number[9:] + calc_check_digit(number)
        if optional:
            tail += FILLER + optional
        if len(tail) > 15:
            raise InvalidComponent(
                f"The document number {number!r} and the optional data do not fit in line 1."
            )
        line1 = code + state + number[:9] + FILLER + _pad(tail, 15)
    line2 = _line2_td1(date_of_birth, sex, expiry_date, nationality, optional_data_2, line1)
    return line1, line2, _b_name(surname, given_names, 30)


def _line2_td1(date_of_birth, sex, expiry_date, nationality, optional_data_2, line1: str) -> str:
    dob = _b_date(date_of_birth, "date of birth")
    exp = _b_date(expiry_date, "expiry date", expiry=True)
    optional_2 = _chars(optional_data_2, "optional data 2", _ALPHABET, 11, required=False)
    line2 = (
        dob + calc_check_digit(dob) + _b_sex(sex) + exp + calc_check_digit(exp)
        + _b_state(nationality, "nationality") + _pad(optional_2, 11)
    )
    return line2 + calc_check_digit(line1[5:30] + line2[0:7] + line2[8:15] + line2[18:29])


def _filler_check(data: str) -> str:
    """The check digit, or ``<`` for a field of fillers only (an unused TD3 personal number)."""
    return FILLER if not data.strip(FILLER) else calc_check_digit(data)


def _line2_two_line(
    number_part: str, nationality, date_of_birth, sex, expiry_date, rest: str
) -> str:
    dob = _b_date(date_of_birth, "date of birth")
    exp = _b_date(expiry_date, "expiry date", expiry=True)
    line2 = (
        number_part + _b_state(nationality, "nationality") + dob + calc_check_digit(dob)
        + _b_sex(sex) + exp + calc_check_digit(exp) + rest
    )
    return line2 + calc_check_digit(line2[0:10] + line2[13:20] + line2[21:])


def build_td2(
    *,
    document_code: str,
    issuing_state: str,
    document_number: str,
    date_of_birth: _dt.date | str,
    sex: str,
    expiry_date: _dt.date | str | None,
    nationality: str,
    surname: str,
    given_names: str,
    optional_data: str = "",
) -> tuple[str, str]:
    """The two lines of a TD2 MRZ (2 x 36); long document numbers as in TD1."""
    code = _b_code(document_code, "TD2")
    state = _b_state(issuing_state, "issuing state")
    number = _b_number(document_number, 9 + 6)
    optional = _chars(optional_data, "optional data", _ALPHABET, 7, required=False)
    if len(number) <= 9:
        number_part = _pad(number, 9) + calc_check_digit(_pad(number, 9))
        rest = _pad(optional, 7)
    else:
        tail = number[9:] + calc_check_digit(number) + (FILLER + optional if optional else "")
        if len(tail) > 7:
            raise InvalidComponent(
                f"The document number {number!r} and the optional data do not fit in line 2."
            )
        number_part, rest = number[:9] + FILLER, _pad(tail, 7)
    line1 = code + state + _b_name(surname, given_names, 31)
    return line1, _line2_two_line(number_part, nationality, date_of_birth, sex, expiry_date, rest)


def build_td3(
    *,
    document_code: str,
    issuing_state: str,
    document_number: str,
    date_of_birth: _dt.date | str,
    sex: str,
    expiry_date: _dt.date | str | None,
    nationality: str,
    surname: str,
    given_names: str,
    personal_number: str = "",
) -> tuple[str, str]:
    """The two lines of a TD3 (passport) MRZ; an unused personal number gets the check ``<``.

    >>> build_td3(document_code="P", issuing_state="UTO", document_number="L898902C3",
    ...           date_of_birth="740812", sex="F", expiry_date="120415", nationality="UTO",
    ...           surname="Eriksson", given_names="Anna Maria", personal_number="ZE184226B")[1]
    'L898902C36UTO7408122F1204159ZE184226B<<<<<10'
    """
    code = _b_code(document_code, "TD3")
    state = _b_state(issuing_state, "issuing state")
    number = _pad(_b_number(document_number, 9), 9)
    personal = _pad(_chars(personal_number, "personal number", _ALPHABET, 14, required=False), 14)
    personal += _filler_check(personal)
    line1 = code + state + _b_name(surname, given_names, 39)
    line2 = _line2_two_line(
        number + calc_check_digit(number), nationality, date_of_birth, sex, expiry_date, personal
    )
    return line1, line2


def build_vn_card(
    *,
    pid: str,
    date_of_birth: _dt.date | str,
    sex: str,
    expiry_date: _dt.date | str | None,
    full_name: str,
) -> tuple[str, str, str]:
    """The MRZ of a Vietnamese chip ID card (CCCD): TD1, ``IDVNM``, the PID in line 1.

    ``sex`` is "male" or "female"; ``expiry_date`` is None for a card that does not expire
    (written ``NO_EXPIRY``, 991231, as on the Ministry's cards).
    The name is written surname first (``names.split``; a one-word name is the surname).
    """
    try:
        number = _pid.validate(pid, strict=False)
    except ValidationError as exc:
        raise InvalidComponent(f"The PID {pid!r} is not valid: {exc}") from None
    if sex not in ("male", "female"):
        raise InvalidComponent(f"Sex must be 'male' or 'female', not {sex!r}.")
    if not isinstance(full_name, str):
        raise InvalidComponent("The full name is not text.")
    try:
        parts = _names.split(full_name)
    except ValidationError:
        raise InvalidComponent("The full name is empty.") from None
    given = " ".join(p for p in (parts.middle, parts.given) if p)
    surname = parts.surname or given
    if not parts.surname:
        given = ""
    return build_td1(
        document_code="ID",
        issuing_state="VNM",
        document_number=number[3:],
        date_of_birth=date_of_birth,
        sex="M" if sex == "male" else "F",
        expiry_date=expiry_date,
        nationality="VNM",
        surname=surname,
        given_names=given,
        optional_data=number + "<<" + calc_check_digit(number),
    )
