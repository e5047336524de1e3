"""DPoP-bound access tokens for partners (RFC 9449)

``oidc_tokens.jkt``: the thumbprint of the key a token is bound to (NULL: a bearer token).
``oidc_clients.dpop_bound_access_tokens``: the client must send a DPoP proof with every token
request (RFC 9449 s.5.2; the partner policy's ``dpop_required``), false for every existing client.
``oidc_dpop_proofs``: the proofs accepted, so that none is accepted twice.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05 19:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

KEY64 = sa.String(length=64).with_variant(sa.String(length=64, collation='C'), 'postgresql')
KEY43 = sa.String(length=43).with_variant(sa.String(length=43, collation='C'), 'postgresql')


def upgrade() -> None:
    with op.batch_alter_table('oidc_tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('jkt', KEY43, nullable=True))
    with op.batch_alter_table('oidc_clients', schema=None) as batch_op:
        batch_op.add_column(sa.Column('dpop_bound_access_tokens', sa.Boolean(), server_default=sa.false(),
                                      nullable=False))
    op.create_table('oidc_dpop_proofs',
    sa.Column('proof_hash', KEY64, nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('proof_hash', name=op.f('pk_oidc_dpop_proofs'))
    )
    with op.batch_alter_table('oidc_dpop_proofs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_oidc_dpop_proofs_expires_at'), ['expires_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('oidc_dpop_proofs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_oidc_dpop_proofs_expires_at'))
    op.drop_table('oidc_dpop_proofs')
    with op.batch_alter_table('oidc_clients', schema=None) as batch_op:
        batch_op.drop_column('dpop_bound_access_tokens')
    with op.batch_alter_table('oidc_tokens', schema=None) as batch_op:
        batch_op.drop_column('jkt')
