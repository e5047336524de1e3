"""data exchange: batch matching and the audit chain

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 22:54:15.624355
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('audit_chain_head',
    sa.Column('id', sa.SmallInteger(), autoincrement=False, nullable=False),
    sa.Column('last_access_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('last_hash', sa.String(length=64).with_variant(sa.String(length=64, collation='C'), 'postgresql'), nullable=False),
    sa.CheckConstraint('id = 1', name=op.f('ck_audit_chain_head_one_row')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_chain_head'))
    )
    op.create_table('match_jobs',
    sa.Column('job_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('partner', sa.String(length=64), nullable=False),
    sa.Column('purpose', sa.String(length=40), nullable=False),
    sa.Column('input_path', sa.String(length=500), nullable=False),
    sa.Column('input_size', sa.BigInteger(), nullable=False),
    sa.Column('input_sha256', sa.String(length=64).with_variant(sa.String(length=64, collation='C'), 'postgresql'), nullable=False),
    sa.Column('output_path', sa.String(length=500), nullable=False),
    sa.Column('chunk_rows', sa.Integer(), nullable=False),
    sa.Column('snapshot', sa.String(length=64).with_variant(sa.String(length=64, collation='C'), 'postgresql'), nullable=True),
    sa.Column('rows_total', sa.BigInteger(), nullable=True),
    sa.Column('rows_done', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('matched', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('mismatched', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('not_found', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('invalid', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('actor', sa.String(length=60), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status = 'running' OR status = 'done' OR status = 'failed'", name=op.f('ck_match_jobs_status')),
    sa.PrimaryKeyConstraint('job_id', name=op.f('pk_match_jobs'))
    )
    with op.batch_alter_table('match_jobs', schema=None) as batch_op:
        batch_op.create_index('ix_match_jobs_input_sha256', ['input_sha256'], unique=False)
        batch_op.create_index('ix_match_jobs_partner_started_at', ['partner', 'started_at'], unique=False)

    with op.batch_alter_table('access_log', schema=None) as batch_op:
        batch_op.add_column(sa.Column('fields', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('outcome', sa.String(length=20), server_default='ok', nullable=False))
        batch_op.add_column(sa.Column('prev_hash', sa.String(length=64).with_variant(sa.String(length=64, collation='C'), 'postgresql'), nullable=True))
        batch_op.add_column(sa.Column('hash', sa.String(length=64).with_variant(sa.String(length=64, collation='C'), 'postgresql'), nullable=True))

    _seal_existing_entries()


def _seal_existing_entries() -> None:
    """Chain the entries written before the chain existed, in access_id order, and set the head.

    The encoding is spelled out here rather than imported, so that this migration keeps doing what
    it did when it was written (it must equal dinhdanh.audit.chain.canonical; a test checks it)."""
    import datetime as dt
    import hashlib
    import json

    conn = op.get_bind()
    log = sa.table("access_log", sa.column("access_id"), sa.column("at", sa.DateTime(timezone=True)),
                   sa.column("actor"), sa.column("person_id"), sa.column("action"), sa.column("purpose"),
                   sa.column("fields"), sa.column("outcome"), sa.column("prev_hash"), sa.column("hash"))
    prev, last_id = "0" * 64, 0
    rows = conn.execute(sa.select(log).order_by(log.c.access_id)).all()
    updates = []
    for row in rows:
        at = row.at if row.at.tzinfo else row.at.replace(tzinfo=dt.UTC)
        payload = {"action": row.action, "actor": row.actor, "at": at.astimezone(dt.UTC).isoformat(timespec="microseconds"),
                   "fields": row.fields, "outcome": row.outcome or "ok", "person_id": int(row.person_id),
                   "prev_hash": prev, "purpose": row.purpose}
        digest = hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":"),
                                           ensure_ascii=False).encode()).hexdigest()
        updates.append({"id": row.access_id, "p": prev, "h": digest})
        prev, last_id = digest, row.access_id
    if updates:
        conn.execute(log.update().where(log.c.access_id == sa.bindparam("id"))
                     .values(prev_hash=sa.bindparam("p"), hash=sa.bindparam("h")), updates)
        head = sa.table("audit_chain_head", sa.column("id"), sa.column("last_access_id"), sa.column("last_hash"))
        conn.execute(head.insert().values(id=1, last_access_id=last_id, last_hash=prev))


def downgrade() -> None:
    with op.batch_alter_table('access_log', schema=None) as batch_op:
        batch_op.drop_column('hash')
        batch_op.drop_column('prev_hash')
        batch_op.drop_column('outcome')
        batch_op.drop_column('fields')

    with op.batch_alter_table('match_jobs', schema=None) as batch_op:
        batch_op.drop_index('ix_match_jobs_partner_started_at')
        batch_op.drop_index('ix_match_jobs_input_sha256')

    op.drop_table('match_jobs')
    op.drop_table('audit_chain_head')
