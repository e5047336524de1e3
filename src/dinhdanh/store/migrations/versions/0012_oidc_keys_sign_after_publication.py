"""the provider's keys sign only after they are published, and RS256 ID tokens per client

``oidc_keys.signs_from``: a rotated key is published at once and signs one JWKS cache lifetime
later (oidc.keys); existing keys signed from their creation. ``oidc_clients.id_token_alg``: the
algorithm of a client's ID tokens (NULL: ES256).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 09:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('oidc_keys', sa.Column('signs_from', sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE oidc_keys SET signs_from = created_at WHERE use = 'sig'")
    op.add_column('oidc_clients', sa.Column('id_token_alg', sa.String(length=10), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('oidc_clients') as batch:
        batch.drop_column('id_token_alg')
    with op.batch_alter_table('oidc_keys') as batch:
        batch.drop_column('signs_from')
