"""Tables of the card area: the national PKI's keys and their use, applications, cards."""

from __future__ import annotations

import sqlalchemy as sa

from dinhdanh.store.base import Id, Key, UTCDateTime, metadata, one_of

KEY_ROLES = ("csca", "dsc", "mls")
KEY_STATUSES = ("active", "retired", "revoked")
APPLICATION_KINDS = ("first", "renewal", "reissue_lost", "reissue_damaged", "reissue_changed")
APPLICATION_STATUSES = ("submitted", "approved", "rejected", "produced", "issued")
CARD_STATUSES = ("produced", "issued", "revoked")
REVOCATION_REASONS = ("lost", "replaced", "death", "data_changed", "damaged")

pki_keys = sa.Table(
    "pki_keys", metadata,
    sa.Column("key_id", Id, primary_key=True, autoincrement=True),
    sa.Column("role", sa.String(4), nullable=False),
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
    sa.CheckConstraint(one_of("role", *KEY_ROLES), name="role"),
    sa.CheckConstraint(one_of("status", *KEY_STATUSES), name="status"),
)

# Every use of a private key: what it signed, when, for what.
pki_key_uses = sa.Table(
    "pki_key_uses", metadata,
    sa.Column("use_id", Id, primary_key=True, autoincrement=True),
    sa.Column("key_id", Id, sa.ForeignKey("pki_keys.key_id"), nullable=False, index=True),
    sa.Column("used_at", UTCDateTime, nullable=False),
    sa.Column("purpose", sa.String(30), nullable=False),
    sa.Column("reference", sa.String(80)),  # card id, certificate serial, CRL number
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

card_applications = sa.Table(
    "card_applications", metadata,
    sa.Column("application_id", Id, primary_key=True, autoincrement=True),
    sa.Column("person_id", Id, sa.ForeignKey("persons.person_id"), nullable=False, index=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("status", sa.String(10), nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("submitted_at", UTCDateTime, nullable=False),
    sa.Column("submitted_by", sa.String(60), nullable=False),
    sa.Column("decided_at", UTCDateTime),
    sa.Column("decided_by", sa.String(60)),
    sa.Column("card_id", Id),  # the card produced for it (no FK: cards refer back)
    sa.CheckConstraint(one_of("kind", *APPLICATION_KINDS), name="kind"),
    sa.CheckConstraint(one_of("status", *APPLICATION_STATUSES), name="status"),
)

cards = sa.Table(
    "cards", metadata,
    sa.Column("card_id", Id, primary_key=True, autoincrement=True),
    sa.Column("person_id", Id, sa.ForeignKey("persons.person_id"), nullable=False, index=True),
    sa.Column("application_id", Id, sa.ForeignKey("card_applications.application_id"),
              nullable=False, index=True),
    sa.Column("card_number", Key(12), nullable=False, index=True),  # the PID at production
    sa.Column("status", sa.String(8), nullable=False),
    sa.Column("issue_date", sa.Date, nullable=False),
    sa.Column("expiry_date", sa.Date),  # NULL: the card does not expire (issued at 58 or older)
    sa.Column("printed", sa.JSON, nullable=False),  # the fields printed on the card
    sa.Column("mrz", sa.String(92), nullable=False),
    sa.Column("qr", sa.Text, nullable=False),
    sa.Column("ef_com", sa.LargeBinary, nullable=False),
    sa.Column("dg1", sa.LargeBinary, nullable=False),
    sa.Column("dg2", sa.LargeBinary, nullable=False),  # sealed: a biometric
    sa.Column("dg13", sa.LargeBinary, nullable=False),
    sa.Column("dg14", sa.LargeBinary, nullable=False),
    sa.Column("dg15", sa.LargeBinary, nullable=False),
    sa.Column("sod", sa.LargeBinary, nullable=False),
    sa.Column("sod_digest", Key(64), nullable=False, unique=True),  # SHA-256 of EF.SOD: finds a card from a chip
    sa.Column("chip_key", sa.LargeBinary, nullable=False),  # the AA private key, sealed (chip emulation)
    sa.Column("signer_id", Id, sa.ForeignKey("pki_keys.key_id"), nullable=False, index=True),
    sa.Column("produced_at", UTCDateTime, nullable=False),
    sa.Column("issued_at", UTCDateTime),
    sa.Column("revoked_at", UTCDateTime),
    sa.Column("revocation_reason", sa.String(16)),
    sa.CheckConstraint(one_of("status", *CARD_STATUSES), name="status"),
)

# Foreign CSCAs, master lists and CRLs that verifiers here trust (validated when added).
trust_anchors = sa.Table(
    "trust_anchors", metadata,
    sa.Column("anchor_id", Id, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(12), nullable=False),
    sa.Column("label", sa.String(200), nullable=False),
    sa.Column("der", sa.LargeBinary, nullable=False),
    sa.Column("digest", Key(64), nullable=False, unique=True),
    sa.Column("added_at", UTCDateTime, nullable=False),
    sa.CheckConstraint(one_of("kind", "csca", "master_list", "crl"), name="kind"),
)
