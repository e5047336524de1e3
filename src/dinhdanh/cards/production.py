"""Card production: from a register record to printed fields, MRZ, QR and a signed chip.

The chip holds EF.COM, DG1 (MRZ), DG2 (the face, ISO/IEC 19794-5 with a JPEG), DG13 (Vietnamese
personal data from the register), DG14 (security infos: Active Authentication with ECDSA-SHA256,
PACE), DG15 (a fresh Active Authentication key pair; the private half stays "on the chip", here
sealed in the vault so the platform can act as the chip in tests and demos) and EF.SOD, signed by
the current Document Signer. The synthetic population has synthetic drawn portraits, never faces
of real people.

What is printed follows the card model of the issue date (:mod:`dinhdanh.cards.model`): the 2021
"căn cước công dân" (hometown, permanent residence, identifying marks, the police department as
issuer) or, from 1 July 2024, the 2023 "căn cước" (place of birth registration instead of the
hometown; place of residence = permanent, else temporary, else current place of living; "BỘ CÔNG
AN" as issuer; no identifying marks). ``printed["model"]`` names the model. The chip is the same
for both: DG13 keeps its observed field list (field 8 is the hometown), so the hometown stays in
the chip of a 2023 card although it is no longer printed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

from dinhdanh import places
from dinhdanh.cards import artwork
from dinhdanh.cards.model import MODEL_2021, CardModel, model_for
from dinhdanh.cards.validity import age_on, expiry_date as card_expiry
from dinhdanh.ids import mrz as mrzfmt, qr as qrfmt
from dinhdanh.ids.lds import dg13
from dinhdanh.ids.lds.personalise import personalise
from dinhdanh.registry.errors import RuleViolation

ISSUING_AUTHORITY = MODEL_2021.issuing_authority
NO_EXPIRY = "Không thời hạn"
NATIONALITIES = {"VNM": "Việt Nam"}
PORTRAIT_SIZE = (240, 320)


def ddmmyyyy(day: dt.date | None) -> str:
    return day.strftime("%d/%m/%Y") if day else NO_EXPIRY


def _place_text(address: str | None, commune_code: str | None, province_code: str | None) -> str:
    """An address completed with its commune and province, unless it names them already."""
    text = address or ""
    commune = places.COMMUNES.get(commune_code or "")
    province = places.PROVINCES.get(province_code or "")
    for unit in (commune, province):
        if unit is not None and unit.name.casefold() not in text.casefold():
            text = f"{text}, {unit.name}" if text else unit.name
    return text


def residence_text(row) -> str:
    """The permanent residence as printed: the address, completed with commune and province."""
    return _place_text(row.address, row.commune_code, row.province_code)


def place_of_residence(row, on: dt.date) -> str:
    """The 2023 card's "nơi cư trú": the permanent residence, else the temporary residence (while it
    lasts on ``on``), else the current place of living; "" when the record has none of them."""
    permanent = residence_text(row)
    if permanent:
        return permanent
    until = getattr(row, "temp_until", None)
    if until is None or until >= on:
        temporary = _place_text(getattr(row, "temp_address", None), getattr(row, "temp_commune_code", None),
                                getattr(row, "temp_province_code", None))
        if temporary:
            return temporary
    return (getattr(row, "current_address", None) or "").strip()


def birth_registration_text(row) -> str:
    """The 2023 card's "nơi đăng ký khai sinh", from what the register keeps.

    The register keeps the place of birth as text (set from the registration commune when a birth
    is registered) and the pre-2025 province of the birth registration as a code (the PID's first
    three digits). The text is printed when it lies in that province (its name or its 2025
    successor's appears in it); otherwise, or without text, the province's name; a code of a
    country (registration abroad) or no code leaves the text as it is.
    """
    text = (row.place_of_birth or "").strip()
    old = places.OLD_PROVINCES.get(getattr(row, "birth_registration_code", None) or "")
    if old is None:
        return text
    folded = places.name_key(text)
    successor = places.PROVINCES.get(old.successor)
    names = {places.name_key(old.name)} | ({places.name_key(successor.short_name)} if successor else set())
    if text and any(name and f" {name} " in f" {folded} " for name in names):
        return text
    return old.name


@dataclass(frozen=True, slots=True)
class ProducedCard:
    issue_date: dt.date
    expiry_date: dt.date | None
    printed: dict
    mrz: tuple[str, ...]
    qr: str
    files: dict[str, bytes]  # EF.COM, DG1, DG2, DG13, DG14, DG15, EF.SOD
    chip_key: bytes  # PKCS#8 DER of the Active Authentication private key

    @property
    def sod_digest(self) -> str:
        return hashlib.sha256(self.files["EF.SOD"]).hexdigest()


def portrait(row) -> bytes:
    """The person's (synthetic) photo: deterministic per person, so every card shows the same face."""
    return artwork.synthetic_portrait(f"person:{row.person_id}", sex=row.sex,
                                      age=age_on(row.date_of_birth, dt.date.today()),
                                      width=PORTRAIT_SIZE[0], height=PORTRAIT_SIZE[1])


def printed_fields(row, model: CardModel, *, issue_date: dt.date, expiry: dt.date | None) -> dict:
    """What the card of ``model`` prints for ``row``: the model's field keys, plus "model"."""
    sex_vi = "Nam" if row.sex == "male" else "Nữ"
    common = {"pid": row.pid, "full_name": row.full_name, "date_of_birth": ddmmyyyy(row.date_of_birth),
              "sex": sex_vi, "nationality": NATIONALITIES.get(row.nationality, row.nationality),
              "issue_date": ddmmyyyy(issue_date), "expiry_date": ddmmyyyy(expiry),
              "issuing_authority": model.issuing_authority}
    if model is MODEL_2021:
        extra = {"hometown": row.hometown or "", "residence": residence_text(row), "identifying_marks": ""}
    else:
        extra = {"birth_registration_place": birth_registration_text(row),
                 "residence": place_of_residence(row, issue_date)}
    values = {**common, **extra}
    printed = {"model": model.name}
    printed.update((key, values[key]) for key in model.keys)
    return printed


def produce(row, *, issue_date: dt.date, father: str | None, mother: str | None, spouse: str | None,
            sign, signer_certificate: bytes, signature_algorithm: dict, hash_algorithm: str,
            photo: bytes | None = None, signed_at: dt.datetime | None = None) -> ProducedCard:
    """Every artefact of a card for the person ``row`` (a ``persons`` row); ``sign`` signs the SOD."""
    expiry = card_expiry(row.date_of_birth, issue_date)
    model = model_for(issue_date)
    printed = printed_fields(row, model, issue_date=issue_date, expiry=expiry)
    sex_vi = printed["sex"]
    if not printed["residence"]:  # printed, and the QR's address may not be empty
        where = "permanent" if model is MODEL_2021 else "permanent, temporary or current"
        raise RuleViolation(f"The record has no {where} place of residence to print on the card.",
                            code="no_residence", field="residence")
    lines = mrzfmt.build_vn_card(pid=row.pid, date_of_birth=row.date_of_birth, sex=row.sex,
                                 expiry_date=expiry, full_name=row.full_name)
    qr_text = qrfmt.build(qrfmt.CardQr(
        pid=row.pid, old_id=row.old_id_number or None, full_name=row.full_name,
        date_of_birth=row.date_of_birth, sex=sex_vi, address=printed["residence"],
        issue_date=issue_date), model.qr_layout)
    photo = photo if photo is not None else portrait(row)
    vn = dg13.encode(dg13.VnPersonalData(
        pid=row.pid, full_name=row.full_name, date_of_birth=printed["date_of_birth"], sex=sex_vi,
        nationality=printed["nationality"], ethnicity=row.ethnicity, religion=row.religion or "Không",
        hometown=row.hometown, residence=printed["residence"], identifying_marks=None,
        issue_date=printed["issue_date"], expiry_date=printed["expiry_date"],
        father=father, mother=mother, spouse=spouse, old_id=row.old_id_number))
    chip = personalise(lines, photo, width=PORTRAIT_SIZE[0], height=PORTRAIT_SIZE[1], gender=row.sex, sign=sign,
                       certificate=signer_certificate, signature_algorithm=signature_algorithm,
                       hash_algorithm=hash_algorithm, extra={13: vn}, signing_time=signed_at)
    return ProducedCard(issue_date, expiry, printed, lines, qr_text, chip.files, chip.aa_key_der)
