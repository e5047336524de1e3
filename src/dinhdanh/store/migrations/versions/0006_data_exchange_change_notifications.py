"""data exchange: change notifications (follow lists, subscriptions, webhooks, feed)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 16:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('follows',
    sa.Column('follow_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('client_id', sa.String(length=64).with_variant(sa.String(length=64, collation='C'), 'postgresql'), nullable=False),
    sa.Column('person_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['person_id'], ['persons.person_id'], name=op.f('fk_follows_person_id_persons')),
    sa.PrimaryKeyConstraint('follow_id', name=op.f('pk_follows')),
    sa.UniqueConstraint('client_id', 'person_id', name=op.f('uq_follows_client_id_person_id'))
    )
    op.create_index('ix_follows_person_id', 'follows', ['person_id'], unique=False)
    op.create_table('subscriptions',
    sa.Column('subscription_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('client_id', sa.String(length=64).with_variant(sa.String(length=64, collation='C'), 'postgresql'), nullable=False),
    sa.Column('kinds', sa.JSON(), nullable=False),
    sa.Column('scope', sa.String(length=8), nullable=False),
    sa.Column('area_code', sa.String(length=5).with_variant(sa.String(length=5, collation='C'), 'postgresql'), nullable=True),
    sa.Column('webhook_url', sa.String(length=500), nullable=True),
    sa.Column('secret_sealed', sa.LargeBinary(), nullable=True),
    sa.Column('state', sa.String(length=8), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('disabled_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("scope = 'follows' OR scope = 'area'", name=op.f('ck_subscriptions_scope')),
    sa.CheckConstraint("state = 'active' OR state = 'disabled'", name=op.f('ck_subscriptions_state')),
    sa.PrimaryKeyConstraint('subscription_id', name=op.f('pk_subscriptions'))
    )
    op.create_index('ix_subscriptions_client_id', 'subscriptions', ['client_id'], unique=False)
    op.create_table('change_deliveries',
    sa.Column('delivery_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('client_id', sa.String(length=64).with_variant(sa.String(length=64, collation='C'), 'postgresql'), nullable=False),
    sa.Column('subscription_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('topic', sa.String(length=40), nullable=False),
    sa.Column('person_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=9), nullable=False),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.String(length=200), nullable=True),
    sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status = 'pending' OR status = 'delivered' OR status = 'dead' OR status = 'feed'", name=op.f('ck_change_deliveries_status')),
    sa.ForeignKeyConstraint(['subscription_id'], ['subscriptions.subscription_id'], name=op.f('fk_change_deliveries_subscription_id_subscriptions')),
    sa.PrimaryKeyConstraint('delivery_id', name=op.f('pk_change_deliveries')),
    sa.UniqueConstraint('subscription_id', 'seq', name=op.f('uq_change_deliveries_subscription_id_seq'))
    )
    op.create_index('ix_change_deliveries_client_id_seq', 'change_deliveries', ['client_id', 'seq'], unique=False)
    op.create_index('ix_change_deliveries_status_next_attempt_at', 'change_deliveries', ['status', 'next_attempt_at'], unique=False)
    op.create_index('ix_change_deliveries_subscription_id_person_id_seq', 'change_deliveries', ['subscription_id', 'person_id', 'seq'], unique=False)
    op.create_table('change_cursors',
    sa.Column('name', sa.String(length=40), nullable=False),
    sa.Column('last_seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), server_default='0', nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_change_cursors'))
    )


def downgrade() -> None:
    op.drop_table('change_cursors')
    op.drop_index('ix_change_deliveries_subscription_id_person_id_seq', table_name='change_deliveries')
    op.drop_index('ix_change_deliveries_status_next_attempt_at', table_name='change_deliveries')
    op.drop_index('ix_change_deliveries_client_id_seq', table_name='change_deliveries')
    op.drop_table('change_deliveries')
    op.drop_index('ix_subscriptions_client_id', table_name='subscriptions')
    op.drop_table('subscriptions')
    op.drop_index('ix_follows_person_id', table_name='follows')
    op.drop_table('follows')
