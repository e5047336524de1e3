"""Tables of the OpenID Connect provider, on the shared metadata.

Nothing a bearer could use is stored in clear: client secrets, authorization codes, access and
refresh tokens, pushed request URIs and browser session ids are kept as their SHA-256 (they are
random and high-entropy, so a fast hash is enough and keeps each request cheap); the provider's
private keys and secrets are sealed by the vault (purpose ``oidc-<use>``).
"""

from __future__ import annotations

import sqlalchemy as sa

from dinhdanh.store.base import Id, Key, UTCDateTime, metadata, one_of

CLIENT_STATUSES = ("pending", "approved", "suspended")
AUTH_METHODS = ("client_secret_basic", "private_key_jwt")
KEY_USES = ("sig", "cookie", "pairwise", "portal", "officer")  # officer: the console's client secret
TOKEN_KINDS = ("access", "refresh")

# Relying parties. A client is registered ``pending`` and can do nothing until it is approved
# against a signed agreement (reference, scope and purpose, information-security level 3).
oidc_clients = sa.Table(
    "oidc_clients", metadata,
    sa.Column("client_id", Key(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("auth_method", sa.String(24), nullable=False),
    sa.Column("secret_hash", Key(64)),  # SHA-256 of the client secret (client_secret_basic)
    sa.Column("jwks", sa.JSON),  # the client's public keys (private_key_jwt)
    sa.Column("redirect_uris", sa.JSON, nullable=False),
    sa.Column("post_logout_redirect_uris", sa.JSON, nullable=False),
    sa.Column("scopes", sa.Text, nullable=False),  # space-separated, as approved
    sa.Column("grant_types", sa.JSON, nullable=False),
    sa.Column("sector", sa.String(255)),  # pairwise subject sector; NULL = host of the redirect URIs
    # how its ID tokens are signed (id_token_signed_response_alg, OIDC Dynamic Registration s.2); NULL = ES256
    sa.Column("id_token_alg", sa.String(10)),
    # an officer client (``client add --officer``): the only kind that may ask for scope dinhdanh.officer
    sa.Column("officer", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("status", sa.String(10), nullable=False),
    sa.Column("agreement", sa.String(100)),
    sa.Column("purpose", sa.Text),
    sa.Column("security_level", sa.SmallInteger),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("created_by", sa.String(60), nullable=False),
    sa.Column("approved_at", UTCDateTime),
    sa.Column("approved_by", sa.String(60)),
    # RFC 9449 s.5.2 client metadata: every token request must carry a DPoP proof (the partner
    # policy's ``dpop_required``), so the client never gets a bearer token
    sa.Column("dpop_bound_access_tokens", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.CheckConstraint(one_of("status", *CLIENT_STATUSES), name="status"),
    sa.CheckConstraint(one_of("auth_method", *AUTH_METHODS), name="auth_method"),
)

# The provider's keys and secrets: signing keys (ES256 and RS256, ``alg``; see oidc.keys: a key is
# published when written, signs from ``signs_from``, is retired when the next one signs, stays
# published until the last token it signed has expired, and is never deleted: the key archive),
# the cookie-signing key, the pairwise-subject salt, and the demo portal's client secret.
# ``active`` is set on the newest key of each use (``sig`` for ES256, ``sig:RS256``).
oidc_keys = sa.Table(
    "oidc_keys", metadata,
    sa.Column("kid", Key(64), primary_key=True),
    sa.Column("use", sa.String(10), nullable=False),
    sa.Column("alg", sa.String(10)),
    sa.Column("public_jwk", sa.JSON),
    sa.Column("sealed", sa.LargeBinary, nullable=False),  # purpose oidc-<use>
    sa.Column("active", Key(10), unique=True),  # NULL for every key not in service
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("retired_at", UTCDateTime),
    sa.Column("published_until", UTCDateTime),  # for a retired signing key
    sa.Column("signs_from", UTCDateTime),  # for a signing key: when it starts signing
    sa.CheckConstraint(one_of("use", *KEY_USES), name="use"),
)

# Browser sessions at the provider. The cookie holds an opaque id (signed); the row holds its
# SHA-256. ``sid`` is the public session identifier put in ID tokens (for logout).
oidc_sessions = sa.Table(
    "oidc_sessions", metadata,
    sa.Column("session_id", Id, primary_key=True, autoincrement=True),
    sa.Column("id_hash", Key(64), nullable=False, unique=True),
    sa.Column("sid", Key(43), nullable=False, unique=True),
    sa.Column("csrf", Key(43), nullable=False),
    sa.Column("account_id", Id, sa.ForeignKey("eid_accounts.account_id"), index=True),
    sa.Column("level", sa.SmallInteger),  # the level this session has proved (1 passcode, 2 step-up)
    sa.Column("amr", sa.JSON),
    sa.Column("auth_time", UTCDateTime),
    sa.Column("challenge", Key(100)),  # the pending device-proof challenge at a step-up
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("ended_at", UTCDateTime),
)

# An authorization request in progress in a browser (between /authorize and the code), and the
# requests pushed by clients (RFC 9126: ``pushed``, 90 seconds, used once).
oidc_requests = sa.Table(
    "oidc_requests", metadata,
    sa.Column("request_id", Id, primary_key=True, autoincrement=True),
    sa.Column("handle_hash", Key(64), nullable=False, unique=True),
    sa.Column("kind", sa.String(8), nullable=False),
    sa.Column("client_id", Key(64), sa.ForeignKey("oidc_clients.client_id"), nullable=False, index=True),
    sa.Column("params", sa.JSON, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("used_at", UTCDateTime),
    sa.CheckConstraint(one_of("kind", "pushed", "browser"), name="kind"),
)

oidc_codes = sa.Table(
    "oidc_codes", metadata,
    sa.Column("code_hash", Key(64), primary_key=True),
    sa.Column("client_id", Key(64), sa.ForeignKey("oidc_clients.client_id"), nullable=False),
    sa.Column("account_id", Id, sa.ForeignKey("eid_accounts.account_id"), nullable=False, index=True),
    sa.Column("session_id", Id, sa.ForeignKey("oidc_sessions.session_id")),
    sa.Column("redirect_uri", sa.Text, nullable=False),
    sa.Column("scope", sa.Text, nullable=False),
    sa.Column("nonce", sa.String(255)),
    sa.Column("code_challenge", sa.String(128), nullable=False),
    sa.Column("code_challenge_method", sa.String(10), nullable=False),
    sa.Column("claims", sa.JSON),  # the ``claims`` request parameter, as granted
    sa.Column("acr", sa.String(40), nullable=False),
    sa.Column("amr", sa.JSON, nullable=False),
    sa.Column("auth_time", UTCDateTime, nullable=False),
    sa.Column("family_id", Key(43), nullable=False),  # every token issued from this code
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("used_at", UTCDateTime),
    sa.Index("ix_oidc_codes_client_id_nonce", "client_id", "nonce"),
    # the sessions' purge checks that no code refers to a session (``oidc.housekeeping``)
    sa.Index("ix_oidc_codes_session_id", "session_id", sqlite_where=sa.text("session_id IS NOT NULL"),
             postgresql_where=sa.text("session_id IS NOT NULL")),
)

# Access tokens (JWT, ES256; the row makes them revocable and introspectable) and refresh tokens
# (opaque). Tokens of one grant share ``family_id``: reusing a rotated refresh token or a used
# code revokes the family.
#
# An access token's row is found by its ``jti`` (time-ordered, ``tokens.new_jti``: each new row
# goes to the right-hand end of the index) and checked by its hash; only a refresh token, opaque,
# is found by its hash. A unique index of random hashes over every token put each of the thousands
# of rows written a second on a random leaf page, the largest part of the token endpoint's commit.
# ``account_id``, ``family_id`` and ``session_id`` are indexed only where set (a partner's token
# has none of them). ``session_id``'s index is for the sessions' purge (``oidc.housekeeping``):
# deleting a session checks that no token refers to it, which without it read the whole table for
# each session.
TOKEN_PARTIAL_INDEXES = (  # (name, column, unique, where): the migrations make the same
    ("uq_oidc_tokens_refresh_hash", "token_hash", True, "kind = 'refresh'"),
    ("ix_oidc_tokens_account_id", "account_id", False, "account_id IS NOT NULL"),
    ("ix_oidc_tokens_family_id", "family_id", False, "family_id IS NOT NULL"),
    ("ix_oidc_tokens_session_id", "session_id", False, "session_id IS NOT NULL"),
)
oidc_tokens = sa.Table(
    "oidc_tokens", metadata,
    sa.Column("token_id", Id, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(8), nullable=False),
    sa.Column("token_hash", Key(64), nullable=False),
    sa.Column("jti", Key(43), nullable=False),
    sa.Column("client_id", Key(64), sa.ForeignKey("oidc_clients.client_id"), nullable=False),
    sa.Column("account_id", Id, sa.ForeignKey("eid_accounts.account_id")),
    sa.Column("session_id", Id, sa.ForeignKey("oidc_sessions.session_id")),
    sa.Column("family_id", Key(43)),
    sa.Column("scope", sa.Text, nullable=False),
    sa.Column("claims", sa.JSON),  # the ``claims`` request parameter (its userinfo part is used)
    sa.Column("acr", sa.String(40)),
    sa.Column("amr", sa.JSON),
    sa.Column("auth_time", UTCDateTime),
    sa.Column("issued_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("rotated_at", UTCDateTime),  # a refresh token, exchanged for the next one
    sa.Column("revoked_at", UTCDateTime),
    sa.Column("revoke_reason", sa.String(30)),
    # the RFC 7638 thumbprint of the DPoP key the token is bound to (``cnf.jkt``, RFC 9449 s.6); NULL: a
    # bearer token (a refresh token is bound only for a public client, s.5)
    sa.Column("jkt", Key(43)),
    sa.CheckConstraint(one_of("kind", "access", "refresh"), name="kind"),
    sa.Index("ix_oidc_tokens_jti", "jti", unique=True),
    *(sa.Index(name, column, unique=unique, sqlite_where=sa.text(where), postgresql_where=sa.text(where))
      for name, column, unique, where in TOKEN_PARTIAL_INDEXES),
)

# What a person allowed a relying party to receive, remembered until ``expires_at``.
oidc_consents = sa.Table(
    "oidc_consents", metadata,
    sa.Column("account_id", Id, sa.ForeignKey("eid_accounts.account_id"), primary_key=True),
    sa.Column("client_id", Key(64), sa.ForeignKey("oidc_clients.client_id"), primary_key=True),
    sa.Column("scope", sa.Text, nullable=False),
    sa.Column("claims", sa.JSON, nullable=False),  # the claim names granted
    sa.Column("granted_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("revoked_at", UTCDateTime),
)

# ``jti`` of the client assertions seen (private_key_jwt), so that none is accepted twice.
oidc_assertions = sa.Table(
    "oidc_assertions", metadata,
    sa.Column("client_id", Key(64), primary_key=True),
    sa.Column("jti", sa.String(128), primary_key=True),
    sa.Column("expires_at", UTCDateTime, nullable=False),
)

# DPoP proofs accepted (RFC 9449 s.11.1): SHA-256 of the key's thumbprint and the proof's ``jti``,
# kept until the proof's ``iat`` is out of the window, so that none is accepted twice (oidc.dpop).
oidc_dpop_proofs = sa.Table(
    "oidc_dpop_proofs", metadata,
    sa.Column("proof_hash", Key(64), primary_key=True),
    sa.Column("expires_at", UTCDateTime, nullable=False, index=True),
)
