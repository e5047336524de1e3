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
