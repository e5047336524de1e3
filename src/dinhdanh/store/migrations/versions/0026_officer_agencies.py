"""officers' agencies: the agency an officer works for

``officers.agency_code``: one of the online public services' agencies (the catalogue's codes, of the
officer's level: ``cong-an-xa``, ``ubnd-xa``, ``bhxh``, ...). Dossiers are decided by their own
agency's officers in the area of the procedure's place; an officer without one (every officer made
before this revision) is the area's one-stop shop and sees every agency's, as before.

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-06 04:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0026'
down_revision = '0025'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('officers', sa.Column('agency_code', sa.String(length=40), nullable=True))


def downgrade() -> None:
    if op.get_bind().dialect.name == 'sqlite':
        # SQLite 3.35+ drops the column in place: a batch rebuild would drop ``officers``, which other
        # tables' foreign keys refer to
        op.execute("ALTER TABLE officers DROP COLUMN agency_code")
        return
    op.drop_column('officers', 'agency_code')
