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


def downgrade() -> None:
    with op.batch_alter_table('partners', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_partners_quota'), type_='check')
        batch_op.drop_column('kyc_consent_required')
        batch_op.drop_column('quota_per_day')
        batch_op.drop_column('area_code')
