"""The authorization endpoint in a browser (OpenID Connect Core s.3.1.2): from the request to the
code, through login, step-up and consent.

``begin`` checks the request (a pushed one is fetched by its ``request_uri``), keeps it server-side
as a ``browser`` row of ``oidc_requests`` named by a random handle, and calls ``advance``, which
decides the next step each time the person comes back from a page:

1. login, when there is no session, when ``prompt=login`` asks for a fresh one (a login older than
   the request does not count) or when the last login is older than ``max_age``;
2. step-up, when level 2 is asked (``acr_values`` or an ``acr`` claim request, or the scope
   ``dinhdanh.officer``, which also needs an account linked to an active officer: else
   ``access_denied``; see ``oidc.officers``) and the session has proved level 1 only; an account
   that holds level 1 only cannot satisfy it: ``unmet_authentication_requirements`` goes back to
   the client;
3. consent, when what is asked is not covered by a remembered consent, or ``prompt=consent``;
4. the code, sent to the redirect URI with ``state`` and ``iss`` (RFC 9207).

With ``prompt=none`` any of the first three is an error sent to the client (``login_required``,
``interaction_required``, ``consent_required``). Errors that cannot go back to the client (unknown
client, unregistered redirect URI, a client not approved, a bad ``request_uri``) are shown to the
person. The outcome is an ``Outcome``, which the web layer turns into a page or a redirect.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass, field

import sqlalchemy as sa
from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc6749 import AccessDeniedError, InvalidClientError, OAuth2Error
from authlib.oidc.core.errors import (ConsentRequiredError, InteractionRequiredError, InvalidRequestURIError,
                                      LoginRequiredError)

from dinhdanh.eid import auth as eid
from dinhdanh.oidc import consent, rfc9126, sessions, tokens
from dinhdanh.oidc import officers as officer_sign_in
from dinhdanh.oidc.claims import (acr_of, claims_for_scope, essential_acr_unknown, parse_claims_request,
                                  required_level)
from dinhdanh.oidc.server import HttpRequest, Provider, consentable_claims
from dinhdanh.oidc.sessions import Session
from dinhdanh.oidc.tables import oidc_requests

INTERACTION_TTL = dt.timedelta(minutes=30)


class UnmetAuthenticationRequirementsError(OAuth2Error):
    """OpenID Connect Core Error Code unmet_authentication_requirements 1.0: the account cannot
    reach the level of authentication asked for."""

    error = "unmet_authentication_requirements"


@dataclass
class Outcome:
    """What the browser gets: a redirect (``location``), or a page (``page`` with ``context``)."""

    location: str | None = None
    page: str | None = None
    context: dict = field(default_factory=dict)
    status: int = 200


@dataclass(frozen=True)
class Interaction:
    request_id: int
    handle: str
    client_id: str
    params: dict
    created_at: dt.datetime


def _error_page(code: str, **context) -> Outcome:
    return Outcome(page="error", context={"error": code, **context}, status=400)


def client_redirect(provider: Provider, redirect_uri: str, params: list[tuple[str, str]]) -> Outcome:
    """Back to the client, with ``iss`` (RFC 9207) so that it can tell which server answered."""
    return Outcome(location=add_params_to_uri(redirect_uri, [*params, ("iss", provider.issuer)]))


def _error_outcome(provider: Provider, error: OAuth2Error, state: str | None) -> Outcome:
    if error.redirect_uri:
        params = [("error", error.error)]
        if error.description:
            params.append(("error_description", error.description))
        if state:
            params.append(("state", state))
        return client_redirect(provider, error.redirect_uri, params)
    return _error_page(error.error or "invalid_request", description=error.description)


def _save(conn: sa.Connection, client_id: str, params: dict, now: dt.datetime) -> Interaction:
    handle = secrets.token_urlsafe(32)
    request_id = conn.execute(oidc_requests.insert().values(
        handle_hash=tokens.digest(handle), kind="browser", client_id=client_id, params=params, created_at=now,
        expires_at=now + INTERACTION_TTL).returning(oidc_requests.c.request_id)).scalar_one()
    return Interaction(request_id, handle, client_id, params, now)


def load_interaction(conn: sa.Connection, handle, now: dt.datetime) -> Interaction | None:
    if not isinstance(handle, str) or not handle or len(handle) > 100:
        return None
    row = conn.execute(sa.select(oidc_requests).where(oidc_requests.c.handle_hash == tokens.digest(handle),
                                                      oidc_requests.c.kind == "browser")).first()
    if row is None or row.used_at is not None or row.expires_at <= now:
        return None
    return Interaction(row.request_id, handle, row.client_id, dict(row.params), row.created_at)


def _finish(conn: sa.Connection, interaction: Interaction, now: dt.datetime) -> None:
    conn.execute(oidc_requests.update().where(oidc_requests.c.request_id == interaction.request_id)
                 .values(used_at=now))


def begin(provider: Provider, http: HttpRequest, session: Session | None) -> Outcome:
    """GET or POST /authorize."""
    pairs = http.form if http.method == "POST" else http.query
    params: dict[str, str] = {}
    for k, v in pairs:
        if k in params:  # repeated parameters are an error (RFC 6749 s.3.1)
            params[k] = None  # type: ignore[assignment]
        else:
            params[k] = v
    repeated = [k for k, v in params.items() if v is None]
    client_id = params.get("client_id")
    if not client_id or "client_id" in repeated:
        return _error_page("invalid_client", description="Missing 'client_id' parameter.")
    client = provider.query_client(client_id)
    if client is None:
        return _error_page("invalid_client", description="The client does not exist on this server.")
    if not client.approved:
        return _error_page("client_not_approved", client_name=client.name)
    if "request_uri" in params:
        if not isinstance(params["request_uri"], str) or not params["request_uri"].startswith(rfc9126.PREFIX):
            # request objects by reference (Core s.6.2): request_uri_parameter_supported false; PAR's only
            return _error_page("request_uri_not_supported",
                               description="Only request_uri values from the pushed authorization request "
                                           "endpoint are supported.")
        try:
            params = rfc9126.consume(provider.conn, params["request_uri"], client_id, provider.now)
        except InvalidRequestURIError as error:
            return _error_page(error.error, description=error.description)
    elif repeated:
        return _error_page("invalid_request", description=f"Repeated parameter: {repeated[0]}.")
    try:
        provider.validate_authorization_params(params)
    except InvalidClientError as error:
        return _error_page(error.error, description=error.description)
    except OAuth2Error as error:
        return _error_outcome(provider, error, params.get("state"))
    interaction = _save(provider.conn, client_id, params, provider.now)
    return advance(provider, interaction, session, http)


def advance(provider: Provider, interaction: Interaction, session: Session | None, http: HttpRequest,
            consented: bool = False) -> Outcome:
    """The next step of an authorization in progress (see the module's doc)."""
    conn, now, params = provider.conn, provider.now, interaction.params
    state = params.get("state")
    try:
        grant, request = provider.validate_authorization_params(params)
    except InvalidClientError as error:
        return _error_page(error.error, description=error.description)
    except OAuth2Error as error:
        _finish(conn, interaction, now)
        return _error_outcome(provider, error, state)
    client = request.client
    redirect_uri = grant.redirect_uri

    def fail(error: OAuth2Error) -> Outcome:
        error.redirect_uri = redirect_uri
        _finish(conn, interaction, now)
        return _error_outcome(provider, error, state)

    prompts = set(params.get("prompt", "").split())
    max_age = int(params["max_age"]) if params.get("max_age") else None
    who = None
    if session is not None and session.authenticated:
        try:
            who = eid.principal(conn, session.account_id)
        except eid.LoginRefused:
            sessions.end(conn, session.session_id)
            session, who = None, None
    fresh = who is not None and session.auth_time >= interaction.created_at
    officer = officer_sign_in.asks_officer_scope(request.scope)
    ended = False  # an officer's sign-in from before their credentials were revoked no longer counts
    if who is not None and officer:
        link = officer_sign_in.link_for(conn, who.account_id)
        if link is None:
            return fail(AccessDeniedError("This account is not linked to an active officer."))
        ended = not link.admits(session.auth_time)
    if who is None or ended or ("login" in prompts and not fresh) or (
            max_age is not None and (now - session.auth_time).total_seconds() > max_age):
        if "none" in prompts:
            return fail(LoginRequiredError())
        return Outcome(page="login", context={"interaction": interaction.handle, "client": client,
                                              "login_hint": params.get("login_hint")})

    claims_request = parse_claims_request(params.get("claims"))
    if essential_acr_unknown(claims_request):
        return fail(UnmetAuthenticationRequirementsError(
            "The essential acr asked for is none of this provider's levels (urn:dinhdanh:level1, level2)."))
    needed = required_level(params.get("acr_values"), claims_request) or 1
    if officer:  # officers sign in at level 2 whatever the request says
        needed = max(needed, officer_sign_in.REQUIRED_LEVEL)
    level = min(session.level or 1, who.level or 1)
    if needed > level:
        if (who.level or 1) < needed:
            return fail(UnmetAuthenticationRequirementsError(
                "The account holds level 1 only; level 2 is asked for."))
        if "none" in prompts:
            return fail(InteractionRequiredError("A second factor (level 2) is required."))
        return Outcome(page="step_up", context={"interaction": interaction.handle, "client": client})

    wanted = consentable_claims(client, request.scope, claims_request)
    if not consented and ("consent" in prompts or not consent.covers(conn, who.account_id, client.client_id, wanted,
                                                                          now)):
        if "none" in prompts:
            return fail(ConsentRequiredError())
        return Outcome(page="consent", context={"interaction": interaction.handle, "client": client,
                                                "claims": sorted(wanted, key=_claim_order), "scope": request.scope})

    allowed = claims_for_scope(" ".join(client.scopes)) | {"acr", "auth_time"}
    granted_request = None
    if claims_request:
        granted_request = {target: {n: spec for n, spec in members.items() if n in allowed}
                           for target, members in claims_request.items()}
    user = provider.end_user(who.account_id, acr=acr_of(level), amr=list(session.amr), auth_time=session.auth_time,
                             session_id=session.session_id, claims_request=granted_request, client=client,
                             sid=session.sid)
    if user is None:
        return fail(LoginRequiredError())
    request.user = user
    try:  # Authlib's grant issues and stores the code (validation was done above)
        _, _, headers = grant.create_authorization_response(redirect_uri, user)
    except OAuth2Error as error:
        return fail(error)
    _finish(conn, interaction, now)
    eid.record_login(conn, who.account_id, client_id=client.client_id, acr=user.acr, outcome="authorized",
                     ip=http.ip, user_agent=http.user_agent)
    return Outcome(location=add_params_to_uri(dict(headers)["Location"], [("iss", provider.issuer)]))


def deny(provider: Provider, interaction: Interaction) -> Outcome:
    """The person refused consent: ``access_denied`` goes back to the client."""
    try:
        grant, _ = provider.validate_authorization_params(interaction.params)
    except OAuth2Error as error:
        _finish(provider.conn, interaction, provider.now)
        return _error_outcome(provider, error, interaction.params.get("state"))
    _finish(provider.conn, interaction, provider.now)
    return _error_outcome(provider, AccessDeniedError(redirect_uri=grant.redirect_uri), interaction.params.get("state"))


def remember_consent(provider: Provider, interaction: Interaction, account_id: int) -> None:
    """Remember what the person allowed (nothing if the request no longer holds: ``advance`` says why)."""
    try:
        _, request = provider.validate_authorization_params(interaction.params)
    except OAuth2Error:
        return
    claims_request = parse_claims_request(interaction.params.get("claims"))
    wanted = consentable_claims(request.client, request.scope, claims_request)
    consent.grant(provider.conn, account_id, request.client.client_id, request.scope, wanted, provider.now)


_ORDER = ("name", "family_name", "middle_name", "given_name", "birthdate", "gender", "urn:dinhdanh:pid",
          "address", "phone_number", "phone_number_verified", "email", "email_verified", "urn:dinhdanh:level",
          "urn:dinhdanh:kind", "locale", "updated_at", "dinhdanh.me")


def _claim_order(name: str) -> tuple[int, str]:
    return (_ORDER.index(name) if name in _ORDER else len(_ORDER), name)
