"""The OpenID Connect provider: relying parties, keys, grants, tokens, consent.

Built on Authlib's server grants and endpoints, with joserfc for every JWT; modules are named after
the specification they implement, so that code and text can be read side by side:

- ``server``       Authlib's ``AuthorizationServer`` wired with everything below (one per request)
- ``rfc6749``      authorization code, refresh token (rotation, reuse detection), client credentials
- ``rfc7636``      PKCE, S256 only, required of every client
- ``rfc7523``      ``private_key_jwt`` client authentication
- ``rfc7009``      revocation;  ``rfc7662``  introspection;  ``rfc9126``  pushed authorization requests
- ``core``         ID token, UserInfo, bearer tokens (OpenID Connect Core)
- ``dpop``         DPoP proofs and tokens bound to the client's key (RFC 9449)
- ``rpinitiated``  RP-initiated logout;  ``discovery``  the provider's metadata
- ``authorize``    the browser's way through /authorize: login, step-up, consent, prompt, max_age
- ``claims``       scopes and claims, the ``claims`` parameter, acr levels, pairwise subjects
- ``clients``      relying parties and their approval;  ``keys``  signing keys (rotation) and secrets
- ``officers``     officers' sign-in: the scope ``dinhdanh.officer`` (officer clients, level 2)
- ``tokens``       JWT access tokens and their rows;  ``sessions``  browser sessions;  ``consent``
- ``relying_party`` the ID-token check a relying party makes (used by the demo portal)
- ``housekeeping`` deleting what has expired;  ``tables``  the area's tables
"""
