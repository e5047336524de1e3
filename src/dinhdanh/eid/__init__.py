"""Electronic identification accounts (Decree 69/2024): levels, registration, credentials, locks.

``hooks()`` makes the area follow the register and the cards (a death or a revoked card locks the
account); every entrypoint that can change those (web app, CLI) calls it once.
"""


def hooks() -> None:
    """Register the area's hooks on ``registry.events.AFTER_EVENT`` and ``cards.lifecycle.AFTER_REVOKE``."""
    import dinhdanh.eid.locks  # noqa: F401  (registers on import)
