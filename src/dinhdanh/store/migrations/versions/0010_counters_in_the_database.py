"""counters in the database: partners' rate limits and daily quotas without Redis

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 10:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def _key(length: int):
    return sa.String(length=length).with_variant(sa.String(length=length, collation='C'), 'postgresql')


def upgrade() -> None:
    op.create_table('limit_buckets',
    sa.Column('key', _key(200), nullable=False),
    sa.Column('tokens', sa.Double(), nullable=False),
    sa.Column('at', sa.Double(), nullable=False),
    sa.Column('granted', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_limit_buckets'))
    )
    op.create_index('ix_limit_buckets_at', 'limit_buckets', ['at'], unique=False)
    op.create_table('limit_counters',
    sa.Column('key', _key(200), nullable=False),
    sa.Column('window_end', sa.BigInteger(), nullable=False),
    sa.Column('hits', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('key', 'window_end', name=op.f('pk_limit_counters'))
    )
    op.create_index('ix_limit_counters_window_end', 'limit_counters', ['window_end'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_limit_counters_window_end', table_name='limit_counters')
    op.drop_table('limit_counters')
    op.drop_index('ix_limit_buckets_at', table_name='limit_buckets')
    op.drop_table('limit_buckets')
