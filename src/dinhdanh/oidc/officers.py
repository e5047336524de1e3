"""Officers sign in through the provider: the scope ``dinhdanh.officer``.

- Only an officer client (``dinhdanh client add ... --officer``, ``oidc_clients.officer``) may ask
  for it; any other client asking gets ``invalid_scope``.
- It is granted at level 2 only: an authorization request with it needs the second factor whatever
  its ``acr_values`` say, and is refused (``access_denied``) for an account that is not linked to
  an active officer (``officers.credentials.link_account``). A browser session from before the
  officer's credentials were revoked does not count: the officer signs in again.
- Its access tokens live ``tokens.ACCESS_TTL`` (10 minutes) like every access token; its refresh
  tokens rotate as every refresh token does, but do not outlive ``SIGN_IN_TTL`` after the sign-in
  (``auth_time``): an officer proves the second factor again at least that often. A refresh for an
  account no longer an officer's is refused (``invalid_grant``).
- An officer's resource (``web.deps.current_officer``) accepts such an access token: checked as
  every access token is (``tokens.validate_access_token``), carrying the scope, issued at level 2,
  then mapped to the officer by the account stored with the grant, never by ``sub`` (pairwise, so
  different at every client).
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from dinhdanh.officers.credentials import SignInLink, officer_for_account, sign_in_link
from dinhdanh.oidc import tokens
from dinhdanh.oidc.claims import ACR_LEVEL2, OFFICER_SCOPE

REQUIRED_LEVEL = 2
SIGN_IN_TTL = dt.timedelta(hours=12)  # a working day: then the second factor again


def asks_officer_scope(scope: str | None) -> bool:
    return OFFICER_SCOPE in (scope or "").split()


def link_for(conn: sa.Connection, account_id: int) -> SignInLink | None:
    """The officer behind the account signing in, None if it is not an active officer's."""
    return sign_in_link(conn, account_id)


def refresh_expiry(scope: str, auth_time: dt.datetime | None, default: dt.datetime) -> dt.datetime:
    """When a refresh token of this grant expires: ``default``, but never later than ``SIGN_IN_TTL``
    after the officer's sign-in when the grant carries the officer scope."""
    if not asks_officer_scope(scope) or auth_time is None:
        return default
    return min(default, auth_time + SIGN_IN_TTL)


def still_officer(conn: sa.Connection, scope: str, account_id: int | None, auth_time: dt.datetime | None) -> bool:
    """For a refresh: True unless the grant carries the officer scope and its account is no longer
    an active officer's, or the sign-in was ended by a revocation."""
    return not asks_officer_scope(scope) or officer_for_account(conn, account_id, auth_time) is not None


def officer_of_access_token(conn: sa.Connection, value, issuer: str, now: dt.datetime | None = None) -> int | None:
    """The officer an access token stands for, or None: the token must be valid (signature, issuer,
    expiry, not revoked), carry ``dinhdanh.officer``, have been issued at level 2, and its grant's
    account must be linked to an active officer whose credentials were not revoked since."""
    found = tokens.validate_access_token(conn, value, issuer, now)
    if found is None:
        return None
    row = found.row
    if not asks_officer_scope(row.scope) or row.acr != ACR_LEVEL2 or row.account_id is None:
        return None
    if row._mapping.get("jkt") is not None:  # DPoP-bound: never usable as a bearer token (RFC 9449 s.7.2)
        return None
    return officer_for_account(conn, row.account_id, row.auth_time)
