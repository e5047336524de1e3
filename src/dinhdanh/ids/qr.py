"""The QR code on the chip ID card (CCCD): payload parsing and building, PNG rendering, reading.

The 2021 card's QR holds UTF-8 text, seven fields separated by ``|``::

    PID|OLD_CMND|FULL NAME|DOB ddmmyyyy|Nam or Nữ|ADDRESS|ISSUE DATE ddmmyyyy

The old CMND number may be empty. The QR is not signed: it is a data-entry aid, never proof.

>>> card = parse("079301000123||Nguyễn Thị Mai|02012001|Nữ|12 Lê Lợi, Bến Nghé, Quận 1|15072021")
>>> card.pid, card.old_id, card.full_name, card.date_of_birth, card.sex, card.layout
('079301000123', None, 'Nguyễn Thị Mai', datetime.date(2001, 1, 2), 'Nữ', 'cccd-2021')
>>> card.as_dict()["issue_date"]
'2021-07-15'
>>> build(card)
'079301000123||Nguyễn Thị Mai|02012001|Nữ|12 Lê Lợi, Bến Nghé, Quận 1|15072021'
>>> parse("079301000123||Nguyễn Thị Mai|31022001|Nữ|Hà Nội|15072021")
Traceback (most recent call last):
    ...
dinhdanh.ids.exceptions.InvalidComponent: The date of birth '31022001' is not a date (ddmmyyyy).

Real payloads vary, and ``parse`` tolerates: a leading byte-order mark, surrounding whitespace
and a trailing CR-LF; whitespace around a field; trailing empty fields (dropped) and extra
trailing fields (kept, NFC, in ``extra``); the sex in any case, decomposed (NFD) or without
diacritics ("NAM", "Nu", "NỮ") or in English ("Male", "Female", "M", "F"): it is returned as printed,
"Nam" or "Nữ". Names and addresses keep their diacritics, NFC-normalised with single spaces.

Layouts are pluggable, since the 2024 card's layout is not public. A layout has a ``name``, a
``parse(fields) -> CardQr`` and a ``build(card) -> str``; ``register_layout`` adds one to
``LAYOUTS``, and ``parse(text)`` without a layout uses the first registered layout that accepts
the text. Two are registered, in this order:

- ``cccd-2021``: the layout above.
- ``cccd-2024``: PROVISIONAL, a guess until the layout is published: the 2021 fields followed by
  the cancelled PIDs (comma-separated 9- or 12-digit numbers, may be empty), the father's name
  and the mother's name. They are returned in ``extra`` in that order, followed by any further
  fields. Since ``cccd-2021`` accepts extra trailing fields and comes first, a payload is read
  as ``cccd-2024`` only when asked for by name: a guess never labels real data on its own.

``render_png`` draws a payload as a QR code (segno, error correction level M, UTF-8 byte mode)
and ``read_image`` finds and decodes the QR code in a PNG or JPEG image (zxing-cpp).
"""

from __future__ import annotations

import datetime as _dt
import io
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from dinhdanh.ids import names as _names
from dinhdanh.ids.exceptions import InvalidComponent, InvalidFormat, InvalidLength, ValidationError

__all__ = [
    "CardQr", "QrLayout", "Cccd2021Layout", "Cccd2024Layout", "LAYOUTS", "register_layout",
    "get_layout", "parse", "build", "render_png", "read_image",
]

SEPARATOR = "|"
_BOM = "\ufeff"
_MALE = frozenset({"nam", "male", "m"})
_FEMALE = frozenset({"nu", "female", "f"})


@dataclass(frozen=True, slots=True)
class CardQr:
    """The fields of a card's QR payload."""

    pid: str
    old_id: str | None  # the old 9- or 12-digit CMND number; None when the field is empty
    full_name: str
    date_of_birth: _dt.date
    sex: str  # "Nam" or "Nữ", as printed on the card
    address: str
    issue_date: _dt.date
    layout: str = "cccd-2021"
    extra: tuple[str, ...] = ()  # fields after those the layout knows

    def as_dict(self) -> dict:
        """JSON-ready fields, dates as ISO strings."""
        return {
            "pid": self.pid,
            "old_id": self.old_id,
            "full_name": self.full_name,
            "date_of_birth": self.date_of_birth.isoformat(),
            "sex": self.sex,
            "address": self.address,
            "issue_date": self.issue_date.isoformat(),
            "layout": self.layout,
            "extra": list(self.extra),
        }


@runtime_checkable
class QrLayout(Protocol):
    """A QR payload layout: ``parse`` raises a ``ValidationError`` for a payload it does not fit."""

    name: str

    def parse(self, fields: Sequence[str]) -> CardQr: ...

    def build(self, card: CardQr) -> str: ...


# --- field readers -------------------------------------------------------------------------------


def _digits(value: str) -> bool:
    return value.isascii() and value.isdigit()


def _read_pid(value: str) -> str:
    # 12 digits only: the register never rejects a stored number for its structure (pid, lenient)
    if not (_digits(value) and len(value) == 12):
        raise InvalidComponent(f"The PID {value!r} must be 12 digits.")
    return value


def _read_old_id(value: str) -> str | None:
    if value == "":
        return None
    if not (_digits(value) and len(value) in (9, 12)):
        raise InvalidComponent(f"The old ID number {value!r} must be 9 or 12 digits, or empty.")
    return value


def _read_text(value: str, what: str) -> str:
    text = _names.normalize(value)
    if not text:
        raise InvalidComponent(f"The {what} is empty.")
    return text


def _read_date(value: str, what: str) -> _dt.date:
    if _digits(value) and len(value) == 8:
        try:
            return _dt.date(int(value[4:]), int(value[2:4]), int(value[:2]))
        except ValueError:
            pass
    raise InvalidComponent(f"The {what} {value!r} is not a date (ddmmyyyy).")


def _read_sex(value: str) -> str:
    key = _names.fold(value)
    if key in _MALE:
        return "Nam"
    if key in _FEMALE:
        return "Nữ"
    raise InvalidComponent(f"The sex {value!r} is neither Nam nor Nữ.")


def _write_date(value, what: str) -> str:
    if not isinstance(value, _dt.date):
        raise InvalidComponent(f"The {what} is not a date.")
    return f"{value.day:02d}{value.month:02d}{value.year:04d}"


def _write_text(value, what: str) -> str:
    if not isinstance(value, str):
        raise InvalidComponent(f"The {what} is not text.")
    if SEPARATOR in value:
        raise InvalidComponent(f"The {what} contains the field separator '|'.")
    return value


# --- layouts -------------------------------------------------------------------------------------


class Cccd2021Layout:
    """The 2021 card: ``PID|OLD_CMND|FULL NAME|DOB|SEX|ADDRESS|ISSUE DATE`` plus extra fields."""

    name = "cccd-2021"
    size = 7  # the fields this layout knows

    def _fields(self, fields: Sequence[str]) -> list[str]:
        fields = [unicodedata.normalize("NFC", f).strip() for f in fields]
        while len(fields) > self.size and fields[-1] == "":
            fields.pop()
        if len(fields) < self.size:
            raise InvalidFormat(
                f"The QR payload has {len(fields)} fields separated by '|'; "
                f"the {self.name} layout has {self.size}."
            )
        return fields

    def _card(self, fields: list[str], extra: tuple[str, ...]) -> CardQr:
        date_of_birth = _read_date(fields[3], "date of birth")
        issue_date = _read_date(fields[6], "issue date")
        if issue_date < date_of_birth:
            raise InvalidComponent(
                f"The issue date {fields[6]!r} is before the date of birth {fields[3]!r}."
            )
        return CardQr(
            pid=_read_pid(fields[0]),
            old_id=_read_old_id(fields[1]),
            full_name=_read_text(fields[2], "full name"),
            date_of_birth=date_of_birth,
            sex=_read_sex(fields[4]),
            address=_read_text(fields[5], "address"),
            issue_date=issue_date,
            layout=self.name,
            extra=extra,
        )

    def parse(self, fields: Sequence[str]) -> CardQr:
        fields = self._fields(fields)
        return self._card(fields, tuple(fields[7:]))

    def _raw(self, card: CardQr) -> list[str]:
        if not isinstance(card, CardQr):
            raise InvalidComponent("The card is not a CardQr.")
        if not isinstance(card.extra, (tuple, list)):
            raise InvalidComponent("The extra fields are not a tuple.")
        return [
            _write_text(card.pid, "PID"),
            _write_text(card.old_id or "", "old ID number"),
            _write_text(card.full_name, "full name"),
            _write_date(card.date_of_birth, "date of birth"),
            _write_text(card.sex, "sex"),
            _write_text(card.address, "address"),
            _write_date(card.issue_date, "issue date"),
            *(_write_text(value, "extra field") for value in card.extra),
        ]

    def build(self, card: CardQr) -> str:
        """The payload in its canonical form: checked as ``parse`` checks it, then written from
        what ``parse`` read (sex as printed, NFC, single spaces, no trailing empty fields)."""
        raw = self._raw(card)
        fields = self._raw(self.parse(raw + [""] * (self.size - len(raw))))
        return SEPARATOR.join(fields + [""] * (self.size - len(fields)))


class Cccd2024Layout(Cccd2021Layout):
    """PROVISIONAL guess at the 2024 card: the 2021 fields, cancelled PIDs, father, mother.

    ``extra`` holds (cancelled PIDs comma-separated, father, mother, *further fields*).
    """

    name = "cccd-2024"
    size = 10

    def parse(self, fields: Sequence[str]) -> CardQr:
        fields = self._fields(fields)
        cancelled = [c.strip() for c in fields[7].replace(";", ",").split(",") if c.strip()]
        for number in cancelled:
            if not (_digits(number) and len(number) in (9, 12)):
                raise InvalidComponent(f"The cancelled ID number {number!r} is not 9 or 12 digits.")
        father, mother = _names.normalize(fields[8]), _names.normalize(fields[9])
        return self._card(fields, (",".join(cancelled), father, mother, *fields[10:]))


LAYOUTS: dict[str, QrLayout] = {}


def register_layout(layout: QrLayout, *, first: bool = False) -> QrLayout:
    """Add a layout (replacing one of the same name); ``first`` tries it before the others."""
    if not isinstance(layout, QrLayout) or not isinstance(layout.name, str) or not layout.name:
        raise TypeError("A layout needs a non-empty name, parse(fields) and build(card).")
    LAYOUTS.pop(layout.name, None)
    if first:
        others = dict(LAYOUTS)
        LAYOUTS.clear()
        LAYOUTS[layout.name] = layout
        LAYOUTS.update(others)
    else:
        LAYOUTS[layout.name] = layout
    return layout


def get_layout(layout: str | QrLayout) -> QrLayout:
    """The registered layout of that name (a layout object is returned as it is)."""
    if isinstance(layout, str):
        try:
            return LAYOUTS[layout]
        except KeyError:
            raise InvalidComponent(f"There is no QR layout named {layout!r}.") from None
    if isinstance(layout, QrLayout):
        return layout
    raise InvalidComponent("The layout is neither a name nor a layout.")


register_layout(Cccd2021Layout())
register_layout(Cccd2024Layout())


# --- payload -------------------------------------------------------------------------------------


def _text(text: str | bytes) -> str:
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidFormat("The QR payload is not UTF-8 text.") from None
    if not isinstance(text, str):
        raise InvalidFormat("The QR payload is not text.")
    text = text.strip().lstrip(_BOM).strip()
    if not text:
        raise InvalidFormat("The QR payload is empty.")
    return text


def parse(text: str | bytes, layout: str | QrLayout | None = None) -> CardQr:
    """Read a QR payload with the given layout, or the first registered layout that accepts it.

    When no layout accepts it, the error is the first layout's.
    """
    fields = _text(text).split(SEPARATOR)
    if layout is not None:
        return get_layout(layout).parse(fields)
    first_error: ValidationError | None = None
    for candidate in list(LAYOUTS.values()):
        try:
            return candidate.parse(fields)
        except ValidationError as exc:
            first_error = first_error or exc
    raise first_error or InvalidFormat("No QR layout is registered.")


def build(card: CardQr, layout: str | QrLayout = "cccd-2021") -> str:
    """The payload text for a card; it is checked as ``parse`` would check it.

    >>> import datetime
    >>> build(CardQr(pid="001095012345", old_id="123456789", full_name="Đặng Văn Đức",
    ...              date_of_birth=datetime.date(1995, 3, 4), sex="Nam", address="Hà Nội",
    ...              issue_date=datetime.date(2021, 5, 6)))
    '001095012345|123456789|Đặng Văn Đức|04031995|Nam|Hà Nội|06052021'
    """
    return get_layout(layout).build(card)


# --- images --------------------------------------------------------------------------------------


def render_png(text: str, *, scale: int = 4) -> bytes:
    """A PNG of the QR code for ``text`` (error correction M, UTF-8, 4-module quiet zone)."""
    import segno  # imported here: only image work needs it

    if not isinstance(text, str) or not text:
        raise InvalidFormat("The QR text is empty or not text.")
    if isinstance(scale, bool) or not isinstance(scale, int) or not 1 <= scale <= 100:
        raise InvalidComponent(f"The scale {scale!r} is not a whole number from 1 to 100.")
    try:
        qr = segno.make(text, error="m", boost_error=False, micro=False, encoding="utf-8")
    except segno.DataOverflowError:
        raise InvalidLength("The text is too long for a QR code.") from None
    out = io.BytesIO()
    qr.save(out, kind="png", scale=scale)
    return out.getvalue()


def read_image(data: bytes) -> str:
    """The text of the QR code in a PNG or JPEG image (the first one found).

    The raw bytes are decoded as UTF-8 when they are UTF-8 (the card does not declare its
    character set), otherwise zxing-cpp's own reading is used.
    """
    import zxingcpp
    from PIL import Image, UnidentifiedImageError

    if not isinstance(data, (bytes, bytearray)) or not data:
        raise InvalidFormat("not an image")
    try:
        with Image.open(io.BytesIO(bytes(data))) as image:
            image.load()
            if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
                background = Image.new("RGBA", image.size, "white")
                background.alpha_composite(image.convert("RGBA"))
                image = background
            gray = image.convert("L")
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError,
            SyntaxError, EOFError):
        raise InvalidFormat("not an image") from None
    for barcode in zxingcpp.read_barcodes(gray, formats=zxingcpp.BarcodeFormat.QRCode):
        try:
            return barcode.bytes.decode("utf-8")
        except UnicodeDecodeError:
            return barcode.text
    raise InvalidFormat("no QR code found in the image")
