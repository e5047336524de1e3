"""dossier attachments: the papers citizens attach to their dossiers, sealed at rest

``dossier_attachments``: one row per file (the catalogue's attachment code, the file's name, the
type read from its content, its size and SHA-256, the content sealed by the vault, who uploaded it
and when). Added and deleted only while the dossier waits for papers (``dossiers.attachments``).

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-06 14:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
TYPES = " OR ".join(f"content_type = '{v}'" for v in ("application/pdf", "image/jpeg", "image/png"))


def upgrade() -> None:
    op.create_table('dossier_attachments',
    sa.Column('attachment_id', ID, autoincrement=True, nullable=False),
    sa.Column('dossier_id', ID, nullable=False),
    sa.Column('kind', sa.String(length=60), nullable=False),
    sa.Column('filename', sa.String(length=200), nullable=False),
    sa.Column('content_type', sa.String(length=40), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.LargeBinary(length=32), nullable=False),
    sa.Column('sealed', sa.LargeBinary(), nullable=False),
    sa.Column('uploaded_by', sa.String(length=80), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint(TYPES, name=op.f('ck_dossier_attachments_content_type')),
    sa.CheckConstraint('size > 0', name=op.f('ck_dossier_attachments_size')),
    sa.ForeignKeyConstraint(['dossier_id'], ['dossiers.dossier_id'],
                            name=op.f('fk_dossier_attachments_dossier_id_dossiers')),
    sa.PrimaryKeyConstraint('attachment_id', name=op.f('pk_dossier_attachments'))
    )
    op.create_index(op.f('ix_dossier_attachments_dossier_id'), 'dossier_attachments', ['dossier_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_dossier_attachments_dossier_id'), table_name='dossier_attachments')
    op.drop_table('dossier_attachments')
