"""Tables of the card area: applications, cards, trusted foreign anchors. The PKI's keys, their use
and CRLs are the shared ``pki.tables`` (imported here for the callers that name them from cards)."""

from __future__ import annotations

import sqlalchemy as sa

from dinhdanh.pki.tables import KEY_ROLES, KEY_STATUSES, pki_crls, pki_key_uses, pki_keys  # noqa: F401 (moved)
from dinhdanh.store.base import Id, Key, UTCDateTime, metadata, one_of

APPLICATION_KINDS = ("first", "renewal", "reissue_lost", "reissue_damaged", "reissue_changed")
APPLICATION_STATUSES = ("submitted", "approved", "rejected", "produced", "issued")
CARD_STATUSES = ("produced", "issued", "revoked")
REVOCATION_REASONS = ("lost", "replaced", "death", "data_changed", "damaged")

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
