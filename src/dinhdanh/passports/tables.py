"""Tables of the passport register: the passports and the counter their numbers come from.

``passports`` keeps what was printed (``printed``, ``mrz``) and, for a passport with a chip, the
chip's files as a reader gets them (``dg2``, a biometric, sealed by the vault like ``cards.dg2``),
the Active Authentication private key (sealed: the platform can act as the chip in tests and
demos) and the Document Signer that signed EF.SOD. A passport without a chip has none of these
(a CHECK says so). At most one passport per person is ``issued`` at a time (a partial unique
index: a concurrent second issue fails on it rather than leaving two valid passports).

Statuses: ``issued`` (valid until its expiry date; "expired" is worked out, never stored),
``revoked`` (replaced by a new passport, damaged, data changed, holder dead, withdrawn) and
``invalidated`` (reported lost: "hủy giá trị", it can never be used again even if found).
"""

from __future__ import annotations

import sqlalchemy as sa

from dinhdanh.store.base import Id, Key, UTCDateTime, metadata, one_of

PASSPORT_STATUSES = ("issued", "revoked", "invalidated")
REVOCATION_REASONS = ("replaced", "lost", "damaged", "data_changed", "death", "withdrawn")
CHIP_FILES = ("ef_com", "dg1", "dg2", "dg14", "dg15", "sod", "sod_digest", "chip_key", "signer_id")

_ALL_CHIP = " AND ".join(f"{c} IS NOT NULL" for c in CHIP_FILES)
_NO_CHIP = " AND ".join(f"{c} IS NULL" for c in CHIP_FILES)

passports = sa.Table(
    "passports", metadata,
    sa.Column("passport_id", Id, primary_key=True, autoincrement=True),
    sa.Column("person_id", Id, sa.ForeignKey("persons.person_id"), nullable=False, index=True),
    sa.Column("number", Key(9), nullable=False, unique=True),  # "P0000001": a letter and 7 digits
    sa.Column("type", sa.String(1), nullable=False),  # the MRZ document code: "P"
    sa.Column("status", sa.String(12), nullable=False),
    sa.Column("kind", sa.String(12), nullable=False),  # why it was issued: first, expired, lost, ...
    sa.Column("issue_date", sa.Date, nullable=False),
    sa.Column("expiry_date", sa.Date, nullable=False),
    sa.Column("chip", sa.Boolean, nullable=False),
    sa.Column("mrz", sa.String(89), nullable=False),  # two lines of 44, joined by "\n"
    sa.Column("printed", sa.JSON, nullable=False),  # the data page as printed
    sa.Column("ef_com", sa.LargeBinary),
    sa.Column("dg1", sa.LargeBinary),
    sa.Column("dg2", sa.LargeBinary),  # sealed: a biometric
    sa.Column("dg14", sa.LargeBinary),
    sa.Column("dg15", sa.LargeBinary),
    sa.Column("sod", sa.LargeBinary),
    sa.Column("sod_digest", Key(64), unique=True),  # SHA-256 of EF.SOD: finds a passport from a chip
    sa.Column("chip_key", sa.LargeBinary),  # the AA private key, sealed (chip emulation)
    sa.Column("signer_id", Id, sa.ForeignKey("pki_keys.key_id"), index=True),
    sa.Column("previous_number", sa.String(9)),  # the passport this one follows (may predate the register)
    sa.Column("dossier_code", sa.String(40), index=True),  # the online dossier it was issued for
    sa.Column("issued_at", UTCDateTime, nullable=False),
    sa.Column("issued_by", sa.String(60), nullable=False),
    sa.Column("revoked_at", UTCDateTime),
    sa.Column("revocation_reason", sa.String(16)),
    sa.CheckConstraint(one_of("status", *PASSPORT_STATUSES), name="status"),
    sa.CheckConstraint("type = 'P'", name="type"),
    sa.CheckConstraint(f"(chip AND {_ALL_CHIP}) OR (NOT chip AND {_NO_CHIP})", name="chip_files"),
    sa.CheckConstraint("(status = 'issued') = (revoked_at IS NULL)", name="revoked_at"),
    sa.Index("uq_passports_one_issued", "person_id", unique=True,
             sqlite_where=sa.text("status = 'issued'"), postgresql_where=sa.text("status = 'issued'")),
)

# The last number given out per counter (one row, "passport"): incremented by one upsert per
# passport, so two concurrent issues never get the same number (numbers.allocate).
passport_counters = sa.Table(
    "passport_counters", metadata,
    sa.Column("name", sa.String(20), primary_key=True),
    sa.Column("last_value", sa.BigInteger, nullable=False),
    sa.CheckConstraint("last_value > 0", name="positive"),
)
