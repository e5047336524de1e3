"""the access log's indexes: by person and access id (what a citizen's data tracker reads); leaf indexes only where set

The citizen's page reads a person's entries newest first by access id (``audit.service.access_log_of``);
the index on (person_id, at) did not serve that order and, holding the time as well, was three
times the size of what it needs: a batch that logs a million people wrote most of it again. The
unique index on leaf_index held every unsequenced entry too (NULL); now only the sequenced ones.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 16:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_access_log_person_id_access_id', 'access_log', ['person_id', 'access_id'], unique=False)
    op.drop_index('ix_access_log_person_id_at', table_name='access_log')
    op.drop_index('uq_access_log_leaf_index', table_name='access_log')
    op.create_index('uq_access_log_leaf_index', 'access_log', ['leaf_index'], unique=True,
                    sqlite_where=sa.text('leaf_index IS NOT NULL'), postgresql_where=sa.text('leaf_index IS NOT NULL'))


def downgrade() -> None:
    op.drop_index('uq_access_log_leaf_index', table_name='access_log')
    op.create_index('uq_access_log_leaf_index', 'access_log', ['leaf_index'], unique=True)
    op.create_index('ix_access_log_person_id_at', 'access_log', ['person_id', 'at'], unique=False)
    op.drop_index('ix_access_log_person_id_access_id', table_name='access_log')
