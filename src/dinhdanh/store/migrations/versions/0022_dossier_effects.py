"""dossier effects: what an approval changed in the register

``dossiers.effect``: the summary of the register's change made in the approval's transaction
(``dossiers.effects``: the event's kind, id and PID, e.g. a newborn's new PID for the linked
group's other sub-dossiers), or null when the service changes nothing in the register.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-06 13:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('dossiers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('effect', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('dossiers', schema=None) as batch_op:
        batch_op.drop_column('effect')
