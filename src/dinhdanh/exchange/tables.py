"""Tables of the data exchange: batch matching jobs.

One ``match_jobs`` row per batch a partner sends: who (the partner's client id), why (the
purpose), what (the input file by path, size and a digest of its first megabyte; the output),
how far (rows done, in whole chunks) and what came out (counts per outcome). It is both the
checkpoint a re-run resumes from and the audit record of the batch.
"""

import sqlalchemy as sa

from dinhdanh.store.base import Id, Key, UTCDateTime, metadata, one_of

match_jobs = sa.Table(
    "match_jobs", metadata,
    sa.Column("job_id", Id, primary_key=True, autoincrement=True),
    sa.Column("partner", sa.String(64), nullable=False),  # oidc_clients.client_id
    sa.Column("purpose", sa.String(40), nullable=False),
    sa.Column("input_path", sa.String(500), nullable=False),
    sa.Column("input_size", sa.BigInteger, nullable=False),
    sa.Column("input_sha256", Key(64), nullable=False),  # of the first MiB
    sa.Column("output_path", sa.String(500), nullable=False),
    sa.Column("chunk_rows", sa.Integer, nullable=False),
    sa.Column("snapshot", Key(64)),  # fingerprint of the register state matched against
    sa.Column("rows_total", sa.BigInteger),
    sa.Column("rows_done", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("matched", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("mismatched", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("not_found", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("invalid", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("status", sa.String(8), nullable=False),
    sa.Column("actor", sa.String(60), nullable=False),  # who ran the command
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("finished_at", UTCDateTime),
    sa.CheckConstraint(one_of("status", "running", "done", "failed"), name="status"),
    sa.Index("ix_match_jobs_partner_started_at", "partner", "started_at"),
    sa.Index("ix_match_jobs_input_sha256", "input_sha256"),
)

# The partner registry: who may use which exchange operation, on which fields, for which purposes,
# under which agreement (domain s.7). One partner per OAuth client of the OpenID provider.
PARTNER_KINDS = ("ministry", "state_enterprise", "locality", "bank", "telco")
PARTNER_STATES = ("pending", "active", "suspended")

partners = sa.Table(
    "partners", metadata,
    sa.Column("partner_id", Id, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("client_id", Key(64), sa.ForeignKey("oidc_clients.client_id"), nullable=False, unique=True),
    sa.Column("operations", sa.JSON, nullable=False),  # subset of verify, kyc, batch, subscribe
    sa.Column("fields", sa.JSON, nullable=False),  # the register fields it may check
    sa.Column("purposes", sa.JSON, nullable=False),  # purpose codes; the first is the default
    sa.Column("agreement", sa.String(100)),
    sa.Column("legal_basis", sa.String(500)),
    sa.Column("agreement_expires", sa.Date),
    sa.Column("security_level", sa.SmallInteger),
    sa.Column("state", sa.String(10), nullable=False),
    sa.Column("rate_per_minute", sa.Integer, nullable=False),
    # The part of the country the partner serves: a province (2 digits) or commune (5 digits) code
    # of 2025, as for officers (registry.area); none for a national partner.
    sa.Column("area_code", Key(5)),
    sa.Column("quota_per_day", sa.Integer),  # requests a day over all operations; none: no quota
    # e-KYC answers only with the citizen's consent to this partner (off only where a law gives
    # the partner the data without consent, with the legal basis on record).
    sa.Column("kyc_consent_required", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("created_by", sa.String(60), nullable=False),
    sa.Column("approved_at", UTCDateTime),
    sa.Column("approved_by", sa.String(60)),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.CheckConstraint(one_of("kind", *PARTNER_KINDS), name="kind"),
    sa.CheckConstraint(one_of("state", *PARTNER_STATES), name="state"),
    sa.CheckConstraint("rate_per_minute > 0", name="rate"),
    sa.CheckConstraint("quota_per_day IS NULL OR quota_per_day > 0", name="quota"),
)
