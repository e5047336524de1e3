"""Token revocation (RFC 7009) on Authlib's endpoint.

A client revokes its own tokens. Revoking a refresh token revokes its whole family (the access
tokens of the same grant too, as s.2.1 suggests); revoking an access token revokes that token.
An unknown token is answered 200 like a revoked one (s.2.2).
"""

from __future__ import annotations

from authlib.oauth2.rfc7009 import RevocationEndpoint as _RevocationEndpoint

from dinhdanh.oidc import tokens
from dinhdanh.oidc.rfc6749 import CLIENT_AUTH_METHODS


class RevocationEndpoint(_RevocationEndpoint):
    CLIENT_AUTH_METHODS = CLIENT_AUTH_METHODS

    def query_token(self, token_string, token_type_hint):
        return tokens.find(self.server.conn, token_string, now=self.server.now)  # the hint only orders a search

    def revoke_token(self, token, request) -> None:
        conn = self.server.conn
        if token.kind == "refresh":
            tokens.revoke_family(conn, token.row.family_id, "revoked_by_client")
        tokens.revoke_one(conn, token.row.token_id, "revoked_by_client")
