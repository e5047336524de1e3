"""The OpenID Connect provider: relying parties, keys, grants, tokens, consent."""
