"""Pushed authorization requests (RFC 9126). Authlib 1.9 has no PAR endpoint; this is it.

The client posts its authorization request to ``/par``, authenticated as at the token endpoint;
the request is checked exactly as ``/authorize`` would check it, stored, and named by a
``request_uri`` (``urn:ietf:params:oauth:request_uri:`` + 256 random bits, stored as its SHA-256)
that lives 90 seconds and works once, for that client only (s.4). At ``/authorize`` the stored
parameters replace the query's (s.4: the ``client_id`` must match).
"""

from __future__ import annotations

import datetime as dt
import secrets

import sqlalchemy as sa
from authlib.consts import default_json_headers
from authlib.oauth2.rfc6749 import InvalidRequestError, OAuth2Error
from authlib.oidc.core.errors import InvalidRequestURIError

from dinhdanh.oidc import tokens
from dinhdanh.oidc.rfc6749 import CLIENT_AUTH_METHODS, refuse_repeated
from dinhdanh.oidc.tables import oidc_requests

PREFIX = "urn:ietf:params:oauth:request_uri:"
LIFETIME = dt.timedelta(seconds=90)
# client authentication, not part of the authorization request
AUTH_PARAMS = ("client_secret", "client_assertion", "client_assertion_type")


def push(provider, request) -> tuple[int, dict, list]:
    """Handle a POST to the PAR endpoint; returns (status, body, headers)."""
    try:
        client = provider.authenticate_client(request, CLIENT_AUTH_METHODS, "pushed_authorization_request")
        form = request.payload.data
        if "request_uri" in form:
            raise InvalidRequestError("'request_uri' is not allowed in a pushed request.")
        if form.get("client_id") not in (None, client.client_id):
            raise InvalidRequestError("'client_id' does not match the authenticated client.")
        refuse_repeated(request.payload)
        params = {k: v for k, v in form.items() if k not in AUTH_PARAMS}
        params["client_id"] = client.client_id
        provider.validate_authorization_params(params)
    except OAuth2Error as error:
        error.redirect_uri = None  # errors of a pushed request are answered here, never redirected
        error.state = None
        return error()
    handle = secrets.token_urlsafe(32)
    now = provider.now
    provider.conn.execute(oidc_requests.insert().values(
        handle_hash=tokens.digest(handle), kind="pushed", client_id=client.client_id, params=params,
        created_at=now, expires_at=now + LIFETIME))
    body = {"request_uri": PREFIX + handle, "expires_in": int(LIFETIME.total_seconds())}
    return 201, body, default_json_headers


def consume(conn: sa.Connection, request_uri, client_id, now: dt.datetime) -> dict:
    """The parameters pushed under ``request_uri`` by ``client_id``; marks it used. Raises
    ``InvalidRequestURIError`` when it is unknown, another client's, expired or used."""
    if not isinstance(request_uri, str) or not request_uri.startswith(PREFIX) or len(request_uri) > 200:
        raise InvalidRequestURIError("The request_uri is not one this server issued.")
    handle = tokens.digest(request_uri[len(PREFIX):])
    row = conn.execute(sa.select(oidc_requests).where(oidc_requests.c.handle_hash == handle,
                                                      oidc_requests.c.kind == "pushed")).first()
    if row is None or row.client_id != client_id:
        raise InvalidRequestURIError("The request_uri is not one this server issued for this client.")
    if row.used_at is not None:
        raise InvalidRequestURIError("The request_uri has been used already.")
    if row.expires_at <= now:
        raise InvalidRequestURIError("The request_uri has expired.")
    claimed = conn.execute(oidc_requests.update().where(oidc_requests.c.request_id == row.request_id,
                                                        oidc_requests.c.used_at.is_(None))
                           .values(used_at=now)).rowcount
    if claimed != 1:
        raise InvalidRequestURIError("The request_uri has been used already.")
    return dict(row.params)
