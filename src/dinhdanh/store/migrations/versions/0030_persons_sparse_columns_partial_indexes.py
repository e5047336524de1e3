"""the indexes of persons' mostly empty columns cover the rows where they are set

``temp_commune_code``, ``father_id``, ``mother_id``, ``spouse_id`` and ``representative_id`` are
empty for most people (in the synthetic population of a million: 100%, 64%, 59%, 45% and 100%),
and every query finds rows by a value of them, never by their absence. Their indexes become
partial (``WHERE column IS NOT NULL``): a person without the value costs no entry, a first load
builds them in less time (father, mother, spouse: 2.20 s -> 1.35 s at a million), and the
register is smaller. Both SQLite and PostgreSQL use a partial index for ``column = ?``.

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-08 01:00:00
"""
import sqlalchemy as sa
from alembic import op


revision = '0030'
down_revision = '0029'
branch_labels = None
depends_on = None

# (name, column), as dinhdanh.registry.tables.PERSONS_SPARSE_INDEXES at this revision
SPARSE = (
    ("ix_persons_temp_commune_code", "temp_commune_code"),
    ("ix_persons_father_id", "father_id"),
    ("ix_persons_mother_id", "mother_id"),
    ("ix_persons_spouse_id", "spouse_id"),
    ("ix_persons_representative_id", "representative_id"),
)


def upgrade() -> None:
    for name, column in SPARSE:
        op.drop_index(name, table_name='persons')
        op.create_index(name, 'persons', [column], unique=False, sqlite_where=sa.text(f"{column} IS NOT NULL"),
                        postgresql_where=sa.text(f"{column} IS NOT NULL"))


def downgrade() -> None:
    for name, column in reversed(SPARSE):
        op.drop_index(name, table_name='persons')
        op.create_index(name, 'persons', [column], unique=False)
