"""fees and payments: payments of payable references through the gateway, and their events

``payments``: one row per attempt to pay a reference (a dossier's code), its status moved by
conditional UPDATEs only; at most one pending and one paid attempt per reference (partial unique
indexes). ``payment_events``: every verified callback, transaction query, refund and transition.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06 09:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
KEY32 = sa.String(length=32).with_variant(sa.String(length=32, collation='C'), 'postgresql')
STATUSES = ("status = 'pending' OR status = 'paid' OR status = 'failed' OR status = 'cancelled' OR "
            "status = 'refunded' OR status = 'expired'")
KINDS = "kind = 'created' OR kind = 'ipn' OR kind = 'querydr' OR kind = 'refund' OR kind = 'expired'"
PENDING = "status = 'pending'"
PAID = "status = 'paid'"


def upgrade() -> None:
    op.create_table('payments',
    sa.Column('payment_id', ID, autoincrement=True, nullable=False),
    sa.Column('reference', sa.String(length=60), nullable=False),
    sa.Column('txn_ref', KEY32, nullable=False),
    sa.Column('gateway', sa.String(length=20), nullable=False),
    sa.Column('amount_vnd', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('order_info', sa.String(length=255), nullable=False),
    sa.Column('create_date', sa.String(length=14), nullable=False),
    sa.Column('pay_url', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('gateway_txn_no', sa.String(length=20), nullable=True),
    sa.Column('bank_code', sa.String(length=20), nullable=True),
    sa.Column('card_type', sa.String(length=20), nullable=True),
    sa.Column('response_code', sa.String(length=2), nullable=True),
    sa.Column('transaction_status', sa.String(length=2), nullable=True),
    sa.Column('pay_date', sa.DateTime(timezone=True), nullable=True),
    sa.Column('paid_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('refunded_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('refund_reason', sa.String(length=500), nullable=True),
    sa.Column('callback', sa.Text(), nullable=True),
    sa.CheckConstraint(STATUSES, name=op.f('ck_payments_status')),
    sa.CheckConstraint("gateway = 'vnpay'", name=op.f('ck_payments_gateway')),
    sa.CheckConstraint("currency = 'VND'", name=op.f('ck_payments_currency')),
    sa.CheckConstraint('amount_vnd > 0', name=op.f('ck_payments_amount')),
    sa.PrimaryKeyConstraint('payment_id', name=op.f('pk_payments')),
    sa.UniqueConstraint('txn_ref', name=op.f('uq_payments_txn_ref'))
    )
    op.create_index(op.f('ix_payments_reference'), 'payments', ['reference'], unique=False)
    op.create_index('ix_payments_status_created_at', 'payments', ['status', 'created_at'], unique=False)
    op.create_index('uq_payments_pending_reference', 'payments', ['reference'], unique=True,
                    sqlite_where=sa.text(PENDING), postgresql_where=sa.text(PENDING))
    op.create_index('uq_payments_paid_reference', 'payments', ['reference'], unique=True,
                    sqlite_where=sa.text(PAID), postgresql_where=sa.text(PAID))
    op.create_table('payment_events',
    sa.Column('event_id', ID, autoincrement=True, nullable=False),
    sa.Column('payment_id', ID, nullable=True),
    sa.Column('txn_ref', sa.String(length=100), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('answer', sa.String(length=2), nullable=True),
    sa.Column('from_status', sa.String(length=10), nullable=True),
    sa.Column('to_status', sa.String(length=10), nullable=True),
    sa.Column('actor', sa.String(length=60), nullable=False),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.CheckConstraint(KINDS, name=op.f('ck_payment_events_kind')),
    sa.ForeignKeyConstraint(['payment_id'], ['payments.payment_id'],
                            name=op.f('fk_payment_events_payment_id_payments')),
    sa.PrimaryKeyConstraint('event_id', name=op.f('pk_payment_events'))
    )
    op.create_index(op.f('ix_payment_events_payment_id'), 'payment_events', ['payment_id'], unique=False)
    op.create_index(op.f('ix_payment_events_txn_ref'), 'payment_events', ['txn_ref'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_payment_events_txn_ref'), table_name='payment_events')
    op.drop_index(op.f('ix_payment_events_payment_id'), table_name='payment_events')
    op.drop_table('payment_events')
    op.drop_index('uq_payments_paid_reference', table_name='payments')
    op.drop_index('uq_payments_pending_reference', table_name='payments')
    op.drop_index('ix_payments_status_created_at', table_name='payments')
    op.drop_index(op.f('ix_payments_reference'), table_name='payments')
    op.drop_table('payments')
