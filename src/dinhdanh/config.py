"""Where the platform keeps its data and how long it waits for the database, read once at the edge
(the CLI, the app factory, the tests) and passed down."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_HOME = "var"


def home() -> Path:
    """Folder for the embedded database and the files long jobs write (``DINHDANH_HOME``)."""
    return Path(os.environ.get("DINHDANH_HOME", DEFAULT_HOME))


def database_url(explicit: str | None = None) -> str:
    """``--db`` wins, then ``DINHDANH_DATABASE_URL``, then a SQLite file under ``home()``."""
    url = explicit or os.environ.get("DINHDANH_DATABASE_URL")
    if not url:
        return f"sqlite:///{home() / 'dinhdanh.sqlite'}"
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


def _positive(name: str, default: float, *, integer: bool = False) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a {'whole ' if integer else ''}number, not {raw!r}") from None
    if value <= 0:
        raise ValueError(f"{name} must be positive, not {raw!r}")
    return value


def lock_timeout() -> float:
    """How long a unit of work waits for a database lock (the SQLite writer, a PostgreSQL row lock,
    a pooled connection) before the request is refused with 503 and ``Retry-After``:
    ``DINHDANH_DB_LOCK_TIMEOUT`` seconds, 5 by default. Never an unbounded wait."""
    return _positive("DINHDANH_DB_LOCK_TIMEOUT", 5.0)


def pool_size() -> int:
    """Connections a process keeps to a server database (``DINHDANH_DB_POOL_SIZE``, 10); up to
    three times as many more open under bursts and are closed when idle."""
    return int(_positive("DINHDANH_DB_POOL_SIZE", 10, integer=True))


def webhooks_allow_http_loopback() -> bool:
    """Whether partners' webhooks may go to this machine (loopback addresses, ``http://`` allowed
    there): ``DINHDANH_WEBHOOKS_ALLOW_HTTP_LOOPBACK=1``, for tests and demos. Off by default: a
    webhook goes to a public address over https, never inside the platform."""
    return os.environ.get("DINHDANH_WEBHOOKS_ALLOW_HTTP_LOOPBACK", "").strip().lower() in ("1", "true", "yes", "on")


def oidc_issuer(explicit: str | None = None) -> str | None:
    """The OpenID provider's issuer identifier (``--issuer`` wins, then ``DINHDANH_OIDC_ISSUER``):
    the https URL relying parties know it by, behind any proxy; None when neither is set (then
    ``serve`` uses its own listening address). Never taken from a request's Host header.
    Checked: an absolute http(s) URL without query or fragment; a trailing slash is dropped."""
    from urllib.parse import urlsplit

    value = (explicit or os.environ.get("DINHDANH_OIDC_ISSUER", "")).strip()
    if not value:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.query or parts.fragment:
        raise ValueError(f"the OpenID issuer must be an http(s) URL without query or fragment, not {value!r}")
    return value.rstrip("/")



# ------------------------------------------------------------------------------ operations (logs, readiness)

LOG_FORMATS = ("json", "text")


def log_format(explicit: str | None = None, default: str = "json") -> str:
    """How the server logs (``logs.configure``): ``--log-format`` wins, then ``DINHDANH_LOG_FORMAT``,
    then ``default`` (json for ``serve``, text for ``demo``). ``json``: one JSON object per line."""
    value = (explicit or os.environ.get("DINHDANH_LOG_FORMAT", "") or default).strip().lower()
    if value not in LOG_FORMATS:
        raise ValueError(f"the log format must be one of {', '.join(LOG_FORMATS)}, not {value!r}")
    return value


def log_level() -> str:
    """The server's log level (``DINHDANH_LOG_LEVEL``: DEBUG, INFO, WARNING, ERROR; INFO by default)."""
    value = os.environ.get("DINHDANH_LOG_LEVEL", "").strip().upper() or "INFO"
    if value not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ValueError(f"DINHDANH_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, not {value!r}")
    return value


def redis_url() -> str | None:
    """The Redis server the rate limits and quotas use (``DINHDANH_REDIS_URL``), if any."""
    return os.environ.get("DINHDANH_REDIS_URL", "").strip() or None


def nats_url() -> str | None:
    """The NATS server partner events are published to (``DINHDANH_NATS_URL``), if any."""
    return os.environ.get("DINHDANH_NATS_URL", "").strip() or None

# ------------------------------------------------------------------------------ payments (fees.gateway)


def _text(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


def vnpay_tmn_code() -> str | None:
    """The merchant's terminal code at VNPAY (``DINHDANH_VNPAY_TMN_CODE``)."""
    return _text("DINHDANH_VNPAY_TMN_CODE")


def vnpay_hash_secret() -> str | None:
    """The hash secret VNPAY shares with the merchant (``DINHDANH_VNPAY_HASH_SECRET``): from the
    environment (a secret store), never from a file in the repository, never logged."""
    return _text("DINHDANH_VNPAY_HASH_SECRET")


def vnpay_url() -> str | None:
    """The gateway's pay page (``DINHDANH_VNPAY_URL``; VNPAY's sandbox when unset)."""
    return _text("DINHDANH_VNPAY_URL")


def vnpay_api_url() -> str | None:
    """The gateway's transaction API, querydr and refund (``DINHDANH_VNPAY_API_URL``)."""
    return _text("DINHDANH_VNPAY_API_URL")


def vnpay_ipn_url() -> str | None:
    """Where the local gateway sends its IPNs (``DINHDANH_VNPAY_IPN_URL``; by default this server's
    ``/api/v1/payments/vnpay/ipn``). VNPAY itself keeps the IPN URL the merchant registered."""
    return _text("DINHDANH_VNPAY_IPN_URL")


def payments_local_gateway() -> bool:
    """Whether this server also plays VNPAY at ``/_gateway/vnpay/`` (``DINHDANH_PAYMENTS_LOCAL_GATEWAY=1``):
    for the demo and tests only, off by default."""
    return os.environ.get("DINHDANH_PAYMENTS_LOCAL_GATEWAY", "").strip().lower() in ("1", "true", "yes", "on")

# ------------------------------------------------------------------------------ read replica (store.replica)


def replica_url() -> str | None:
    """A streaming replica of the PostgreSQL primary that officers' and partners' reads may use
    (``DINHDANH_REPLICA_URL``; normalised like ``database_url``), if any."""
    value = os.environ.get("DINHDANH_REPLICA_URL", "").strip()
    return database_url(value) if value else None


def replica_max_lag() -> float:
    """How stale the replica may be and still serve reads (``DINHDANH_REPLICA_MAX_LAG`` seconds, 1
    by default): above it, reads go to the primary (``store.replica``)."""
    return _positive("DINHDANH_REPLICA_MAX_LAG", 1.0)
