"""follows are kept by the PID the partner gave, so the follow list is no oracle

``follows.pid``: the PID as followed (unique per partner); ``person_id`` is now the person it
named in the partner's area when followed, and none for a PID nobody visible holds. Existing rows
get their person's current PID.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05 19:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None

PID = sa.String(length=12).with_variant(sa.String(length=12, collation='C'), 'postgresql')


def upgrade() -> None:
    with op.batch_alter_table('follows') as batch:
        batch.add_column(sa.Column('pid', PID, nullable=True))
    op.execute("UPDATE follows SET pid = (SELECT pid FROM persons WHERE persons.person_id = follows.person_id)")
    with op.batch_alter_table('follows') as batch:
        batch.alter_column('pid', existing_type=PID, nullable=False)
        batch.alter_column('person_id', existing_type=sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
                           nullable=True)
        batch.drop_constraint('uq_follows_client_id_person_id', type_='unique')
        batch.create_unique_constraint('uq_follows_client_id_pid', ['client_id', 'pid'])


def downgrade() -> None:
    op.execute("DELETE FROM follows WHERE person_id IS NULL")
    op.execute("DELETE FROM follows WHERE follow_id NOT IN (SELECT MIN(follow_id) FROM follows "
               "GROUP BY client_id, person_id)")
    with op.batch_alter_table('follows') as batch:
        batch.drop_constraint('uq_follows_client_id_pid', type_='unique')
        batch.create_unique_constraint('uq_follows_client_id_person_id', ['client_id', 'person_id'])
        batch.alter_column('person_id', existing_type=sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
                           nullable=False)
        batch.drop_column('pid')
