"""Motorbike number plates (biển số xe mô tô, xe gắn máy): format, parse, validate; the plate codes
of the provinces. Pure: no I/O, no database.

A plate reads ``29-HA 002.33``: the registering locality's code (two digits, from the annex of the
circular, "ký hiệu địa phương đăng ký"), the series (sê ri) and the order number (thứ tự đăng ký).
On the motorbike's two-line plate the first group is printed above the number.

- Circular 24/2023/TT-BCA (from 15 August 2023) made plates identified by their owner ("biển số
  định danh"): the owner keeps the plate for life; when the vehicle is deregistered (sold, scrapped,
  transferred) the plate is held for them and assigned to their next vehicle. Circular 79/2024/TT-BCA
  replaced it from 1 January 2025 and keeps identified plates.
- Series of a motorbike plate under those circulars: two of the 20 letters A B C D E F G H K L M N P
  S T U V X Y Z (I, J, O, Q, R, W are never used), taken in turn ("lần lượt"); order number: five
  digits, 000.01 to 999.99.
- Plates issued before them stay valid and are accepted here: a letter and a digit 1-9 (``29-B1
  123.45``; motorbikes of 50 cm³ and more under Circular 58/2020 and earlier), ``MĐ`` and a digit
  (electric mopeds under Circular 58/2020), and four-digit order numbers (``29-B1 1234``, older
  plates). New plates are only ever made with two letters and five digits.

>>> format("29ha00233")
'29-HA 002.33'
>>> parse("29-B1 1234")
Plate(code='29', series='B1', number=1234, digits=4)
>>> str(parse("59-MĐ1 123.45"))
'59-MĐ1 123.45'
>>> province_of("72"), province_of("43"), province_of("92")
('79', '48', '48')
>>> PLATE_CODES["01"]
('29', '30', '31', '32', '33', '40')
>>> next_series("AZ"), next_series("HA")
('BA', 'HB')
>>> validate("29-HI 123.45")
Traceback (most recent call last):
    ...
dinhdanh.vehicles.plates.InvalidSeries: The series HI uses a letter plates never carry (I, J, O, Q, R, W).

What is a simplification here, and why:

- The plate codes per province come from the annex of Circulars 24/2023 and 79/2024 (Hà Nội 29-33
  and 40, Hồ Chí Minh City 41 and 50-59, Hải Phòng 15-16, Đồng Nai 39 and 60, Bắc Giang 98 and 13),
  checked against public tables; the annex lists the 63 provinces before the 2025 merger. After the
  merger a province keeps the codes of every province it was formed from (Hồ Chí Minh City also 61
  Bình Dương and 72 Bà Rịa - Vũng Tàu), so ``PLATE_CODES`` lists them all, the kept name's codes
  first. Code 80 (the central agencies' cars) is no motorbike locality and is refused.
- Which of a province's codes and which series a commune's police take new plates from is decided
  by the province's police (blocks of series per registering office). That is configurable data
  passed in by the caller (``series``/``plate_code`` of ``service.register_vehicle``); by default a
  province's first code and series ``AA``, moving to the next series when 999.99 is reached.
- Plates of organisations, of foreigners (NG, NN), of the army and police, and temporary plates are
  not handled: only domestic individuals' motorbikes.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from dinhdanh.ids.exceptions import InvalidComponent, InvalidFormat
from dinhdanh.places.legacy import SUCCESSION

__all__ = [
    "Plate", "PlateError", "InvalidPlateFormat", "UnknownPlateCode", "InvalidSeries", "InvalidNumber",
    "LETTERS", "FIRST_SERIES", "MAX_NUMBER", "OLD_PLATE_CODES", "PLATE_CODES", "PROVINCE_OF_CODE",
    "compact", "parse", "validate", "is_valid", "format", "compose", "province_of", "plate_codes",
    "next_series", "is_current_series",
]

# the 20 letters of plate series (Circular 24/2023, Circular 79/2024)
LETTERS = "ABCDEFGHKLMNPSTUVXYZ"
FIRST_SERIES = "AA"
MAX_NUMBER = 99999  # 999.99

# Pre-2025 province (three-digit code, as in places.legacy) -> its plate codes (the circular's annex).
OLD_PLATE_CODES: dict[str, tuple[str, ...]] = {
    "001": ("29", "30", "31", "32", "33", "40"),  # Hà Nội
    "002": ("23",), "004": ("11",), "006": ("97",), "008": ("22",), "010": ("24",), "011": ("27",),
    "012": ("25",), "014": ("26",), "015": ("21",), "017": ("28",), "019": ("20",), "020": ("12",),
    "022": ("14",), "024": ("98", "13"), "025": ("19",), "026": ("88",), "027": ("99",), "030": ("34",),
    "031": ("15", "16"), "033": ("89",), "034": ("17",), "035": ("90",), "036": ("18",), "037": ("35",),
    "038": ("36",), "040": ("37",), "042": ("38",), "044": ("73",), "045": ("74",), "046": ("75",),
    "048": ("43",), "049": ("92",), "051": ("76",), "052": ("77",), "054": ("78",), "056": ("79",),
    "058": ("85",), "060": ("86",), "062": ("82",), "064": ("81",), "066": ("47",), "067": ("48",),
    "068": ("49",), "070": ("93",), "072": ("70",), "074": ("61",), "075": ("39", "60"), "077": ("72",),
    "079": ("41", "50", "51", "52", "53", "54", "55", "56", "57", "58", "59"),  # Hồ Chí Minh
    "080": ("62",), "082": ("63",), "083": ("71",), "084": ("84",), "086": ("64",), "087": ("66",),
    "089": ("67",), "091": ("68",), "092": ("65",), "093": ("95",), "094": ("83",), "095": ("94",),
    "096": ("69",),
}

# The 34 provinces of 2025 (two-digit code) -> every plate code of the provinces they were formed
# from, in the order of places.legacy.SUCCESSION (the province whose name is kept first).
PLATE_CODES: dict[str, tuple[str, ...]] = {
    new: tuple(code for old in olds for code in OLD_PLATE_CODES[old]) for new, olds in SUCCESSION.items()
}

PROVINCE_OF_CODE: dict[str, str] = {code: new for new, codes in PLATE_CODES.items() for code in codes}


class PlateError(InvalidFormat):
    """A plate that cannot be one; ``field`` names the part that is wrong (plate, code, series, number)."""

    field = "plate"

    def __init__(self, message: str | None = None, field: str | None = None):
        super().__init__(message)
        if field is not None:
            self.field = field


class InvalidPlateFormat(PlateError):
    """Not the shape of a motorbike plate at all."""

    message = "A motorbike plate reads like 29-HA 002.33: two digits, the series, four or five digits."


class UnknownPlateCode(PlateError, InvalidComponent):
    field = "code"
    message = "The plate's locality code is no province's."


class InvalidSeries(PlateError, InvalidComponent):
    field = "series"
    message = "The plate's series is not a motorbike series."


class InvalidNumber(PlateError, InvalidComponent):
    field = "number"
    message = "The plate's order number is out of range."


@dataclass(frozen=True, slots=True)
class Plate:
    code: str  # the locality's two digits ("29")
    series: str  # "HA", "B1", "MĐ1"
    number: int  # the order number, 1..99999
    digits: int = 5  # 5 (000.01-999.99) or 4 on older plates

    def __str__(self) -> str:
        n = f"{self.number:0{self.digits}d}"
        return f"{self.code}-{self.series} {n[:3]}.{n[3:]}" if self.digits == 5 else f"{self.code}-{self.series} {n}"

    @property
    def province(self) -> str:
        """The 2025 province whose plate code this is."""
        return PROVINCE_OF_CODE[self.code]


_SEPARATORS = re.compile(r"[\s.\-_/]+")
_SHAPE = re.compile(r"(\d{2})([A-ZĐ]{1,2})(\d*)")


def compact(text: str) -> str:
    """The plate without separators, in capitals (``29-ha 002.33`` -> ``29HA00233``); ``Đ`` kept.

    >>> compact(" 29-ha 002.33 ")
    '29HA00233'
    """
    if not isinstance(text, str):
        raise InvalidPlateFormat("A plate is text.")
    return _SEPARATORS.sub("", unicodedata.normalize("NFC", text)).upper()


def parse(text: str) -> Plate:
    """The plate's parts, checked; raises a ``PlateError`` naming the wrong part (``field``).

    A one-letter series (and ``MĐ``) always carries a digit, so ``29B11234`` is B1 and 1234.
    """
    plate = compact(text)
    m = _SHAPE.fullmatch(plate) if len(plate) <= 10 else None
    if m is None:
        if not re.match(r"\d{2}", plate):
            raise InvalidPlateFormat("A plate begins with its locality's two digits.", field="code")
        raise InvalidPlateFormat()
    code, letters, digits = m.groups()
    if code not in PROVINCE_OF_CODE:
        raise UnknownPlateCode(f"No province registers motorbikes under the code {code}.")
    if len(letters) == 1 or letters == "MĐ":
        if not digits or digits[0] == "0":
            raise InvalidSeries(f"The series {letters} needs a digit 1 to 9 after it.")
        series, digits = letters + digits[0], digits[1:]
    else:
        series = letters
    bad = sorted({c for c in series if c.isalpha() and c not in LETTERS} - ({"Đ"} if letters == "MĐ" else set()))
    if bad:
        raise InvalidSeries(f"The series {series} uses a letter plates never carry (I, J, O, Q, R, W).")
    if len(digits) not in (4, 5):
        raise InvalidNumber("The order number has five digits (four on older plates).")
    number = int(digits)
    if number == 0:
        raise InvalidNumber("The order number starts at 000.01 (0001 on older plates).")
    return Plate(code, series, number, len(digits))


def validate(text: str) -> str:
    """The plate as printed (``29-HA 002.33``), or a ``PlateError``."""
    return str(parse(text))


def is_valid(text: str) -> bool:
    try:
        parse(text)
    except PlateError:
        return False
    return True


def format(text: str) -> str:  # noqa: A001 - the python-stdnum name
    """``text`` as printed on the plate (same as ``validate``)."""
    return validate(text)


def compose(code: str, series: str, number: int) -> Plate:
    """A new plate (two-letter series, five digits), checked like a parsed one.

    >>> str(compose("29", "HA", 233))
    '29-HA 002.33'
    """
    if code not in PROVINCE_OF_CODE:
        raise UnknownPlateCode(f"No province registers motorbikes under the code {code!r}.")
    if not is_current_series(series):
        raise InvalidSeries(f"A new plate's series is two of the letters {LETTERS}, not {series!r}.")
    if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= MAX_NUMBER:
        raise InvalidNumber(f"The order number is 1 to {MAX_NUMBER}, not {number!r}.")
    return Plate(code, series, number, 5)


def is_current_series(series: str) -> bool:
    """Whether ``series`` is one new plates are made in (two of the 20 letters)."""
    return isinstance(series, str) and len(series) == 2 and all(c in LETTERS for c in series)


def next_series(series: str) -> str:
    """The series taken after ``series`` is full ("lần lượt": AA, AB, ..., AZ, BA, ...)."""
    if not is_current_series(series):
        raise InvalidSeries(f"{series!r} is not a two-letter series.")
    first, second = LETTERS.index(series[0]), LETTERS.index(series[1])
    if second + 1 < len(LETTERS):
        return series[0] + LETTERS[second + 1]
    if first + 1 < len(LETTERS):
        return LETTERS[first + 1] + LETTERS[0]
    raise InvalidSeries("Every two-letter series of this code is used (ZZ is the last).")


def plate_codes(province: str) -> tuple[str, ...]:
    """The plate codes of a 2025 province (two digits), the first being the default for new plates."""
    try:
        return PLATE_CODES[province]
    except KeyError:
        raise UnknownPlateCode(f"No 2025 province has the code {province!r}.", field="province") from None


def province_of(code: str) -> str:
    """The 2025 province whose plates carry the locality code ``code``."""
    try:
        return PROVINCE_OF_CODE[code]
    except KeyError:
        raise UnknownPlateCode(f"No province registers motorbikes under the code {code!r}.") from None
