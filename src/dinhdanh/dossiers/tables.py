"""Tables of the dossiers area: the dossiers citizens file, their status history, the slips and
results issued for them, the per-day sequences of their national codes (migrations 0020 to 0022), and
the attachments (0023)."""

from __future__ import annotations

import sqlalchemy as sa

from dinhdanh.store.base import Id, Key, UTCDateTime, metadata, one_of

STATUSES = ("submitted", "received", "supplement_requested", "approved", "refused", "withdrawn")
ACTIONS = ("file", "receive", "request_supplement", "supplement", "approve", "refuse", "withdraw", "extend")
DOCUMENT_KINDS = ("receipt", "supplement_request", "refusal", "apology", "result")

# One row per dossier. ``status`` moves only by one conditional UPDATE from a state the action may
# come from and the version read (workflow.TRANSITIONS), so two officers acting at once get one
# decision. ``place_*`` is where the procedure is carried out (Decree 118/2025), which routes it.
dossiers = sa.Table(
    "dossiers", metadata,
    sa.Column("dossier_id", Id, primary_key=True, autoincrement=True),
    sa.Column("code", Key(40), nullable=False, unique=True),  # the national dossier code (service.new_code)
    sa.Column("service_code", sa.String(60), nullable=False),
    sa.Column("version_id", sa.String(80), nullable=False),  # catalogue.version(id): the rules it was filed under
    sa.Column("person_id", Id, sa.ForeignKey("persons.person_id"), nullable=False, index=True),  # the applicant
    sa.Column("account_id", Id),  # the e-ID account that filed it
    sa.Column("place_province", sa.String(2), nullable=False),
    sa.Column("place_commune", sa.String(5)),
    sa.Column("agency_code", sa.String(40), nullable=False),
    sa.Column("agency_level", sa.String(10), nullable=False),
    sa.Column("status", sa.String(24), nullable=False),
    sa.Column("data", sa.JSON, nullable=False),  # the filled form
    sa.Column("fee_amount", sa.BigInteger, nullable=False),  # VND, from the catalogue (never from the citizen)
    sa.Column("due_date", sa.Date, nullable=False),  # estimated at filing, fixed on receipt
    sa.Column("received_on", sa.Date),  # the working day the clock counts from
    sa.Column("paused_since", sa.Date),  # the day a supplement was asked for (the clock stops)
    sa.Column("supplement_due", sa.Date),  # the last day to supply it (7 working days)
    sa.Column("overdue_at", UTCDateTime),  # when the deadline timer found it undecided past its due date
    sa.Column("result_code", sa.String(20)),  # the result document (documents.results)
    sa.Column("effect", sa.JSON),  # what the approval changed in the register (dossiers.effects; migration 0022)
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("decided_at", UTCDateTime),
    # Linked groups (Decree 63/2024, migration 0021): a ``group`` parent (its status derived from its
    # sub-dossiers, never moved itself) and one sub-dossier per procedure (``parent_id``, the group's
    # ``procedure`` key); ``waits_for``: the sub-dossier that must be approved before this one is received.
    sa.Column("kind", sa.String(10), nullable=False, server_default="single"),  # single | group
    sa.Column("parent_id", Id, sa.ForeignKey("dossiers.dossier_id"), index=True),
    sa.Column("procedure", sa.String(40)),
    sa.Column("waits_for", Id, sa.ForeignKey("dossiers.dossier_id")),
    sa.CheckConstraint(one_of("status", *STATUSES), name="status"),
    sa.CheckConstraint("fee_amount >= 0", name="fee_amount"),
    sa.Index("ix_dossiers_place_province_status", "place_province", "status"),
    sa.Index("ix_dossiers_place_commune_status", "place_commune", "status"),
    sa.Index("ix_dossiers_status_due_date", "status", "due_date"),
)

# The status history: one row per move, numbered per dossier.
dossier_events = sa.Table(
    "dossier_events", metadata,
    sa.Column("event_id", Id, primary_key=True, autoincrement=True),
    sa.Column("dossier_id", Id, sa.ForeignKey("dossiers.dossier_id"), nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("from_status", sa.String(24)),
    sa.Column("to_status", sa.String(24), nullable=False),
    sa.Column("action", sa.String(24), nullable=False),
    sa.Column("actor", sa.String(80), nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.CheckConstraint(one_of("action", *ACTIONS), name="action"),
    sa.UniqueConstraint("dossier_id", "seq"),
)

# The slips and the result issued for a dossier (codes of documents.results' register).
dossier_documents = sa.Table(
    "dossier_documents", metadata,
    sa.Column("dossier_id", Id, sa.ForeignKey("dossiers.dossier_id"), primary_key=True),
    sa.Column("code", sa.String(20), primary_key=True),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("issued_at", UTCDateTime, nullable=False),
    sa.CheckConstraint(one_of("kind", *DOCUMENT_KINDS), name="kind"),
)

# The last number handed out per code prefix and day (``G00070-261206``): claimed with one
# conditional UPDATE ... RETURNING, so concurrent filings never share a code.
dossier_sequences = sa.Table(
    "dossier_sequences", metadata,
    sa.Column("prefix", Key(30), primary_key=True),
    sa.Column("last", sa.Integer, nullable=False),
)

# The papers a citizen attaches to a dossier (dossiers.attachments; migration 0023): checked by
# their content (``content_type`` is what the bytes are, never what the client said), sealed by
# the vault (purpose ``dossier-attachment:<dossier id>``) with the SHA-256 of the plain content
# checked on every read. Added and deleted only while the dossier waits for papers, under the
# dossier's row lock, so the per-dossier limits hold under concurrent uploads.
ATTACHMENT_TYPES = ("application/pdf", "image/jpeg", "image/png")
dossier_attachments = sa.Table(
    "dossier_attachments", metadata,
    sa.Column("attachment_id", Id, primary_key=True, autoincrement=True),
    sa.Column("dossier_id", Id, sa.ForeignKey("dossiers.dossier_id"), nullable=False, index=True),
    sa.Column("kind", sa.String(60), nullable=False),  # the catalogue's attachment code
    sa.Column("filename", sa.String(200), nullable=False),  # as the citizen's device named it (NFC)
    sa.Column("content_type", sa.String(40), nullable=False),
    sa.Column("size", sa.Integer, nullable=False),  # bytes of the plain content
    sa.Column("sha256", sa.LargeBinary(32), nullable=False),  # of the plain content
    sa.Column("sealed", sa.LargeBinary, nullable=False),  # vault.seal(content, purpose)
    sa.Column("uploaded_by", sa.String(80), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.CheckConstraint(one_of("content_type", *ATTACHMENT_TYPES), name="content_type"),
    sa.CheckConstraint("size > 0", name="size"),
)
