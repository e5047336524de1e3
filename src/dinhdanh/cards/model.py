"""The card models: what each model of the chip ID card prints, where, and from which issue date.

Two models are in use, and a card keeps the model it was issued with for its whole life:

* ``2021``, "CĂN CƯỚC CÔNG DÂN / Citizen Identity Card" (Law on Citizen Identification 2014,
  Circular 06/2021/TT-BCA): number, name, date of birth, sex, nationality, hometown (quê quán),
  permanent residence and expiry on the front with the QR code; identifying marks, the two index
  fingerprints, the issue date and the director of the police department for administrative
  management of social order on the back, over the MRZ.
* ``2023``, "CĂN CƯỚC / IDENTITY CARD" (Law on Identification 2023, 26/2023/QH15, art. 18;
  Circular 16/2024/TT-BCA), for cards issued from 1 July 2024: personal identification number,
  full name, date of birth, sex and nationality on the front (with the photo and a chip symbol);
  place of residence, place of birth registration (replacing the hometown), issue and expiry
  dates, "BỘ CÔNG AN / MINISTRY OF PUBLIC SECURITY", the QR code and the chip on the back, over
  the MRZ (TD1, unchanged). No fingerprints and no identifying marks are printed.

Pure data: the field lists (key of the card's ``printed`` dict, Vietnamese and English labels,
face) are what :mod:`dinhdanh.cards.production` fills and :mod:`dinhdanh.cards.artwork` draws.
Uncertain: the first issue date of the 2021 model (Circular 06/2021/TT-BCA is dated 22 January
2021) only bounds ``valid_from``; the platform draws any earlier card as the 2021 model too.

>>> import datetime as dt
>>> model_for(dt.date(2024, 6, 30)).name, model_for(dt.date(2024, 7, 1)).name
('2021', '2023')
>>> [f.key for f in MODEL_2023.on("front")]
['pid', 'full_name', 'date_of_birth', 'sex', 'nationality']
>>> named(None).name, named("2023").title_en
('2021', 'IDENTITY CARD')
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

__all__ = ["Field", "CardModel", "MODEL_2021", "MODEL_2023", "MODELS", "DEFAULT", "model_for", "named"]


@dataclass(frozen=True, slots=True)
class Field:
    key: str  # the key in the card's ``printed`` dict
    vi: str  # the printed Vietnamese label
    en: str  # the printed English label
    face: str  # "front" or "back"
    labelled: bool = True  # False: the value stands alone (the issuing authority)


@dataclass(frozen=True, slots=True)
class CardModel:
    name: str  # "2021", "2023": the value of ``printed["model"]``
    title_vi: str
    title_en: str
    legal_basis: str
    valid_from: dt.date  # first issue date of the model
    valid_until: dt.date | None  # last issue date, None while it is current
    fields: tuple[Field, ...]
    qr_face: str  # the face that carries the QR code
    chip_face: str  # the face with the chip's contact pad
    fingerprints: bool  # the two index fingerprints are printed (on the back)
    issuing_authority: str  # as printed, Vietnamese
    issuing_authority_en: str | None  # its English line, where the model prints one
    qr_layout: str  # a layout name of dinhdanh.ids.qr

    def on(self, face: str) -> tuple[Field, ...]:
        """The fields printed on ``face``, in reading order."""
        return tuple(f for f in self.fields if f.face == face)

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(f.key for f in self.fields)

    def issued_on(self, day: dt.date) -> bool:
        return self.valid_from <= day and (self.valid_until is None or day <= self.valid_until)


MODEL_2021 = CardModel(
    name="2021", title_vi="CĂN CƯỚC CÔNG DÂN", title_en="Citizen Identity Card",
    legal_basis="Luật Căn cước công dân 2014; Thông tư 06/2021/TT-BCA",
    valid_from=dt.date(2021, 1, 22), valid_until=dt.date(2024, 6, 30),
    fields=(
        Field("pid", "Số", "No.", "front"),
        Field("full_name", "Họ và tên", "Full name", "front"),
        Field("date_of_birth", "Ngày sinh", "Date of birth", "front"),
        Field("sex", "Giới tính", "Sex", "front"),
        Field("nationality", "Quốc tịch", "Nationality", "front"),
        Field("hometown", "Quê quán", "Place of origin", "front"),
        Field("residence", "Nơi thường trú", "Place of residence", "front"),
        Field("expiry_date", "Có giá trị đến", "Date of expiry", "front"),
        # the card really prints "nhân dạng" here
        Field("identifying_marks", "Đặc điểm nhân dạng", "Personal identification", "back"),
        Field("issue_date", "Ngày, tháng, năm", "Date, month, year", "back"),
        Field("issuing_authority", "Cơ quan cấp", "Issuing authority", "back", labelled=False),
    ),
    qr_face="front", chip_face="back", fingerprints=True,
    issuing_authority="Cục Cảnh sát quản lý hành chính về trật tự xã hội", issuing_authority_en=None,
    qr_layout="cccd-2021",
)

MODEL_2023 = CardModel(
    name="2023", title_vi="CĂN CƯỚC", title_en="IDENTITY CARD",
    legal_basis="Luật Căn cước 2023 (26/2023/QH15), điều 18; Thông tư 16/2024/TT-BCA",
    valid_from=dt.date(2024, 7, 1), valid_until=None,
    fields=(
        Field("pid", "Số định danh cá nhân", "Personal identification number", "front"),
        Field("full_name", "Họ, chữ đệm và tên khai sinh", "Full name", "front"),
        Field("date_of_birth", "Ngày, tháng, năm sinh", "Date of birth", "front"),
        Field("sex", "Giới tính", "Sex", "front"),
        Field("nationality", "Quốc tịch", "Nationality", "front"),
        Field("residence", "Nơi cư trú", "Place of residence", "back"),
        Field("birth_registration_place", "Nơi đăng ký khai sinh", "Place of birth", "back"),
        Field("issue_date", "Ngày, tháng, năm cấp", "Date of issue", "back"),
        Field("expiry_date", "Ngày, tháng, năm hết hạn", "Date of expiry", "back"),
        Field("issuing_authority", "Cơ quan cấp", "Issuing authority", "back", labelled=False),
    ),
    qr_face="back", chip_face="back", fingerprints=False,
    issuing_authority="BỘ CÔNG AN", issuing_authority_en="MINISTRY OF PUBLIC SECURITY",
    # The 2024 card's QR adds cancelled PIDs and the parents' names, but its layout is not
    # public (dinhdanh.ids.qr registers only a provisional guess): the 2021 payload is kept.
    qr_layout="cccd-2021",
)

MODELS: dict[str, CardModel] = {m.name: m for m in (MODEL_2021, MODEL_2023)}
DEFAULT = MODEL_2021  # cards stored before models were recorded have no "model" key


def model_for(issue_date: dt.date) -> CardModel:
    """The model of a card issued on ``issue_date``: 2023 from 1 July 2024, else 2021."""
    if isinstance(issue_date, dt.datetime) or not isinstance(issue_date, dt.date):
        raise TypeError(f"issue_date must be a date, not {type(issue_date).__name__}")
    return MODEL_2023 if issue_date >= MODEL_2023.valid_from else MODEL_2021


def named(name: str | None) -> CardModel:
    """The model a card's ``printed["model"]`` names; None (older records) is the 2021 model."""
    if name is None:
        return DEFAULT
    try:
        return MODELS[str(name)]
    except KeyError:
        raise ValueError(f"unknown card model {name!r} (known: {', '.join(MODELS)})") from None
