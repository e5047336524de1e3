"""data exchange: partner policy, quotas and e-KYC

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 16:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('partners', schema=None) as batch_op:
        batch_op.add_column(sa.Column('area_code', sa.String(length=5).with_variant(sa.String(length=5, collation='C'), 'postgresql'), nullable=True))
        batch_op.add_column(sa.Column('quota_per_day', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('kyc_consent_required', sa.Boolean(), server_default=sa.true(), nullable=False))
        batch_op.create_check_constraint(batch_op.f('ck_partners_quota'), 'quota_per_day IS NULL OR quota_per_day > 0')
    op.create_table('partner_events',
    sa.Column('event_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('partner_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=60), nullable=False),
    sa.Column('changes', sa.JSON(), nullable=False),
    sa.CheckConstraint("kind = 'added' OR kind = 'approved' OR kind = 'suspended' OR kind = 'policy'", name=op.f('ck_partner_events_kind')),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.partner_id'], name=op.f('fk_partner_events_partner_id_partners')),
    sa.PrimaryKeyConstraint('event_id', name=op.f('pk_partner_events'))
    )
    with op.batch_alter_table('partner_events', schema=None) as batch_op:
        batch_op.create_index('ix_partner_events_partner_id_event_id', ['partner_id', 'event_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('partner_events', schema=None) as batch_op:
        batch_op.drop_index('ix_partner_events_partner_id_event_id')
    op.drop_table('partner_events')
    with op.batch_alter_table('partners', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_partners_quota'), type_='check')
        batch_op.drop_column('kyc_consent_required')
        batch_op.drop_column('quota_per_day')
        batch_op.drop_column('area_code')
