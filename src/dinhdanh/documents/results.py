"""The register of result documents: issue one (render, sign, keep), revoke it, tell anyone who
holds its code whether it is genuine, revoked or unknown.

The code (20 letters and digits of RFC 4648 base32, 100 random bits) is printed on the document and
in its QR code; it is the only key to the public answer, which gives the minimum to compare a
paper or file with: the kind, the date of issue, the agency, the holder's initials and the SHA-256
of the signed file. The full document, with the holder's name and the decision, is kept sealed by
the vault. Reading the holder from the register to issue, and every public check of a document,
is written to the access log (the holder sees both in their access-log page).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from dataclasses import dataclass

import sqlalchemy as sa

from dinhdanh.audit.service import record_access
from dinhdanh.documents import ca
from dinhdanh.documents.model import KINDS, LABELS, TITLES, Agency, DocumentContent
from dinhdanh.documents.tables import results
from dinhdanh.registry.errors import Conflict, InvalidInput, NotFound
from dinhdanh.registry.tables import persons
from dinhdanh.store.base import utcnow, vietnam_date
from dinhdanh.store.vault import Vault

__all__ = ["IssuedDocument", "issue_document", "revoke_result", "result_status", "signed_document",
           "verify_document", "check_code", "initials", "CODE_PATTERN"]

CODE_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
CODE_PATTERN = r"^[A-Za-z2-7]{20}$"
_CODE = re.compile(CODE_PATTERN)
_DUE = {"receipt": "due_date", "apology": "due_date"}  # the kinds that must name a date
_REASONS = ("supplement_request", "refusal")  # the kinds that must list reasons
PUBLIC = "public"  # the actor of a public check (no account: whoever holds the code)


@dataclass(frozen=True, slots=True)
class IssuedDocument:
    code: str
    kind: str
    sha256: str
    pdf: bytes  # signed
    issued_at: dt.datetime
    verify_url: str
    signer_id: int

    def as_dict(self) -> dict:
        return {"code": self.code, "kind": self.kind, "sha256": self.sha256, "issued_at": self.issued_at.isoformat(),
                "verify_url": self.verify_url, "signer_id": self.signer_id, "bytes": len(self.pdf)}


def check_code(code: str) -> str:
    """The code in its one form (capitals), or InvalidInput naming ``code``."""
    if not isinstance(code, str) or not _CODE.match(code):
        raise InvalidInput("A result code is 20 characters: letters A-Z and digits 2-7.", code="invalid_result_code",
                           field="code")
    return code.upper()


def initials(full_name: str) -> str:
    """``Nguyễn Thị Dung`` -> ``N. T. D.``: enough to compare with the paper, not to learn the name."""
    return " ".join(f"{word[0].upper()}." for word in full_name.split() if word)[:40]


def _new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(20))


def _check_fields(kind: str, *, dossier, procedure, text, reasons, due_date, today: dt.date) -> dict:
    from dinhdanh.documents.render import check_text  # the font's repertoire: with the renderer

    if kind not in KINDS:
        raise InvalidInput(f"The kind is one of {', '.join(KINDS)}.", field="kind")
    if isinstance(reasons, str) or not all(isinstance(r, str) for r in (reasons or ())):
        raise InvalidInput("reasons is a list of texts.", field="reasons")
    reasons = list(reasons or ())
    if len(reasons) > 30:
        raise InvalidInput("At most 30 reasons.", field="reasons")
    checked = {
        "dossier": check_text(dossier, "dossier", max_length=60),
        "procedure": check_text(procedure, "procedure", max_length=300),
        "text": check_text(text, "text", lines=True, required=kind == "result"),
        "reasons": tuple(check_text(r, f"reasons.{i}", max_length=500, required=True) for i, r in enumerate(reasons)),
        "due_date": due_date,
    }
    if kind in _REASONS and not checked["reasons"]:
        raise InvalidInput("This document lists at least one reason.", field="reasons")
    if due_date is not None and (not isinstance(due_date, dt.date) or isinstance(due_date, dt.datetime)):
        raise InvalidInput("due_date is a date (YYYY-MM-DD).", field="due_date")
    if kind in _DUE and due_date is None:
        raise InvalidInput("This document names a date: due_date.", field="due_date")
    if due_date is not None and due_date < today:
        raise InvalidInput("due_date is in the past.", field="due_date")
    return checked


def issue_document(conn: sa.Connection, vault: Vault, kind: str, holder: int, *, agency: Agency, base_url: str,
                   actor: str, dossier: str | None = None, procedure: str | None = None, text: str | None = None,
                   reasons: tuple[str, ...] | list[str] = (), due_date: dt.date | None = None,
                   purpose: str = "public_service", now: dt.datetime | None = None) -> IssuedDocument:
    """Render, sign and register a document of ``kind`` for the person ``holder`` (person_id),
    in the caller's transaction: the register row, the key's use and the access-log entry commit
    together with whatever decided it (the dossier's step)."""
    from dinhdanh.documents.render import render_pdf, verification_url
    from dinhdanh.documents.sign import sign_pdf

    now = now or utcnow()
    today = vietnam_date(now)
    fields = _check_fields(kind, dossier=dossier, procedure=procedure, text=text, reasons=reasons,
                           due_date=due_date, today=today)
    ca.check_agency(agency)
    from dinhdanh.documents.render import check_text

    for field, value in (("agency.name", agency.name), ("agency.parent", agency.parent),
                         ("agency.place", agency.place)):
        check_text(value, field, max_length=120, required=True)  # drawable in the document's font
    person = conn.execute(sa.select(persons.c.person_id, persons.c.full_name)
                          .where(persons.c.person_id == holder)).first() if isinstance(holder, int) else None
    if person is None:
        raise NotFound("No person with this id in the register.", field="holder")
    record_access(conn, actor, [person.person_id], "issue_document", purpose, fields=["full_name"])
    holder_name = check_text(person.full_name, "holder", max_length=100, required=True)
    code = _new_code()
    url = verification_url(base_url, code)
    content = DocumentContent(kind=kind, code=code, agency=agency, holder_name=holder_name, issued_on=today,
                              verify_url=url, **fields)
    unsigned = render_pdf(content, issued_at=now)
    signer = ca.agency_signer(conn, vault, agency, base_url=base_url, now=now)
    signed = sign_pdf(conn, unsigned, signer, chain=ca.chain_of(conn, signer), crls=[ca.current_crl(conn, vault)],
                      reference=f"result:{code}", reason=TITLES[kind].capitalize(), location=agency.place,
                      name=agency.name)
    digest = hashlib.sha256(signed).hexdigest()
    conn.execute(results.insert().values(
        code=code, kind=kind, person_id=person.person_id, holder_initials=initials(person.full_name),
        dossier=fields["dossier"], agency_code=agency.code, agency_name=agency.name[:120], signer_id=signer.key_id,
        sha256=digest, pdf=vault.seal(signed, f"result-pdf:{code}"), issued_at=now, issued_by=actor[:60]))
    return IssuedDocument(code, kind, digest, signed, now, url, signer.key_id)


def revoke_result(conn: sa.Connection, code: str, reason: str, *, actor: str,
                  now: dt.datetime | None = None) -> dict:
    """Mark a document revoked (a decision annulled): from now its check answers ``revoked``."""
    from dinhdanh.documents.render import check_text

    code = check_code(code)
    reason = check_text(reason, "reason", max_length=500, required=True)
    now = now or utcnow()
    done = conn.execute(results.update().where(results.c.code == code, results.c.revoked_at.is_(None))
                        .values(revoked_at=now, revocation_reason=reason, revoked_by=actor[:60])).rowcount
    if not done:
        if conn.execute(sa.select(results.c.result_id).where(results.c.code == code)).first() is None:
            raise NotFound("No result document with this code.", code="unknown_result_code", field="code")
        raise Conflict("This result document is already revoked.", code="result_already_revoked")
    return {"code": code, "status": "revoked", "revoked_at": now.isoformat()}


def result_status(conn: sa.Connection, code: str, *, actor: str = PUBLIC, english: bool = False) -> dict:
    """``genuine``, ``revoked`` or ``unknown``, with the minimum to compare the document with.
    Every answer about a known document is written to the access log (its holder sees who asked
    only as "public")."""
    code = check_code(code)
    row = conn.execute(sa.select(results.c.person_id, results.c.kind, results.c.holder_initials,
                                 results.c.agency_name, results.c.sha256, results.c.issued_at,
                                 results.c.revoked_at).where(results.c.code == code)).first()
    if row is None:
        return {"code": code, "status": "unknown", "kind": None, "kind_label": None, "issued_on": None,
                "agency": None, "holder": None, "sha256": None, "revoked_on": None}
    status = "revoked" if row.revoked_at is not None else "genuine"
    record_access(conn, actor, [row.person_id], "check_result", "public_service",
                  fields=["kind", "issued_on", "agency", "holder_initials", "sha256"], outcome=status)
    return {"code": code, "status": status, "kind": row.kind, "kind_label": LABELS[row.kind][1 if english else 0],
            "issued_on": vietnam_date(row.issued_at).isoformat(), "agency": row.agency_name,
            "holder": row.holder_initials, "sha256": row.sha256,
            "revoked_on": vietnam_date(row.revoked_at).isoformat() if row.revoked_at else None}


def signed_document(conn: sa.Connection, vault: Vault, code: str) -> bytes:
    """The signed PDF as issued (for its holder or the deciding officer; the caller audits)."""
    code = check_code(code)
    sealed = conn.execute(sa.select(results.c.pdf).where(results.c.code == code)).scalar()
    if sealed is None:
        raise NotFound("No result document with this code.", code="unknown_result_code", field="code")
    return vault.open(sealed, f"result-pdf:{code}")


def verify_document(conn: sa.Connection, vault: Vault | None, pdf: bytes) -> dict:
    """A PDF checked twice: its signature against the document-signing CA (with the CA's current
    CRL), and the register: is a document with this exact SHA-256 issued, and is it revoked."""
    from dinhdanh.documents.verify import verify_pdf

    verdict = verify_pdf(pdf, ca.ca_certificates(conn), [ca.current_crl(conn, vault)])
    row = conn.execute(sa.select(results.c.code, results.c.revoked_at)
                       .where(results.c.sha256 == verdict.sha256)).first()
    register = "unknown" if row is None else ("revoked" if row.revoked_at is not None else "genuine")
    # a bad signature outweighs the register; a good one is only as good as the register's word
    status = "invalid" if verdict.status != "genuine" else register
    return {"status": status, "register": register, "code": row.code if row else None,
            "signature": verdict.as_dict()}
