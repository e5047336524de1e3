"""An independent reference of RFC 9162 (Certificate Transparency 2.0) section 2.1, for tests.

Written from the RFC's text, not from the project's code (nothing here imports ``dinhdanh``): the
tests check the project's transparency log against it, so the two must not share a mistake.

- s2.1.1  ``mth``: the Merkle Tree Hash of a list of leaf hashes (leaf hash = HASH(0x00 || data),
  node hash = HASH(0x01 || left || right), HASH = SHA-256; the empty tree is HASH of nothing).
- s2.1.3.1 ``inclusion_path``: PATH(m, D[n]), the recursive definition.
- s2.1.3.2 ``verify_inclusion``: the iterative verification algorithm, step by step.
- s2.1.4.1 ``consistency_path``: PROOF(m, D[n]) = SUBPROOF(m, D[n], true).
- s2.1.4.2 ``verify_consistency``: the iterative verification algorithm, step by step.

The recursive definitions are written over leaf *hashes* (D[0:n] stands for the leaves, and only
their hashes enter the tree), so a test can build trees from the hashes a log publishes.
"""

from __future__ import annotations

import hashlib

HASH_SIZE = 32


def _hash(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def leaf_hash(data: bytes) -> bytes:
    """MTH({d(0)}) = HASH(0x00 || d(0))."""
    return _hash(b"\x00" + data)


def node_hash(left: bytes, right: bytes) -> bytes:
    """HASH(0x01 || MTH(D[0:k]) || MTH(D[k:n]))."""
    return _hash(b"\x01" + left + right)


def _split(n: int) -> int:
    """k, the largest power of two smaller than n (n > 1)."""
    if n < 2:
        raise ValueError("a split needs at least two leaves")
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(leaf_hashes: list[bytes]) -> bytes:
    """MTH(D[n]) from the leaves' hashes (s2.1.1): HASH() for no leaves, the leaf hash for one, else
    the node hash of MTH(D[0:k]) and MTH(D[k:n])."""
    n = len(leaf_hashes)
    if n == 0:
        return _hash(b"")
    if n == 1:
        return leaf_hashes[0]
    k = _split(n)
    return node_hash(mth(leaf_hashes[:k]), mth(leaf_hashes[k:]))


def inclusion_path(index: int, leaf_hashes: list[bytes]) -> list[bytes]:
    """PATH(m, D[n]) (s2.1.3.1): the audit path of leaf ``index`` in the tree of ``leaf_hashes``."""
    n = len(leaf_hashes)
    if not 0 <= index < n:
        raise ValueError("the index is not a leaf of the tree")
    if n == 1:
        return []
    k = _split(n)
    if index < k:
        return inclusion_path(index, leaf_hashes[:k]) + [mth(leaf_hashes[k:])]
    return inclusion_path(index - k, leaf_hashes[k:]) + [mth(leaf_hashes[:k])]


def _subproof(m: int, leaf_hashes: list[bytes], b: bool) -> list[bytes]:
    """SUBPROOF(m, D[n], b) (s2.1.4.1)."""
    n = len(leaf_hashes)
    if m == n:
        return [] if b else [mth(leaf_hashes)]
    k = _split(n)
    if m <= k:
        return _subproof(m, leaf_hashes[:k], b) + [mth(leaf_hashes[k:])]
    return _subproof(m - k, leaf_hashes[k:], False) + [mth(leaf_hashes[:k])]


def consistency_path(m: int, leaf_hashes: list[bytes]) -> list[bytes]:
    """PROOF(m, D[n]) = SUBPROOF(m, D[n], true) (s2.1.4.1), for 0 < m <= n."""
    if not 0 < m <= len(leaf_hashes):
        raise ValueError("a consistency proof needs 0 < m <= n")
    return _subproof(m, leaf_hashes, True)


def _is_hash(value) -> bool:
    return isinstance(value, bytes | bytearray) and len(value) == HASH_SIZE


def verify_inclusion(leaf_index: int, tree_size: int, leaf_hash: bytes, path: list[bytes], root: bytes) -> bool:
    """s2.1.3.2, step by step. ``leaf_hash`` is the hash of the leaf (already 0x00-prefixed)."""
    if not (_is_hash(leaf_hash) and _is_hash(root) and all(_is_hash(p) for p in path)):
        return False
    if leaf_index < 0 or tree_size < 0:
        return False
    # 1. leaf_index >= tree_size: fail.
    if leaf_index >= tree_size:
        return False
    # 2. fn = leaf_index, sn = tree_size - 1.
    fn, sn = leaf_index, tree_size - 1
    # 3. r = hash.
    r = bytes(leaf_hash)
    # 4. for each p in inclusion_path:
    for p in path:
        # a. sn == 0: stop and fail.
        if sn == 0:
            return False
        # b. LSB(fn) set, or fn == sn:
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            # ii. if LSB(fn) is not set, right-shift both until LSB(fn) is set or fn is 0.
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        # c. right-shift both one time.
        fn >>= 1
        sn >>= 1
    # 5. sn == 0 and r == root_hash.
    return sn == 0 and r == root


def verify_consistency(first: int, second: int, first_root: bytes, second_root: bytes, path: list[bytes]) -> bool:
    """s2.1.4.2, step by step, for 0 < first < second; and the two cases around it:
    first == second proves nothing but equality (PROOF(n, D[n]) is the empty list, so the path
    must be empty and the roots equal), and first == 0 is not provable (there is no tree head of
    the empty tree to be consistent with: refused)."""
    if not (_is_hash(first_root) and _is_hash(second_root) and all(_is_hash(p) for p in path)):
        return False
    if first <= 0 or second <= 0 or first > second:
        return False
    if first == second:
        return len(path) == 0 and first_root == second_root
    # 1. an empty consistency_path: fail.
    if not path:
        return False
    path = [bytes(p) for p in path]
    # 2. first an exact power of 2: prepend first_hash.
    if first & (first - 1) == 0:
        path = [bytes(first_root)] + path
    # 3. fn = first - 1, sn = second - 1.
    fn, sn = first - 1, second - 1
    # 4. if LSB(fn) is set, right-shift both until LSB(fn) is not set.
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # 5. fr = sr = the first value of the path.
    fr = sr = path[0]
    # 6. for each subsequent value c:
    for c in path[1:]:
        # sn == 0: stop and fail.
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            # 3. if LSB(fn) is not set, right-shift both until LSB(fn) is set or fn is 0.
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        # finally, right-shift both one time.
        fn >>= 1
        sn >>= 1
    # 7. fr == first_hash, sr == second_hash, sn == 0.
    return fr == first_root and sr == second_root and sn == 0
