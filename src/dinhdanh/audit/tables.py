import sqlalchemy as sa

from dinhdanh.store.base import Id, Key, UTCDateTime, metadata

# Every read of a person's data. An entry is written (unsequenced: no leaf_index) in the same
# transaction as the read it records; the sequencer (audit.sequencer) later gives it its place in
# the Merkle tree (leaf_index), a random salt and its RFC 9162 leaf hash (audit.leaves). Readers
# never touch a shared row: appending is one insert.
access_log = sa.Table(
    "access_log", metadata,
    sa.Column("access_id", Id, primary_key=True, autoincrement=True),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("actor", sa.String(60), nullable=False),  # "officer:12", "cli:user", "partner:<client_id>"
    sa.Column("person_id", Id, sa.ForeignKey("persons.person_id"), nullable=False),
    sa.Column("action", sa.String(30), nullable=False),  # read / search / history / eid_registration_check
    sa.Column("purpose", sa.String(40), nullable=False),
    sa.Column("fields", sa.Text),  # JSON list of the fields read; NULL = the whole record / not stated
    sa.Column("outcome", sa.String(20), nullable=False, server_default="ok"),  # ok / refused / ...
    sa.Column("leaf_index", sa.BigInteger),  # NULL until sequenced; unique
    sa.Column("salt", sa.LargeBinary(16)),
    sa.Column("leaf_hash", sa.LargeBinary(32)),
    sa.Index("ix_access_log_person_id_access_id", "person_id", "access_id"),  # a person's entries, newest first
    # unique among the sequenced; an entry goes in without one, so the index holds only those that have it
    sa.Index("uq_access_log_leaf_index", "leaf_index", unique=True, sqlite_where=sa.text("leaf_index IS NOT NULL"),
             postgresql_where=sa.text("leaf_index IS NOT NULL")),
    # what the sequencer reads: the unsequenced entries, in order (a small partial index)
    sa.Index("ix_access_log_unsequenced", "access_id", sqlite_where=sa.text("leaf_index IS NULL"),
             postgresql_where=sa.text("leaf_index IS NULL")),
)

# The tree above the leaves, in tiles (as Go's tlog and Sunlight keep it): the tile (level L,
# index t) holds the hashes of the complete subtrees of height 8L at indexes 256t .. 256t+255, as
# concatenated 32-byte hashes (the last tile of a level grows until it holds 256). Level 0 is not
# stored: the leaf hashes are in access_log. Any node of any tree size is a tile lookup plus at
# most 255 hashes.
audit_tiles = sa.Table(
    "audit_tiles", metadata,
    sa.Column("level", sa.SmallInteger, primary_key=True, autoincrement=False),
    sa.Column("idx", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("hashes", sa.LargeBinary, nullable=False),
)

# Every signed tree head the sequencer made (RFC 9162 s4.10 in spirit): size, root, time (ms since
# the epoch) and a compact JWS over the three (audit.heads). The newest is the log's head.
audit_tree_heads = sa.Table(
    "audit_tree_heads", metadata,
    sa.Column("tree_size", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("root_hash", sa.LargeBinary(32), nullable=False),
    sa.Column("timestamp", sa.BigInteger, nullable=False),
    sa.Column("signature", sa.Text, nullable=False),
)

# The one sequencer: whoever holds the lease integrates; the row is locked by each integration, so
# even a holder whose lease ran out meanwhile cannot fork the tree.
audit_sequencer = sa.Table(
    "audit_sequencer", metadata,
    sa.Column("id", sa.SmallInteger, primary_key=True, autoincrement=False),
    sa.Column("holder", sa.String(100)),
    sa.Column("lease_until", UTCDateTime),
    sa.CheckConstraint("id = 1", name="one_row"),
)

# The log's signing keys (ES256), sealed by the vault. One signs; older ones stay, public, so that a
# head saved years ago can still be checked (GET /api/v1/audit/keys).
audit_keys = sa.Table(
    "audit_keys", metadata,
    sa.Column("kid", Key(64), primary_key=True),
    sa.Column("public_jwk", sa.JSON, nullable=False),
    sa.Column("sealed", sa.LargeBinary, nullable=False),  # purpose audit-log-key
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)
