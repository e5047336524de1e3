"""Tables of the e-ID area (Decree 69/2024): accounts, their history and locks, registrations,
credentials, the data the platform checks against (mobile subscribers, foreigners, organisations,
issuing registries' documents), the document wallet and the in-person identity QR.

Secrets are never stored in clear: passcodes as Argon2id hashes, activation codes, session and QR
tokens as SHA-256 (they are random or short-lived and attempt-limited), TOTP secrets and
biometrics sealed by the vault (purposes ``eid-totp``, ``eid-face``, ``eid-fingerprint``).
"""

from __future__ import annotations

import sqlalchemy as sa

from dinhdanh.notify.tables import notification_deliveries  # noqa: F401  (on the same metadata)
from dinhdanh.store.base import Id, Key, UTCDateTime, metadata, one_of

ACCOUNT_KINDS = ("citizen", "foreigner", "organisation")
ACCOUNT_STATES = ("pending", "active", "locked", "revoked")
# Why an account is locked (domain.md s.6). ``authority`` locks come from an approved lock request.
LOCK_CAUSES = ("owner", "breach", "card_revoked", "card_expired", "death", "passport_expired",
               "residence_card_expired", "dissolution", "authority")
REGISTRATION_STATUSES = ("pending_review", "approved", "refused", "activated")
WALLET_KINDS = ("driving_licence", "vehicle_registration", "health_insurance", "social_insurance")
SUBSCRIPTION_STATUSES = ("active", "locked_oneway", "locked_twoway", "terminated")

foreigners = sa.Table(
    "foreigners", metadata,
    sa.Column("foreigner_id", Id, primary_key=True, autoincrement=True),
    sa.Column("number", Key(20), nullable=False, unique=True),  # the foreigner's identification number
    sa.Column("full_name", sa.String(100), nullable=False),
    sa.Column("date_of_birth", sa.Date, nullable=False),
    sa.Column("sex", sa.String(6), nullable=False),
    sa.Column("nationality", Key(3), nullable=False),
    sa.Column("passport_number", Key(20), nullable=False),
    sa.Column("passport_expiry", sa.Date, nullable=False),
    sa.Column("residence_card_number", Key(20)),
    sa.Column("residence_card_expiry", sa.Date),
    sa.Column("phone", sa.String(15)),
    sa.Column("email", sa.String(254)),
    sa.Column("address", sa.String(200)),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.CheckConstraint(one_of("sex", "male", "female"), name="sex"),
)

organisations = sa.Table(
    "organisations", metadata,
    sa.Column("organisation_id", Id, primary_key=True, autoincrement=True),
    sa.Column("code", Key(20), nullable=False, unique=True),  # the organisation's e-ID code
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("founding_date", sa.Date, nullable=False),
    sa.Column("address", sa.String(300), nullable=False),
    sa.Column("representative_id", Id, sa.ForeignKey("persons.person_id"), nullable=False, index=True),
    sa.Column("status", sa.String(10), nullable=False, server_default="active"),
    sa.Column("dissolved_on", sa.Date),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.CheckConstraint(one_of("status", "active", "dissolved"), name="status"),
)

eid_accounts = sa.Table(
    "eid_accounts", metadata,
    sa.Column("account_id", Id, primary_key=True, autoincrement=True),
    sa.Column("subject", Key(32), nullable=False, unique=True),  # random, stable, opaque
    sa.Column("kind", sa.String(12), nullable=False),
    sa.Column("level", sa.SmallInteger),  # 1 or 2; NULL for an organisation
    sa.Column("state", sa.String(8), nullable=False),
    # exactly one holder, by kind; a citizen logs in with their current (or a former) PID
    sa.Column("person_id", Id, sa.ForeignKey("persons.person_id"), unique=True),
    sa.Column("foreigner_id", Id, sa.ForeignKey("foreigners.foreigner_id"), unique=True),
    sa.Column("organisation_id", Id, sa.ForeignKey("organisations.organisation_id"), unique=True),
    sa.Column("guardian_account_id", Id, sa.ForeignKey("eid_accounts.account_id"), index=True),
    sa.Column("passcode_hash", sa.String(200)),  # Argon2id, PHC string
    sa.Column("failed_attempts", sa.SmallInteger, nullable=False, server_default="0"),
    sa.Column("factor_failures", sa.SmallInteger, nullable=False, server_default="0"),  # wrong 2nd factors
    sa.Column("lockouts", sa.SmallInteger, nullable=False, server_default="0"),  # back-off step
    sa.Column("locked_until", UTCDateTime),  # temporary lock after wrong passcodes
    sa.Column("totp_secret", sa.LargeBinary),  # sealed, purpose eid-totp
    sa.Column("totp_enabled_at", UTCDateTime),
    sa.Column("totp_last_step", sa.BigInteger),  # a TOTP code is accepted once
    sa.Column("msisdn", sa.String(15)),
    sa.Column("msisdn_verified", sa.Boolean, nullable=False, default=False),
    sa.Column("email", sa.String(254)),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("activated_at", UTCDateTime),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.CheckConstraint(one_of("kind", *ACCOUNT_KINDS), name="kind"),
    sa.CheckConstraint(one_of("state", *ACCOUNT_STATES), name="state"),
    sa.CheckConstraint("level IS NULL OR level = 1 OR level = 2", name="level"),
)

# Every change of an account, with its reason: state, level, credentials, locks.
account_events = sa.Table(
    "account_events", metadata,
    sa.Column("event_id", Id, primary_key=True, autoincrement=True),
    sa.Column("account_id", Id, sa.ForeignKey("eid_accounts.account_id"), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("kind", sa.String(30), nullable=False),  # created, activated, level_2, locked, unlocked, ...
    sa.Column("from_state", sa.String(8)),
    sa.Column("to_state", sa.String(8)),
    sa.Column("level", sa.SmallInteger),
    sa.Column("reason", sa.Text),
    sa.Column("source", sa.String(12), nullable=False),  # owner / officer / system / authority / app
    sa.Column("actor", sa.String(60), nullable=False),
    sa.Column("detail", sa.JSON),
    sa.Index("ix_account_events_account_id_event_id", "account_id", "event_id"),
)

# An account is locked while at least one lock is open; each cause is lifted on its own.
account_locks = sa.Table(
    "account_locks", metadata,
    sa.Column("lock_id", Id, primary_key=True, autoincrement=True),
    sa.Column("account_id", Id, sa.ForeignKey("eid_accounts.account_id"), nullable=False),
    sa.Column("cause", sa.String(24), nullable=False),
    sa.Column("source", sa.String(12), nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("locked_at", UTCDateTime, nullable=False),
    sa.Column("locked_by", sa.String(60), nullable=False),
    sa.Column("lifted_at", UTCDateTime),
    sa.Column("lifted_by", sa.String(60)),
    sa.Column("lift_reason", sa.Text),
    sa.CheckConstraint(one_of("cause", *LOCK_CAUSES), name="cause"),
    sa.Index("ix_account_locks_account_id_lifted_at", "account_id", "lifted_at"),
)

# A lock asked by another authority: the police approve or refuse it within 2 working days.
lock_requests = sa.Table(
    "lock_requests", metadata,
    sa.Column("request_id", Id, primary_key=True, autoincrement=True),
    sa.Column("account_id", Id, sa.ForeignKey("eid_accounts.account_id"), nullable=False, index=True),
    sa.Column("authority", sa.String(200), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("requested_at", UTCDateTime, nullable=False),
    sa.Column("requested_by", sa.String(60), nullable=False),
    sa.Column("deadline", sa.Date, nullable=False),  # 2 working days after the request
    sa.Column("status", sa.String(8), nullable=False, server_default="pending"),
    sa.Column("decided_at", UTCDateTime),
    sa.Column("decided_by", sa.String(60)),
    sa.Column("decision_reason", sa.Text),
    sa.Column("lock_id", Id, sa.ForeignKey("account_locks.lock_id")),
    sa.CheckConstraint(one_of("status", "pending", "approved", "refused"), name="status"),
    sa.Index("ix_lock_requests_status_deadline", "status", "deadline"),
)

eid_registrations = sa.Table(
    "eid_registrations", metadata,
    sa.Column("registration_id", Id, primary_key=True, autoincrement=True),
    sa.Column("channel", sa.String(8), nullable=False),  # app / guardian / counter
    sa.Column("kind", sa.String(12), nullable=False),
    sa.Column("level", sa.SmallInteger, nullable=False),
    sa.Column("person_id", Id, sa.ForeignKey("persons.person_id"), index=True),
    sa.Column("foreigner_id", Id, sa.ForeignKey("foreigners.foreigner_id"), index=True),
    sa.Column("account_id", Id, sa.ForeignKey("eid_accounts.account_id"), index=True),
    sa.Column("guardian_account_id", Id, sa.ForeignKey("eid_accounts.account_id"), index=True),
    sa.Column("msisdn", sa.String(15)),
    sa.Column("email", sa.String(254)),
    sa.Column("status", sa.String(14), nullable=False),
    sa.Column("checks", sa.JSON, nullable=False),  # each check's outcome (never the data checked)
    sa.Column("face", sa.LargeBinary),  # the captured face, sealed (eid-face), for a review
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("decided_at", UTCDateTime),
    sa.Column("decided_by", sa.String(60)),
    sa.Column("decision_reason", sa.Text),
    sa.Column("code_hash", Key(64)),  # SHA-256 of the activation code
    sa.Column("code_expires_at", UTCDateTime),
    sa.Column("code_attempts", sa.SmallInteger, nullable=False, server_default="0"),
    sa.CheckConstraint(one_of("status", *REGISTRATION_STATUSES), name="status"),
    sa.Index("ix_eid_registrations_status_created_at", "status", "created_at"),
)

# The in-person level-2 check: what the officer saw and recorded.
eid_level2_checks = sa.Table(
    "eid_level2_checks", metadata,
    sa.Column("check_id", Id, primary_key=True, autoincrement=True),
    sa.Column("account_id", Id, sa.ForeignKey("eid_accounts.account_id"), nullable=False, index=True),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("officer", sa.String(60), nullable=False),
    sa.Column("document_number", Key(20), nullable=False),
    sa.Column("chip_verdict", sa.String(10), nullable=False),
    sa.Column("face_match", sa.String(10), nullable=False),
    sa.Column("fingerprint_match", sa.String(10), nullable=False),
    sa.Column("consent", sa.Boolean, nullable=False),
)

eid_biometrics = sa.Table(
    "eid_biometrics", metadata,
    sa.Column("biometric_id", Id, primary_key=True, autoincrement=True),
    sa.Column("account_id", Id, sa.ForeignKey("eid_accounts.account_id"), nullable=False, index=True),
    sa.Column("kind", sa.String(12), nullable=False),
    sa.Column("sealed", sa.LargeBinary, nullable=False),  # purpose eid-face / eid-fingerprint
    sa.Column("captured_at", UTCDateTime, nullable=False),
    sa.Column("captured_by", sa.String(60), nullable=False),
    sa.CheckConstraint(one_of("kind", "face", "fingerprint"), name="kind"),
)

# Device keys (ES256 public JWK) that prove possession of the phone at a level-2 login.
eid_devices = sa.Table(
    "eid_devices", metadata,
    sa.Column("device_id", Id, primary_key=True, autoincrement=True),
    sa.Column("account_id", Id, sa.ForeignKey("eid_accounts.account_id"), nullable=False, index=True),
    sa.Column("jwk", sa.JSON, nullable=False),
    sa.Column("thumbprint", Key(64), nullable=False, unique=True),  # RFC 7638
    sa.Column("registered_at", UTCDateTime, nullable=False),
    sa.Column("revoked_at", UTCDateTime),
)

eid_logins = sa.Table(
    "eid_logins", metadata,
    sa.Column("login_id", Id, primary_key=True, autoincrement=True),
    sa.Column("account_id", Id, sa.ForeignKey("eid_accounts.account_id"), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("client_id", sa.String(100)),
    sa.Column("acr", sa.String(60)),
    sa.Column("outcome", sa.String(30), nullable=False),
    sa.Column("ip", sa.String(45)),
    sa.Column("user_agent", sa.String(300)),
    sa.Index("ix_eid_logins_account_id_login_id", "account_id", "login_id"),
)

# The app's own sessions (the e-ID app, not a relying party): bearer tokens stored hashed.
eid_sessions = sa.Table(
    "eid_sessions", metadata,
    sa.Column("session_id", Id, primary_key=True, autoincrement=True),
    sa.Column("token_hash", Key(64), nullable=False, unique=True),
    sa.Column("account_id", Id, sa.ForeignKey("eid_accounts.account_id"), nullable=False, index=True),
    sa.Column("level", sa.SmallInteger, nullable=False),  # the level this login proved
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("revoked_at", UTCDateTime),
)

# Challenges the app signs with its device key at login: single use, short-lived.
eid_challenges = sa.Table(
    "eid_challenges", metadata,
    sa.Column("challenge_hash", Key(64), primary_key=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False, index=True),
    sa.Column("used_at", UTCDateTime),
)

# Active Authentication challenges for a registration by chip card (ICAO 9303-11 s.6.1, RND.IFD): 8
# random bytes sealed by the vault (purpose ``eid-aa-challenge``), found by the SHA-256 of their
# public id; spent once, by one conditional UPDATE, and short-lived.
eid_registration_challenges = sa.Table(
    "eid_registration_challenges", metadata,
    sa.Column("challenge_id_hash", Key(64), primary_key=True),
    sa.Column("challenge", sa.LargeBinary, nullable=False),  # sealed
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False, index=True),
    sa.Column("used_at", UTCDateTime),
)

identity_qr_tokens = sa.Table(
    "identity_qr_tokens", metadata,
    sa.Column("token_id", Id, primary_key=True, autoincrement=True),
    sa.Column("token_hash", Key(64), nullable=False, unique=True),
    sa.Column("account_id", Id, sa.ForeignKey("eid_accounts.account_id"), nullable=False, index=True),
    sa.Column("level", sa.SmallInteger, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("used_at", UTCDateTime),
    sa.Column("used_by", sa.String(60)),
)

# What the telcos' subscriber data say (a copy the platform holds, refreshed from them).
mobile_subscriptions = sa.Table(
    "mobile_subscriptions", metadata,
    sa.Column("subscription_id", Id, primary_key=True, autoincrement=True),
    sa.Column("msisdn", Key(15), nullable=False, unique=True),  # national form, 0 + 9 digits
    sa.Column("carrier", sa.String(20), nullable=False),
    sa.Column("pid", Key(12), index=True),
    sa.Column("full_name", sa.String(100)),
    sa.Column("date_of_birth", sa.Date),
    sa.Column("status", sa.String(14), nullable=False, server_default="active"),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.CheckConstraint(one_of("status", *SUBSCRIPTION_STATUSES), name="status"),
)

# The issuing registries' documents (driving licences, vehicles, insurance), as their connectors
# answer; the demo seeds them.
source_documents = sa.Table(
    "source_documents", metadata,
    sa.Column("source_id", Id, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(24), nullable=False),
    sa.Column("number", Key(30), nullable=False),
    sa.Column("holder_pid", Key(12), nullable=False, index=True),
    sa.Column("holder_name", sa.String(100), nullable=False),
    sa.Column("issuer", sa.String(200), nullable=False),
    sa.Column("issued_on", sa.Date, nullable=False),
    sa.Column("valid_until", sa.Date),
    sa.Column("status", sa.String(8), nullable=False, server_default="valid"),
    sa.Column("data", sa.JSON, nullable=False),
    sa.CheckConstraint(one_of("kind", *WALLET_KINDS), name="kind"),
    sa.CheckConstraint(one_of("status", "valid", "revoked"), name="status"),
    sa.UniqueConstraint("kind", "number"),
)

wallet_documents = sa.Table(
    "wallet_documents", metadata,
    sa.Column("wallet_id", Id, primary_key=True, autoincrement=True),
    sa.Column("account_id", Id, sa.ForeignKey("eid_accounts.account_id"), nullable=False, index=True),
    sa.Column("kind", sa.String(24), nullable=False),
    sa.Column("number", Key(30), nullable=False),
    sa.Column("issuer", sa.String(200), nullable=False),
    sa.Column("valid_until", sa.Date),
    sa.Column("data", sa.JSON, nullable=False),
    sa.Column("verified_at", UTCDateTime, nullable=False),
    sa.Column("removed_at", UTCDateTime),
    sa.CheckConstraint(one_of("kind", *WALLET_KINDS), name="kind"),
    sa.UniqueConstraint("account_id", "kind", "number"),
)
