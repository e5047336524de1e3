"""chip cards and national PKI

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 21:45:57.588353
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('pki_keys',
    sa.Column('key_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('role', sa.String(length=4), nullable=False),
    sa.Column('algorithm', sa.String(length=20), nullable=False),
    sa.Column('issuer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('subject', sa.String(length=300), nullable=False),
    sa.Column('serial', sa.String(length=40), nullable=False),
    sa.Column('key_identifier', sa.String(length=64).with_variant(sa.String(length=64, collation='C'), 'postgresql'), nullable=False),
    sa.Column('certificate', sa.LargeBinary(), nullable=False),
    sa.Column('private_key', sa.LargeBinary(), nullable=False),
    sa.Column('not_before', sa.DateTime(timezone=True), nullable=False),
    sa.Column('not_after', sa.DateTime(timezone=True), nullable=False),
    sa.Column('usage_ends', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=8), server_default='active', nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revocation_reason', sa.String(length=30), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("role = 'csca' OR role = 'dsc' OR role = 'mls'", name=op.f('ck_pki_keys_role')),
    sa.CheckConstraint("status = 'active' OR status = 'retired' OR status = 'revoked'", name=op.f('ck_pki_keys_status')),
    sa.ForeignKeyConstraint(['issuer_id'], ['pki_keys.key_id'], name=op.f('fk_pki_keys_issuer_id_pki_keys')),
    sa.PrimaryKeyConstraint('key_id', name=op.f('pk_pki_keys'))
    )
    with op.batch_alter_table('pki_keys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pki_keys_issuer_id'), ['issuer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_pki_keys_key_identifier'), ['key_identifier'], unique=False)

    op.create_table('trust_anchors',
    sa.Column('anchor_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('label', sa.String(length=200), nullable=False),
    sa.Column('der', sa.LargeBinary(), nullable=False),
    sa.Column('digest', sa.String(length=64).with_variant(sa.String(length=64, collation='C'), 'postgresql'), nullable=False),
    sa.Column('added_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind = 'csca' OR kind = 'master_list' OR kind = 'crl'", name=op.f('ck_trust_anchors_kind')),
    sa.PrimaryKeyConstraint('anchor_id', name=op.f('pk_trust_anchors')),
    sa.UniqueConstraint('digest', name=op.f('uq_trust_anchors_digest'))
    )
    op.create_table('pki_crls',
    sa.Column('crl_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('issuer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('this_update', sa.DateTime(timezone=True), nullable=False),
    sa.Column('next_update', sa.DateTime(timezone=True), nullable=False),
    sa.Column('der', sa.LargeBinary(), nullable=False),
    sa.ForeignKeyConstraint(['issuer_id'], ['pki_keys.key_id'], name=op.f('fk_pki_crls_issuer_id_pki_keys')),
    sa.PrimaryKeyConstraint('crl_id', name=op.f('pk_pki_crls')),
    sa.UniqueConstraint('issuer_id', 'number', name=op.f('uq_pki_crls_issuer_id_number'))
    )
    with op.batch_alter_table('pki_crls', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pki_crls_issuer_id'), ['issuer_id'], unique=False)

    op.create_table('pki_key_uses',
    sa.Column('use_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('key_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('purpose', sa.String(length=30), nullable=False),
    sa.Column('reference', sa.String(length=80), nullable=True),
    sa.Column('digest', sa.String(length=64).with_variant(sa.String(length=64, collation='C'), 'postgresql'), nullable=False),
    sa.ForeignKeyConstraint(['key_id'], ['pki_keys.key_id'], name=op.f('fk_pki_key_uses_key_id_pki_keys')),
    sa.PrimaryKeyConstraint('use_id', name=op.f('pk_pki_key_uses'))
    )
    with op.batch_alter_table('pki_key_uses', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pki_key_uses_key_id'), ['key_id'], unique=False)

    op.create_table('card_applications',
    sa.Column('application_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('person_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('submitted_by', sa.String(length=60), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('decided_by', sa.String(length=60), nullable=True),
    sa.Column('card_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.CheckConstraint("kind = 'first' OR kind = 'renewal' OR kind = 'reissue_lost' OR kind = 'reissue_damaged' OR kind = 'reissue_changed'", name=op.f('ck_card_applications_kind')),
    sa.CheckConstraint("status = 'submitted' OR status = 'approved' OR status = 'rejected' OR status = 'produced' OR status = 'issued'", name=op.f('ck_card_applications_status')),
    sa.ForeignKeyConstraint(['person_id'], ['persons.person_id'], name=op.f('fk_card_applications_person_id_persons')),
    sa.PrimaryKeyConstraint('application_id', name=op.f('pk_card_applications'))
    )
    with op.batch_alter_table('card_applications', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_card_applications_person_id'), ['person_id'], unique=False)

    op.create_table('cards',
    sa.Column('card_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('person_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('application_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('card_number', sa.String(length=12).with_variant(sa.String(length=12, collation='C'), 'postgresql'), nullable=False),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('issue_date', sa.Date(), nullable=False),
    sa.Column('expiry_date', sa.Date(), nullable=True),
    sa.Column('printed', sa.JSON(), nullable=False),
    sa.Column('mrz', sa.String(length=92), nullable=False),
    sa.Column('qr', sa.Text(), nullable=False),
    sa.Column('ef_com', sa.LargeBinary(), nullable=False),
    sa.Column('dg1', sa.LargeBinary(), nullable=False),
    sa.Column('dg2', sa.LargeBinary(), nullable=False),
    sa.Column('dg13', sa.LargeBinary(), nullable=False),
    sa.Column('dg14', sa.LargeBinary(), nullable=False),
    sa.Column('dg15', sa.LargeBinary(), nullable=False),
    sa.Column('sod', sa.LargeBinary(), nullable=False),
    sa.Column('sod_digest', sa.String(length=64).with_variant(sa.String(length=64, collation='C'), 'postgresql'), nullable=False),
    sa.Column('chip_key', sa.LargeBinary(), nullable=False),
    sa.Column('signer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('produced_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('issued_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revocation_reason', sa.String(length=16), nullable=True),
    sa.CheckConstraint("status = 'produced' OR status = 'issued' OR status = 'revoked'", name=op.f('ck_cards_status')),
    sa.ForeignKeyConstraint(['application_id'], ['card_applications.application_id'], name=op.f('fk_cards_application_id_card_applications')),
    sa.ForeignKeyConstraint(['person_id'], ['persons.person_id'], name=op.f('fk_cards_person_id_persons')),
    sa.ForeignKeyConstraint(['signer_id'], ['pki_keys.key_id'], name=op.f('fk_cards_signer_id_pki_keys')),
    sa.PrimaryKeyConstraint('card_id', name=op.f('pk_cards')),
    sa.UniqueConstraint('sod_digest', name=op.f('uq_cards_sod_digest'))
    )
    with op.batch_alter_table('cards', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_cards_application_id'), ['application_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_cards_card_number'), ['card_number'], unique=False)
        batch_op.create_index(batch_op.f('ix_cards_person_id'), ['person_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_cards_signer_id'), ['signer_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('cards', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_cards_signer_id'))
        batch_op.drop_index(batch_op.f('ix_cards_person_id'))
        batch_op.drop_index(batch_op.f('ix_cards_card_number'))
        batch_op.drop_index(batch_op.f('ix_cards_application_id'))

    op.drop_table('cards')
    with op.batch_alter_table('card_applications', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_card_applications_person_id'))

    op.drop_table('card_applications')
    with op.batch_alter_table('pki_key_uses', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pki_key_uses_key_id'))

    op.drop_table('pki_key_uses')
    with op.batch_alter_table('pki_crls', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pki_crls_issuer_id'))

    op.drop_table('pki_crls')
    op.drop_table('trust_anchors')
    with op.batch_alter_table('pki_keys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pki_keys_key_identifier'))
        batch_op.drop_index(batch_op.f('ix_pki_keys_issuer_id'))

    op.drop_table('pki_keys')
