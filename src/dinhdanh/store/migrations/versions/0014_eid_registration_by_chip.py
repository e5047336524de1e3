"""e-ID registration by chip: challenges and checks

The Active Authentication challenges of a registration by chip card (``eid_registration_challenges``,
see ``eid.chip_registration``). The typed registration's attempt limits live in the partners' limit
tables (``limit_counters``, 0010). Both paths write their checks to the access log, whose ``action``
grows from 20 to 30 characters for ``eid_registration_check``: on PostgreSQL only, where widening a
varchar changes the catalogue and rewrites nothing; SQLite does not enforce a varchar's length, and
rebuilding the whole access log there for a declaration would cost a copy of every entry.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05 19:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('eid_registration_challenges',
    sa.Column('challenge_id_hash', sa.String(length=64).with_variant(sa.String(length=64, collation='C'), 'postgresql'), nullable=False),
    sa.Column('challenge', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('challenge_id_hash', name=op.f('pk_eid_registration_challenges'))
    )
    with op.batch_alter_table('eid_registration_challenges', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_eid_registration_challenges_expires_at'), ['expires_at'], unique=False)
    if op.get_bind().dialect.name == 'postgresql':
        op.alter_column('access_log', 'action', existing_type=sa.String(length=20), type_=sa.String(length=30),
                        existing_nullable=False)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == 'postgresql':
        # the log's entries are never rewritten (their leaf hashes cover the action): once a
        # registration check is logged, the column stays wide enough for it
        if bind.execute(sa.text("SELECT 1 FROM access_log WHERE length(action) > 20 LIMIT 1")).first() is None:
            op.alter_column('access_log', 'action', existing_type=sa.String(length=30), type_=sa.String(length=20),
                            existing_nullable=False)
    with op.batch_alter_table('eid_registration_challenges', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_eid_registration_challenges_expires_at'))

    op.drop_table('eid_registration_challenges')
