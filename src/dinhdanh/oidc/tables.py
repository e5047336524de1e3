"""Tables of this area, on the shared metadata."""

from __future__ import annotations

import sqlalchemy as sa  # noqa: F401

from dinhdanh.store.base import Id, Key, UTCDateTime, metadata, one_of  # noqa: F401
