"""The bytes of an access-log leaf, and its RFC 9162 leaf hash.

A leaf's bytes are this JSON object, keys sorted, no spaces, UTF-8 (``ensure_ascii=False``)::

    {"access_id": int, "action": str, "actor": str, "at": "YYYY-MM-DDTHH:MM:SS.ffffff+00:00" (UTC),
     "fields": str | null (the column's JSON text as stored), "leaf_index": int, "outcome": str,
     "person_id": int, "purpose": str, "salt": base64 of 16 random bytes}

The salt is drawn by the sequencer for each entry and kept with it: without it, a published leaf
hash could be matched against guesses ("did officer 12 read person 4711 at 10:02?"); with it the
hash reveals nothing, while the entry's holder (the citizen it is about, an auditor) can recompute
it. ``access_id`` and ``leaf_index`` bind the leaf to its row and its place: an entry moved to
another position, or another row given its hash, no longer matches.

>>> import datetime as dt
>>> entry = {"access_id": 1, "action": "read", "actor": "officer:1",
...          "at": dt.datetime(2026, 12, 5, 3, 0, tzinfo=dt.UTC), "fields": '["record"]',
...          "leaf_index": 0, "outcome": "ok", "person_id": 42, "purpose": "administration",
...          "salt": bytes(16)}
>>> leaf_bytes(entry)[:60]
b'{"access_id":1,"action":"read","actor":"officer:1","at":"202'
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Mapping

from dinhdanh.audit.merkle import leaf_hash

SALT_BYTES = 16
COLUMNS = ("access_id", "action", "actor", "at", "fields", "outcome", "person_id", "purpose")


def iso_utc(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).isoformat(timespec="microseconds")


def leaf_bytes(entry: Mapping) -> bytes:
    """The leaf's bytes (``entry`` has ``COLUMNS``, ``leaf_index`` and ``salt``)."""
    payload = {
        "access_id": int(entry["access_id"]), "action": entry["action"], "actor": entry["actor"],
        "at": iso_utc(entry["at"]), "fields": entry["fields"], "leaf_index": int(entry["leaf_index"]),
        "outcome": entry["outcome"],
        "person_id": int(entry["person_id"]), "purpose": entry["purpose"],
        "salt": base64.b64encode(bytes(entry["salt"])).decode(),
    }
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def entry_leaf_hash(entry: Mapping) -> bytes:
    return leaf_hash(leaf_bytes(entry))
