"""RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0) on Authlib's end-session endpoint.

With a valid ``id_token_hint`` (signed by one of our published keys and issued by us; an expired
one is accepted, as s.2 allows), the session named by its ``sid`` ends at once and the browser goes
to the ``post_logout_redirect_uri`` if it is registered for the client. Without one, the person
confirms first (s.6: a bare logout link could otherwise log anyone out).
"""

from __future__ import annotations

from authlib.oauth2.rfc6749 import InvalidRequestError
from authlib.oidc.rpinitiated import EndSessionEndpoint as _EndSessionEndpoint

from dinhdanh.oidc import keys, sessions


class EndSessionEndpoint(_EndSessionEndpoint):
    def __init__(self, provider, browser_session=None):
        super().__init__(provider)
        self.browser_session = browser_session
        self.ended: list[int] = []

    def get_server_jwks(self):
        return keys.verification_keys(self.server.conn)

    def get_algorithms(self) -> list[str]:
        return list(keys.ALGS)  # an ID token of an RS256 client is a hint too

    def validate_request(self, request):
        for name in ("id_token_hint", "post_logout_redirect_uri", "client_id", "state"):
            value = request.payload.data.get(name)
            if value is not None and len(value) > 4096:
                raise InvalidRequestError(f"'{name}' is too long.")
        validated = super().validate_request(request)
        claims = validated.id_token_claims
        if claims is not None and claims.get("iss") != self.server.issuer:
            raise InvalidRequestError("The id_token_hint was not issued here.")
        return validated

    def end_session(self, end_session_request) -> None:
        conn = self.server.conn
        claims = end_session_request.id_token_claims or {}
        sid = claims.get("sid")
        if isinstance(sid, str):
            row = sessions.by_sid(conn, sid)
            if row is not None:
                sessions.end(conn, row.session_id)
                self.ended.append(row.session_id)
        current = self.browser_session
        if current is not None and (not claims or current.sid == sid or current.account_id is None):
            sessions.end(conn, current.session_id)
            self.ended.append(current.session_id)
