"""Card production: from a register record to printed fields, MRZ, QR and a signed chip.

The chip holds EF.COM, DG1 (MRZ), DG2 (the face, ISO/IEC 19794-5 with a JPEG), DG13 (Vietnamese
personal data from the register), DG14 (security infos: Active Authentication with ECDSA-SHA256,
PACE), DG15 (a fresh Active Authentication key pair; the private half stays "on the chip", here
sealed in the vault so the platform can act as the chip in tests and demos) and EF.SOD, signed by
the current Document Signer. The synthetic population has synthetic drawn portraits, never faces
of real people.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from dinhdanh import places
from dinhdanh.cards import artwork
from dinhdanh.cards.validity import age_on, expiry_date as card_expiry
from dinhdanh.ids import mrz as mrzfmt, qr as qrfmt
from dinhdanh.ids.lds import dg1, dg2, dg13, dg14, dg15, efcom, sod

ISSUING_AUTHORITY = "Cục Cảnh sát quản lý hành chính về trật tự xã hội"
NO_EXPIRY = "Không thời hạn"
NATIONALITIES = {"VNM": "Việt Nam"}
CHIP_DGS = (1, 2, 13, 14, 15)
PORTRAIT_SIZE = (240, 320)


def ddmmyyyy(day: dt.date | None) -> str:
    return day.strftime("%d/%m/%Y") if day else NO_EXPIRY


def residence_text(row) -> str:
    """The permanent residence as printed: the address, completed with commune and province."""
    text = row.address or ""
    commune = places.COMMUNES.get(row.commune_code or "")
    province = places.PROVINCES.get(row.province_code or "")
    for unit in (commune, province):
        if unit is not None and unit.name.casefold() not in text.casefold():
            text = f"{text}, {unit.name}" if text else unit.name
    return text


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


def produce(row, *, issue_date: dt.date, father: str | None, mother: str | None, spouse: str | None,
            sign, signer_certificate: bytes, signature_algorithm: dict, hash_algorithm: str,
            photo: bytes | None = None, signed_at: dt.datetime | None = None) -> ProducedCard:
    """Every artefact of a card for the person ``row`` (a ``persons`` row); ``sign`` signs the SOD."""
    expiry = card_expiry(row.date_of_birth, issue_date)
    sex_vi = "Nam" if row.sex == "male" else "Nữ"
    printed = {
        "pid": row.pid, "full_name": row.full_name, "date_of_birth": ddmmyyyy(row.date_of_birth),
        "sex": sex_vi, "nationality": NATIONALITIES.get(row.nationality, row.nationality),
        "hometown": row.hometown or "", "residence": residence_text(row),
        "issue_date": ddmmyyyy(issue_date), "expiry_date": ddmmyyyy(expiry),
        "issuing_authority": ISSUING_AUTHORITY, "identifying_marks": "",
    }
    lines = mrzfmt.build_vn_card(pid=row.pid, date_of_birth=row.date_of_birth, sex=row.sex,
                                 expiry_date=expiry, full_name=row.full_name)
    qr_text = qrfmt.build(qrfmt.CardQr(
        pid=row.pid, old_id=row.old_id_number or None, full_name=row.full_name,
        date_of_birth=row.date_of_birth, sex=sex_vi, address=printed["residence"],
        issue_date=issue_date))
    photo = photo if photo is not None else portrait(row)
    chip_key = ec.generate_private_key(ec.SECP256R1())
    spki = chip_key.public_key().public_bytes(serialization.Encoding.DER,
                                              serialization.PublicFormat.SubjectPublicKeyInfo)
    files_by_dg = {
        1: dg1.encode(lines),
        2: dg2.encode(photo, width=PORTRAIT_SIZE[0], height=PORTRAIT_SIZE[1],
                      gender=row.sex),
        13: dg13.encode(dg13.VnPersonalData(
            pid=row.pid, full_name=row.full_name, date_of_birth=printed["date_of_birth"], sex=sex_vi,
            nationality=printed["nationality"], ethnicity=row.ethnicity, religion=row.religion or "Không",
            hometown=row.hometown, residence=printed["residence"], identifying_marks=None,
            issue_date=printed["issue_date"], expiry_date=printed["expiry_date"],
            father=father, mother=mother, spouse=spouse, old_id=row.old_id_number)),
        14: dg14.encode([dg14.active_authentication_info(dg14.ECDSA_WITH_SHA256),
                         dg14.pace_info()]),
        15: dg15.encode(spki),
    }
    ef_com = efcom.encode([efcom.DG_TAGS[n] for n in CHIP_DGS])
    ef_sod = sod.build(files_by_dg, certificate=signer_certificate, sign=sign,
                       signature_algorithm=signature_algorithm, hash_algorithm=hash_algorithm,
                       signing_time=signed_at)
    files = {"EF.COM": ef_com, **{f"DG{n}": raw for n, raw in files_by_dg.items()}, "EF.SOD": ef_sod}
    key_der = chip_key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption())
    return ProducedCard(issue_date, expiry, printed, lines, qr_text, files, key_der)
