"""Relying parties: registration, approval against an agreement, and the client model Authlib uses.

A client is registered ``pending``. It can neither start a login nor obtain a token until it is
approved with the reference of its signed agreement, the scope and purpose stated there, and the
attested information-security level (level 3 or above, as Decree 69/2024 asks of relying
parties). Client secrets are shown once and stored as their SHA-256.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from types import SimpleNamespace
from urllib.parse import urlsplit

import sqlalchemy as sa
from authlib.oauth2.rfc6749 import ClientMixin, list_to_scope, scope_to_list
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from dinhdanh.oidc.claims import OFFICER_SCOPE, PARTNER_SCOPES, SCOPES
from dinhdanh.oidc.tables import AUTH_METHODS, oidc_clients
from dinhdanh.registry.errors import InvalidInput, NotFound, RuleViolation
from dinhdanh.store.base import utcnow
from dinhdanh.store.prepared import Prepared

GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")
DEFAULT_GRANTS = ("authorization_code", "refresh_token")
MIN_SECURITY_LEVEL = 3
LOOPBACK = ("127.0.0.1", "localhost", "[::1]", "::1")
ID_TOKEN_ALGS = ("ES256", "RS256")  # keys.ALGS; ES256 unless the client registered RS256


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class Client(ClientMixin):
    """A relying party, as Authlib's grants and endpoints see it."""

    client_id: str
    name: str
    auth_method: str
    secret_hash: str | None
    jwks: dict | None
    redirect_uris: tuple[str, ...]
    post_logout_redirect_uris: tuple[str, ...]
    scopes: tuple[str, ...]
    grant_types: tuple[str, ...]
    sector: str
    status: str
    purpose: str | None = None
    id_token_signed_response_alg: str = "ES256"
    dpop_bound_access_tokens: bool = False  # RFC 9449 s.5.2: a DPoP proof with every token request
    client_metadata: dict = field(default_factory=dict, compare=False)
    officer: bool = False  # an officer client: may ask for dinhdanh.officer (oidc.officers)

    @property
    def public(self) -> bool:
        """A client without credentials (none are registered today: every method here authenticates)."""
        return self.auth_method == "none"

    @property
    def approved(self) -> bool:
        return self.status == "approved"

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self):
        return None  # OpenID Connect: redirect_uri is required in every request

    def get_allowed_scope(self, scope):
        if not scope:
            return list_to_scope(self.scopes)
        allowed = set(self.scopes)
        return list_to_scope([s for s in dict.fromkeys(scope_to_list(scope)) if s in allowed])

    def check_redirect_uri(self, redirect_uri) -> bool:
        return redirect_uri in self.redirect_uris  # exact match, no patterns

    def check_client_secret(self, client_secret) -> bool:
        return self.secret_hash is not None and hmac.compare_digest(self.secret_hash, _hash(client_secret))

    def check_endpoint_auth_method(self, method, endpoint) -> bool:
        return method == self.auth_method

    def check_response_type(self, response_type) -> bool:
        return response_type == "code" and "authorization_code" in self.grant_types

    def check_grant_type(self, grant_type) -> bool:
        # a client awaiting approval (or suspended) obtains nothing
        return self.approved and grant_type in self.grant_types

    def public_keys(self) -> KeySet:
        return KeySet.import_key_set(self.jwks or {"keys": []})


def _client(row) -> Client:
    return Client(
        client_id=row.client_id, name=row.name, auth_method=row.auth_method, secret_hash=row.secret_hash,
        jwks=row.jwks, redirect_uris=tuple(row.redirect_uris), post_logout_redirect_uris=tuple(
            row.post_logout_redirect_uris), scopes=tuple(row.scopes.split()), grant_types=tuple(row.grant_types),
        sector=row.sector or sector_of(row.redirect_uris), status=row.status, purpose=row.purpose,
        id_token_signed_response_alg=row.id_token_alg or "ES256",
        dpop_bound_access_tokens=bool(row.dpop_bound_access_tokens),
        client_metadata={"post_logout_redirect_uris": list(row.post_logout_redirect_uris)},
        officer=bool(row.officer),
    )


# what ``_client`` reads of a client's row
CLIENT_FIELDS = ("client_id", "name", "auth_method", "secret_hash", "jwks", "redirect_uris", "post_logout_redirect_uris",
                 "scopes", "grant_types", "sector", "status", "purpose", "id_token_alg", "dpop_bound_access_tokens",
                 "officer")


def client_columns(prefix: str = "client_") -> list:
    """The client's row as columns of another statement (``prefix`` + name), for ``client_in``:
    the token a resource is shown is read with its client in one query (``tokens._BY_JTI_AND_KEY``)."""
    return [oidc_clients.c[name].label(prefix + name) for name in CLIENT_FIELDS]


def client_in(row: sa.Row, prefix: str = "client_") -> Client | None:
    """The client read with ``client_columns`` in ``row``; None when there was none."""
    values = row._mapping
    if values[prefix + "client_id"] is None:
        return None
    return _client(SimpleNamespace(**{name: values[prefix + name] for name in CLIENT_FIELDS}))


def load_client(conn: sa.Connection, client_id) -> Client | None:
    if not isinstance(client_id, str) or not client_id or len(client_id) > 64:
        return None
    raw = _BY_ID.first_raw(conn, {"client_id": client_id})
    if raw is None:
        return None
    # the row is read every time (a suspension acts at once); what was made of an identical row
    # (its JSON columns parsed, the Client built: a twentieth of a token's CPU) is kept
    key = (conn.dialect.name, raw)
    try:
        made = _MADE.get(key)
    except TypeError:  # a driver that gives JSON columns parsed (psycopg): nothing to keep
        return _client(_BY_ID.convert(conn, raw))
    if made is None:
        if len(_MADE) >= _MADE_MAX:
            _MADE.clear()
        made = _MADE[key] = _client(_BY_ID.convert(conn, raw))
    return made


_MADE: dict[tuple, Client] = {}  # (dialect, the row as the driver gave it) -> the Client (frozen)
_MADE_MAX = 10_000


# every token request looks its client up: on the driver's cursor (``store.prepared``)
_BY_ID = Prepared(sa.select(*(oidc_clients.c[name] for name in CLIENT_FIELDS))
                  .where(oidc_clients.c.client_id == sa.bindparam("client_id")))


def sector_of(redirect_uris) -> str:
    """The pairwise sector of a client without a registered one: the host of its redirect URIs."""
    hosts = {urlsplit(u).hostname for u in redirect_uris}
    return hosts.pop() if len(hosts) == 1 else ""


def _check_uri(uri: str, field_name: str) -> str:
    if not isinstance(uri, str) or len(uri) > 500:
        raise InvalidInput("A redirect URI must be at most 500 characters.", field=field_name)
    parts = urlsplit(uri)
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.fragment:
        raise InvalidInput(f"Not an absolute http(s) URI without fragment: {uri}", field=field_name)
    if parts.scheme == "http" and parts.hostname not in LOOPBACK:
        raise InvalidInput(f"Only https redirect URIs are allowed (http for loopback only): {uri}",
                           field=field_name)
    return uri


def _check_jwks(jwks) -> dict:
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list) or not jwks["keys"]:
        raise InvalidInput("The client's JWKS must be a JSON object with a non-empty 'keys' array.", field="jwks")
    for key in jwks["keys"]:
        if not isinstance(key, dict) or any(p in key for p in ("d", "p", "q", "dp", "dq", "qi", "k")):
            raise InvalidInput("The client's JWKS must hold public keys only.", field="jwks")
        if key.get("kty") not in ("EC", "RSA", "OKP"):
            raise InvalidInput("The client's keys must be EC, RSA or OKP keys.", field="jwks")
    try:
        KeySet.import_key_set(jwks)
    except (JoseError, ValueError, TypeError, KeyError):
        raise InvalidInput("The client's JWKS cannot be read as a JSON Web Key Set.", field="jwks") from None
    return jwks


def register_client(conn: sa.Connection, *, name: str, redirect_uris: list[str], scopes: str,
                    auth_method: str = "client_secret_basic", jwks: dict | None = None,
                    grant_types: list[str] | None = None, sector: str | None = None,
                    post_logout_redirect_uris: list[str] | None = None, actor: str = "system",
                    client_id: str | None = None, id_token_alg: str = "ES256", officer: bool = False) -> dict:
    """Register a relying party, ``pending`` until approved. Returns its id and (for
    ``client_secret_basic``) its secret, shown this once. ``id_token_alg`` is how its ID tokens
    are signed (``id_token_signed_response_alg``): ES256, or RS256 for those that need it.
    ``officer``: an officer client (the console, officers' tools), the only kind given the scope
    ``dinhdanh.officer`` (added to its scopes), for the authorization code grant only."""
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise InvalidInput("The client's name must be 1 to 200 characters.", field="name")
    if auth_method not in AUTH_METHODS:
        raise InvalidInput(f"The authentication method must be one of {', '.join(AUTH_METHODS)}.",
                           field="auth")
    if id_token_alg not in ID_TOKEN_ALGS:
        raise InvalidInput(f"The ID token algorithm must be one of {', '.join(ID_TOKEN_ALGS)}.",
                           field="id_token_alg")
    grants = tuple(dict.fromkeys(grant_types or DEFAULT_GRANTS))
    if not grants or any(g not in GRANT_TYPES for g in grants):
        raise InvalidInput(f"Grant types must be among {', '.join(GRANT_TYPES)}.", field="grant")
    wanted = list(dict.fromkeys(scope_to_list(scopes or "") or []))
    unknown = [s for s in wanted if s not in SCOPES]
    if unknown:
        raise InvalidInput(f"Unknown scope(s): {' '.join(unknown)}; known: {' '.join(SCOPES)}.", field="scopes")
    if officer:
        if "authorization_code" not in grants or "client_credentials" in grants:
            raise InvalidInput("An officer client signs officers in: the authorization code grant (and refresh "
                               "tokens), no client credentials.", field="grant")
        wanted = [*wanted, OFFICER_SCOPE] if OFFICER_SCOPE not in wanted else wanted
    elif OFFICER_SCOPE in wanted:
        raise InvalidInput(f"The scope {OFFICER_SCOPE} is for officer clients only (--officer).", field="scopes")
    uris = [_check_uri(u, "redirect_uri") for u in dict.fromkeys(redirect_uris or [])]
    logout_uris = [_check_uri(u, "post_logout_redirect_uri") for u in dict.fromkeys(post_logout_redirect_uris or [])]
    if "authorization_code" in grants:
        if not uris:
            raise InvalidInput("A client that logs people in needs at least one redirect URI.",
                               field="redirect_uri")
        if "openid" not in wanted:
            raise InvalidInput("A client that logs people in needs the 'openid' scope.", field="scopes")
    elif "refresh_token" in grants:
        raise InvalidInput("Refresh tokens come with the authorization code grant only.", field="grant")
    if "client_credentials" in grants and not [s for s in wanted if s in PARTNER_SCOPES]:
        raise InvalidInput(f"A client-credentials client needs a partner scope ({' '.join(PARTNER_SCOPES)}).",
                           field="scopes")
    if sector is not None:
        sector = sector.strip().lower()
        if not sector or len(sector) > 255 or any(c in sector for c in "|/ "):
            raise InvalidInput("The sector identifier must be a host name.", field="sector")
    elif uris and not sector_of(uris):
        raise InvalidInput("The redirect URIs are on several hosts: give the sector (--sector) that "
                           "groups them, so the person keeps one pairwise identifier.", field="sector")
    secret = None
    if auth_method == "private_key_jwt":
        if jwks is None:
            raise InvalidInput("private_key_jwt needs the client's public keys (--jwks).", field="jwks")
        jwks = _check_jwks(jwks)
    else:
        if jwks is not None:
            raise InvalidInput("A JWKS is only used with private_key_jwt.", field="jwks")
        secret = secrets.token_urlsafe(32)
    client_id = client_id or "dd-" + secrets.token_urlsafe(15)
    if load_client(conn, client_id) is not None:
        raise RuleViolation("A client with this id exists already.", code="client_exists", field="client_id")
    conn.execute(oidc_clients.insert().values(
        client_id=client_id, name=name, auth_method=auth_method, secret_hash=_hash(secret) if secret else None,
        jwks=jwks, redirect_uris=uris, post_logout_redirect_uris=logout_uris, scopes=" ".join(wanted),
        grant_types=list(grants), sector=sector, status="pending", created_at=utcnow(), created_by=actor,
        id_token_alg=None if id_token_alg == "ES256" else id_token_alg, officer=bool(officer)))
    out = {"client_id": client_id, "client_secret": secret, "name": name, "status": "pending",
           "token_endpoint_auth_method": auth_method, "redirect_uris": uris,
           "post_logout_redirect_uris": logout_uris, "scope": " ".join(wanted), "grant_types": list(grants),
           "sector": sector or sector_of(uris), "id_token_signed_response_alg": id_token_alg,
           "officer": bool(officer)}
    return out


def approve_client(conn: sa.Connection, client_id: str, *, agreement: str, purpose: str, security_level: int,
                   actor: str) -> dict:
    """Approve a client against its signed agreement (reference, purpose, security level >= 3)."""
    agreement = (agreement or "").strip()
    purpose = (purpose or "").strip()
    if not agreement or len(agreement) > 100:
        raise InvalidInput("The agreement reference must be 1 to 100 characters.", field="agreement")
    if not purpose or len(purpose) > 2000:
        raise InvalidInput("State the purpose (1 to 2000 characters) as written in the agreement.", field="purpose")
    if not isinstance(security_level, int) or not MIN_SECURITY_LEVEL <= security_level <= 5:
        raise RuleViolation("A relying party must meet information-security level 3 or above.",
                            code="security_level", field="security_level")
    if load_client(conn, client_id) is None:
        raise NotFound("No such client.", field="client_id")
    conn.execute(oidc_clients.update().where(oidc_clients.c.client_id == client_id).values(
        status="approved", agreement=agreement, purpose=purpose, security_level=security_level,
        approved_at=utcnow(), approved_by=actor))
    return client_view(conn, client_id)


def suspend_client(conn: sa.Connection, client_id: str, *, actor: str) -> dict:
    """Stop a client: no new login, no token; the tokens it holds are revoked."""
    from dinhdanh.oidc.tokens import revoke_client_tokens

    if load_client(conn, client_id) is None:
        raise NotFound("No such client.", field="client_id")
    conn.execute(oidc_clients.update().where(oidc_clients.c.client_id == client_id).values(status="suspended"))
    revoke_client_tokens(conn, client_id, "client_suspended")
    return client_view(conn, client_id)


def client_view(conn: sa.Connection, client_id: str) -> dict:
    row = conn.execute(sa.select(oidc_clients).where(oidc_clients.c.client_id == client_id)).first()
    if row is None:
        raise NotFound("No such client.", field="client_id")
    return {"client_id": row.client_id, "name": row.name, "status": row.status,
            "token_endpoint_auth_method": row.auth_method, "redirect_uris": row.redirect_uris,
            "post_logout_redirect_uris": row.post_logout_redirect_uris, "scope": row.scopes,
            "grant_types": row.grant_types, "sector": row.sector or sector_of(row.redirect_uris),
            "id_token_signed_response_alg": row.id_token_alg or "ES256", "officer": bool(row.officer),
            "dpop_bound_access_tokens": row.dpop_bound_access_tokens, "agreement": row.agreement, "purpose": row.purpose, "security_level": row.security_level,
            "created_at": row.created_at, "approved_at": row.approved_at, "approved_by": row.approved_by}


def list_clients(conn: sa.Connection) -> list[dict]:
    ids = conn.execute(sa.select(oidc_clients.c.client_id).order_by(oidc_clients.c.created_at)).scalars().all()
    return [client_view(conn, i) for i in ids]


def reset_secret(conn: sa.Connection, client_id: str) -> str:
    """A new secret for a client_secret_basic client (the old one stops working at once)."""
    client = load_client(conn, client_id)
    if client is None:
        raise NotFound("No such client.", field="client_id")
    if client.auth_method != "client_secret_basic":
        raise RuleViolation("This client authenticates with its keys, not a secret.", code="no_secret")
    secret = secrets.token_urlsafe(32)
    conn.execute(oidc_clients.update().where(oidc_clients.c.client_id == client_id).values(secret_hash=_hash(secret)))
    return secret


def require_dpop(conn: sa.Connection, client_id: str, required: bool) -> None:
    """Whether the client must send a DPoP proof with every token request (``dpop_bound_access_tokens``)."""
    conn.execute(oidc_clients.update().where(oidc_clients.c.client_id == client_id)
                 .values(dpop_bound_access_tokens=required))


def set_redirect_uris(conn: sa.Connection, client_id: str, redirect_uris: list[str],
                      post_logout_redirect_uris: list[str]) -> None:
    uris = [_check_uri(u, "redirect_uri") for u in dict.fromkeys(redirect_uris)]
    logout = [_check_uri(u, "post_logout_redirect_uri") for u in dict.fromkeys(post_logout_redirect_uris)]
    conn.execute(oidc_clients.update().where(oidc_clients.c.client_id == client_id).values(
        redirect_uris=uris, post_logout_redirect_uris=logout))
