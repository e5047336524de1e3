"""How often the app's registrations may be tried: per source address, and per PID for the typed path.

The typed registration (``registration.register``) answers every refusal about the person alike, but
a success still tells that what was typed is right; these limits keep guessing slow. The chip path
(``chip_registration``) is limited per address only: it needs the card itself for every attempt.

The counts are the partners' counters (``exchange.limits``: the database's ``limit_counters``, or
Redis), so every API process shares them and a restart keeps them; each attempt is counted in a short
transaction of its own, before the register is read, so concurrent attempts never slip past. The PID
limit counts every 12-digit string tried, held by someone or not, so its refusal is no oracle either.
Keys carry a keyed hash of the address or PID (``Vault.mac``), never the value. If the counters
cannot be reached the registration is refused (503): without its limits the typed path is an oracle.
"""

from __future__ import annotations

from dinhdanh.exchange import limits
from dinhdanh.registry.errors import RegistryError
from dinhdanh.store.vault import Vault

SOURCE_ATTEMPTS = 10  # typed registrations per source address and hour
PID_ATTEMPTS = 5  # typed registrations per PID string and Vietnamese day
CHIP_SOURCE_ATTEMPTS = 20  # registrations by chip per source address and hour
ACTIVATION_SOURCE_ATTEMPTS = 30  # activations (code + passcode) per source address and hour
CHALLENGE_SOURCE_ATTEMPTS = 60  # chip-registration challenges per source address and hour
HOUR = 3600
_PURPOSE = "eid-registration-limit"


class AttemptsRefused(RegistryError):
    """Over a limit (429 ``rate_limited``, ``retry_after`` seconds), or the counters do not answer
    (503 ``rate_limiter_unavailable``)."""

    def __init__(self, message: str, *, code: str, status: int, retry_after: float):
        super().__init__(message, code=code)
        self.status = status
        self.retry_after = limits.retry_after(retry_after)


def _key(vault: Vault, path: str, kind: str, value: str) -> str:
    return f"eid-registration:{path}:{kind}:{vault.mac(value.encode(), _PURPOSE).hex()[:40]}"


def count_attempt(limiter: limits.RateLimiter, vault: Vault, *, source: str | None, pid: str | None = None,
                  path: str = "typed") -> None:
    """Count one attempt from ``source`` (and on ``pid``); ``AttemptsRefused`` when over a limit.

    The source is counted first: an address over its limit spends nothing of a PID's allowance."""
    per_source = {"chip": CHIP_SOURCE_ATTEMPTS, "activation": ACTIVATION_SOURCE_ATTEMPTS,
                  "challenge": CHALLENGE_SOURCE_ATTEMPTS}.get(path, SOURCE_ATTEMPTS)
    try:
        now = limiter.now()
        hour_end = (int(now) // HOUR + 1) * HOUR
        wait = limiter.count(_key(vault, path, "source", source or "unknown"), per_source, hour_end)
        if wait <= 0 and pid is not None:
            wait = limiter.count(_key(vault, path, "pid", pid), PID_ATTEMPTS, limits.vietnam_day_end(now))
    except limits.LimiterUnavailable:
        raise AttemptsRefused("The attempt counters are unavailable, so no registration can be checked now; "
                              "try again shortly.", code="rate_limiter_unavailable", status=503,
                              retry_after=5) from None
    if wait > 0:
        raise AttemptsRefused("Too many attempts; try again later, register with your chip card, "
                              "or go to the police counter.", code="rate_limited", status=429, retry_after=wait)
