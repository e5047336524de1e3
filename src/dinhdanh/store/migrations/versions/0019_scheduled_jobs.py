"""the durable scheduler: scheduled_jobs

``scheduled_jobs``: one row per timer (deadline, automatic refusal, reminder), unique by
``(kind, key)``, claimed with a lease by ``dinhdanh.scheduler.jobs.run_due`` (issue 12).

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06 00:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
STATUSES = ("status = 'pending' OR status = 'running' OR status = 'done' OR status = 'failed' OR "
            "status = 'cancelled'")


def upgrade() -> None:
    op.create_table('scheduled_jobs',
    sa.Column('job_id', ID, autoincrement=True, nullable=False),
    sa.Column('kind', sa.String(length=60), nullable=False),
    sa.Column('key', sa.String(length=120), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('worker', sa.String(length=120), nullable=True),
    sa.Column('last_error', sa.String(length=300), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint(STATUSES, name=op.f('ck_scheduled_jobs_status')),
    sa.CheckConstraint('attempts >= 0', name=op.f('ck_scheduled_jobs_attempts')),
    sa.PrimaryKeyConstraint('job_id', name=op.f('pk_scheduled_jobs')),
    sa.UniqueConstraint('kind', 'key', name=op.f('uq_scheduled_jobs_kind_key'))
    )
    op.create_index('ix_scheduled_jobs_status_due_at', 'scheduled_jobs', ['status', 'due_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_scheduled_jobs_status_due_at', table_name='scheduled_jobs')
    op.drop_table('scheduled_jobs')
