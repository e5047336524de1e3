import sqlalchemy as sa

from dinhdanh.store.base import Id, Key, UTCDateTime, metadata

# Every read of a person's data, hash-chained (see audit.chain): each entry's ``hash`` covers its
# fields and ``prev_hash``, the ``hash`` of the entry before it (a fixed genesis value for the first).
access_log = sa.Table(
    "access_log", metadata,
    sa.Column("access_id", Id, primary_key=True, autoincrement=True),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("actor", sa.String(60), nullable=False),  # "officer:12", "cli:user", "partner:<client_id>"
    sa.Column("person_id", Id, sa.ForeignKey("persons.person_id"), nullable=False),
    sa.Column("action", sa.String(20), nullable=False),  # read / search / history / event
    sa.Column("purpose", sa.String(40), nullable=False),
    sa.Column("fields", sa.Text),  # JSON list of the fields read; NULL = the whole record / not stated
    sa.Column("outcome", sa.String(20), nullable=False, server_default="ok"),  # ok / refused / ...
    # nullable only so that the column can be added to a filled table; every entry written has both
    sa.Column("prev_hash", Key(64)),
    sa.Column("hash", Key(64)),
    sa.Index("ix_access_log_person_id_at", "person_id", "at"),
)

# The chain's last link, one row (id 1): locked FOR UPDATE by each append so that appends are
# serialised, and checked by ``audit verify`` (catches deleted entries at the tail).
audit_chain_head = sa.Table(
    "audit_chain_head", metadata,
    sa.Column("id", sa.SmallInteger, primary_key=True, autoincrement=False),
    sa.Column("last_access_id", Id, nullable=False),
    sa.Column("last_hash", Key(64), nullable=False),
    sa.CheckConstraint("id = 1", name="one_row"),
)
