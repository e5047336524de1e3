"""e-ID accounts and the OIDC provider

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 22:32:37.594741
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('eid_challenges',
    sa.Column('challenge_hash', sa.String(length=64).with_variant(sa.String(length=64, collation='C'), 'postgresql'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('challenge_hash', name=op.f('pk_eid_challenges'))
    )
    with op.batch_alter_table('eid_challenges', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_eid_challenges_expires_at'), ['expires_at'], unique=False)

    op.create_table('foreigners',
    sa.Column('foreigner_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('number', sa.String(length=20).with_variant(sa.String(length=20, collation='C'), 'postgresql'), nullable=False),
    sa.Column('full_name', sa.String(length=100), nullable=False),
    sa.Column('date_of_birth', sa.Date(), nullable=False),
    sa.Column('sex', sa.String(length=6), nullable=False),
    sa.Column('nationality', sa.String(length=3).with_variant(sa.String(length=3, collation='C'), 'postgresql'), nullable=False),
    sa.Column('passport_number', sa.String(length=20).with_variant(sa.String(length=20, collation='C'), 'postgresql'), nullable=False),
    sa.Column('passport_expiry', sa.Date(), nullable=False),
    sa.Column('residence_card_number', sa.String(length=20).with_variant(sa.String(length=20, collation='C'), 'postgresql'), nullable=True),
    sa.Column('residence_card_expiry', sa.Date(), nullable=True),
    sa.Column('phone', sa.String(length=15), nullable=True),
    sa.Column('email', sa.String(length=254), nullable=True),
    sa.Column('address', sa.String(length=200), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("sex = 'male' OR sex = 'female'", name=op.f('ck_foreigners_sex')),
    sa.PrimaryKeyConstraint('foreigner_id', name=op.f('pk_foreigners')),
    sa.UniqueConstraint('number', name=op.f('uq_foreigners_number'))
    )
    op.create_table('mobile_subscriptions',
    sa.Column('subscription_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('msisdn', sa.String(length=15).with_variant(sa.String(length=15, collation='C'), 'postgresql'), nullable=False),
    sa.Column('carrier', sa.String(length=20), nullable=False),
    sa.Column('pid', sa.String(length=12).with_variant(sa.String(length=12, collation='C'), 'postgresql'), nullable=True),
    sa.Column('full_name', sa.String(length=100), nullable=True),
    sa.Column('date_of_birth', sa.Date(), nullable=True),
    sa.Column('status', sa.String(length=14), server_default='active', nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status = 'active' OR status = 'locked_oneway' OR status = 'locked_twoway' OR status = 'terminated'", name=op.f('ck_mobile_subscriptions_status')),
    sa.PrimaryKeyConstraint('subscription_id', name=op.f('pk_mobile_subscriptions')),
    sa.UniqueConstraint('msisdn', name=op.f('uq_mobile_subscriptions_msisdn'))
    )
    with op.batch_alter_table('mobile_subscriptions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mobile_subscriptions_pid'), ['pid'], unique=False)

    op.create_table('oidc_assertions',
    sa.Column('client_id', sa.String(length=64).with_variant(sa.String(length=64, collation='C'), 'postgresql'), nullable=False),
    sa.Column('jti', sa.String(length=128), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('client_id', 'jti', name=op.f('pk_oidc_assertions'))
    )
    op.create_table('oidc_clients',
    sa.Column('client_id', sa.String(length=64).with_variant(sa.String(length=64, collation='C'), 'postgresql'), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('auth_method', sa.String(length=24), nullable=False),
    sa.Column('secret_hash', sa.String(length=64).with_variant(sa.String(length=64, collation='C'), 'postgresql'), nullable=True),
    sa.Column('jwks', sa.JSON(), nullable=True),
    sa.Column('redirect_uris', sa.JSON(), nullable=False),
    sa.Column('post_logout_redirect_uris', sa.JSON(), nullable=False),
    sa.Column('scopes', sa.Text(), nullable=False),
    sa.Column('grant_types', sa.JSON(), nullable=False),
    sa.Column('sector', sa.String(length=255), nullable=True),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('agreement', sa.String(length=100), nullable=True),
    sa.Column('purpose', sa.Text(), nullable=True),
    sa.Column('security_level', sa.SmallInteger(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=60), nullable=False),
    sa.Column('approved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('approved_by', sa.String(length=60), nullable=True),
    sa.CheckConstraint("auth_method = 'client_secret_basic' OR auth_method = 'private_key_jwt'", name=op.f('ck_oidc_clients_auth_method')),
    sa.CheckConstraint("status = 'pending' OR status = 'approved' OR status = 'suspended'", name=op.f('ck_oidc_clients_status')),
    sa.PrimaryKeyConstraint('client_id', name=op.f('pk_oidc_clients'))
    )
    op.create_table('oidc_keys',
    sa.Column('kid', sa.String(length=64).with_variant(sa.String(length=64, collation='C'), 'postgresql'), nullable=False),
    sa.Column('use', sa.String(length=10), nullable=False),
    sa.Column('alg', sa.String(length=10), nullable=True),
    sa.Column('public_jwk', sa.JSON(), nullable=True),
    sa.Column('sealed', sa.LargeBinary(), nullable=False),
    sa.Column('active', sa.String(length=10).with_variant(sa.String(length=10, collation='C'), 'postgresql'), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('retired_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('published_until', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("use = 'sig' OR use = 'cookie' OR use = 'pairwise' OR use = 'portal'", name=op.f('ck_oidc_keys_use')),
    sa.PrimaryKeyConstraint('kid', name=op.f('pk_oidc_keys')),
    sa.UniqueConstraint('active', name=op.f('uq_oidc_keys_active'))
    )
    op.create_table('source_documents',
    sa.Column('source_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('number', sa.String(length=30).with_variant(sa.String(length=30, collation='C'), 'postgresql'), nullable=False),
    sa.Column('holder_pid', sa.String(length=12).with_variant(sa.String(length=12, collation='C'), 'postgresql'), nullable=False),
    sa.Column('holder_name', sa.String(length=100), nullable=False),
    sa.Column('issuer', sa.String(length=200), nullable=False),
    sa.Column('issued_on', sa.Date(), nullable=False),
    sa.Column('valid_until', sa.Date(), nullable=True),
    sa.Column('status', sa.String(length=8), server_default='valid', nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.CheckConstraint("kind = 'driving_licence' OR kind = 'vehicle_registration' OR kind = 'health_insurance' OR kind = 'social_insurance'", name=op.f('ck_source_documents_kind')),
    sa.CheckConstraint("status = 'valid' OR status = 'revoked'", name=op.f('ck_source_documents_status')),
    sa.PrimaryKeyConstraint('source_id', name=op.f('pk_source_documents')),
    sa.UniqueConstraint('kind', 'number', name=op.f('uq_source_documents_kind_number'))
    )
    with op.batch_alter_table('source_documents', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_source_documents_holder_pid'), ['holder_pid'], unique=False)

    op.create_table('notification_deliveries',
    sa.Column('seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('channel', sa.String(length=10), nullable=False),
    sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('outcome', sa.String(length=10), nullable=False),
    sa.Column('attempts', sa.SmallInteger(), server_default='1', nullable=False),
    sa.ForeignKeyConstraint(['seq'], ['outbox.seq'], name=op.f('fk_notification_deliveries_seq_outbox')),
    sa.PrimaryKeyConstraint('seq', name=op.f('pk_notification_deliveries'))
    )
    op.create_table('oidc_requests',
    sa.Column('request_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('handle_hash', sa.String(length=64).with_variant(sa.String(length=64, collation='C'), 'postgresql'), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('client_id', sa.String(length=64).with_variant(sa.String(length=64, collation='C'), 'postgresql'), nullable=False),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("kind = 'pushed' OR kind = 'browser'", name=op.f('ck_oidc_requests_kind')),
    sa.ForeignKeyConstraint(['client_id'], ['oidc_clients.client_id'], name=op.f('fk_oidc_requests_client_id_oidc_clients')),
    sa.PrimaryKeyConstraint('request_id', name=op.f('pk_oidc_requests')),
    sa.UniqueConstraint('handle_hash', name=op.f('uq_oidc_requests_handle_hash'))
    )
    with op.batch_alter_table('oidc_requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_oidc_requests_client_id'), ['client_id'], unique=False)

    op.create_table('organisations',
    sa.Column('organisation_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('code', sa.String(length=20).with_variant(sa.String(length=20, collation='C'), 'postgresql'), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('founding_date', sa.Date(), nullable=False),
    sa.Column('address', sa.String(length=300), nullable=False),
    sa.Column('representative_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('status', sa.String(length=10), server_default='active', nullable=False),
    sa.Column('dissolved_on', sa.Date(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status = 'active' OR status = 'dissolved'", name=op.f('ck_organisations_status')),
    sa.ForeignKeyConstraint(['representative_id'], ['persons.person_id'], name=op.f('fk_organisations_representative_id_persons')),
    sa.PrimaryKeyConstraint('organisation_id', name=op.f('pk_organisations')),
    sa.UniqueConstraint('code', name=op.f('uq_organisations_code'))
    )
    with op.batch_alter_table('organisations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_organisations_representative_id'), ['representative_id'], unique=False)

    op.create_table('eid_accounts',
    sa.Column('account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('subject', sa.String(length=32).with_variant(sa.String(length=32, collation='C'), 'postgresql'), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('level', sa.SmallInteger(), nullable=True),
    sa.Column('state', sa.String(length=8), nullable=False),
    sa.Column('person_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('foreigner_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('organisation_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('guardian_account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('passcode_hash', sa.String(length=200), nullable=True),
    sa.Column('failed_attempts', sa.SmallInteger(), server_default='0', nullable=False),
    sa.Column('factor_failures', sa.SmallInteger(), server_default='0', nullable=False),
    sa.Column('lockouts', sa.SmallInteger(), server_default='0', nullable=False),
    sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('totp_secret', sa.LargeBinary(), nullable=True),
    sa.Column('totp_enabled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('totp_last_step', sa.BigInteger(), nullable=True),
    sa.Column('msisdn', sa.String(length=15), nullable=True),
    sa.Column('msisdn_verified', sa.Boolean(), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('activated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind = 'citizen' OR kind = 'foreigner' OR kind = 'organisation'", name=op.f('ck_eid_accounts_kind')),
    sa.CheckConstraint("state = 'pending' OR state = 'active' OR state = 'locked' OR state = 'revoked'", name=op.f('ck_eid_accounts_state')),
    sa.CheckConstraint('level IS NULL OR level = 1 OR level = 2', name=op.f('ck_eid_accounts_level')),
    sa.ForeignKeyConstraint(['foreigner_id'], ['foreigners.foreigner_id'], name=op.f('fk_eid_accounts_foreigner_id_foreigners')),
    sa.ForeignKeyConstraint(['guardian_account_id'], ['eid_accounts.account_id'], name=op.f('fk_eid_accounts_guardian_account_id_eid_accounts')),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisations.organisation_id'], name=op.f('fk_eid_accounts_organisation_id_organisations')),
    sa.ForeignKeyConstraint(['person_id'], ['persons.person_id'], name=op.f('fk_eid_accounts_person_id_persons')),
    sa.PrimaryKeyConstraint('account_id', name=op.f('pk_eid_accounts')),
    sa.UniqueConstraint('foreigner_id', name=op.f('uq_eid_accounts_foreigner_id')),
    sa.UniqueConstraint('organisation_id', name=op.f('uq_eid_accounts_organisation_id')),
    sa.UniqueConstraint('person_id', name=op.f('uq_eid_accounts_person_id')),
    sa.UniqueConstraint('subject', name=op.f('uq_eid_accounts_subject'))
    )
    with op.batch_alter_table('eid_accounts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_eid_accounts_guardian_account_id'), ['guardian_account_id'], unique=False)

    op.create_table('account_events',
    sa.Column('event_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('kind', sa.String(length=30), nullable=False),
    sa.Column('from_state', sa.String(length=8), nullable=True),
    sa.Column('to_state', sa.String(length=8), nullable=True),
    sa.Column('level', sa.SmallInteger(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('source', sa.String(length=12), nullable=False),
    sa.Column('actor', sa.String(length=60), nullable=False),
    sa.Column('detail', sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['eid_accounts.account_id'], name=op.f('fk_account_events_account_id_eid_accounts')),
    sa.PrimaryKeyConstraint('event_id', name=op.f('pk_account_events'))
    )
    with op.batch_alter_table('account_events', schema=None) as batch_op:
        batch_op.create_index('ix_account_events_account_id_event_id', ['account_id', 'event_id'], unique=False)

    op.create_table('account_locks',
    sa.Column('lock_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('cause', sa.String(length=24), nullable=False),
    sa.Column('source', sa.String(length=12), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('locked_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('locked_by', sa.String(length=60), nullable=False),
    sa.Column('lifted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('lifted_by', sa.String(length=60), nullable=True),
    sa.Column('lift_reason', sa.Text(), nullable=True),
    sa.CheckConstraint("cause = 'owner' OR cause = 'breach' OR cause = 'card_revoked' OR cause = 'card_expired' OR cause = 'death' OR cause = 'passport_expired' OR cause = 'residence_card_expired' OR cause = 'dissolution' OR cause = 'authority'", name=op.f('ck_account_locks_cause')),
    sa.ForeignKeyConstraint(['account_id'], ['eid_accounts.account_id'], name=op.f('fk_account_locks_account_id_eid_accounts')),
    sa.PrimaryKeyConstraint('lock_id', name=op.f('pk_account_locks'))
    )
    with op.batch_alter_table('account_locks', schema=None) as batch_op:
        batch_op.create_index('ix_account_locks_account_id_lifted_at', ['account_id', 'lifted_at'], unique=False)

    op.create_table('eid_biometrics',
    sa.Column('biometric_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('sealed', sa.LargeBinary(), nullable=False),
    sa.Column('captured_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('captured_by', sa.String(length=60), nullable=False),
    sa.CheckConstraint("kind = 'face' OR kind = 'fingerprint'", name=op.f('ck_eid_biometrics_kind')),
    sa.ForeignKeyConstraint(['account_id'], ['eid_accounts.account_id'], name=op.f('fk_eid_biometrics_account_id_eid_accounts')),
    sa.PrimaryKeyConstraint('biometric_id', name=op.f('pk_eid_biometrics'))
    )
    with op.batch_alter_table('eid_biometrics', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_eid_biometrics_account_id'), ['account_id'], unique=False)

    op.create_table('eid_devices',
    sa.Column('device_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('jwk', sa.JSON(), nullable=False),
    sa.Column('thumbprint', sa.String(length=64).with_variant(sa.String(length=64, collation='C'), 'postgresql'), nullable=False),
    sa.Column('registered_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['eid_accounts.account_id'], name=op.f('fk_eid_devices_account_id_eid_accounts')),
    sa.PrimaryKeyConstraint('device_id', name=op.f('pk_eid_devices')),
    sa.UniqueConstraint('thumbprint', name=op.f('uq_eid_devices_thumbprint'))
    )
    with op.batch_alter_table('eid_devices', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_eid_devices_account_id'), ['account_id'], unique=False)

    op.create_table('eid_level2_checks',
    sa.Column('check_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('officer', sa.String(length=60), nullable=False),
    sa.Column('document_number', sa.String(length=20).with_variant(sa.String(length=20, collation='C'), 'postgresql'), nullable=False),
    sa.Column('chip_verdict', sa.String(length=10), nullable=False),
    sa.Column('face_match', sa.String(length=10), nullable=False),
    sa.Column('fingerprint_match', sa.String(length=10), nullable=False),
    sa.Column('consent', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['eid_accounts.account_id'], name=op.f('fk_eid_level2_checks_account_id_eid_accounts')),
    sa.PrimaryKeyConstraint('check_id', name=op.f('pk_eid_level2_checks'))
    )
    with op.batch_alter_table('eid_level2_checks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_eid_level2_checks_account_id'), ['account_id'], unique=False)

    op.create_table('eid_logins',
    sa.Column('login_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('client_id', sa.String(length=100), nullable=True),
    sa.Column('acr', sa.String(length=60), nullable=True),
    sa.Column('outcome', sa.String(length=30), nullable=False),
    sa.Column('ip', sa.String(length=45), nullable=True),
    sa.Column('user_agent', sa.String(length=300), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['eid_accounts.account_id'], name=op.f('fk_eid_logins_account_id_eid_accounts')),
    sa.PrimaryKeyConstraint('login_id', name=op.f('pk_eid_logins'))
    )
    with op.batch_alter_table('eid_logins', schema=None) as batch_op:
        batch_op.create_index('ix_eid_logins_account_id_login_id', ['account_id', 'login_id'], unique=False)

    op.create_table('eid_registrations',
    sa.Column('registration_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('channel', sa.String(length=8), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('level', sa.SmallInteger(), nullable=False),
    sa.Column('person_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('foreigner_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('guardian_account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('msisdn', sa.String(length=15), nullable=True),
    sa.Column('email', sa.String(length=254), nullable=True),
    sa.Column('status', sa.String(length=14), nullable=False),
    sa.Column('checks', sa.JSON(), nullable=False),
    sa.Column('face', sa.LargeBinary(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('decided_by', sa.String(length=60), nullable=True),
    sa.Column('decision_reason', sa.Text(), nullable=True),
    sa.Column('code_hash', sa.String(length=64).with_variant(sa.String(length=64, collation='C'), 'postgresql'), nullable=True),
    sa.Column('code_expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('code_attempts', sa.SmallInteger(), server_default='0', nullable=False),
    sa.CheckConstraint("status = 'pending_review' OR status = 'approved' OR status = 'refused' OR status = 'activated'", name=op.f('ck_eid_registrations_status')),
    sa.ForeignKeyConstraint(['account_id'], ['eid_accounts.account_id'], name=op.f('fk_eid_registrations_account_id_eid_accounts')),
    sa.ForeignKeyConstraint(['foreigner_id'], ['foreigners.foreigner_id'], name=op.f('fk_eid_registrations_foreigner_id_foreigners')),
    sa.ForeignKeyConstraint(['guardian_account_id'], ['eid_accounts.account_id'], name=op.f('fk_eid_registrations_guardian_account_id_eid_accounts')),
    sa.ForeignKeyConstraint(['person_id'], ['persons.person_id'], name=op.f('fk_eid_registrations_person_id_persons')),
    sa.PrimaryKeyConstraint('registration_id', name=op.f('pk_eid_registrations'))
    )
    with op.batch_alter_table('eid_registrations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_eid_registrations_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_eid_registrations_foreigner_id'), ['foreigner_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_eid_registrations_guardian_account_id'), ['guardian_account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_eid_registrations_person_id'), ['person_id'], unique=False)
        batch_op.create_index('ix_eid_registrations_status_created_at', ['status', 'created_at'], unique=False)

    op.create_table('eid_sessions',
    sa.Column('session_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('token_hash', sa.String(length=64).with_variant(sa.String(length=64, collation='C'), 'postgresql'), nullable=False),
    sa.Column('account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('level', sa.SmallInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['eid_accounts.account_id'], name=op.f('fk_eid_sessions_account_id_eid_accounts')),
    sa.PrimaryKeyConstraint('session_id', name=op.f('pk_eid_sessions')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_eid_sessions_token_hash'))
    )
    with op.batch_alter_table('eid_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_eid_sessions_account_id'), ['account_id'], unique=False)

    op.create_table('identity_qr_tokens',
    sa.Column('token_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('token_hash', sa.String(length=64).with_variant(sa.String(length=64, collation='C'), 'postgresql'), nullable=False),
    sa.Column('account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('level', sa.SmallInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('used_by', sa.String(length=60), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['eid_accounts.account_id'], name=op.f('fk_identity_qr_tokens_account_id_eid_accounts')),
    sa.PrimaryKeyConstraint('token_id', name=op.f('pk_identity_qr_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_identity_qr_tokens_token_hash'))
    )
    with op.batch_alter_table('identity_qr_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_identity_qr_tokens_account_id'), ['account_id'], unique=False)

    op.create_table('oidc_consents',
    sa.Column('account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('client_id', sa.String(length=64).with_variant(sa.String(length=64, collation='C'), 'postgresql'), nullable=False),
    sa.Column('scope', sa.Text(), nullable=False),
    sa.Column('claims', sa.JSON(), nullable=False),
    sa.Column('granted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['eid_accounts.account_id'], name=op.f('fk_oidc_consents_account_id_eid_accounts')),
    sa.ForeignKeyConstraint(['client_id'], ['oidc_clients.client_id'], name=op.f('fk_oidc_consents_client_id_oidc_clients')),
    sa.PrimaryKeyConstraint('account_id', 'client_id', name=op.f('pk_oidc_consents'))
    )
    op.create_table('oidc_sessions',
    sa.Column('session_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('id_hash', sa.String(length=64).with_variant(sa.String(length=64, collation='C'), 'postgresql'), nullable=False),
    sa.Column('sid', sa.String(length=43).with_variant(sa.String(length=43, collation='C'), 'postgresql'), nullable=False),
    sa.Column('csrf', sa.String(length=43).with_variant(sa.String(length=43, collation='C'), 'postgresql'), nullable=False),
    sa.Column('account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('level', sa.SmallInteger(), nullable=True),
    sa.Column('amr', sa.JSON(), nullable=True),
    sa.Column('auth_time', sa.DateTime(timezone=True), nullable=True),
    sa.Column('challenge', sa.String(length=100).with_variant(sa.String(length=100, collation='C'), 'postgresql'), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['eid_accounts.account_id'], name=op.f('fk_oidc_sessions_account_id_eid_accounts')),
    sa.PrimaryKeyConstraint('session_id', name=op.f('pk_oidc_sessions')),
    sa.UniqueConstraint('id_hash', name=op.f('uq_oidc_sessions_id_hash')),
    sa.UniqueConstraint('sid', name=op.f('uq_oidc_sessions_sid'))
    )
    with op.batch_alter_table('oidc_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_oidc_sessions_account_id'), ['account_id'], unique=False)

    op.create_table('wallet_documents',
    sa.Column('wallet_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('number', sa.String(length=30).with_variant(sa.String(length=30, collation='C'), 'postgresql'), nullable=False),
    sa.Column('issuer', sa.String(length=200), nullable=False),
    sa.Column('valid_until', sa.Date(), nullable=True),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('verified_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('removed_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("kind = 'driving_licence' OR kind = 'vehicle_registration' OR kind = 'health_insurance' OR kind = 'social_insurance'", name=op.f('ck_wallet_documents_kind')),
    sa.ForeignKeyConstraint(['account_id'], ['eid_accounts.account_id'], name=op.f('fk_wallet_documents_account_id_eid_accounts')),
    sa.PrimaryKeyConstraint('wallet_id', name=op.f('pk_wallet_documents')),
    sa.UniqueConstraint('account_id', 'kind', 'number', name=op.f('uq_wallet_documents_account_id_kind_number'))
    )
    with op.batch_alter_table('wallet_documents', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_wallet_documents_account_id'), ['account_id'], unique=False)

    op.create_table('lock_requests',
    sa.Column('request_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('authority', sa.String(length=200), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('requested_by', sa.String(length=60), nullable=False),
    sa.Column('deadline', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=8), server_default='pending', nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('decided_by', sa.String(length=60), nullable=True),
    sa.Column('decision_reason', sa.Text(), nullable=True),
    sa.Column('lock_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.CheckConstraint("status = 'pending' OR status = 'approved' OR status = 'refused'", name=op.f('ck_lock_requests_status')),
    sa.ForeignKeyConstraint(['account_id'], ['eid_accounts.account_id'], name=op.f('fk_lock_requests_account_id_eid_accounts')),
    sa.ForeignKeyConstraint(['lock_id'], ['account_locks.lock_id'], name=op.f('fk_lock_requests_lock_id_account_locks')),
    sa.PrimaryKeyConstraint('request_id', name=op.f('pk_lock_requests'))
    )
    with op.batch_alter_table('lock_requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_lock_requests_account_id'), ['account_id'], unique=False)
        batch_op.create_index('ix_lock_requests_status_deadline', ['status', 'deadline'], unique=False)

    op.create_table('oidc_codes',
    sa.Column('code_hash', sa.String(length=64).with_variant(sa.String(length=64, collation='C'), 'postgresql'), nullable=False),
    sa.Column('client_id', sa.String(length=64).with_variant(sa.String(length=64, collation='C'), 'postgresql'), nullable=False),
    sa.Column('account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('session_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('redirect_uri', sa.Text(), nullable=False),
    sa.Column('scope', sa.Text(), nullable=False),
    sa.Column('nonce', sa.String(length=255), nullable=True),
    sa.Column('code_challenge', sa.String(length=128), nullable=False),
    sa.Column('code_challenge_method', sa.String(length=10), nullable=False),
    sa.Column('claims', sa.JSON(), nullable=True),
    sa.Column('acr', sa.String(length=40), nullable=False),
    sa.Column('amr', sa.JSON(), nullable=False),
    sa.Column('auth_time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('family_id', sa.String(length=43).with_variant(sa.String(length=43, collation='C'), 'postgresql'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['eid_accounts.account_id'], name=op.f('fk_oidc_codes_account_id_eid_accounts')),
    sa.ForeignKeyConstraint(['client_id'], ['oidc_clients.client_id'], name=op.f('fk_oidc_codes_client_id_oidc_clients')),
    sa.ForeignKeyConstraint(['session_id'], ['oidc_sessions.session_id'], name=op.f('fk_oidc_codes_session_id_oidc_sessions')),
    sa.PrimaryKeyConstraint('code_hash', name=op.f('pk_oidc_codes'))
    )
    with op.batch_alter_table('oidc_codes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_oidc_codes_account_id'), ['account_id'], unique=False)
        batch_op.create_index('ix_oidc_codes_client_id_nonce', ['client_id', 'nonce'], unique=False)

    op.create_table('oidc_tokens',
    sa.Column('token_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('token_hash', sa.String(length=64).with_variant(sa.String(length=64, collation='C'), 'postgresql'), nullable=False),
    sa.Column('jti', sa.String(length=43).with_variant(sa.String(length=43, collation='C'), 'postgresql'), nullable=False),
    sa.Column('client_id', sa.String(length=64).with_variant(sa.String(length=64, collation='C'), 'postgresql'), nullable=False),
    sa.Column('account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('session_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('family_id', sa.String(length=43).with_variant(sa.String(length=43, collation='C'), 'postgresql'), nullable=True),
    sa.Column('scope', sa.Text(), nullable=False),
    sa.Column('claims', sa.JSON(), nullable=True),
    sa.Column('acr', sa.String(length=40), nullable=True),
    sa.Column('amr', sa.JSON(), nullable=True),
    sa.Column('auth_time', sa.DateTime(timezone=True), nullable=True),
    sa.Column('issued_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('rotated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoke_reason', sa.String(length=30), nullable=True),
    sa.CheckConstraint("kind = 'access' OR kind = 'refresh'", name=op.f('ck_oidc_tokens_kind')),
    sa.ForeignKeyConstraint(['account_id'], ['eid_accounts.account_id'], name=op.f('fk_oidc_tokens_account_id_eid_accounts')),
    sa.ForeignKeyConstraint(['client_id'], ['oidc_clients.client_id'], name=op.f('fk_oidc_tokens_client_id_oidc_clients')),
    sa.ForeignKeyConstraint(['session_id'], ['oidc_sessions.session_id'], name=op.f('fk_oidc_tokens_session_id_oidc_sessions')),
    sa.PrimaryKeyConstraint('token_id', name=op.f('pk_oidc_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_oidc_tokens_token_hash'))
    )
    with op.batch_alter_table('oidc_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_oidc_tokens_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_oidc_tokens_family_id'), ['family_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('oidc_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_oidc_tokens_family_id'))
        batch_op.drop_index(batch_op.f('ix_oidc_tokens_account_id'))

    op.drop_table('oidc_tokens')
    with op.batch_alter_table('oidc_codes', schema=None) as batch_op:
        batch_op.drop_index('ix_oidc_codes_client_id_nonce')
        batch_op.drop_index(batch_op.f('ix_oidc_codes_account_id'))

    op.drop_table('oidc_codes')
    with op.batch_alter_table('lock_requests', schema=None) as batch_op:
        batch_op.drop_index('ix_lock_requests_status_deadline')
        batch_op.drop_index(batch_op.f('ix_lock_requests_account_id'))

    op.drop_table('lock_requests')
    with op.batch_alter_table('wallet_documents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_wallet_documents_account_id'))

    op.drop_table('wallet_documents')
    with op.batch_alter_table('oidc_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_oidc_sessions_account_id'))

    op.drop_table('oidc_sessions')
    op.drop_table('oidc_consents')
    with op.batch_alter_table('identity_qr_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_identity_qr_tokens_account_id'))

    op.drop_table('identity_qr_tokens')
    with op.batch_alter_table('eid_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_eid_sessions_account_id'))

    op.drop_table('eid_sessions')
    with op.batch_alter_table('eid_registrations', schema=None) as batch_op:
        batch_op.drop_index('ix_eid_registrations_status_created_at')
        batch_op.drop_index(batch_op.f('ix_eid_registrations_person_id'))
        batch_op.drop_index(batch_op.f('ix_eid_registrations_guardian_account_id'))
        batch_op.drop_index(batch_op.f('ix_eid_registrations_foreigner_id'))
        batch_op.drop_index(batch_op.f('ix_eid_registrations_account_id'))

    op.drop_table('eid_registrations')
    with op.batch_alter_table('eid_logins', schema=None) as batch_op:
        batch_op.drop_index('ix_eid_logins_account_id_login_id')

    op.drop_table('eid_logins')
    with op.batch_alter_table('eid_level2_checks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_eid_level2_checks_account_id'))

    op.drop_table('eid_level2_checks')
    with op.batch_alter_table('eid_devices', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_eid_devices_account_id'))

    op.drop_table('eid_devices')
    with op.batch_alter_table('eid_biometrics', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_eid_biometrics_account_id'))

    op.drop_table('eid_biometrics')
    with op.batch_alter_table('account_locks', schema=None) as batch_op:
        batch_op.drop_index('ix_account_locks_account_id_lifted_at')

    op.drop_table('account_locks')
    with op.batch_alter_table('account_events', schema=None) as batch_op:
        batch_op.drop_index('ix_account_events_account_id_event_id')

    op.drop_table('account_events')
    with op.batch_alter_table('eid_accounts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_eid_accounts_guardian_account_id'))

    op.drop_table('eid_accounts')
    with op.batch_alter_table('organisations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_organisations_representative_id'))

    op.drop_table('organisations')
    with op.batch_alter_table('oidc_requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_oidc_requests_client_id'))

    op.drop_table('oidc_requests')
    op.drop_table('notification_deliveries')
    with op.batch_alter_table('source_documents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_source_documents_holder_pid'))

    op.drop_table('source_documents')
    op.drop_table('oidc_keys')
    op.drop_table('oidc_clients')
    op.drop_table('oidc_assertions')
    with op.batch_alter_table('mobile_subscriptions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_mobile_subscriptions_pid'))

    op.drop_table('mobile_subscriptions')
    op.drop_table('foreigners')
    with op.batch_alter_table('eid_challenges', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_eid_challenges_expires_at'))

    op.drop_table('eid_challenges')
