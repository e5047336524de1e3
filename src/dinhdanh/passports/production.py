"""Passport production: from a register record to the data page, the TD3 MRZ and a signed chip.

Validity (Luật Xuất cảnh, nhập cảnh của công dân Việt Nam 2019, 49/2019/QH14, Điều 7 khoản 2):
an ordinary passport issued to a person aged 14 or more is valid for 10 years, one issued to a
child under 14 for 5 years; neither can be extended (a passport issued by the shortened procedure,
at most 12 months, is not issued here). The period runs from the issue date to the same day 5 or
10 years later (29 February to 28 February). Điều 6 khoản 2: a passport with a chip is issued
only to citizens aged 14 or more; children under 14 get one without a chip.

The MRZ is TD3 (ICAO 9303 Part 4): ``P<VNM``, the name written surname first without diacritics,
the passport number, nationality VNM, date of birth, sex, date of expiry and, as the Vietnamese
data page lists the personal identification number among its data (Điều 6 khoản 3), the 12-digit
PID as the personal number (a choice: the law lists the number among the passport's data, 9303
leaves the personal number field to the issuing state). The data page also prints the place of
birth, which Luật 23/2023/QH15 (from 15 August 2023) added to the passport's data.

The chip (9303 Part 10) holds EF.COM, DG1 (this MRZ), DG2 (the face, ISO/IEC 19794-5 with a
JPEG), DG14 (Active Authentication with ECDSA-SHA256, PACE), DG15 (a fresh Active Authentication
key; its private half is kept sealed, as for cards) and EF.SOD signed by the national PKI's
current Document Signer: the same encoders and the same signer as the chip ID card
(:mod:`dinhdanh.cards.production`), so a reader verifies both the same way.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

from dinhdanh.cards import production as cards_production
from dinhdanh.cards.validity import age_on
from dinhdanh.ids import mrz as mrzfmt, names
from dinhdanh.ids.lds.personalise import personalise

__all__ = ["DOCUMENT_CODE", "ISSUING_STATE", "ISSUING_AUTHORITY", "ProducedPassport",
           "expiry_date", "chip_allowed", "mrz_lines", "printed_fields", "produce"]

DOCUMENT_CODE = "P"  # ordinary passport (the MRZ's document code; "P<" on the page)
ISSUING_STATE = "VNM"
ISSUING_AUTHORITY = "Cục Quản lý xuất nhập cảnh"
ADULT_AGE = 14
ADULT_YEARS, CHILD_YEARS = 10, 5


def _plus_years(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February in a year without one
        return day.replace(year=day.year + years, day=28)


def expiry_date(born: dt.date, issue_date: dt.date) -> dt.date:
    """10 years from issue for a holder aged 14 or more on the issue date, 5 years under 14 (Điều 7).

    >>> expiry_date(dt.date(1985, 3, 4), dt.date(2026, 12, 6))
    datetime.date(2036, 12, 6)
    >>> expiry_date(dt.date(2012, 12, 7), dt.date(2026, 12, 6)), expiry_date(dt.date(2012, 12, 6), dt.date(2026, 12, 6))
    (datetime.date(2031, 12, 6), datetime.date(2036, 12, 6))
    >>> expiry_date(dt.date(1990, 1, 1), dt.date(2028, 2, 29))
    datetime.date(2038, 2, 28)
    """
    adult = age_on(born, issue_date) >= ADULT_AGE
    return _plus_years(issue_date, ADULT_YEARS if adult else CHILD_YEARS)


def chip_allowed(born: dt.date, issue_date: dt.date) -> bool:
    """A chip passport only for a holder aged 14 or more (Điều 6 khoản 2)."""
    return age_on(born, issue_date) >= ADULT_AGE


def _name_parts(full_name: str) -> tuple[str, str]:
    parts = names.split(full_name)
    given = " ".join(p for p in (parts.middle, parts.given) if p)
    return (parts.surname, given) if parts.surname else (given, "")


def mrz_lines(row, *, number: str, expiry: dt.date) -> tuple[str, str]:
    """The TD3 MRZ of the passport ``number`` for the person ``row``."""
    surname, given = _name_parts(row.full_name)
    return mrzfmt.build_td3(document_code=DOCUMENT_CODE, issuing_state=ISSUING_STATE, document_number=number,
                            date_of_birth=row.date_of_birth, sex="M" if row.sex == "male" else "F",
                            expiry_date=expiry, nationality=row.nationality, surname=surname, given_names=given,
                            personal_number=row.pid)


def printed_fields(row, *, number: str, issue_date: dt.date, expiry: dt.date, chip: bool,
                   place_of_birth: str | None = None) -> dict:
    """The data page: names keep their diacritics; dates as the page prints them (dd/mm/yyyy)."""
    ddmmyyyy = cards_production.ddmmyyyy
    return {"type": DOCUMENT_CODE, "country_code": ISSUING_STATE, "passport_number": number,
            "full_name": row.full_name, "sex": "Nam" if row.sex == "male" else "Nữ",
            "nationality": cards_production.NATIONALITIES.get(row.nationality, row.nationality),
            "date_of_birth": ddmmyyyy(row.date_of_birth),
            "place_of_birth": (row.place_of_birth or place_of_birth or "").strip(),
            "pid": row.pid, "issue_date": ddmmyyyy(issue_date), "expiry_date": ddmmyyyy(expiry),
            "issuing_authority": ISSUING_AUTHORITY, "chip": chip}


@dataclass(frozen=True, slots=True)
class ProducedPassport:
    issue_date: dt.date
    expiry_date: dt.date
    printed: dict
    mrz: tuple[str, str]
    files: dict[str, bytes] | None  # EF.COM, DG1, DG2, DG14, DG15, EF.SOD; None without a chip
    chip_key: bytes | None  # PKCS#8 DER of the Active Authentication private key

    @property
    def sod_digest(self) -> str | None:
        return hashlib.sha256(self.files["EF.SOD"]).hexdigest() if self.files else None


def produce(row, *, number: str, issue_date: dt.date, chip: bool, sign=None, signer_certificate: bytes | None = None,
            signature_algorithm: dict | None = None, hash_algorithm: str = "sha256", photo: bytes | None = None,
            signed_at: dt.datetime | None = None, place_of_birth: str | None = None) -> ProducedPassport:
    """Every artefact of passport ``number`` for the person ``row``; ``sign`` signs the SOD (chip only)."""
    expiry = expiry_date(row.date_of_birth, issue_date)
    lines = mrz_lines(row, number=number, expiry=expiry)
    printed = printed_fields(row, number=number, issue_date=issue_date, expiry=expiry, chip=chip,
                             place_of_birth=place_of_birth)
    if not chip:
        return ProducedPassport(issue_date, expiry, printed, lines, None, None)
    photo = photo if photo is not None else cards_production.portrait(row)
    width, height = cards_production.PORTRAIT_SIZE
    made = personalise(lines, photo, width=width, height=height, gender=row.sex, sign=sign,
                       certificate=signer_certificate, signature_algorithm=signature_algorithm,
                       hash_algorithm=hash_algorithm, signing_time=signed_at)
    return ProducedPassport(issue_date, expiry, printed, lines, made.files, made.aa_key_der)
