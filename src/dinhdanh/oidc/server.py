"""The authorization server: Authlib's ``AuthorizationServer`` with our grants, endpoints and storage.

One ``Provider`` is built per HTTP request around that request's database connection (the
transaction of the request), the vault and the issuer, so there is no state shared between
requests. It is framework-neutral: it reads an ``HttpRequest`` (method, URI, headers, query and
form pairs, already read from the wire) and answers ``(status, body, headers)``; the web layer
subclasses it to turn that into a Starlette response (``web/oidc.py``).

Wiring (Authlib's registries, filled when a request first uses them): grants
``AuthorizationCodeGrant`` + ``S256CodeChallenge`` (RFC 7636) +
``OpenIDCode`` (ID token), ``RefreshTokenGrant`` (rotation), ``ClientCredentialsGrant``; client
authentication ``client_secret_basic`` (Authlib's) and ``private_key_jwt`` (RFC 7523); endpoints
revocation (RFC 7009), introspection (RFC 7662), userinfo (OIDC Core s.5.3) and end-session
(RP-initiated logout); token generation in ``generate_bearer_token`` (JWT access tokens), bound to
the client's key when the token request carries a DPoP proof (RFC 9449, ``oidc.dpop``). A
partner's plain client-credentials request and a relying party's plain refresh are granted by
``Provider._plain_token`` with the same checks; whatever it would not grant goes Authlib's way.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import logging
import secrets
from collections import defaultdict
from dataclasses import dataclass, field
from functools import cached_property

import sqlalchemy as sa
from authlib.oauth2.rfc6749 import (AuthorizationServer, InvalidRequestError, InvalidScopeError, OAuth2Error,
                                    OAuth2Payload, OAuth2Request, UnauthorizedClientError)
from authlib.common.security import is_secure_transport
from authlib.oauth2.rfc6749.authenticate_client import ClientAuthentication
from authlib.oauth2.rfc6749.errors import InsecureTransportError
from authlib.oauth2.rfc6749.hooks import Hookable
from authlib.oauth2.rfc6749.requests import JsonPayload, JsonRequest
from authlib.oauth2.rfc6749.util import extract_basic_authorization
from authlib.oidc.core.errors import RequestNotSupportedError, RequestURINotSupportedError

from dinhdanh.eid import auth as eid
from dinhdanh.oidc import dpop, keys, tokens
from dinhdanh.oidc import officers as officer_sign_in
from dinhdanh.oidc.claims import (OFFICER_SCOPE, PARTNER_SCOPES, SCOPES, USER_SCOPES, acr_of, claims_for_scope, pairwise_subject,
                                  parse_claims_request)
from dinhdanh.oidc.clients import Client, client_in, load_client
from dinhdanh.oidc.core import OpenIDCode, UserInfoEndpoint
from dinhdanh.oidc.rfc6749 import (AuthorizationCodeGrant, ClientCredentialsGrant, EndUser, RefreshTokenGrant,
                                   refresh_user, refuse_repeated)
from dinhdanh.oidc.rfc7009 import RevocationEndpoint
from dinhdanh.oidc.rfc7523 import PrivateKeyJWT
from dinhdanh.oidc.rfc7636 import S256CodeChallenge
from dinhdanh.oidc.rfc7662 import IntrospectionEndpoint
from dinhdanh.oidc.rpinitiated import EndSessionEndpoint
from dinhdanh.eid.tables import eid_accounts
from dinhdanh.oidc.tables import oidc_sessions
from dinhdanh.store.base import utcnow
from dinhdanh.store.vault import Vault

log = logging.getLogger("dinhdanh.oidc")
MAX_PARAM = 2048  # characters of any one parameter (a claims request fits; a megabyte does not)
_SCOPES = list(SCOPES)  # what the provider supports (``scopes_supported``), never changed


def _authorization(value: str) -> str | None:
    """The Authorization header as Authlib can read it. Authlib 1.9 raises (a 500) on a header of
    one word or on Basic credentials that are not UTF-8: the first is dropped, the second becomes
    empty credentials, which are refused like wrong ones (401 invalid_client)."""
    parts = value.split(None, 1)
    if len(parts) != 2:
        return None
    if parts[0].lower() == "basic":
        try:
            decoded = base64.b64decode(parts[1], validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            return "Basic Og=="
        if ":" not in decoded:
            return "Basic Og=="
    return value


class Headers(dict):
    """Case-insensitive header lookup (Authlib reads ``Authorization``)."""

    def __init__(self, pairs):
        super().__init__((k.lower(), v) for k, v in pairs)
        if "authorization" in self:
            value = _authorization(self["authorization"])
            if value is None:
                del self["authorization"]
            else:
                self["authorization"] = value

    def get(self, key, default=None):
        return super().get(key.lower(), default)

    def __getitem__(self, key):
        return super().__getitem__(key.lower())

    def __contains__(self, key):
        return super().__contains__(key.lower())


@dataclass
class HttpRequest:
    """An HTTP request as read by the web layer."""

    method: str
    uri: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    query: list[tuple[str, str]] = field(default_factory=list)
    form: list[tuple[str, str]] = field(default_factory=list)
    ip: str | None = None

    @property
    def user_agent(self) -> str | None:
        return Headers(self.headers).get("user-agent")


class Payload(OAuth2Payload):
    def __init__(self, pairs):
        self._datalist = defaultdict(list)
        for k, v in pairs:
            self._datalist[k].append(v)
        self._data = {k: v[0] for k, v in self._datalist.items()}

    @property
    def data(self):
        return self._data

    @property
    def datalist(self):
        return self._datalist


class Request(OAuth2Request):
    """Authlib's request over an ``HttpRequest``; ``params`` replaces the payload (a stored or
    pushed authorization request).

    ``OAuth2Request.__init__`` is not called: it would parse the URI again to refuse plain http
    (``InsecureTransportError.check``), which depends on the URI's origin only (the issuer, for
    every request here); that check is made once per origin (``_check_transport``). The attributes
    are the ones it sets (a test compares them with Authlib's)."""

    def __init__(self, http: HttpRequest, params: dict | None = None):
        _check_transport(http.uri)
        self.method = http.method
        self.uri = http.uri
        self.headers = Headers(http.headers)
        self._body = None
        self.client = self.auth_method = self.user = self.authorization_code = None
        self.refresh_token = self.credential = self._scope = None
        self.http = http
        if params is not None:
            pairs = list(params.items())
        else:
            pairs = http.form if http.method == "POST" else http.query
        self.payload = Payload(pairs)
        self._args = {k: v for k, v in reversed(http.query)}
        self._form = {k: v for k, v in reversed(http.form)}

    @property
    def args(self):
        return self._args

    @property
    def form(self):
        return self._form


@dataclass(frozen=True)
class _Granted:
    """What ``save_token`` reads of a token request granted without Authlib's request object
    (``Provider._plain_token``): the client, and the person and the refresh token exchanged, if any."""

    client: Client
    user: EndUser | None = None
    authorization_code: None = None
    refresh_token: tokens.Token | None = None


def _check_transport(uri: str) -> None:
    """Authlib's refusal of plain http (``InsecureTransportError``), decided once per origin."""
    end = uri.find("/", uri.find("//") + 2) if "//" in uri else -1
    origin = uri if end < 0 else uri[:end]
    secure = _SECURE_ORIGINS.get(origin)
    if secure is None:
        secure = is_secure_transport(origin + "/")
        if len(_SECURE_ORIGINS) < 64:  # the issuer and a few others; never grows with requests
            _SECURE_ORIGINS[origin] = secure
    if not secure:
        raise InsecureTransportError()


_SECURE_ORIGINS: dict[str, bool] = {}


class Provider(AuthorizationServer):
    """Authlib's ``AuthorizationServer`` for one request (see the module's notes).

    Authlib's registries (grants, endpoints, client authentication) are filled when a request first
    needs them, not in ``__init__``: a token request uses one grant and no endpoint, and registering
    everything for each of thousands of requests a second cost a twentieth of a token's CPU. What is
    registered is what ``AuthorizationServer.__init__`` and the ``register_*`` calls would hold."""

    def __init__(self, conn: sa.Connection, vault: Vault, issuer: str, now: dt.datetime | None = None,
                 held_keys: keys.SigningKeys | None = None):
        Hookable.__init__(self)  # not AuthorizationServer.__init__: its registries are the properties below
        self.scopes_supported = _SCOPES
        self._token_generators = {"default": self.generate_bearer_token}
        self._client_auth = None  # made with the client authentication methods when first used
        self._extensions = []
        self.conn = conn
        self.held_keys = held_keys  # the serving process's signing keys (keys.SigningKeys), if it keeps them
        self.vault = vault
        self.issuer = issuer
        self.now = now or utcnow()
        self._signing_keys: dict[str, object] = {}
        self._claims: dict[int, dict] = {}
        self._minted: dict[str, tuple[str, dt.datetime]] = {}
        self.dpop_proof: dpop.Proof | None = None  # the token request's DPoP proof, checked and spent

    @cached_property
    def _token_grants(self) -> list:
        return [(AuthorizationCodeGrant, [S256CodeChallenge(), OpenIDCode(self)]), (RefreshTokenGrant, None),
                (ClientCredentialsGrant, None)]

    @cached_property
    def _authorization_grants(self) -> list:
        return [grant for grant in self._token_grants if hasattr(grant[0], "check_authorization_endpoint")]

    @cached_property
    def _endpoints(self) -> dict:
        return {cls.ENDPOINT_NAME: [cls(self)] for cls in (RevocationEndpoint, IntrospectionEndpoint)}

    def _client_authentication(self) -> ClientAuthentication:
        if self._client_auth is None:
            self._client_auth = ClientAuthentication(self.query_client)
            self._client_auth.register("private_key_jwt", PrivateKeyJWT(self.conn, self.assertion_audiences()))
        return self._client_auth

    # -------------------------------------------------------------- what Authlib asks of us

    def query_client(self, client_id) -> Client | None:
        return load_client(self.conn, client_id)

    def create_token_response(self, request=None):
        """The token endpoint, with its DPoP proof (if any) checked first (RFC 9449 s.5)."""
        if isinstance(request, HttpRequest):
            granted = self._plain_token(request)
            if granted is not None:
                return granted
        request = self.create_oauth2_request(request)
        http = request.http
        try:
            refuse_repeated(request.payload)
            self.dpop_proof = dpop.token_request_proof(self.conn, _dpop_headers(http), url=_without_query(http.uri),
                                                       now=self.now)
        except OAuth2Error as error:
            return self.handle_error_response(request, error)
        return super().create_token_response(request)

    def _plain_token(self, http: HttpRequest):
        """The two commonest token requests, granted without Authlib's dispatch (its request
        object, grant lookup, authentication registry and hooks cost a fifth of a token's CPU): a
        partner's machine asking for a client-credentials token (``_partner_token``) and a relying
        party's server rotating a refresh token (``_rotated_token``), each with the client's secret
        in the Basic header (RFC 6749 s.2.3.1), no DPoP proof and nothing else. The same checks
        and the same functions as the general way: Authlib's reading of the header, the client's
        own checks (``Client``), the grants' checks, ``generate_bearer_token`` and ``save_token``.
        A request the general way would not grant returns None, nothing written, and goes the
        general way, so that every refusal is Authlib's (and a reused refresh token's family is
        revoked there)."""
        if http.method != "POST" or http.query or not 1 <= len(http.form) <= 2:
            return None
        _check_transport(http.uri)  # plain http is refused whatever the request
        form = dict(http.form)
        if len(form) != len(http.form):
            return None
        grant_type = form.get("grant_type")
        if grant_type == ClientCredentialsGrant.GRANT_TYPE and form.keys() <= {"grant_type", "scope"}:
            answer = self._partner_token
        elif grant_type == RefreshTokenGrant.GRANT_TYPE and form.keys() == {"grant_type", "refresh_token"}:
            answer = self._rotated_token
        else:
            return None
        headers = Headers(http.headers)
        if "dpop" in headers:
            return None
        client_id, secret = extract_basic_authorization(headers)
        if not client_id or not secret:
            return None
        client = self.query_client(client_id)
        if client is None or not client.check_endpoint_auth_method("client_secret_basic", "token") or \
                not client.check_client_secret(secret) or client.dpop_bound_access_tokens or \
                not client.check_grant_type(grant_type):
            return None
        return answer(client, form)

    def _partner_token(self, client: Client, form: dict):
        """A client-credentials token (RFC 6749 s.4.4) for an authenticated client (``_plain_token``)."""
        scope = form.get("scope")
        try:
            self.validate_requested_scope(scope)
            ClientCredentialsGrant.check_partner_scope(scope)
            token = self.generate_bearer_token(ClientCredentialsGrant.GRANT_TYPE, client, scope=scope,
                                               include_refresh_token=False)
        except OAuth2Error:
            return None
        self.save_token(token, _Granted(client))
        return self.handle_response(200, token, ClientCredentialsGrant.TOKEN_RESPONSE_HEADER)

    def _rotated_token(self, client: Client, form: dict):
        """A refresh token exchanged for new tokens (RFC 6749 s.6), for an authenticated client
        (``_plain_token``), as ``RefreshTokenGrant`` does, in another order: only a token in force
        (the client's, not exchanged, revoked or expired, bound to no DPoP key) for a person who
        may still have tokens (``refresh_user``) is marked exchanged here. Any other goes the
        general way, which finds it the same and refuses it, revoking the family of an exchanged
        one. Marking it may still fail (exchanged or revoked by a concurrent request since it was
        read): then the general way reads it again, exchanged or revoked, and does the same."""
        found = tokens.find(self.conn, form["refresh_token"], "refresh", self.now)
        if found is None or found.row.client_id != client.client_id or not found.is_active() or \
                found.row.jkt is not None:
            return None
        try:
            user = refresh_user(self, found.row, client)
        except OAuth2Error:
            return None
        if not tokens.mark_rotated(self.conn, found.row.token_id, self.now):
            return None
        token = self.generate_bearer_token(RefreshTokenGrant.GRANT_TYPE, client, user=user, scope=found.get_scope(),
                                           include_refresh_token=RefreshTokenGrant.INCLUDE_NEW_REFRESH_TOKEN)
        self.save_token(token, _Granted(client, user=user, refresh_token=found))
        return self.handle_response(200, token, RefreshTokenGrant.TOKEN_RESPONSE_HEADER)

    def authenticate_client(self, request, methods, endpoint="token"):
        client = self._client_authentication()(request, methods, endpoint)
        if endpoint == "token" and client.dpop_bound_access_tokens and self.dpop_proof is None:
            # RFC 9449 s.5.2: never a bearer token for this client (refused before a code is spent)
            raise dpop.InvalidDPoPProofError("This client must send a DPoP proof (the DPoP header) with every "
                                             "token request.")
        return client

    def create_oauth2_request(self, request) -> OAuth2Request:
        if isinstance(request, OAuth2Request):
            return request
        return Request(request)

    def create_json_request(self, request) -> JsonRequest:
        json_request = JsonRequest(request.method, request.uri, Headers(request.headers))
        json_request.payload = JsonPayload()
        return json_request

    def handle_response(self, status, body, headers):
        return status, body, headers

    def send_signal(self, name, *args, **kwargs):
        log.debug("oidc signal %s", name)

    def validate_requested_scope(self, scope):
        if scope and len(scope) > MAX_PARAM:
            raise InvalidScopeError()
        super().validate_requested_scope(scope)

    def save_token(self, token: dict, request) -> None:
        user: EndUser | None = request.user
        client = request.client
        jti, expires = self._minted[token["access_token"]]
        source = request.authorization_code or request.refresh_token
        family = source.row.family_id if source is not None else None
        common = {"client_id": client.client_id, "scope": token.get("scope", ""), "issued_at": self.now,
                  "family_id": family}
        if user is not None:
            common.update(account_id=user.account_id, session_id=user.session_id, claims=user.claims_request,
                          acr=user.acr, amr=list(user.amr), auth_time=user.auth_time)
        jkt = self.dpop_proof.jkt if self.dpop_proof is not None else None
        tokens.store(self.conn, kind="access", value=token["access_token"], jti=jti, expires_at=expires, jkt=jkt,
                     **common)
        if "refresh_token" in token:
            # RFC 9449 s.5: a public client's refresh token is bound to its key; a confidential
            # client's is bound to the client's own authentication
            # an officer's refresh token ends with their sign-in's working day (oidc.officers)
            refresh_expires = officer_sign_in.refresh_expiry(common["scope"], common.get("auth_time"),
                                                             self.now + tokens.REFRESH_TTL)
            tokens.store(self.conn, kind="refresh", value=token["refresh_token"], jti=tokens.new_jti(),
                         expires_at=refresh_expires, jkt=jkt if client.public else None, **common)

    def generate_bearer_token(self, grant_type, client: Client, user: EndUser | None = None, scope=None,
                              expires_in=None, include_refresh_token=True) -> dict:
        scope = client.get_allowed_scope(scope) or ""
        if grant_type == "client_credentials":
            scope = " ".join(s for s in scope.split() if s in PARTNER_SCOPES)
            if not scope:
                raise InvalidScopeError("No partner scope was asked for or granted to this client.")
            subject, extra = client.client_id, {}
        else:
            scope = " ".join(s for s in scope.split() if s in USER_SCOPES)
            subject = self.pairwise_sub(client, user.subject)
            extra = {"acr": user.acr, "auth_time": int(user.auth_time.timestamp())}
        if self.dpop_proof is not None:
            extra["cnf"] = {"jkt": self.dpop_proof.jkt}  # RFC 9449 s.6.1
        value, jti, expires = tokens.mint_access_token(self.conn, self.vault, issuer=self.issuer,
                                                       client_id=client.client_id, subject=subject, scope=scope,
                                                       now=self.now, extra=extra, key=self.signing_key(keys.ALG))
        self._minted[value] = (jti, expires)
        token = {"token_type": "DPoP" if self.dpop_proof is not None else "Bearer", "access_token": value, "expires_in": int(tokens.ACCESS_TTL.total_seconds()),
                 "scope": scope}
        if include_refresh_token and user is not None:
            token["refresh_token"] = secrets.token_urlsafe(48)
        return token

    # -------------------------------------------------------------- the provider's own pieces

    def signing_key(self, alg: str = keys.ALG):
        """The key that signs with ``alg`` at this request's time (``keys.signing_key``)."""
        if alg not in self._signing_keys:
            held = self.held_keys
            self._signing_keys[alg] = (keys.signing_key(self.conn, self.vault, self.now, alg) if held is None
                                       else held.get(self.conn, self.vault, self.now, alg))
        return self._signing_keys[alg]

    def assertion_audiences(self) -> list[str]:
        """What a client assertion's ``aud`` may be: the issuer, or the endpoint it is sent to."""
        return [self.issuer, *(f"{self.issuer}/{p}" for p in ("token", "par", "revoke", "introspect"))]

    def pairwise_sub(self, client: Client, subject: str) -> str:
        held = self.held_keys
        secret = (keys.secret(self.conn, self.vault, "pairwise") if held is None
                  else held.pairwise(self.conn, self.vault))
        return pairwise_subject(client.sector, subject, secret)

    def person_claims(self, account_id: int) -> dict:
        if account_id not in self._claims:
            self._claims[account_id] = eid.claims(self.conn, account_id)
        return self._claims[account_id]

    def end_user(self, account_id: int | None, *, acr: str | None, amr, auth_time: dt.datetime | None,
                 session_id: int | None = None, claims_request: dict | None = None, client=None,
                 sid: str | None = None) -> EndUser | None:
        """The person behind a grant, if their account is still usable (not locked, not revoked)."""
        if account_id is None:
            return None
        try:
            who = eid.principal(self.conn, account_id)
        except eid.LoginRefused:
            return None
        if session_id is not None and sid is None:
            sid = self.conn.execute(sa.select(oidc_sessions.c.sid).where(
                oidc_sessions.c.session_id == session_id)).scalar()
        return EndUser(account_id=who.account_id, subject=who.subject, kind=who.kind, level=who.level,
                       acr=acr or acr_of(1), amr=tuple(amr or ()), auth_time=auth_time or self.now,
                       session_id=session_id, sid=sid, claims_request=claims_request, client=client)

    def dpop_token(self, value, http: HttpRequest) -> tokens.Token:
        """The access token presented with ``Authorization: DPoP``, its proof checked against this
        request (``dpop.check_token_use``); raises ``dpop.ResourceRefusal``."""
        found = self.resource_token(value)
        if found is None:
            raise dpop.ResourceRefusal("invalid_token", "The access token is not valid (expired, revoked, or "
                                                        "not issued here).")
        dpop.check_token_use(self.conn, token=value, jkt=found.row.jkt, scheme="DPoP", proofs=_dpop_headers(http),
                             method=http.method, url=_without_query(http.uri), now=self.now)
        return found

    def resource_token(self, value) -> tokens.Token | None:
        """A valid access token of a person, with its client and person, however it is bound."""
        return resource_token(self.conn, value, self.issuer, self.now)

    def userinfo(self, http: HttpRequest):
        """OIDC Core s.5.3. The access token comes in the Authorization header or, on a POST, in
        the form-encoded body as ``access_token`` (RFC 6750 s.2.1, s.2.2); never in the URI (s.2.3:
        it would be logged), and in one place only (s.2)."""
        try:
            http = _bearer_from_body(http)
        except OAuth2Error as error:
            return self.handle_error_response(None, error)
        endpoint = UserInfoEndpoint(self, Request(http))
        try:
            return self.handle_response(*endpoint(endpoint.create_endpoint_request(http)))
        except OAuth2Error as error:
            return self.handle_error_response(None, error)

    def end_session_endpoint(self, browser_session=None) -> EndSessionEndpoint:
        endpoint = EndSessionEndpoint(self, browser_session)
        self._endpoints["end_session"] = [endpoint]
        return endpoint

    def validate_authorization_params(self, params: dict):
        """Check an authorization request as /authorize does (used by PAR too): Authlib's checks
        (client, redirect URI, response type, scope, PKCE S256, nonce) plus ours. Returns the grant;
        raises ``OAuth2Error`` (with ``redirect_uri`` set when the client may be told)."""
        for name, value in params.items():
            if not isinstance(value, str) or len(value) > MAX_PARAM:
                raise InvalidRequestError(f"'{name}' is too long.")
        request = Request(HttpRequest("GET", self.issuer + "/authorize"), params=params)
        grant = self.get_authorization_grant(request)
        grant.validate_no_multiple_request_parameter(request)
        redirect_uri = grant.validate_authorization_request()
        client: Client = request.client
        try:
            if not client.approved:
                raise UnauthorizedClientError("This client has not been approved.")
            if "openid" not in (request.scope or "").split():
                raise InvalidScopeError("The 'openid' scope is required.")
            # the scope as asked (``request.scope`` is already cut down to the client's scopes)
            if officer_sign_in.asks_officer_scope(request.payload.scope) and not client.officer:
                raise InvalidScopeError(f"The scope {OFFICER_SCOPE} is for officer clients only.")
            try:
                parse_claims_request(params.get("claims"))
            except ValueError as e:
                raise InvalidRequestError(f"Invalid 'claims' parameter: {e}.") from None
            if len(params.get("nonce") or "") > 255:
                raise InvalidRequestError("'nonce' must be at most 255 characters.")
            max_age = params.get("max_age")
            if max_age is not None and (not max_age.isdigit() or len(max_age) > 9):
                raise InvalidRequestError("'max_age' must be a number of seconds.")
            prompts = params.get("prompt", "").split()
            if "none" in prompts and len(prompts) > 1:
                raise InvalidRequestError("'prompt=none' cannot be combined with other values.")
            if any(p not in ("none", "login", "consent", "select_account") for p in prompts):
                raise InvalidRequestError("Unknown 'prompt' value.")
            if "request" in params:  # request objects (Core s.6.1): request_parameter_supported false
                raise RequestNotSupportedError("The 'request' parameter (a request object) is not supported; "
                                               "send the parameters themselves, or push them (PAR).")
            if "request_uri" in params:  # only a pushed request's, consumed by /authorize before this
                raise RequestURINotSupportedError("Only request_uri values from the pushed authorization "
                                                  "request endpoint are supported.")
            if "registration" in params:
                raise InvalidRequestError("The 'registration' parameter is not supported.")
        except OAuth2Error as error:
            error.redirect_uri = redirect_uri
            raise
        grant.redirect_uri = redirect_uri
        return grant, request


def bearer_token(conn: sa.Connection, value, issuer: str, now: dt.datetime | None = None) -> tokens.Token | None:
    """The access token presented to one of our resources as a bearer token, with its client and
    person; None when it is not valid (bad signature, expired, revoked, client or account no longer
    usable) or is DPoP-bound (RFC 9449 s.7.2: never usable without its proof). A resource's check:
    no authorization server is built for it (the API's citizens' routes call it twice a filing)."""
    found = resource_token(conn, value, issuer, now or utcnow())
    return None if found is None or found.row.jkt is not None else found


def resource_token(conn: sa.Connection, value, issuer: str, now: dt.datetime) -> tokens.Token | None:
    """A valid access token of a person, with its client and person, however it is bound."""
    found = tokens.validate_access_token(conn, value, issuer, now)
    if found is None or found.row.account_id is None:
        return None
    row = found.row
    # its approval read every time, a suspension acting at once: with the token's row on the hot path
    client = client_in(row) if "client_status" in row._mapping else load_client(conn, row.client_id)
    if client is None or not client.approved:
        return None
    # ``end_user`` without its queries: the account as it stands (usable as ``eid.principal``
    # requires: active, neither locked nor revoked) and the session's sid, read with the token's
    # row (``tokens.HOLDER``), or in one prebuilt read when the token's signature was checked now
    holder = row if "account_state" in row._mapping else conn.execute(
        _ACCOUNT_AND_SID, {"account_id": row.account_id, "session_id": row.session_id}).first()
    if holder is None or holder.account_state != "active":
        return None
    found.client, found.person_id = client, holder.account_person_id
    found.user = EndUser(account_id=row.account_id, subject=holder.account_subject, kind=holder.account_kind,
                         level=holder.account_level, acr=row.acr or acr_of(1), amr=tuple(row.amr or ()),
                         auth_time=row.auth_time or now, session_id=row.session_id,
                         sid=holder.session_sid, claims_request=row.claims, client=client)
    return found


# The account behind a resource token (``Provider.resource_token``) and its session's sid, as
# ``tokens.HOLDER`` names them: for a token whose row was read without them (its first use here).
_ACCOUNT_AND_SID = sa.select(
    eid_accounts.c.state.label("account_state"), eid_accounts.c.subject.label("account_subject"),
    eid_accounts.c.kind.label("account_kind"), eid_accounts.c.level.label("account_level"),
    eid_accounts.c.person_id.label("account_person_id"),
    sa.select(oidc_sessions.c.sid).where(oidc_sessions.c.session_id == sa.bindparam("session_id"))
    .scalar_subquery().label("session_sid"),
).where(eid_accounts.c.account_id == sa.bindparam("account_id"))


def _dpop_headers(http: HttpRequest) -> list[str]:
    """The values of the request's DPoP headers (RFC 9449 s.4.3 asks for exactly one)."""
    return [v for k, v in http.headers if k.lower() == "dpop"]


def _without_query(uri: str) -> str:
    return uri.split("#", 1)[0].split("?", 1)[0]


def _bearer_from_body(http: HttpRequest) -> HttpRequest:
    """``http`` with a form-body ``access_token`` moved to its Authorization header (what Authlib's
    resource protector reads); raises ``InvalidRequestError`` for a token in the query string or
    in two places, or a body token that is not in an application/x-www-form-urlencoded POST."""
    if any(k == "access_token" for k, _ in http.query):
        raise InvalidRequestError("Send the access token in the Authorization header or a form-encoded POST "
                                  "body, not in the URI.")
    in_body = [v for k, v in http.form if k == "access_token"] if http.method == "POST" else []
    if not in_body:
        return http
    headers = Headers(http.headers)
    if "authorization" in headers or len(in_body) > 1:
        raise InvalidRequestError("Send the access token in one place only.")
    kind = (headers.get("content-type") or "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise InvalidRequestError("An access token in the body needs Content-Type "
                                  "application/x-www-form-urlencoded.")
    form = [(k, v) for k, v in http.form if k != "access_token"]
    headers = [*http.headers, ("authorization", f"Bearer {in_body[0]}")]
    return HttpRequest(method=http.method, uri=http.uri, headers=headers, query=http.query, form=form, ip=http.ip)


def consentable_claims(client: Client, scope: str, claims_request: dict | None) -> set[str]:
    """The claims and permissions a person is asked to release: those of the granted scopes, and
    those of the ``claims`` parameter that the client's approved scopes allow."""
    from dinhdanh.oidc.claims import PERMISSION_SCOPES, requested_claim_names

    allowed = claims_for_scope(" ".join(client.scopes))
    wanted = claims_for_scope(scope) | (requested_claim_names(claims_request) & allowed)
    wanted |= {s for s in scope.split() if s in PERMISSION_SCOPES}
    wanted.discard("sub")
    return wanted
