"""Storage: one SQLAlchemy metadata, one engine factory, one migration history."""

from dinhdanh.store.engine import make_engine, upgrade
from dinhdanh.store.base import metadata

__all__ = ["make_engine", "metadata", "upgrade"]
