"""access tokens found by their time-ordered jti; the token-hash index for refresh tokens only

``oidc_tokens``: the unique index of ``token_hash`` over every token becomes a partial one over
refresh tokens (opaque, found by their hash); access tokens are found by ``jti`` (a new unique
index), which the JWT carries and which is now time-ordered (``tokens.new_jti``); the indexes of
``account_id`` and ``family_id`` cover only the rows where they are set. Every row written by the
token endpoint went to random leaf pages of the hash index; it now goes to the ends of indexes.

Existing rows: their ``jti`` values are random and distinct (256 bits); the access tokens they
belong to are found by that ``jti`` as any other.

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-07 14:30:00
"""
import sqlalchemy as sa
from alembic import op


revision = '0028'
down_revision = '0027'
branch_labels = None
depends_on = None

# (name, column, unique, where), as in dinhdanh.oidc.tables at this revision
PARTIAL = (
    ("uq_oidc_tokens_refresh_hash", "token_hash", True, "kind = 'refresh'"),
    ("ix_oidc_tokens_account_id", "account_id", False, "account_id IS NOT NULL"),
    ("ix_oidc_tokens_family_id", "family_id", False, "family_id IS NOT NULL"),
)


def upgrade() -> None:
    with op.batch_alter_table('oidc_tokens', schema=None) as batch_op:
        batch_op.drop_index('ix_oidc_tokens_family_id')
        batch_op.drop_index('ix_oidc_tokens_account_id')
        batch_op.drop_constraint('uq_oidc_tokens_token_hash', type_='unique')
    op.create_index('ix_oidc_tokens_jti', 'oidc_tokens', ['jti'], unique=True)
    for name, column, unique, where in PARTIAL:
        op.create_index(name, 'oidc_tokens', [column], unique=unique,
                        sqlite_where=sa.text(where), postgresql_where=sa.text(where))


def downgrade() -> None:
    for name, *_ in reversed(PARTIAL):
        op.drop_index(name, table_name='oidc_tokens')
    op.drop_index('ix_oidc_tokens_jti', table_name='oidc_tokens')
    with op.batch_alter_table('oidc_tokens', schema=None) as batch_op:
        batch_op.create_unique_constraint('uq_oidc_tokens_token_hash', ['token_hash'])
        batch_op.create_index('ix_oidc_tokens_account_id', ['account_id'], unique=False)
        batch_op.create_index('ix_oidc_tokens_family_id', ['family_id'], unique=False)
