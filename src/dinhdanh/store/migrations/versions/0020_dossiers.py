"""dossiers: the dossiers citizens file, their status history, their slips, their code sequences

``dossiers``: one row per dossier (service and catalogue version, applicant, place of the
procedure, agency, status moved by conditional UPDATEs only, the filled form, fee, the legal
clock's dates). ``dossier_events``: every move. ``dossier_documents``: the slips and the result
issued for it (codes of ``results``). ``dossier_sequences``: the last number of each code prefix
and day.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06 10:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def KEY(length: int):
    return sa.String(length=length).with_variant(sa.String(length=length, collation='C'), 'postgresql')


def _one_of(column: str, *values: str) -> str:
    return " OR ".join(f"{column} = '{v}'" for v in values)


STATUSES = _one_of("status", "submitted", "received", "supplement_requested", "approved", "refused", "withdrawn")
ACTIONS = _one_of("action", "file", "receive", "request_supplement", "supplement", "approve", "refuse", "withdraw",
                  "extend")
KINDS = _one_of("kind", "receipt", "supplement_request", "refusal", "apology", "result")


def upgrade() -> None:
    op.create_table('dossiers',
    sa.Column('dossier_id', ID, autoincrement=True, nullable=False),
    sa.Column('code', KEY(40), nullable=False),
    sa.Column('service_code', sa.String(length=60), nullable=False),
    sa.Column('version_id', sa.String(length=80), nullable=False),
    sa.Column('person_id', ID, nullable=False),
    sa.Column('account_id', ID, nullable=True),
    sa.Column('place_province', sa.String(length=2), nullable=False),
    sa.Column('place_commune', sa.String(length=5), nullable=True),
    sa.Column('agency_code', sa.String(length=40), nullable=False),
    sa.Column('agency_level', sa.String(length=10), nullable=False),
    sa.Column('status', sa.String(length=24), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('fee_amount', sa.BigInteger(), nullable=False),
    sa.Column('due_date', sa.Date(), nullable=False),
    sa.Column('received_on', sa.Date(), nullable=True),
    sa.Column('paused_since', sa.Date(), nullable=True),
    sa.Column('supplement_due', sa.Date(), nullable=True),
    sa.Column('overdue_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('result_code', sa.String(length=20), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint(STATUSES, name=op.f('ck_dossiers_status')),
    sa.CheckConstraint('fee_amount >= 0', name=op.f('ck_dossiers_fee_amount')),
    sa.ForeignKeyConstraint(['person_id'], ['persons.person_id'], name=op.f('fk_dossiers_person_id_persons')),
    sa.PrimaryKeyConstraint('dossier_id', name=op.f('pk_dossiers')),
    sa.UniqueConstraint('code', name=op.f('uq_dossiers_code'))
    )
    op.create_index(op.f('ix_dossiers_person_id'), 'dossiers', ['person_id'], unique=False)
    op.create_index('ix_dossiers_place_province_status', 'dossiers', ['place_province', 'status'], unique=False)
    op.create_index('ix_dossiers_place_commune_status', 'dossiers', ['place_commune', 'status'], unique=False)
    op.create_index('ix_dossiers_status_due_date', 'dossiers', ['status', 'due_date'], unique=False)
    op.create_table('dossier_events',
    sa.Column('event_id', ID, autoincrement=True, nullable=False),
    sa.Column('dossier_id', ID, nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('from_status', sa.String(length=24), nullable=True),
    sa.Column('to_status', sa.String(length=24), nullable=False),
    sa.Column('action', sa.String(length=24), nullable=False),
    sa.Column('actor', sa.String(length=80), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint(ACTIONS, name=op.f('ck_dossier_events_action')),
    sa.ForeignKeyConstraint(['dossier_id'], ['dossiers.dossier_id'],
                            name=op.f('fk_dossier_events_dossier_id_dossiers')),
    sa.PrimaryKeyConstraint('event_id', name=op.f('pk_dossier_events')),
    sa.UniqueConstraint('dossier_id', 'seq', name=op.f('uq_dossier_events_dossier_id_seq'))
    )
    op.create_table('dossier_documents',
    sa.Column('dossier_id', ID, nullable=False),
    sa.Column('code', sa.String(length=20), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('issued_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint(KINDS, name=op.f('ck_dossier_documents_kind')),
    sa.ForeignKeyConstraint(['dossier_id'], ['dossiers.dossier_id'],
                            name=op.f('fk_dossier_documents_dossier_id_dossiers')),
    sa.PrimaryKeyConstraint('dossier_id', 'code', name=op.f('pk_dossier_documents'))
    )
    op.create_table('dossier_sequences',
    sa.Column('prefix', KEY(30), nullable=False),
    sa.Column('last', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('prefix', name=op.f('pk_dossier_sequences'))
    )


def downgrade() -> None:
    op.drop_table('dossier_sequences')
    op.drop_table('dossier_documents')
    op.drop_table('dossier_events')
    op.drop_index('ix_dossiers_status_due_date', table_name='dossiers')
    op.drop_index('ix_dossiers_place_commune_status', table_name='dossiers')
    op.drop_index('ix_dossiers_place_province_status', table_name='dossiers')
    op.drop_index(op.f('ix_dossiers_person_id'), table_name='dossiers')
    op.drop_table('dossiers')
