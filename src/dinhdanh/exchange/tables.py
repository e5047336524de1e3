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

# What happened to each partner's policy: who changed what, when, from what to what (the policy
# in force at any past moment can be read back from these).
PARTNER_EVENT_KINDS = ("added", "approved", "suspended", "policy")

partner_events = sa.Table(
    "partner_events", metadata,
    sa.Column("event_id", Id, primary_key=True, autoincrement=True),
    sa.Column("partner_id", Id, sa.ForeignKey("partners.partner_id"), nullable=False),
    sa.Column("kind", sa.String(10), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("actor", sa.String(60), nullable=False),
    sa.Column("changes", sa.JSON, nullable=False),  # {"field": {"old": ..., "new": ...}}
    sa.CheckConstraint(one_of("kind", *PARTNER_EVENT_KINDS), name="kind"),
    sa.Index("ix_partner_events_partner_id_event_id", "partner_id", "event_id"),
)

# Batches sent over the API (``exchange.batches``): the uploaded file under DINHDANH_HOME/var/batches,
# queued for a runner that claims it with a lease and runs ``matching.match_file`` (whose
# ``match_jobs`` row, linked by ``job_id``, holds the checkpoint and the counts). ``batch_id`` is an
# opaque random id: the one the partner sees.
BATCH_STATES = ("queued", "running", "done", "failed")

match_batches = sa.Table(
    "match_batches", metadata,
    sa.Column("batch_id", Key(32), primary_key=True),
    sa.Column("partner", Key(64), nullable=False),  # oidc_clients.client_id
    sa.Column("purpose", sa.String(40), nullable=False),
    sa.Column("input_format", sa.String(8), nullable=False),
    sa.Column("result_format", sa.String(8), nullable=False),
    sa.Column("input_size", sa.BigInteger, nullable=False),
    sa.Column("input_sha256", Key(64), nullable=False),  # of the whole file, computed as it streamed in
    sa.Column("status", sa.String(8), nullable=False),
    sa.Column("job_id", Id, sa.ForeignKey("match_jobs.job_id")),
    sa.Column("rows_total", sa.BigInteger),  # known once the runner has counted the rows
    sa.Column("error", sa.String(500)),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("lease_owner", sa.String(64)),
    sa.Column("lease_until", UTCDateTime),
    sa.Column("ladder_done", sa.Boolean, nullable=False, server_default=sa.false()),  # telco batches
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("finished_at", UTCDateTime),
    sa.CheckConstraint(one_of("status", *BATCH_STATES), name="status"),
    sa.CheckConstraint(one_of("input_format", "csv", "parquet"), name="input_format"),
    sa.CheckConstraint(one_of("result_format", "csv", "parquet"), name="result_format"),
    sa.Index("ix_match_batches_partner_created_at", "partner", "created_at"),
    sa.Index("ix_match_batches_status", "status"),
)

# The telcos' mismatch ladder (Decree 163/2024, domain s.7): one row per (telco, msisdn) whose
# subscriber data did not match the register, with the day of each step; every transition is a
# row of ``subscriber_ladder_history``. ``due_on`` is the day of the next step (none when cleared
# or terminated), what ``ladder.advance`` looks for.
LADDER_STATES = ("notified", "one_way_locked", "two_way_locked", "terminated", "cleared")

subscriber_ladder = sa.Table(
    "subscriber_ladder", metadata,
    sa.Column("ladder_id", Id, primary_key=True, autoincrement=True),
    sa.Column("partner", Key(64), nullable=False),  # the telco's client_id
    sa.Column("msisdn", Key(20), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("outcome", sa.String(10)),  # the batch outcome that started the ladder
    sa.Column("reason", sa.String(200)),
    sa.Column("detected_on", sa.Date, nullable=False),
    sa.Column("notify_by", sa.Date, nullable=False),
    sa.Column("notified_on", sa.Date, nullable=False),
    sa.Column("due_on", sa.Date),
    sa.Column("changed_on", sa.Date, nullable=False),
    sa.Column("last_job", Id),  # the match job that last started or cleared it (idempotent re-ingest)
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.CheckConstraint(one_of("state", *LADDER_STATES), name="state"),
    sa.UniqueConstraint("partner", "msisdn", name="uq_subscriber_ladder_partner_msisdn"),
    sa.Index("ix_subscriber_ladder_state_due_on", "state", "due_on"),
    sa.Index("ix_subscriber_ladder_partner_state", "partner", "state"),
)

subscriber_ladder_history = sa.Table(
    "subscriber_ladder_history", metadata,
    sa.Column("history_id", Id, primary_key=True, autoincrement=True),
    sa.Column("ladder_id", Id, sa.ForeignKey("subscriber_ladder.ladder_id"), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("effective_on", sa.Date, nullable=False),  # the day the step takes effect
    sa.Column("cause", sa.String(120), nullable=False),
    sa.Column("recorded_at", UTCDateTime, nullable=False),
    sa.CheckConstraint(one_of("state", *LADDER_STATES), name="state"),
    sa.Index("ix_subscriber_ladder_history_ladder_id", "ladder_id"),
)

# Partners' rate limits and daily quotas when there is no Redis (``exchange.limits.DatabaseLimiter``):
# a token bucket per key, and a counter per key and Vietnam day (its end, Unix seconds). Each is
# changed by one statement (an upsert with RETURNING), so concurrent requests and several processes
# share them exactly and a restart keeps them; past days are swept.
limit_buckets = sa.Table(
    "limit_buckets", metadata,
    sa.Column("key", Key(200), primary_key=True),
    sa.Column("tokens", sa.Double, nullable=False),
    sa.Column("at", sa.Double, nullable=False),  # Unix seconds of the last refill
    sa.Column("granted", sa.Boolean, nullable=False),  # whether the last take got a token
    sa.Index("ix_limit_buckets_at", "at"),
)

limit_counters = sa.Table(
    "limit_counters", metadata,
    sa.Column("key", Key(200), primary_key=True),
    sa.Column("window_end", sa.BigInteger, primary_key=True),  # Unix seconds: the next midnight in Hanoi
    sa.Column("hits", sa.BigInteger, nullable=False),
    sa.Index("ix_limit_counters_window_end", "window_end"),
)
