"""data exchange: the partner registry

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 23:12:28.905268
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('partners',
    sa.Column('partner_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('client_id', sa.String(length=64).with_variant(sa.String(length=64, collation='C'), 'postgresql'), nullable=False),
    sa.Column('operations', sa.JSON(), nullable=False),
    sa.Column('fields', sa.JSON(), nullable=False),
    sa.Column('purposes', sa.JSON(), nullable=False),
    sa.Column('agreement', sa.String(length=100), nullable=True),
    sa.Column('legal_basis', sa.String(length=500), nullable=True),
    sa.Column('agreement_expires', sa.Date(), nullable=True),
    sa.Column('security_level', sa.SmallInteger(), nullable=True),
    sa.Column('state', sa.String(length=10), nullable=False),
    sa.Column('rate_per_minute', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=60), nullable=False),
    sa.Column('approved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('approved_by', sa.String(length=60), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind = 'ministry' OR kind = 'state_enterprise' OR kind = 'locality' OR kind = 'bank' OR kind = 'telco'", name=op.f('ck_partners_kind')),
    sa.CheckConstraint("state = 'pending' OR state = 'active' OR state = 'suspended'", name=op.f('ck_partners_state')),
    sa.CheckConstraint('rate_per_minute > 0', name=op.f('ck_partners_rate')),
    sa.ForeignKeyConstraint(['client_id'], ['oidc_clients.client_id'], name=op.f('fk_partners_client_id_oidc_clients')),
    sa.PrimaryKeyConstraint('partner_id', name=op.f('pk_partners')),
    sa.UniqueConstraint('client_id', name=op.f('uq_partners_client_id'))
    )


def downgrade() -> None:
    op.drop_table('partners')
