"""``dinhdanh audit verify``: recompute the log's tree from its entries and hold it against the
signed heads, the log's own newest and those auditors saved outside (``dinhdanh audit head``).

What each kind of tampering looks like:
- an entry's content changed, or an entry moved to another place: its leaf hash, recomputed from
  the row (the leaf covers ``access_id``, ``leaf_index`` and the salt), differs from the one stored
  (``leaf hash mismatch``), naming the entry;
- an entry deleted: a gap in the leaf indexes (``leaf missing``), or a tree smaller than its head;
- stored leaf hashes recomputed to cover an edit: the 256-leaf block no longer hashes to the tile
  above it (``tile mismatch``), naming the block's first entry; or the root differs from the newest
  signed head;
- the whole tree rebuilt and every head re-signed by an insider holding the log's key: only a head
  kept outside catches it, whose root the entries no longer give (``saved head not matched``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from dinhdanh.audit import heads, merkle
from dinhdanh.audit.leaves import leaf_bytes
from dinhdanh.audit.tables import access_log, audit_tiles
from dinhdanh.audit.tree import HASH, TILE_WIDTH
from dinhdanh.store.unit_of_work import UnitOfWork


@dataclass
class Report:
    tree_size: int = 0
    pending: int = 0
    first_bad: dict | None = None
    head: dict | None = None
    saved: list[dict] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return (self.first_bad is None and (self.head is None or self.head["valid"])
                and all(s["valid"] for s in self.saved))

    def as_dict(self) -> dict:
        return {"tree_size": self.tree_size, "pending": self.pending, "valid": self.valid,
                "first_bad": self.first_bad, "head": self.head, "saved": self.saved}


class _Range:
    """The compact range of a growing tree: the roots of its complete subtrees, largest first."""

    def __init__(self):
        self.stack: list[tuple[int, bytes]] = []

    def push(self, leaf: bytes) -> None:
        height, value = 0, leaf
        while self.stack and self.stack[-1][0] == height:
            value = merkle.node_hash(self.stack.pop()[1], value)
            height += 1
        self.stack.append((height, value))

    def root(self) -> bytes:
        if not self.stack:
            return merkle.EMPTY_ROOT
        value = self.stack[-1][1]
        for _, left in reversed(self.stack[:-1]):
            value = merkle.node_hash(left, value)
        return value


def read_saved(path: Path) -> heads.Head:
    return heads.Head.from_dict(json.loads(path.read_text(encoding="utf-8")))


def verify_log(uow: UnitOfWork, saved: list[tuple[str, heads.Head]] = (), batch: int = 5000) -> Report:
    report = Report()
    with uow.read() as conn:  # one snapshot (a transaction), streamed
        jwks = heads.public_keys(conn)
        latest = heads.latest_head(conn)
        report.pending = conn.execute(sa.select(sa.func.count()).select_from(access_log)
                                      .where(access_log.c.leaf_index.is_(None))).scalar_one()
        tiles = {idx: h for idx, h in conn.execute(sa.select(audit_tiles.c.idx, audit_tiles.c.hashes)
                                                   .where(audit_tiles.c.level == 1))}
        targets = {h.tree_size for _, h in saved}
        if latest is not None:
            targets.add(latest.tree_size)
        roots: dict[int, bytes] = {0: merkle.EMPTY_ROOT}
        tree, block, n = _Range(), [], 0
        query = (sa.select(access_log).where(access_log.c.leaf_index.is_not(None))
                 .order_by(access_log.c.leaf_index))
        for row in conn.execution_options(yield_per=batch).execute(query):
            if report.first_bad is None:
                if row.leaf_index != n:
                    report.first_bad = {"leaf_index": n, "access_id": None, "reason": "leaf missing"}
                elif bytes(row.leaf_hash or b"") != merkle.leaf_hash(leaf_bytes(row._mapping)):
                    report.first_bad = {"leaf_index": n, "access_id": row.access_id, "reason": "leaf hash mismatch"}
            leaf = bytes(row.leaf_hash or b"")
            tree.push(leaf)
            block.append(leaf)
            n += 1
            if len(block) == TILE_WIDTH:
                idx = n // TILE_WIDTH - 1
                tile = tiles.get(idx >> 8, b"")
                stored = tile[(idx & 255) * HASH:((idx & 255) + 1) * HASH]
                if report.first_bad is None and stored != merkle.subtree_of(block):
                    report.first_bad = {"leaf_index": idx * TILE_WIDTH, "access_id": None, "reason": "tile mismatch"}
                block = []
            if n in targets:
                roots[n] = tree.root()
        report.tree_size = n
    if latest is not None:
        report.head = _check(latest, jwks, roots, "the newest signed head")
        if n != latest.tree_size and report.first_bad is None:
            report.first_bad = {"leaf_index": min(n, latest.tree_size), "access_id": None,
                                "reason": "leaf missing" if n < latest.tree_size else "leaf beyond the signed head"}
    for name, head in saved:
        report.saved.append({"file": name, **_check(head, jwks, roots, "the saved head")})
    return report


def _check(head: heads.Head, jwks: dict, roots: dict[int, bytes], what: str) -> dict:
    out = {"tree_size": head.tree_size, "valid": True, "reason": None}
    try:
        heads.check_head(head, jwks)
    except heads.HeadError as exc:
        return {**out, "valid": False, "reason": f"{what}: {exc}"}
    root = roots.get(head.tree_size)
    if root is None:
        return {**out, "valid": False, "reason": f"{what}: the log has fewer than {head.tree_size} entries"}
    if root != head.root_hash:
        return {**out, "valid": False,
                "reason": f"saved head not matched: the first {head.tree_size} entries no longer give its root "
                          "(changed, removed or re-ordered, and the tree rebuilt)"}
    return out
