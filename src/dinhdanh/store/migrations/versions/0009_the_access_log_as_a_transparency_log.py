"""the access log as an RFC 9162 transparency log: unsequenced entries, tiles, signed heads, a sequencer lease

The hash chain (prev_hash, hash, audit_chain_head) is dropped: its single head row serialised every
audited read in the country, and under concurrency it forked. Every existing entry becomes
unsequenced and the sequencer integrates them, in access_id order, into the Merkle tree the first
time it runs (``dinhdanh serve``, or ``dinhdanh audit sequence``).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 10:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def _key(length: int):
    return sa.String(length=length).with_variant(sa.String(length=length, collation='C'), 'postgresql')


def upgrade() -> None:
    with op.batch_alter_table('access_log', schema=None) as batch_op:
        batch_op.drop_column('hash')
        batch_op.drop_column('prev_hash')
        batch_op.add_column(sa.Column('leaf_index', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('salt', sa.LargeBinary(length=16), nullable=True))
        batch_op.add_column(sa.Column('leaf_hash', sa.LargeBinary(length=32), nullable=True))
        batch_op.create_index('uq_access_log_leaf_index', ['leaf_index'], unique=True)
        batch_op.create_index('ix_access_log_unsequenced', ['access_id'], unique=False,
                              sqlite_where=sa.text('leaf_index IS NULL'),
                              postgresql_where=sa.text('leaf_index IS NULL'))
    op.drop_table('audit_chain_head')
    op.create_table('audit_tiles',
    sa.Column('level', sa.SmallInteger(), autoincrement=False, nullable=False),
    sa.Column('idx', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('hashes', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('level', 'idx', name=op.f('pk_audit_tiles'))
    )
    op.create_table('audit_tree_heads',
    sa.Column('tree_size', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('root_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('timestamp', sa.BigInteger(), nullable=False),
    sa.Column('signature', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('tree_size', name=op.f('pk_audit_tree_heads'))
    )
    sequencer = op.create_table('audit_sequencer',
    sa.Column('id', sa.SmallInteger(), autoincrement=False, nullable=False),
    sa.Column('holder', sa.String(length=100), nullable=True),
    sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint('id = 1', name=op.f('ck_audit_sequencer_one_row')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_sequencer'))
    )
    op.bulk_insert(sequencer, [{"id": 1, "holder": None, "lease_until": None}])
    op.create_table('audit_keys',
    sa.Column('kid', _key(64), nullable=False),
    sa.Column('public_jwk', sa.JSON(), nullable=False),
    sa.Column('sealed', sa.LargeBinary(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('kid', name=op.f('pk_audit_keys'))
    )


def downgrade() -> None:
    op.drop_table('audit_keys')
    op.drop_table('audit_sequencer')
    op.drop_table('audit_tree_heads')
    op.drop_table('audit_tiles')
    op.create_table('audit_chain_head',
    sa.Column('id', sa.SmallInteger(), autoincrement=False, nullable=False),
    sa.Column('last_access_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('last_hash', _key(64), nullable=False),
    sa.CheckConstraint('id = 1', name=op.f('ck_audit_chain_head_one_row')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_chain_head'))
    )
    with op.batch_alter_table('access_log', schema=None) as batch_op:
        batch_op.drop_index('ix_access_log_unsequenced')
        batch_op.drop_index('uq_access_log_leaf_index')
        batch_op.drop_column('leaf_hash')
        batch_op.drop_column('salt')
        batch_op.drop_column('leaf_index')
        batch_op.add_column(sa.Column('prev_hash', _key(64), nullable=True))
        batch_op.add_column(sa.Column('hash', _key(64), nullable=True))
