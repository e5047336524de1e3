"""document signing: the document-signing CA's keys in pki_keys, and the register of results

``pki_keys.role`` takes ``doc_ca`` and ``doc_signer`` (the column widens to 12 characters);
``pki_keys.agency``: a document signer's agency code; at most one active document-signing CA and
one active signer per agency (partial unique indexes). ``results``: every signed result document
and slip (documents.results).

On SQLite ``pki_keys`` cannot be rebuilt the batch way inside the migration's transaction: other
rows refer to it and foreign keys are enforced (see 0013). Only its CHECK constraint and declared
length change, which do not touch a stored row, so the table's definition is rewritten in place
as SQLite's documentation describes for such changes (``writable_schema``, then a new
``schema_version`` so every connection reloads it); every existing row satisfies the new check.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05 20:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
KEY20 = sa.String(length=20).with_variant(sa.String(length=20, collation='C'), 'postgresql')
KEY64 = sa.String(length=64).with_variant(sa.String(length=64, collation='C'), 'postgresql')
OLD_ROLES = "role = 'csca' OR role = 'dsc' OR role = 'mls'"
NEW_ROLES = OLD_ROLES + " OR role = 'doc_ca' OR role = 'doc_signer'"
ACTIVE_DOC_CA = "role = 'doc_ca' AND status = 'active'"
ACTIVE_DOC_SIGNER = "role = 'doc_signer' AND status = 'active'"
KINDS = "kind = 'result' OR kind = 'receipt' OR kind = 'supplement_request' OR kind = 'refusal' OR kind = 'apology'"


def _sqlite_redefine(old: tuple[str, str], new: tuple[str, str]) -> None:
    """Rewrite pki_keys' role column and role check in SQLite's schema (no row changes)."""
    conn = op.get_bind()
    sql = conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'pki_keys'").scalar_one()
    column_old, check_old = old
    column_new, check_new = new
    if column_old not in sql or f"CHECK ({check_old})" not in sql:
        raise RuntimeError("pki_keys is not defined as migration 0017 expects; not rewriting it")
    sql = sql.replace(column_old, column_new).replace(f"CHECK ({check_old})", f"CHECK ({check_new})")
    version = conn.exec_driver_sql("PRAGMA schema_version").scalar_one()
    conn.exec_driver_sql("PRAGMA writable_schema = ON")
    conn.exec_driver_sql("UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = 'pki_keys'", (sql,))
    conn.exec_driver_sql(f"PRAGMA schema_version = {int(version) + 1}")
    conn.exec_driver_sql("PRAGMA writable_schema = OFF")
    problems = conn.exec_driver_sql("PRAGMA quick_check").scalars().all()
    if problems != ["ok"]:
        raise RuntimeError(f"SQLite's check after rewriting pki_keys failed: {problems[:3]}")


def _roles(old_length: int, old_check: str, new_length: int, new_check: str) -> None:
    if op.get_bind().dialect.name == 'sqlite':
        _sqlite_redefine((f"role VARCHAR({old_length})", old_check), (f"role VARCHAR({new_length})", new_check))
        return
    op.drop_constraint(op.f('ck_pki_keys_role'), 'pki_keys', type_='check')
    op.alter_column('pki_keys', 'role', existing_type=sa.String(length=old_length), type_=sa.String(length=new_length),
                    existing_nullable=False)
    op.create_check_constraint(op.f('ck_pki_keys_role'), 'pki_keys', new_check)


def upgrade() -> None:
    _roles(4, OLD_ROLES, 12, NEW_ROLES)
    op.add_column('pki_keys', sa.Column('agency', sa.String(length=30), nullable=True))
    op.create_index('uq_pki_keys_active_doc_ca', 'pki_keys', ['role'], unique=True,
                    sqlite_where=sa.text(ACTIVE_DOC_CA), postgresql_where=sa.text(ACTIVE_DOC_CA))
    op.create_index('uq_pki_keys_active_doc_signer', 'pki_keys', ['agency'], unique=True,
                    sqlite_where=sa.text(ACTIVE_DOC_SIGNER), postgresql_where=sa.text(ACTIVE_DOC_SIGNER))
    op.create_table('results',
    sa.Column('result_id', ID, autoincrement=True, nullable=False),
    sa.Column('code', KEY20, nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('person_id', ID, nullable=False),
    sa.Column('holder_initials', sa.String(length=40), nullable=False),
    sa.Column('dossier', sa.Text(), nullable=True),
    sa.Column('agency_code', sa.String(length=30), nullable=False),
    sa.Column('agency_name', sa.String(length=120), nullable=False),
    sa.Column('signer_id', ID, nullable=False),
    sa.Column('sha256', KEY64, nullable=False),
    sa.Column('pdf', sa.LargeBinary(), nullable=False),
    sa.Column('issued_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('issued_by', sa.String(length=60), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revocation_reason', sa.String(length=500), nullable=True),
    sa.Column('revoked_by', sa.String(length=60), nullable=True),
    sa.CheckConstraint(KINDS, name=op.f('ck_results_kind')),
    sa.ForeignKeyConstraint(['person_id'], ['persons.person_id'], name=op.f('fk_results_person_id_persons')),
    sa.ForeignKeyConstraint(['signer_id'], ['pki_keys.key_id'], name=op.f('fk_results_signer_id_pki_keys')),
    sa.PrimaryKeyConstraint('result_id', name=op.f('pk_results')),
    sa.UniqueConstraint('code', name=op.f('uq_results_code'))
    )
    op.create_index(op.f('ix_results_person_id'), 'results', ['person_id'], unique=False)
    op.create_index(op.f('ix_results_signer_id'), 'results', ['signer_id'], unique=False)
    op.create_index(op.f('ix_results_sha256'), 'results', ['sha256'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_results_sha256'), table_name='results')
    op.drop_index(op.f('ix_results_signer_id'), table_name='results')
    op.drop_index(op.f('ix_results_person_id'), table_name='results')
    op.drop_table('results')
    # the document-signing keys go with their role: their uses and CRLs first, signers before the CA
    documents = "SELECT key_id FROM pki_keys WHERE role IN ('doc_ca', 'doc_signer')"
    op.execute(f"DELETE FROM pki_key_uses WHERE key_id IN ({documents})")
    op.execute(f"DELETE FROM pki_crls WHERE issuer_id IN ({documents})")
    op.execute("DELETE FROM pki_keys WHERE role = 'doc_signer'")
    op.execute("DELETE FROM pki_keys WHERE role = 'doc_ca'")
    op.drop_index('uq_pki_keys_active_doc_signer', table_name='pki_keys')
    op.drop_index('uq_pki_keys_active_doc_ca', table_name='pki_keys')
    if op.get_bind().dialect.name == 'sqlite':
        op.execute("ALTER TABLE pki_keys DROP COLUMN agency")  # SQLite 3.35+: no rebuild
    else:
        op.drop_column('pki_keys', 'agency')
    _roles(12, NEW_ROLES, 4, OLD_ROLES)
