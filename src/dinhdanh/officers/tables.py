import sqlalchemy as sa

from dinhdanh.store.base import Id, Key, UTCDateTime, metadata, one_of

officers = sa.Table(
    "officers", metadata,
    sa.Column("officer_id", Id, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("role", sa.String(10), nullable=False),  # national / province / commune
    sa.Column("area_code", Key(5)),  # province (2 digits) or commune (5 digits); none if national
    sa.Column("token_hash", Key(64), nullable=False, unique=True),  # SHA-256 of the API token
    sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.CheckConstraint(one_of("role", "national", "province", "commune"), name="role"),
)
