"""Tables of the platform's PKI: keys with their certificates, every use of a key, CRLs.

One table for every hierarchy; ``role`` tells them apart: the ICAO eMRTD PKI of the chip cards
(``csca``, ``dsc``, ``mls``) and the document-signing CA of result documents (``doc_ca``, and
``doc_signer``, one line of signers per agency: ``agency`` holds its code).
"""

from __future__ import annotations

import sqlalchemy as sa

from dinhdanh.store.base import Id, Key, UTCDateTime, metadata, one_of

KEY_ROLES = ("csca", "dsc", "mls", "doc_ca", "doc_signer")
KEY_STATUSES = ("active", "retired", "revoked")
ACTIVE_DOC_CA = "role = 'doc_ca' AND status = 'active'"
ACTIVE_DOC_SIGNER = "role = 'doc_signer' AND status = 'active'"

pki_keys = sa.Table(
    "pki_keys", metadata,
    sa.Column("key_id", Id, primary_key=True, autoincrement=True),
    sa.Column("role", sa.String(12), nullable=False),
    sa.Column("algorithm", sa.String(20), nullable=False),
    sa.Column("issuer_id", Id, sa.ForeignKey("pki_keys.key_id"), index=True),
    sa.Column("subject", sa.String(300), nullable=False),
    sa.Column("serial", sa.String(40), nullable=False),
    sa.Column("key_identifier", Key(64), nullable=False, index=True),  # SKI, hex
    sa.Column("certificate", sa.LargeBinary, nullable=False),  # DER
    sa.Column("private_key", sa.LargeBinary, nullable=False),  # PKCS#8 DER sealed by the vault
    sa.Column("not_before", UTCDateTime, nullable=False),
    sa.Column("not_after", UTCDateTime, nullable=False),
    sa.Column("usage_ends", UTCDateTime, nullable=False),  # private key usage period
    sa.Column("status", sa.String(8), nullable=False, server_default="active"),
    sa.Column("revoked_at", UTCDateTime),
    sa.Column("revocation_reason", sa.String(30)),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("agency", sa.String(30)),  # a document signer's agency code (documents.ca); else NULL
    sa.CheckConstraint(one_of("role", *KEY_ROLES), name="role"),
    sa.CheckConstraint(one_of("status", *KEY_STATUSES), name="status"),
    # one active document-signing CA, one active signer per agency: two requests that both find
    # none cannot both make one (the second fails, and reads the first's; documents.ca)
    sa.Index("uq_pki_keys_active_doc_ca", "role", unique=True,
             sqlite_where=sa.text(ACTIVE_DOC_CA), postgresql_where=sa.text(ACTIVE_DOC_CA)),
    sa.Index("uq_pki_keys_active_doc_signer", "agency", unique=True,
             sqlite_where=sa.text(ACTIVE_DOC_SIGNER), postgresql_where=sa.text(ACTIVE_DOC_SIGNER)),
)

# Every use of a private key: what it signed, when, for what.
pki_key_uses = sa.Table(
    "pki_key_uses", metadata,
    sa.Column("use_id", Id, primary_key=True, autoincrement=True),
    sa.Column("key_id", Id, sa.ForeignKey("pki_keys.key_id"), nullable=False, index=True),
    sa.Column("used_at", UTCDateTime, nullable=False),
    sa.Column("purpose", sa.String(30), nullable=False),
    sa.Column("reference", sa.String(80)),  # card id, certificate serial, CRL number, result code
    sa.Column("digest", Key(64), nullable=False),  # SHA-256 of what was signed
)

pki_crls = sa.Table(
    "pki_crls", metadata,
    sa.Column("crl_id", Id, primary_key=True, autoincrement=True),
    sa.Column("issuer_id", Id, sa.ForeignKey("pki_keys.key_id"), nullable=False, index=True),
    sa.Column("number", sa.Integer, nullable=False),
    sa.Column("this_update", UTCDateTime, nullable=False),
    sa.Column("next_update", UTCDateTime, nullable=False),
    sa.Column("der", sa.LargeBinary, nullable=False),
    sa.UniqueConstraint("issuer_id", "number"),
)
