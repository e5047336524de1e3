"""Proof Key for Code Exchange (RFC 7636), S256 only, for every client.

Authlib's ``CodeChallenge`` makes PKCE optional for confidential clients and accepts ``plain``.
Here a ``code_challenge`` is required in every authorization request and the method must be
``S256`` (given explicitly: RFC 7636 s.4.3 makes an absent method mean ``plain``), as the OAuth 2.0
Security BCP (RFC 9700 s.2.1.1) recommends; the token request must then carry the verifier.
"""

from __future__ import annotations

from authlib.oauth2.rfc6749 import InvalidRequestError
from authlib.oauth2.rfc7636 import CodeChallenge


class S256CodeChallenge(CodeChallenge):
    DEFAULT_CODE_CHALLENGE_METHOD = "S256"
    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]

    def __init__(self):
        super().__init__(required=True)

    def validate_code_challenge(self, grant, redirect_uri):
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("PKCE is required: send code_challenge with code_challenge_method=S256.")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("Only code_challenge_method=S256 is accepted (plain is refused).")
        super().validate_code_challenge(grant, redirect_uri)
