"""dossier groups: the linked groups of Decree 63/2024 as a parent dossier and one sub-dossier per agency

``dossiers.kind``: ``single`` (one procedure) or ``group`` (a linked group's parent, whose status is
derived from its sub-dossiers). ``parent_id``: a sub-dossier's group. ``procedure``: its procedure's
key in the catalogue's group. ``waits_for``: the sub-dossier (birth or death registration) it may
be received only after, once that one is approved.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-06 12:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    with op.batch_alter_table('dossiers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sa.String(length=10), server_default='single', nullable=False))
        batch_op.add_column(sa.Column('parent_id', ID, nullable=True))
        batch_op.add_column(sa.Column('procedure', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('waits_for', ID, nullable=True))
        batch_op.create_index('ix_dossiers_parent_id', ['parent_id'], unique=False)
        batch_op.create_foreign_key(op.f('fk_dossiers_parent_id_dossiers'), 'dossiers', ['parent_id'], ['dossier_id'])
        batch_op.create_foreign_key(op.f('fk_dossiers_waits_for_dossiers'), 'dossiers', ['waits_for'], ['dossier_id'])


def downgrade() -> None:
    with op.batch_alter_table('dossiers', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('fk_dossiers_waits_for_dossiers'), type_='foreignkey')
        batch_op.drop_constraint(op.f('fk_dossiers_parent_id_dossiers'), type_='foreignkey')
        batch_op.drop_index('ix_dossiers_parent_id')
        batch_op.drop_column('waits_for')
        batch_op.drop_column('procedure')
        batch_op.drop_column('parent_id')
        batch_op.drop_column('kind')
