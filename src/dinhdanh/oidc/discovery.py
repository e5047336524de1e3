"""OpenID Connect Discovery 1.0 (s.3) / RFC 8414: the provider's metadata."""

from __future__ import annotations

from dinhdanh.oidc import dpop, keys
from dinhdanh.oidc.claims import ACR_LEVELS, KNOWN_CLAIMS, SCOPES
from dinhdanh.oidc.rfc6749 import CLIENT_AUTH_METHODS
from dinhdanh.oidc.rfc7523 import ALGORITHMS


def metadata(issuer: str) -> dict:
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/authorize",
        "pushed_authorization_request_endpoint": f"{issuer}/par",
        "require_pushed_authorization_requests": False,
        "token_endpoint": f"{issuer}/token",
        "userinfo_endpoint": f"{issuer}/userinfo",
        "jwks_uri": f"{issuer}/jwks",
        "dinhdanh_keys_archive_uri": f"{issuer}/.well-known/dinhdanh/keys-archive",  # every key ever used
        "revocation_endpoint": f"{issuer}/revoke",
        "introspection_endpoint": f"{issuer}/introspect",
        "end_session_endpoint": f"{issuer}/logout",
        "scopes_supported": list(SCOPES),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": list(keys.ALGS),  # RS256 MUST be (Discovery s.3)
        "userinfo_signing_alg_values_supported": [keys.ALG],
        "token_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS,
        "token_endpoint_auth_signing_alg_values_supported": ALGORITHMS,
        "revocation_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS,
        "introspection_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS,
        "code_challenge_methods_supported": ["S256"],
        "dpop_signing_alg_values_supported": list(dpop.ALGORITHMS),  # RFC 9449 s.5.1
        "acr_values_supported": list(ACR_LEVELS),
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "azp", "sid",
                             *[c for c in KNOWN_CLAIMS if c != "sub"]],
        "claims_parameter_supported": True,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "prompt_values_supported": ["none", "login", "consent"],
        "ui_locales_supported": ["vi", "en"],
        "claims_locales_supported": ["vi"],
        "authorization_response_iss_parameter_supported": True,
        "frontchannel_logout_supported": False,
        "backchannel_logout_supported": False,
    }
