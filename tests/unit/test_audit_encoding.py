"""The chain's encoding: the fast per-call encoding of ``link`` is byte for byte ``canonical``."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

from dinhdanh.audit.chain import GENESIS, canonical, entry_hash, link


def _rows(**kw):
    base = {"at": dt.datetime(2025, 7, 1, 9, 30, 0, 120, tzinfo=dt.timezone(dt.timedelta(hours=7))),
            "actor": "partner:bảo-hiểm \"xã hội\"", "action": "read", "purpose": "public_service",
            "fields": json.dumps(["full_name", "ngày_sinh"], ensure_ascii=False), "outcome": "ok"}
    base.update(kw)
    return [dict(base, person_id=pid) for pid in (1, 22, 333)]


def test_link_matches_the_canonical_encoding():
    for kw in ({}, {"fields": None, "outcome": "refused"}, {"actor": "officer:12"}):
        rows = _rows(**kw)
        last = link(rows, GENESIS)
        prev = GENESIS
        for row in rows:
            assert row["prev_hash"] == prev
            assert row["hash"] == entry_hash(row) == hashlib.sha256(canonical(row)).hexdigest()
            prev = row["hash"]
        assert last == prev


def test_canonical_form():
    row = _rows(fields=None)[0]
    row["prev_hash"] = GENESIS
    text = canonical(row).decode()
    assert text == ('{"action":"read","actor":"partner:bảo-hiểm \\"xã hội\\"","at":"2025-07-01T02:30:00.000120+00:00",'
                    '"fields":null,"outcome":"ok","person_id":1,"prev_hash":"' + GENESIS + '","purpose":"public_service"}')
