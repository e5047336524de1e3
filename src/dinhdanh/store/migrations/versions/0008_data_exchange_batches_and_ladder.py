"""data exchange: batches over the API and the telco mismatch ladder

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 16:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

_id = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def _key(length: int):
    return sa.String(length=length).with_variant(sa.String(length=length, collation='C'), 'postgresql')


_states = "state = 'notified' OR state = 'one_way_locked' OR state = 'two_way_locked' OR state = 'terminated' OR state = 'cleared'"


def upgrade() -> None:
    op.create_table('match_batches',
    sa.Column('batch_id', _key(32), nullable=False),
    sa.Column('partner', _key(64), nullable=False),
    sa.Column('purpose', sa.String(length=40), nullable=False),
    sa.Column('input_format', sa.String(length=8), nullable=False),
    sa.Column('result_format', sa.String(length=8), nullable=False),
    sa.Column('input_size', sa.BigInteger(), nullable=False),
    sa.Column('input_sha256', _key(64), nullable=False),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('job_id', _id, nullable=True),
    sa.Column('rows_total', sa.BigInteger(), nullable=True),
    sa.Column('error', sa.String(length=500), nullable=True),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('lease_owner', sa.String(length=64), nullable=True),
    sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ladder_done', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status = 'queued' OR status = 'running' OR status = 'done' OR status = 'failed'", name=op.f('ck_match_batches_status')),
    sa.CheckConstraint("input_format = 'csv' OR input_format = 'parquet'", name=op.f('ck_match_batches_input_format')),
    sa.CheckConstraint("result_format = 'csv' OR result_format = 'parquet'", name=op.f('ck_match_batches_result_format')),
    sa.ForeignKeyConstraint(['job_id'], ['match_jobs.job_id'], name=op.f('fk_match_batches_job_id_match_jobs')),
    sa.PrimaryKeyConstraint('batch_id', name=op.f('pk_match_batches'))
    )
    op.create_index('ix_match_batches_partner_created_at', 'match_batches', ['partner', 'created_at'], unique=False)
    op.create_index('ix_match_batches_status', 'match_batches', ['status'], unique=False)
    op.create_table('subscriber_ladder',
    sa.Column('ladder_id', _id, autoincrement=True, nullable=False),
    sa.Column('partner', _key(64), nullable=False),
    sa.Column('msisdn', _key(20), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('outcome', sa.String(length=10), nullable=True),
    sa.Column('reason', sa.String(length=200), nullable=True),
    sa.Column('detected_on', sa.Date(), nullable=False),
    sa.Column('notify_by', sa.Date(), nullable=False),
    sa.Column('notified_on', sa.Date(), nullable=False),
    sa.Column('due_on', sa.Date(), nullable=True),
    sa.Column('changed_on', sa.Date(), nullable=False),
    sa.Column('last_job', _id, nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint(_states, name=op.f('ck_subscriber_ladder_state')),
    sa.PrimaryKeyConstraint('ladder_id', name=op.f('pk_subscriber_ladder')),
    sa.UniqueConstraint('partner', 'msisdn', name=op.f('uq_subscriber_ladder_partner_msisdn'))
    )
    op.create_index('ix_subscriber_ladder_state_due_on', 'subscriber_ladder', ['state', 'due_on'], unique=False)
    op.create_index('ix_subscriber_ladder_partner_state', 'subscriber_ladder', ['partner', 'state'], unique=False)
    op.create_table('subscriber_ladder_history',
    sa.Column('history_id', _id, autoincrement=True, nullable=False),
    sa.Column('ladder_id', _id, nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('effective_on', sa.Date(), nullable=False),
    sa.Column('cause', sa.String(length=120), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint(_states, name=op.f('ck_subscriber_ladder_history_state')),
    sa.ForeignKeyConstraint(['ladder_id'], ['subscriber_ladder.ladder_id'], name=op.f('fk_subscriber_ladder_history_ladder_id_subscriber_ladder')),
    sa.PrimaryKeyConstraint('history_id', name=op.f('pk_subscriber_ladder_history'))
    )
    op.create_index('ix_subscriber_ladder_history_ladder_id', 'subscriber_ladder_history', ['ladder_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_subscriber_ladder_history_ladder_id', table_name='subscriber_ladder_history')
    op.drop_table('subscriber_ladder_history')
    op.drop_index('ix_subscriber_ladder_partner_state', table_name='subscriber_ladder')
    op.drop_index('ix_subscriber_ladder_state_due_on', table_name='subscriber_ladder')
    op.drop_table('subscriber_ladder')
    op.drop_index('ix_match_batches_status', table_name='match_batches')
    op.drop_index('ix_match_batches_partner_created_at', table_name='match_batches')
    op.drop_table('match_batches')
