"""officers: roles and permissions, token expiry, e-ID accounts

(Filled in by the work on issue 11; until then a step with no change.)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 19:00:00
"""
from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # credentials first: its rebuild of ``officers`` (SQLite's batch mode) must not run while
    # ``officer_roles`` refers to it (foreign keys are enforced); the downgrade goes in reverse
    _credentials_upgrade()
    _roles_upgrade()


def downgrade() -> None:
    _roles_downgrade()
    _credentials_downgrade()


# --- roles and permissions (officers.permissions) -------------------------------------------------

def _roles_upgrade() -> None:
    """``officer_roles``: one row per grant of a role (officers.permissions.ROLES) to an officer, who
    gave it and when, and who withdrew it and when; at most one open grant per officer and role.
    Existing officers get no role: until an administrator grants them roles they can do nothing
    (fail closed), rather than keep the old "anyone may do anything"."""
    _id = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
    op.create_table(
        'officer_roles',
        sa.Column('grant_id', _id, autoincrement=True, nullable=False),
        sa.Column('officer_id', _id, nullable=False),
        sa.Column('role', sa.String(length=20), nullable=False),
        sa.Column('granted_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('granted_by', sa.String(length=60), nullable=False),
        sa.Column('withdrawn_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('withdrawn_by', sa.String(length=60), nullable=True),
        sa.ForeignKeyConstraint(['officer_id'], ['officers.officer_id'],
                                name=op.f('fk_officer_roles_officer_id_officers')),
        sa.PrimaryKeyConstraint('grant_id', name=op.f('pk_officer_roles')),
    )
    op.create_index('ix_officer_roles_officer_id', 'officer_roles', ['officer_id'], unique=False)
    op.create_index('uq_officer_roles_held', 'officer_roles', ['officer_id', 'role'], unique=True,
                    sqlite_where=sa.text('withdrawn_at IS NULL'), postgresql_where=sa.text('withdrawn_at IS NULL'))


def _roles_downgrade() -> None:
    op.drop_index('uq_officer_roles_held', table_name='officer_roles')
    op.drop_index('ix_officer_roles_officer_id', table_name='officer_roles')
    op.drop_table('officer_roles')


# --- credentials: machine tokens with an expiry, officers as e-ID account holders -----------------

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
_KEY64 = sa.String(length=64).with_variant(sa.String(length=64, collation='C'), 'postgresql')
_TOKEN_DAYS = 30  # what an existing token is given: officers.credentials.DEFAULT_DAYS at the upgrade


def _credentials_upgrade() -> None:
    """``officer_tokens`` (each token expires; an officer may hold several), the officer's e-ID
    account (``officers.account_id``) and ``officers.sign_in_not_before``, officer clients
    (``oidc_clients.officer``). Each existing ``officers.token_hash`` moves to ``officer_tokens``
    and expires 30 days after the upgrade; the column goes.

    ``officers`` is rebuilt (SQLite's batch mode) before ``officer_tokens`` exists: on SQLite a
    table that other rows reference cannot be rebuilt inside the migration's transaction (foreign
    keys are enforced). The tokens wait in memory meanwhile (one short row per officer)."""
    import datetime as dt

    conn = op.get_bind()
    officers = sa.table('officers', sa.column('officer_id', _ID), sa.column('token_hash', _KEY64),
                        sa.column('created_at', sa.DateTime(timezone=True)))
    existing = conn.execute(sa.select(officers.c.officer_id, officers.c.token_hash, officers.c.created_at)).all()
    with op.batch_alter_table('officers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('account_id', _ID, nullable=True))
        batch_op.add_column(sa.Column('sign_in_not_before', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_officers_account_id'), ['account_id'])
        batch_op.create_foreign_key(batch_op.f('fk_officers_account_id_eid_accounts'), 'eid_accounts',
                                    ['account_id'], ['account_id'])
        batch_op.drop_constraint(batch_op.f('uq_officers_token_hash'), type_='unique')
        batch_op.drop_column('token_hash')
    tokens = op.create_table(
        'officer_tokens',
        sa.Column('token_id', _ID, autoincrement=True, nullable=False),
        sa.Column('officer_id', _ID, nullable=False),
        sa.Column('token_hash', _KEY64, nullable=False),
        sa.Column('label', sa.String(length=100), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['officer_id'], ['officers.officer_id'],
                                name=op.f('fk_officer_tokens_officer_id_officers')),
        sa.PrimaryKeyConstraint('token_id', name=op.f('pk_officer_tokens')),
        sa.UniqueConstraint('token_hash', name=op.f('uq_officer_tokens_token_hash')),
    )
    op.create_index(op.f('ix_officer_tokens_officer_id'), 'officer_tokens', ['officer_id'], unique=False)
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(days=_TOKEN_DAYS)
    if existing:
        op.bulk_insert(tokens, [{'officer_id': r.officer_id, 'token_hash': r.token_hash, 'label': 'before expiry',
                                 'created_at': r.created_at, 'expires_at': expires} for r in existing])
    op.add_column('oidc_clients', sa.Column('officer', sa.Boolean(), server_default=sa.false(), nullable=False))


def _credentials_downgrade() -> None:
    """Each officer gets back one token that never expires: their newest live one (an officer with
    none gets a value no token hashes to, so nothing opens it). ``officer_tokens`` goes before
    ``officers`` is rebuilt (see the upgrade)."""
    import datetime as dt

    with op.batch_alter_table('oidc_clients', schema=None) as batch_op:
        batch_op.drop_column('officer')
    conn = op.get_bind()
    now = dt.datetime.now(dt.UTC)
    newest = dict(conn.execute(sa.text(
        "SELECT t.officer_id, t.token_hash FROM officer_tokens t WHERE t.revoked_at IS NULL AND t.expires_at > :now"
        " ORDER BY t.officer_id, t.expires_at, t.token_id").bindparams(
        sa.bindparam('now', now, sa.DateTime(timezone=True)))).all())  # the last of each officer wins
    op.drop_index(op.f('ix_officer_tokens_officer_id'), table_name='officer_tokens')
    op.drop_table('officer_tokens')
    with op.batch_alter_table('officers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('token_hash', _KEY64, nullable=True))
    officers = sa.table('officers', sa.column('officer_id', _ID), sa.column('token_hash', _KEY64))
    for officer_id in conn.execute(sa.select(officers.c.officer_id)).scalars().all():
        conn.execute(officers.update().where(officers.c.officer_id == officer_id)
                     .values(token_hash=newest.get(officer_id, f'none:{officer_id}')))
    with op.batch_alter_table('officers', schema=None) as batch_op:
        batch_op.alter_column('token_hash', existing_type=_KEY64, nullable=False)
        batch_op.create_unique_constraint(batch_op.f('uq_officers_token_hash'), ['token_hash'])
        batch_op.drop_constraint(batch_op.f('fk_officers_account_id_eid_accounts'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('uq_officers_account_id'), type_='unique')
        batch_op.drop_column('sign_in_not_before')
        batch_op.drop_column('account_id')
