"""Personal identification number (số định danh cá nhân), 12 digits.

Layout ``PPP G YY RRRRRR``: PPP is the province of birth registration (the pre-2025 three-digit
code, still used after the reform) or a country code 101-295 for a birth registered abroad; G
gives century and sex (even male, odd female; 0/1 for 1900-1999, 2/3 for 2000-2099, ...); YY the
last two digits of the year of birth; RRRRRR a random serial. There is no check digit.

The structure comes from Decree 137/2015 and Circulars 07/2016 and 59/2021; later texts only say
"12 digits". So there are two modes: ``strict`` checks the structure, ``lenient`` only checks
that there are 12 digits. A stored number is never rejected because a decoded field looks odd.

>>> validate("001 095 012345")
'001095012345'
>>> info = parse("079301000123")
>>> info.place_name, info.sex, info.birth_year, info.foreign_birth
('Hồ Chí Minh', 'female', 2001, False)
>>> format("079301000123", grouped=True)
'079 3 01 000123'
>>> validate("999095012345")
Traceback (most recent call last):
    ...
dinhdanh.ids.exceptions.InvalidComponent: The place code 999 is neither a province code nor a country code (101-295).
>>> validate("999095012345", strict=False)
'999095012345'
>>> generate("001", "female", 1995, serial=42)
'001195000042'
"""

from __future__ import annotations

import datetime as _dt
import random as _random
from dataclasses import asdict, dataclass

from dinhdanh.ids.exceptions import InvalidComponent, InvalidFormat, InvalidLength, ValidationError
from dinhdanh.places.legacy import OLD_PROVINCES

__all__ = [
    "PidInfo", "compact", "validate", "is_valid", "parse", "format", "generate",
    "century_sex_digit", "FOREIGN_CODES",
]

FOREIGN_CODES = range(101, 296)
_SEPARATORS = " .-\t"
SEXES = ("male", "female")


@dataclass(frozen=True, slots=True)
class PidInfo:
    pid: str
    place_code: str
    place_name: str | None  # province name; None for a birth registered abroad or an unknown code
    foreign_birth: bool
    sex: str  # "male" / "female"
    birth_year: int
    serial: str

    def as_dict(self) -> dict:
        return asdict(self)


def compact(number: str) -> str:
    """Remove the spaces, dots and dashes people type between groups."""
    if not isinstance(number, str):
        raise InvalidFormat("The number is not text.")
    return "".join(c for c in number if c not in _SEPARATORS).strip()


def _check_digits(number: str) -> str:
    number = compact(number)
    if not number:
        raise InvalidLength("The number is empty; a personal ID number has 12 digits.")
    if not (number.isascii() and number.isdigit()):
        bad = next((c for c in number if not (c.isascii() and c.isdigit())), "")
        raise InvalidFormat(f"The number contains a character that is not a digit: {bad!r}.")
    if len(number) != 12:
        raise InvalidLength(f"The number has {len(number)} digits; a personal ID number has 12.")
    return number


def century_sex_digit(sex: str, birth_year: int) -> int:
    """Digit G for a sex and year of birth (1900-2399)."""
    if not isinstance(sex, str) or sex not in SEXES:
        raise InvalidComponent(f"Sex must be 'male' or 'female', not {sex!r}.")
    if isinstance(birth_year, bool) or not isinstance(birth_year, int) or not 1900 <= birth_year <= 2399:
        raise InvalidComponent(f"The year of birth {birth_year} is outside 1900-2399.")
    return (birth_year // 100 - 19) * 2 + (1 if sex == "female" else 0)


def _decode(number: str) -> PidInfo:
    place = number[:3]
    g = int(number[3])
    year = (19 + g // 2) * 100 + int(number[4:6])
    foreign = int(place) in FOREIGN_CODES
    return PidInfo(
        pid=number,
        place_code=place,
        place_name=None if foreign else OLD_PROVINCES.get(place),
        foreign_birth=foreign,
        sex="female" if g % 2 else "male",
        birth_year=year,
        serial=number[6:],
    )


def validate(number: str, strict: bool = True, today: _dt.date | None = None) -> str:
    """Return the number in its compact form, or raise a ``ValidationError`` saying what is wrong.

    Strict mode also checks that the place code is a province or country code and that the year
    of birth it encodes is not after ``today``'s year.
    """
    number = _check_digits(number)
    if strict:
        info = _decode(number)
        if info.place_name is None and not info.foreign_birth:
            raise InvalidComponent(
                f"The place code {info.place_code} is neither a province code nor a country code (101-295)."
            )
        this_year = (today or _dt.date.today()).year
        if info.birth_year > this_year:
            raise InvalidComponent(
                f"The century-and-sex digit {number[3]} with year {number[4:6]} gives a birth year "
                f"{info.birth_year}, after {this_year}."
            )
    return number


def is_valid(number: str, strict: bool = True) -> bool:
    """Whether the number is valid (see ``validate``)."""
    try:
        validate(number, strict=strict)
    except ValidationError:
        return False
    return True


def parse(number: str, strict: bool = True) -> PidInfo:
    """Decode a number into its parts. In lenient mode unknown place codes give no name."""
    return _decode(validate(number, strict=strict))


def format(number: str, grouped: bool = False) -> str:  # noqa: A001 - the stdnum name
    """The official form is the 12 digits; ``grouped`` shows the structure ``PPP G YY RRRRRR``."""
    number = compact(number)
    if grouped:
        return " ".join((number[:3], number[3], number[4:6], number[6:]))
    return number


def generate(
    place_code: str | int,
    sex: str,
    birth_year: int,
    serial: int | None = None,
    rng: _random.Random | None = None,
) -> str:
    """Make a number for a birth registered in ``place_code`` (three-digit province or country).

    The serial is random unless given; uniqueness against numbers already issued is the register's
    job (it retries on a collision), not this function's.
    """
    code = str(place_code).zfill(3)
    well_formed = code.isascii() and code.isdigit() and len(code) == 3
    if not well_formed or (code not in OLD_PROVINCES and int(code) not in FOREIGN_CODES):
        raise InvalidComponent(f"The place code {place_code!r} is neither a province code nor a country code.")
    g = century_sex_digit(sex, birth_year)
    if serial is None:
        serial = (rng or _random.SystemRandom()).randrange(1_000_000)
    if isinstance(serial, bool) or not isinstance(serial, int) or not 0 <= serial < 1_000_000:
        raise InvalidComponent(f"The serial {serial} is outside 000000-999999.")
    return f"{code}{g}{birth_year % 100:02d}{serial:06d}"
