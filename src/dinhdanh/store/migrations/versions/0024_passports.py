"""the passport register: ordinary passports and their number counter

``passports``: ordinary passports (hộ chiếu phổ thông) with their TD3 MRZ, data page and, when
issued with a chip, the chip's files (DG2 and the Active Authentication key sealed by the vault),
the Document Signer of the national PKI that signed EF.SOD, and a CHECK that a passport has all of
them or none; at most one ``issued`` passport per person (a partial unique index).
``passport_counters``: the last passport number given out, incremented by one upsert per
passport (``dinhdanh.passports.numbers``).

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-06 03:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0024'
down_revision = '0023'
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
ISSUED = "status = 'issued'"
CHIP_FILES = ('ef_com', 'dg1', 'dg2', 'dg14', 'dg15', 'sod', 'sod_digest', 'chip_key', 'signer_id')


def KEY(length: int):
    return sa.String(length=length).with_variant(sa.String(length=length, collation='C'), 'postgresql')


def _one_of(column: str, *values: str) -> str:
    return " OR ".join(f"{column} = '{v}'" for v in values)


def upgrade() -> None:
    all_chip = " AND ".join(f"{c} IS NOT NULL" for c in CHIP_FILES)
    no_chip = " AND ".join(f"{c} IS NULL" for c in CHIP_FILES)
    op.create_table('passports',
    sa.Column('passport_id', ID, autoincrement=True, nullable=False),
    sa.Column('person_id', ID, nullable=False),
    sa.Column('number', KEY(9), nullable=False),
    sa.Column('type', sa.String(length=1), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('issue_date', sa.Date(), nullable=False),
    sa.Column('expiry_date', sa.Date(), nullable=False),
    sa.Column('chip', sa.Boolean(), nullable=False),
    sa.Column('mrz', sa.String(length=89), nullable=False),
    sa.Column('printed', sa.JSON(), nullable=False),
    sa.Column('ef_com', sa.LargeBinary(), nullable=True),
    sa.Column('dg1', sa.LargeBinary(), nullable=True),
    sa.Column('dg2', sa.LargeBinary(), nullable=True),
    sa.Column('dg14', sa.LargeBinary(), nullable=True),
    sa.Column('dg15', sa.LargeBinary(), nullable=True),
    sa.Column('sod', sa.LargeBinary(), nullable=True),
    sa.Column('sod_digest', KEY(64), nullable=True),
    sa.Column('chip_key', sa.LargeBinary(), nullable=True),
    sa.Column('signer_id', ID, nullable=True),
    sa.Column('previous_number', sa.String(length=9), nullable=True),
    sa.Column('dossier_code', sa.String(length=40), nullable=True),
    sa.Column('issued_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('issued_by', sa.String(length=60), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revocation_reason', sa.String(length=16), nullable=True),
    sa.CheckConstraint(_one_of('status', 'issued', 'revoked', 'invalidated'), name=op.f('ck_passports_status')),
    sa.CheckConstraint("type = 'P'", name=op.f('ck_passports_type')),
    sa.CheckConstraint(f"(chip AND {all_chip}) OR (NOT chip AND {no_chip})", name=op.f('ck_passports_chip_files')),
    sa.CheckConstraint("(status = 'issued') = (revoked_at IS NULL)", name=op.f('ck_passports_revoked_at')),
    sa.ForeignKeyConstraint(['person_id'], ['persons.person_id'], name=op.f('fk_passports_person_id_persons')),
    sa.ForeignKeyConstraint(['signer_id'], ['pki_keys.key_id'], name=op.f('fk_passports_signer_id_pki_keys')),
    sa.PrimaryKeyConstraint('passport_id', name=op.f('pk_passports')),
    sa.UniqueConstraint('number', name=op.f('uq_passports_number')),
    sa.UniqueConstraint('sod_digest', name=op.f('uq_passports_sod_digest'))
    )
    op.create_index('ix_passports_person_id', 'passports', ['person_id'], unique=False)
    op.create_index('ix_passports_signer_id', 'passports', ['signer_id'], unique=False)
    op.create_index('ix_passports_dossier_code', 'passports', ['dossier_code'], unique=False)
    op.create_index('uq_passports_one_issued', 'passports', ['person_id'], unique=True,
                    sqlite_where=sa.text(ISSUED), postgresql_where=sa.text(ISSUED))
    op.create_table('passport_counters',
    sa.Column('name', sa.String(length=20), nullable=False),
    sa.Column('last_value', sa.BigInteger(), nullable=False),
    sa.CheckConstraint('last_value > 0', name=op.f('ck_passport_counters_positive')),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_passport_counters'))
    )


def downgrade() -> None:
    op.drop_table('passport_counters')
    op.drop_index('uq_passports_one_issued', table_name='passports')
    op.drop_index('ix_passports_dossier_code', table_name='passports')
    op.drop_index('ix_passports_signer_id', table_name='passports')
    op.drop_index('ix_passports_person_id', table_name='passports')
    op.drop_table('passports')
