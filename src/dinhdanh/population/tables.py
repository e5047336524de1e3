import sqlalchemy as sa

from dinhdanh.store.base import Id, Key, UTCDateTime, metadata

import_jobs = sa.Table(
    "import_jobs", metadata,
    sa.Column("job_id", Id, primary_key=True, autoincrement=True),
    sa.Column("source_sha256", Key(64), nullable=False, unique=True),
    sa.Column("source_name", sa.String(300), nullable=False),
    sa.Column("rows_done", sa.BigInteger, nullable=False, server_default="0"),  # resume point
    sa.Column("loaded", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("rejected", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("skipped", sa.BigInteger, nullable=False, server_default="0"),  # already in the register
    sa.Column("status", sa.String(10), nullable=False),  # running / done
    sa.Column("rejects_path", sa.String(300)),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("finished_at", UTCDateTime),
)

# Links to relatives not yet loaded when their row was (a child listed before a parent): resolved
# as soon as the relative arrives and at the end of the job; kept in the database so a resumed
# import still resolves them.
import_links = sa.Table(
    "import_links", metadata,
    sa.Column("job_id", Id, sa.ForeignKey("import_jobs.job_id"), nullable=False),
    sa.Column("person_id", Id, nullable=False),
    sa.Column("relation", sa.String(10), nullable=False),  # father / mother / spouse
    sa.Column("relative_pid", Key(12), nullable=False),
    sa.Index("ix_import_links_job_id", "job_id"),
)
