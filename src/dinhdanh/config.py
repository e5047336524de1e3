"""Where the platform keeps its data, chosen once at the edge and passed down."""

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
