"""The access log's Merkle tree in storage: leaf hashes in ``access_log``, the levels above them in
tiles (``audit_tiles``, see its comment), read and grown inside the caller's transaction.

``TreeStore(conn).node(height, index)`` answers the hash of any complete subtree of any tree size
the log has had (tiles only grow), which is all ``audit.merkle`` needs for roots and proofs.
``append`` grows the tiles after the sequencer placed new leaves.
"""

from __future__ import annotations

import sqlalchemy as sa

from dinhdanh.audit.merkle import subtree_of
from dinhdanh.audit.tables import access_log, audit_tiles

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT  # 256 hashes
HASH = 32


class TreeInconsistent(Exception):
    """A node the tree should have is missing (the log's storage was cut or altered)."""


_LEAVES = (sa.select(access_log.c.leaf_index, access_log.c.leaf_hash)
           .where(access_log.c.leaf_index >= sa.bindparam("lo"), access_log.c.leaf_index < sa.bindparam("hi"))
           .order_by(access_log.c.leaf_index))
_TILE = sa.select(audit_tiles.c.hashes).where(audit_tiles.c.level == sa.bindparam("level"),
                                             audit_tiles.c.idx == sa.bindparam("idx"))


class TreeStore:
    """Tiles and leaf blocks read through a per-transaction cache."""

    def __init__(self, conn: sa.Connection):
        self.conn = conn
        self._tiles: dict[tuple[int, int], bytes] = {}
        self._stored: set[tuple[int, int]] = set()  # tiles that have a row

    def tile(self, level: int, idx: int) -> bytes:
        """The hashes of tile (level, idx) as stored (fewer than 256 for the last of a level)."""
        key = (level, idx)
        found = self._tiles.get(key)
        if found is not None:
            return found
        if level == 0:
            lo = idx * TILE_WIDTH
            rows = self.conn.execute(_LEAVES, {"lo": lo, "hi": lo + TILE_WIDTH}).all()
            for n, row in enumerate(rows):  # a block must hold its leaves without gaps
                if row.leaf_index != lo + n or row.leaf_hash is None or len(row.leaf_hash) != HASH:
                    raise TreeInconsistent(f"leaf {lo + n} is missing or malformed")
            found = b"".join(row.leaf_hash for row in rows)
        else:
            found = self.conn.execute(_TILE, {"level": level, "idx": idx}).scalar()
            if found is None:
                found = b""
            else:
                self._stored.add(key)
        self._tiles[key] = found
        return found

    def node(self, height: int, index: int) -> bytes:
        """The hash of the complete subtree of 2**height leaves at ``index``."""
        level, rest = divmod(height, TILE_HEIGHT)
        first = index << rest  # its first node at the tile level's height
        tile = self.tile(level, first >> TILE_HEIGHT)
        offset = first & (TILE_WIDTH - 1)
        count = 1 << rest
        if len(tile) < (offset + count) * HASH:
            raise TreeInconsistent(f"node ({height}, {index}) is not in the tree")
        if count == 1:
            return tile[offset * HASH:(offset + 1) * HASH]
        return subtree_of([tile[i * HASH:(i + 1) * HASH] for i in range(offset, offset + count)])

    def prime_leaves(self, first: int, hashes: list[bytes]) -> None:
        """Tell the cache about leaves ``first ..`` just written (so appending reads none back)."""
        block = first >> TILE_HEIGHT
        start = block * TILE_WIDTH
        held = self.tile(0, block) if start < first else b""
        if len(held) != (first - start) * HASH:
            raise TreeInconsistent(f"leaf block {block} holds {len(held) // HASH} leaves, expected {first - start}")
        data = held + b"".join(hashes)
        for i in range(0, len(data), TILE_WIDTH * HASH):
            self._tiles[(0, block + i // (TILE_WIDTH * HASH))] = data[i:i + TILE_WIDTH * HASH]

    def append(self, old_size: int, new_size: int) -> None:
        """Store the tile hashes of every subtree completed by growing the tree from ``old_size`` to
        ``new_size`` leaves (the leaves themselves are already in place and primed)."""
        level = 1
        while True:
            shift = TILE_HEIGHT * level
            lo, hi = old_size >> shift, new_size >> shift  # complete nodes at this height: [0, lo) -> [0, hi)
            if hi == lo:
                return
            new = []
            for j in range(lo, hi):  # each is the root of the full tile below it
                below = self.tile(level - 1, j)
                if len(below) != TILE_WIDTH * HASH:
                    raise TreeInconsistent(f"tile ({level - 1}, {j}) is not full")
                new.append(subtree_of([below[i * HASH:(i + 1) * HASH] for i in range(TILE_WIDTH)]))
            j = lo
            while j < hi:
                idx = j >> TILE_HEIGHT
                end = min(hi, (idx + 1) * TILE_WIDTH)
                held = self.tile(level, idx)
                if len(held) != (j - idx * TILE_WIDTH) * HASH:
                    raise TreeInconsistent(f"tile ({level}, {idx}) holds {len(held) // HASH} hashes, "
                                           f"expected {j - idx * TILE_WIDTH}")
                data = held + b"".join(new[j - lo:end - lo])
                if (level, idx) in self._stored:
                    self.conn.execute(audit_tiles.update().where(audit_tiles.c.level == level,
                                                                 audit_tiles.c.idx == idx).values(hashes=data))
                else:
                    self.conn.execute(audit_tiles.insert().values(level=level, idx=idx, hashes=data))
                    self._stored.add((level, idx))
                self._tiles[(level, idx)] = data
                j = end
            level += 1
