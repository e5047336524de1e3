import sqlalchemy as sa

from dinhdanh.store.base import Id, Key, UTCDateTime, metadata, one_of

officers = sa.Table(
    "officers", metadata,
    sa.Column("officer_id", Id, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("role", sa.String(10), nullable=False),  # national / province / commune
    sa.Column("area_code", Key(5)),  # province (2 digits) or commune (5 digits); none if national
    # the agency the officer works for (the catalogue's agency codes, e.g. cong-an-xa, ubnd-xa, bhxh):
    # dossiers are decided by their own agency's officers; none = the area's one-stop shop, every agency
    sa.Column("agency_code", sa.String(40)),
    # the officer's own e-ID account (officers sign in through the provider, officers.credentials)
    sa.Column("account_id", Id, sa.ForeignKey("eid_accounts.account_id"), unique=True),
    # provider tokens issued before this are refused (``dinhdanh officer revoke``: every credential)
    sa.Column("sign_in_not_before", UTCDateTime),
    sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.CheckConstraint(one_of("role", "national", "province", "commune"), name="role"),
)

# Machine tokens for officers' systems (officers.credentials): 256-bit random strings shown once,
# stored as their SHA-256; each expires (30 days by default) and can be revoked one by one, so a
# rotated system's old and new token may overlap for a few minutes.
officer_tokens = sa.Table(
    "officer_tokens", metadata,
    sa.Column("token_id", Id, primary_key=True, autoincrement=True),
    sa.Column("officer_id", Id, sa.ForeignKey("officers.officer_id"), nullable=False, index=True),
    sa.Column("token_hash", Key(64), nullable=False, unique=True),
    sa.Column("label", sa.String(100)),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("revoked_at", UTCDateTime),
    sa.Column("last_used_at", UTCDateTime),  # written at most once a minute
)

# Roles held by officers (officers.permissions.ROLES): one row per grant, kept when withdrawn, so
# who gave and who took back each role, and when, stays on record. An officer holds a role at most
# once at a time (the partial unique index: one open grant per officer and role).
officer_roles = sa.Table(
    "officer_roles", metadata,
    sa.Column("grant_id", Id, primary_key=True, autoincrement=True),
    sa.Column("officer_id", Id, sa.ForeignKey("officers.officer_id"), nullable=False),
    sa.Column("role", sa.String(20), nullable=False),
    sa.Column("granted_at", UTCDateTime, nullable=False),
    sa.Column("granted_by", sa.String(60), nullable=False),
    sa.Column("withdrawn_at", UTCDateTime),
    sa.Column("withdrawn_by", sa.String(60)),
    sa.Index("ix_officer_roles_officer_id", "officer_id"),
    sa.Index("uq_officer_roles_held", "officer_id", "role", unique=True,
             sqlite_where=sa.text("withdrawn_at IS NULL"), postgresql_where=sa.text("withdrawn_at IS NULL")),
)
