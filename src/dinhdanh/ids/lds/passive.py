"""Verify a chip read: passive authentication (ICAO 9303 Part 11 s.5.1), Active Authentication
(s.6.1) and the agreement of DG1 with DG13.

The steps, in the order a verifier must take them, each reported by name so that a failing chip
says exactly where it failed:

1. ``sod``: EF.SOD is a SignedData over an LDSSecurityObject;
2. ``signature``: the signed attributes agree with the content and the signature verifies with the
   Document Signer certificate (DSC) carried in the SOD;
3. ``chain``: the DSC chains to a trusted CSCA by key identifier, is within its validity and not
   revoked (``trusted`` / ``untrusted`` when no trusted CSCA is known for it / ``invalid``);
4. ``data_groups``: the hash of every DG file read equals the SOD's (``match`` / ``mismatch`` /
   ``not_in_sod``);
5. ``active_authentication``: the chip signed the challenge with the DG15 key (``passed`` /
   ``failed`` / ``not_performed``); DG15 itself must be covered by step 4;
6. ``consistency``: DG1 (the MRZ) against DG13 (Vietnamese personal data), when both are there.
"""

from __future__ import annotations

import datetime as _dt
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field

from dinhdanh.ids.exceptions import InvalidFormat, ValidationError
from dinhdanh.ids.lds import cms, sod as sodfmt
from dinhdanh.ids.lds.certs import TrustStore, hash_function

__all__ = ["ChipReport", "verify_chip", "passive_authentication", "consistency", "FILE_NAMES", "dg_number"]

FILE_NAMES = {"EF.COM": 0, "EF.SOD": -1, **{f"DG{n}": n for n in range(1, 17)}}


def dg_number(name: str) -> int:
    """``DG13`` / ``DG13.bin`` / ``dg13`` -> 13; EF.COM -> 0; EF.SOD -> -1; ValueError otherwise."""
    key = name.upper().removesuffix(".BIN")
    if key in FILE_NAMES:
        return FILE_NAMES[key]
    raise ValueError(f"unknown chip file name {name!r} (expected EF.COM, EF.SOD or DG1..DG16)")


@dataclass(slots=True)
class ChipReport:
    signature_valid: bool = False
    signature: str = ""
    chain: dict = field(default_factory=lambda: {"status": "invalid", "reason": "not checked"})
    document_signer: dict | None = None
    hash_algorithm: str | None = None
    data_groups: dict[str, str] = field(default_factory=dict)
    not_read: list[str] = field(default_factory=list)
    active_authentication: dict = field(
        default_factory=lambda: {"status": "not_performed", "reason": "no challenge given"})
    consistency: dict = field(default_factory=lambda: {"status": "not_checked", "mismatches": []})
    failures: list[dict] = field(default_factory=list)

    def fail(self, check: str, reason: str) -> None:
        self.failures.append({"check": check, "reason": reason})

    @property
    def verdict(self) -> str:
        """``valid``, ``untrusted`` (sound, but no trusted CSCA for its signer) or ``invalid``."""
        if self.failures:
            return "invalid"
        if self.chain["status"] != "trusted":
            return "untrusted"
        return "valid"

    def as_dict(self) -> dict:
        return {
            "verdict": self.verdict,
            "signature_valid": self.signature_valid,
            "signature": self.signature,
            "chain": self.chain,
            "document_signer": self.document_signer,
            "hash_algorithm": self.hash_algorithm,
            "data_groups": self.data_groups,
            "not_read": self.not_read,
            "active_authentication": self.active_authentication,
            "consistency": self.consistency,
            "failures": self.failures,
        }


def verify_chip(files: Mapping[int, bytes], trust: TrustStore, *, at: _dt.datetime | None = None,
                challenge: bytes | None = None, response: bytes | None = None) -> ChipReport:
    """Check a chip read. ``files``: {0: EF.COM, -1: EF.SOD, n: DGn}, each the raw file.

    Raises ``InvalidFormat`` only when EF.SOD is missing or is not a SignedData at all (input that
    is not chip data); every other fault is a failed check in the report.
    """
    report = passive_authentication(files, trust, at=at)

    # 5. Active Authentication
    if challenge is not None or response is not None:
        report.active_authentication = _active_authentication(files, report, challenge, response)
        if report.active_authentication["status"] == "failed":
            report.fail("active_authentication", report.active_authentication["reason"])

    # 6. DG1 against DG13
    if 1 in files and 13 in files:
        report.consistency = consistency(files[1], files[13])
        if report.consistency["status"] == "inconsistent":
            fields = ", ".join(m["field"] for m in report.consistency["mismatches"])
            report.fail("consistency", f"DG1 and DG13 disagree on {fields}")
    return report


def passive_authentication(files: Mapping[int, bytes], trust: TrustStore, *,
                           at: _dt.datetime | None = None) -> ChipReport:
    """Steps 1 to 4: the SOD, its signature, the chain to a trusted CSCA, every DG's hash."""
    at = at or _dt.datetime.now(_dt.timezone.utc)
    if -1 not in files:
        raise sodfmt.SodError("EF.SOD is missing: passive authentication needs it")
    parsed = sodfmt.parse(files[-1])
    report = ChipReport()
    signed = parsed.signed
    dsc = cms.signer_certificate(signed)

    # 2. signature
    if dsc is None:
        report.signature = "the SOD does not carry the Document Signer certificate its SignerInfo names"
        report.fail("signature", report.signature)
    else:
        report.document_signer = {"subject": dsc.subject, "serial": dsc.serial,
                                  "not_before": dsc.not_before.isoformat(),
                                  "not_after": dsc.not_after.isoformat()}
        ok, reason = cms.verify_signer(signed, dsc)
        report.signature_valid = ok
        report.signature = reason
        if not ok:
            report.fail("signature", reason)

    # 1. the content must be an LDSSecurityObject (reported after the signature: both are facts)
    if parsed.security_object is None:
        report.fail("sod", parsed.problem or "the SOD holds no LDSSecurityObject")

    # 3. chain
    if dsc is not None:
        chain = trust.chain(dsc, at)
        report.chain = chain.as_dict()
        if chain.status == "invalid":
            report.fail("chain", chain.reason)
    else:
        report.chain = {"status": "invalid", "reason": "no Document Signer certificate", "csca": None}

    # 4. data groups
    hashes = parsed.security_object.hashes if parsed.security_object else {}
    if parsed.security_object is not None:
        report.hash_algorithm = parsed.security_object.hash_algorithm
        try:
            digest = hash_function(parsed.security_object.hash_algorithm)
        except ValidationError as exc:
            digest = None
            report.fail("data_groups", str(exc))
        for number in sorted(n for n in files if n > 0):
            name = f"DG{number}"
            if number not in hashes:
                report.data_groups[name] = "not_in_sod"
                report.fail("data_groups", f"{name} was read but the SOD does not list it")
            elif digest is not None:
                same = digest(files[number]).digest() == hashes[number]
                report.data_groups[name] = "match" if same else "mismatch"
                if not same:
                    report.fail("data_groups", f"the hash of {name} differs from the SOD's")
        report.not_read = [f"DG{n}" for n in sorted(hashes) if n not in files]
        if not any(n > 0 for n in files):
            report.fail("data_groups", "no data group was read: the SOD alone proves nothing about a holder")

    return report


def _active_authentication(files, report: ChipReport, challenge, response) -> dict:
    from dinhdanh.ids.lds import aa, dg14, dg15

    if not challenge or not response:
        return {"status": "failed", "reason": "Active Authentication needs both a challenge and a response"}
    if 15 not in files:
        return {"status": "failed", "reason": "DG15 (the Active Authentication key) was not read"}
    if report.data_groups.get("DG15") != "match":
        return {"status": "failed", "reason": "DG15 is not protected by a valid SOD hash"}
    hash_name = None
    if 14 in files:
        try:
            hash_name = dg14.active_authentication_hash(dg14.decode(files[14]))
        except ValidationError:
            hash_name = None
    try:
        spki = dg15.decode(files[15])
        ok = aa.verify(spki, challenge, response, hash_name=hash_name)
    except ValidationError as exc:
        return {"status": "failed", "reason": f"DG15: {exc}"}
    if ok:
        return {"status": "passed", "reason": "the chip signed the challenge with the DG15 key"}
    return {"status": "failed", "reason": "the response is not the chip's signature of the challenge"}


@functools.lru_cache(maxsize=64)
def personal_data(dg13_raw: bytes):
    """DG13 decoded (kept for the next check of the same read: the register check needs it too)."""
    from dinhdanh.ids.lds import dg13

    return dg13.decode(dg13_raw)


def consistency(dg1_raw: bytes, dg13_raw: bytes) -> dict:
    """Compare the MRZ in DG1 with the Vietnamese personal data in DG13, field by field."""
    from dinhdanh.ids import mrz as mrzfmt, names
    from dinhdanh.ids.lds import dg1, dg13

    try:
        machine = mrzfmt.parse(dg1.decode(dg1_raw))
    except ValidationError as exc:
        return {"status": "inconsistent", "mismatches": [{"field": "DG1", "reason": str(exc)}]}
    try:
        personal = personal_data(bytes(dg13_raw))
    except ValidationError as exc:
        return {"status": "inconsistent", "mismatches": [{"field": "DG13", "reason": str(exc)}]}
    mismatches: list[dict] = []

    def differ(name: str, in_dg1, in_dg13) -> None:
        mismatches.append({"field": name, "dg1": in_dg1, "dg13": in_dg13})

    pid = personal.pid
    if pid:
        mrz_pid = getattr(machine, "pid", None) or ""
        if mrz_pid and mrz_pid != pid:
            differ("pid", mrz_pid, pid)
        elif not mrz_pid and not pid.endswith(machine.document_number):
            differ("document_number", machine.document_number, pid)
    if personal.date_of_birth:
        dob = _ddmmyyyy_to_yymmdd(personal.date_of_birth)
        if dob and dob != machine.date_of_birth:
            differ("date_of_birth", machine.date_of_birth, personal.date_of_birth)
    if personal.sex:
        expected = {"nam": "M", "nữ": "F", "nu": "F"}.get(personal.sex.strip().lower())
        if expected and machine.sex not in (expected,):
            differ("sex", machine.sex, personal.sex)
    if personal.full_name:
        printed = names.transliterate(personal.full_name).replace("-", " ")
        in_mrz = " ".join(f"{machine.surname} {machine.given_names}".split())
        wanted = " ".join("".join(c if c.isalnum() else " " for c in printed).split())
        if not wanted.startswith(in_mrz) and in_mrz != wanted:
            differ("full_name", in_mrz, personal.full_name)
    if personal.expiry_date:
        # a date must be the MRZ's; a text ("Không thời hạn": the card does not expire) must meet
        # the MRZ's 991231 (mrz.NO_EXPIRY), and nothing else
        expiry = _ddmmyyyy_to_yymmdd(personal.expiry_date) or mrzfmt.NO_EXPIRY
        if expiry != machine.expiry_date:
            differ("expiry_date", machine.expiry_date, personal.expiry_date)
    return {"status": "inconsistent" if mismatches else "consistent", "mismatches": mismatches}


def _ddmmyyyy_to_yymmdd(text: str) -> str | None:
    try:
        day = _dt.datetime.strptime(text.strip(), "%d/%m/%Y").date()
    except ValueError:
        return None
    return day.strftime("%y%m%d")
