"""Tables of the documents area: the register of issued result documents and slips."""

from __future__ import annotations

import sqlalchemy as sa

import dinhdanh.pki.tables  # noqa: F401 (pki_keys, referred to)
import dinhdanh.registry.tables  # noqa: F401 (persons, referred to)
from dinhdanh.documents.model import KINDS
from dinhdanh.store.base import Id, Key, UTCDateTime, metadata, one_of

# One row per signed document. The verification page answers from it alone: kind, dates, the
# holder's initials, the agency, the SHA-256 of the signed file. The file itself (with the full
# name and the decision) is kept sealed by the vault.
results = sa.Table(
    "results", metadata,
    sa.Column("result_id", Id, primary_key=True, autoincrement=True),
    sa.Column("code", Key(20), nullable=False, unique=True),  # the verification code (QR, URL)
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("person_id", Id, sa.ForeignKey("persons.person_id"), nullable=False, index=True),
    sa.Column("holder_initials", sa.String(40), nullable=False),  # "N. T. D.": what the public page shows
    sa.Column("dossier", sa.Text),  # the dossier's reference (dossiers/ will make it a key)
    sa.Column("agency_code", sa.String(30), nullable=False),
    sa.Column("agency_name", sa.String(120), nullable=False),
    sa.Column("signer_id", Id, sa.ForeignKey("pki_keys.key_id"), nullable=False, index=True),
    sa.Column("sha256", Key(64), nullable=False, index=True),  # of the signed PDF
    sa.Column("pdf", sa.LargeBinary, nullable=False),  # the signed PDF, sealed by the vault
    sa.Column("issued_at", UTCDateTime, nullable=False),
    sa.Column("issued_by", sa.String(60), nullable=False),
    sa.Column("revoked_at", UTCDateTime),
    sa.Column("revocation_reason", sa.String(500)),
    sa.Column("revoked_by", sa.String(60)),
    sa.CheckConstraint(one_of("kind", *KINDS), name="kind"),
)
