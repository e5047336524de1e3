"""Token introspection (RFC 7662) on Authlib's endpoint.

An authenticated client may introspect the tokens issued to it; any other token, like an
expired, revoked or unknown one, is ``{"active": false}``.
"""

from __future__ import annotations

from authlib.oauth2.rfc7662 import IntrospectionEndpoint as _IntrospectionEndpoint

from dinhdanh.oidc import tokens
from dinhdanh.oidc.rfc6749 import CLIENT_AUTH_METHODS


class IntrospectionEndpoint(_IntrospectionEndpoint):
    CLIENT_AUTH_METHODS = CLIENT_AUTH_METHODS

    def query_token(self, token_string, token_type_hint):
        return tokens.find(self.server.conn, token_string, now=self.server.now)  # the hint only orders a search

    def check_permission(self, token, client, request) -> bool:
        return token.check_client(client) and client.approved

    def introspect_token(self, token) -> dict:
        row = token.row
        body = {"active": True, "client_id": row.client_id, "scope": row.scope, "iss": self.server.issuer,
                "token_type": ("DPoP" if row.jkt else "Bearer") if row.kind == "access" else None, "jti": row.jti,
                "iat": int(row.issued_at.timestamp()), "exp": int(row.expires_at.timestamp())}
        if row.account_id is None:
            body["sub"] = row.client_id
        else:
            user = self.server.end_user(row.account_id, acr=row.acr, amr=row.amr or [], auth_time=row.auth_time,
                                        client=self.server.query_client(row.client_id))
            if user is None:  # the account was locked or revoked since
                return {"active": False}
            body.update(sub=self.server.pairwise_sub(user.client, user.subject), acr=row.acr,
                        auth_time=int(row.auth_time.timestamp()) if row.auth_time else None)
        if row.kind == "access":
            body["aud"] = self.server.issuer
        if row.jkt:
            body["cnf"] = {"jkt": row.jkt}  # RFC 9449 s.6.2
        return {k: v for k, v in body.items() if v is not None}
