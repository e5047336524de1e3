"""The Merkle tree of RFC 9162 (Certificate Transparency v2) section 2.1: hashes, roots, inclusion
and consistency proofs, and their verification. Pure functions; storage is ``audit.tree``.

Hashes, exactly as s2.1.1: a leaf is SHA-256(0x00 || leaf bytes), an inner node
SHA-256(0x01 || left || right); the root of n leaves splits them at k, the largest power of two
smaller than n. Proofs are computed from ``node(height, index)``: the hash of the complete subtree
of 2**height leaves starting at leaf ``index * 2**height`` (what the store keeps or derives), so a
proof needs O(log n) of them.

>>> leaves = [leaf_hash(bytes([i])) for i in range(7)]
>>> def node(h, i):
...     return subtree_of(leaves[i << h:(i + 1) << h])
>>> root7 = root(7, node)
>>> verify_inclusion(5, 7, leaves[5], inclusion_path(5, 7, node), root7)
True
>>> verify_consistency(3, 7, root(3, node), root7, consistency_path(3, 7, node))
True
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

__all__ = ["leaf_hash", "node_hash", "EMPTY_ROOT", "root", "subtree_of", "inclusion_path", "consistency_path",
           "verify_inclusion", "verify_consistency", "Node"]

Node = Callable[[int, int], bytes]  # (height, index) -> hash of a complete subtree
EMPTY_ROOT = hashlib.sha256(b"").digest()  # MTH({}) = SHA-256()


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def subtree_of(hashes: Sequence[bytes]) -> bytes:
    """MTH of a list of leaf hashes (any length), computed level by level."""
    if not hashes:
        return EMPTY_ROOT
    level = list(hashes)
    while len(level) > 1:
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])  # an odd node is promoted: the same as splitting at k
        level = paired
    return level[0]


def _mth(lo: int, hi: int, node: Node) -> bytes:
    """MTH of leaves [lo, hi), where ``lo`` is a multiple of the largest power of two <= hi - lo
    (always so for the ranges the RFC's recursions make)."""
    n = hi - lo
    if n & (n - 1) == 0:  # a complete subtree
        height = n.bit_length() - 1
        return node(height, lo >> height)
    k = _split(n)
    return node_hash(_mth(lo, lo + k, node), _mth(lo + k, hi, node))


def root(size: int, node: Node) -> bytes:
    """The root hash of the first ``size`` leaves."""
    return EMPTY_ROOT if size == 0 else _mth(0, size, node)


def inclusion_path(index: int, size: int, node: Node) -> list[bytes]:
    """PATH(index, D[size]) of s2.1.3.1: the audit path of leaf ``index`` in the tree of ``size``."""
    if not 0 <= index < size:
        raise ValueError("the leaf index must be below the tree size")
    path: list[bytes] = []
    lo, hi, m = 0, size, index
    while hi - lo > 1:  # the RFC's recursion, unrolled; siblings collected top-down, returned bottom-up
        k = _split(hi - lo)
        if m < k:
            path.append(_mth(lo + k, hi, node))
            hi = lo + k
        else:
            path.append(_mth(lo, lo + k, node))
            lo, m = lo + k, m - k
    path.reverse()
    return path


def consistency_path(first: int, second: int, node: Node) -> list[bytes]:
    """PROOF(first, D[second]) of s2.1.4.1 (0 < first <= second)."""
    if not 0 < first <= second:
        raise ValueError("a consistency proof needs 0 < first <= second")
    path: list[bytes] = []
    lo, hi, m, whole = 0, second, first, True
    while True:  # SUBPROOF(m, D[lo:hi], whole), unrolled
        n = hi - lo
        if m == n:
            if not whole:
                path.append(_mth(lo, hi, node))
            break
        k = _split(n)
        if m <= k:
            path.append(_mth(lo + k, hi, node))
            hi = lo + k
        else:
            path.append(_mth(lo, lo + k, node))
            lo, m, whole = lo + k, m - k, False
    path.reverse()
    return path


def verify_inclusion(index: int, size: int, leaf: bytes, path: Sequence[bytes], expected_root: bytes) -> bool:
    """s2.1.3.2: whether ``path`` proves leaf hash ``leaf`` at ``index`` in the tree of ``size``."""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == expected_root


def verify_consistency(first: int, second: int, first_root: bytes, second_root: bytes,
                       path: Sequence[bytes]) -> bool:
    """s2.1.4.2: whether ``path`` proves the tree of ``first`` leaves a prefix of the one of ``second``."""
    if first == second:
        return not path and first_root == second_root
    if not 0 < first < second or not path:
        return False
    path = list(path)
    if first & (first - 1) == 0:  # an exact power of two: the first root starts the walk
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == first_root and sr == second_root
