"""Verify a passport's chip: the card's passive authentication, and DG1 holding a valid TD3 MRZ.

The chip is checked by :func:`dinhdanh.ids.lds.passive.verify_chip`, exactly as a chip ID card is
(the SOD, its signature, the Document Signer's chain to a trusted CSCA, every data group's hash,
Active Authentication when a challenge and its response are given). A passport adds one check,
``document``: DG1 must have been read and hold a TD3 MRZ (2 x 44) of document code ``P`` whose
check digits all hold (``dinhdanh.ids.mrz.validate``); a chip that passes everything else but
carries a card's MRZ is not a passport.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping

from dinhdanh.ids import mrz as mrzfmt
from dinhdanh.ids.exceptions import ValidationError
from dinhdanh.ids.lds import dg1, passive
from dinhdanh.ids.lds.certs import TrustStore
from dinhdanh.registry.errors import InvalidInput

__all__ = ["verify_chip", "chip_files"]


def chip_files(files: Mapping) -> dict[int, bytes]:
    """{"DG1": ..., "EF.SOD": ...} or {1: ..., -1: ...} -> {1: ..., -1: ...} (``passive``'s numbering)."""
    out: dict[int, bytes] = {}
    for name, raw in files.items():
        if isinstance(name, int) and (name in (0, -1) or 1 <= name <= 16):
            out[name] = raw
            continue
        try:
            out[passive.dg_number(str(name))] = raw
        except ValueError as exc:
            raise InvalidInput(str(exc), field=str(name)) from None
    if -1 not in out:
        raise InvalidInput("EF.SOD is required: passive authentication checks every file against it.",
                           field="EF.SOD")
    return out


def _trust(trusted_cscas) -> TrustStore:
    if isinstance(trusted_cscas, TrustStore):
        return trusted_cscas
    if isinstance(trusted_cscas, bytes | bytearray):
        trusted_cscas = [bytes(trusted_cscas)]
    return TrustStore(cscas=list(trusted_cscas))


def _document(files: Mapping[int, bytes]) -> dict:
    if 1 not in files:
        return {"status": "invalid", "reason": "DG1 (the MRZ) was not read", "mrz": None}
    try:
        lines = dg1.decode(files[1])
        parsed = mrzfmt.validate(lines)
    except ValidationError as exc:
        return {"status": "invalid", "reason": f"DG1: {exc}", "mrz": None}
    if parsed.format != "TD3" or parsed.document_code[:1] != "P":
        return {"status": "invalid", "reason": f"DG1 holds a {parsed.format} MRZ of document code "
                f"{parsed.document_code!r}, not a passport's (TD3, P)", "mrz": list(lines)}
    return {"status": "passport", "reason": "DG1 holds a valid TD3 MRZ", "mrz": list(lines),
            "document_number": parsed.document_number, "issuing_state": parsed.issuing_state,
            "expiry_date": parsed.expiry_date, "personal_number": parsed.optional_data}


def verify_chip(files: Mapping, trusted_cscas: TrustStore | Iterable[bytes] | bytes, *,
                at: dt.datetime | None = None, challenge: bytes | None = None,
                response: bytes | None = None) -> dict:
    """The report of a passport chip read, as a dict (``passive.ChipReport.as_dict`` and ``document``).

    ``files``: the chip's files by name ("EF.COM", "DG1", ..., "EF.SOD") or by number (0, -1, n);
    ``trusted_cscas``: a :class:`TrustStore` (``cards.verification.trust_store_for(conn)``: ours,
    foreign ones and CRLs) or CSCA certificates (DER). ``verdict`` is ``valid`` only when every check
    passed and the signer chains to a trusted CSCA. Unreadable chip data: ``InvalidInput``.
    """
    numbered = chip_files(files)
    try:
        report = passive.verify_chip(numbered, _trust(trusted_cscas), at=at, challenge=challenge,
                                     response=response)
    except ValidationError as exc:
        raise InvalidInput(f"The chip data are not readable: {exc}", field="EF.SOD") from None
    document = _document(numbered)
    if document["status"] != "passport":
        report.fail("document", document["reason"])
    out = report.as_dict()
    out["document"] = document
    return out
