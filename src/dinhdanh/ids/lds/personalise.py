"""Personalising a chip: the files of an eMRTD written for one holder (ICAO 9303 Parts 10-11).

``personalise`` makes what every chip of ours holds (a chip ID card, a passport): DG1 with the
document's MRZ, DG2 with the face, DG14 announcing Active Authentication (ECDSA with SHA-256) and
PACE, DG15 with a fresh P-256 Active Authentication key, the document's own extra groups (a card's
DG13), EF.COM listing them and EF.SOD over all of them, signed by ``sign`` (the Document Signer's
key, held by the caller). It returns the files and the Active Authentication private key (PKCS#8
DER) for the caller to keep sealed: the chip's secret, here emulated.

Pure: bytes in, bytes out (the key is random); no database, no files.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from dinhdanh.ids.lds import dg1, dg2, dg14, dg15, efcom, sod

__all__ = ["Personalised", "personalise"]


@dataclass(frozen=True)
class Personalised:
    files: dict[str, bytes]  # "EF.COM", "DG1", ..., "EF.SOD"
    aa_key_der: bytes  # the Active Authentication private key, PKCS#8 DER


def personalise(mrz_lines: Sequence[str], photo: bytes, *, width: int, height: int, gender: str,
                sign: Callable[[bytes], bytes], certificate: bytes, signature_algorithm: dict, hash_algorithm: str,
                extra: Mapping[int, bytes] | None = None, signing_time: dt.datetime | None = None) -> Personalised:
    """The chip's files for the holder of ``mrz_lines``, ``photo`` (JPEG of ``width`` x ``height``)
    and ``gender``, with the ``extra`` data groups (number -> encoded file), signed by ``sign``
    under ``certificate``."""
    key = ec.generate_private_key(ec.SECP256R1())
    spki = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    groups = {1: dg1.encode(mrz_lines), 2: dg2.encode(photo, width=width, height=height, gender=gender),
              **dict(extra or {}),
              14: dg14.encode([dg14.active_authentication_info(dg14.ECDSA_WITH_SHA256), dg14.pace_info()]),
              15: dg15.encode(spki)}
    groups = dict(sorted(groups.items()))
    ef_com = efcom.encode([efcom.DG_TAGS[n] for n in groups])
    ef_sod = sod.build(groups, certificate=certificate, sign=sign, signature_algorithm=signature_algorithm,
                       hash_algorithm=hash_algorithm, signing_time=signing_time)
    files = {"EF.COM": ef_com, **{f"DG{n}": raw for n, raw in groups.items()}, "EF.SOD": ef_sod}
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    return Personalised(files, der)
