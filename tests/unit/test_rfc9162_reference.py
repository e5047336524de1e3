"""The test suite's own RFC 9162 reference (tests/rfc9162.py) checked against itself and against
the published Certificate Transparency test vectors, before it is trusted to judge the project's
transparency log: for every tree size 1..70, every leaf's PATH and every PROOF(m) verify with the
RFC's iterative algorithms, and every tampered path, root, index or size fails."""

from __future__ import annotations

import hashlib

import pytest

from tests.rfc9162 import (
    consistency_path,
    inclusion_path,
    leaf_hash,
    mth,
    node_hash,
    verify_consistency,
    verify_inclusion,
)

MAX_SIZE = 70
LEAVES = [leaf_hash(b"leaf %d" % i) for i in range(MAX_SIZE)]
ROOTS = [mth(LEAVES[:n]) for n in range(MAX_SIZE + 1)]
SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")
EMPTY_ROOT = hashlib.sha256(b"").digest()

# The eight test leaves of the Certificate Transparency and Trillian test suites, and the Merkle
# tree hashes of their first 0..8 leaves (RFC 6962 and RFC 9162 hash trees alike).
CT_LEAVES = [bytes.fromhex(h) for h in ("", "00", "10", "2021", "3031", "40414243", "5051525354555657",
                                        "606162636465666768696a6b6c6d6e6f")]
CT_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
# Trillian's inclusion and consistency vectors over the same leaves (leaf indexes 0-based here).
CT_INCLUSION = [
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]
CT_CONSISTENCY = [
    (1, 1, []),
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]


def flipped(path: list[bytes], i: int, bit: int = 8) -> list[bytes]:
    out = list(path)
    out[i] = bytes([out[i][0] ^ bit]) + out[i][1:]
    return out


def inclusion_tampers(index: int, size: int, leaf: bytes, path: list[bytes], root: bytes):
    """Trillian's corruptions of an inclusion proof, each of which must fail."""
    yield "index - 1", (index - 1, size, leaf, path, root)
    yield "index + 1", (index + 1, size, leaf, path, root)
    yield "index ^ 2", (index ^ 2, size, leaf, path, root)
    yield "size * 2", (index, size * 2, leaf, path, root)
    yield "size // 2", (index, size // 2, leaf, path, root)
    yield "wrong leaf", (index, size, leaf_hash(b"WrongLeaf"), path, root)
    yield "empty root", (index, size, leaf, path, EMPTY_ROOT)
    yield "random root", (index, size, leaf, path, SOME_HASH)
    yield "trailing garbage", (index, size, leaf, path + [b""], root)
    yield "trailing hash", (index, size, leaf, path + [SOME_HASH], root)
    yield "trailing root", (index, size, leaf, path + [root], root)
    yield "preceding garbage", (index, size, leaf, [b""] + path, root)
    yield "preceding root", (index, size, leaf, [root] + path, root)
    for i in range(len(path)):
        yield f"flipped bit in path[{i}]", (index, size, leaf, flipped(path, i), root)
    if path:
        yield "removed component", (index, size, leaf, path[:-1], root)
        yield "removed first component", (index, size, leaf, path[1:], root)
    if len(path) > 1:
        yield "inserted component", (index, size, leaf, [path[0], SOME_HASH] + path[1:], root)
        yield "swapped components", (index, size, leaf, [path[1], path[0]] + path[2:], root)


def consistency_tampers(first: int, second: int, root1: bytes, root2: bytes, path: list[bytes]):
    """Trillian's corruptions of a non-trivial consistency proof, each of which must fail."""
    yield "first - 1", (first - 1, second, root1, root2, path)
    yield "first + 1", (first + 1, second, root1, root2, path)
    yield "first ^ 2", (first ^ 2, second, root1, root2, path)
    yield "second * 2", (first, second * 2, root1, root2, path)
    yield "second // 2", (first, second // 2, root1, root2, path)
    yield "wrong root1", (first, second, SOME_HASH, root2, path)
    yield "wrong root2", (first, second, root1, SOME_HASH, path)
    yield "swapped roots", (first, second, root2, root1, path)
    yield "empty proof", (first, second, root1, root2, [])
    yield "trailing garbage", (first, second, root1, root2, path + [b""])
    yield "trailing root1", (first, second, root1, root2, path + [root1])
    yield "trailing root2", (first, second, root1, root2, path + [root2])
    yield "preceding garbage", (first, second, root1, root2, [b""] + path)
    yield "preceding root1", (first, second, root1, root2, [root1] + path)
    yield "preceding root2", (first, second, root1, root2, [root2] + path)
    yield "preceding path[0]", (first, second, root1, root2, [path[0]] + path)
    yield "truncated", (first, second, root1, root2, path[:-1])
    for i in range(len(path)):
        yield f"flipped bit in path[{i}]", (first, second, root1, root2, flipped(path, i, 16))


# ------------------------------------------------------------------------------ the definitions


def test_hashes_are_domain_separated():
    assert leaf_hash(b"") == hashlib.sha256(b"\x00").digest()
    assert node_hash(b"a" * 32, b"b" * 32) == hashlib.sha256(b"\x01" + b"a" * 32 + b"b" * 32).digest()
    assert mth([]) == EMPTY_ROOT
    assert mth([LEAVES[0]]) == LEAVES[0]
    assert mth(LEAVES[:2]) == node_hash(LEAVES[0], LEAVES[1])
    # k is the largest power of two SMALLER than n: 3 = 2 + 1, 4 = 2 + 2, 5 = 4 + 1, 8 = 4 + 4
    assert mth(LEAVES[:3]) == node_hash(mth(LEAVES[:2]), LEAVES[2])
    assert mth(LEAVES[:5]) == node_hash(mth(LEAVES[:4]), LEAVES[4])
    assert mth(LEAVES[:8]) == node_hash(mth(LEAVES[:4]), mth(LEAVES[4:8]))


def test_the_published_roots():
    hashes = [leaf_hash(d) for d in CT_LEAVES]
    assert [mth(hashes[:n]).hex() for n in range(9)] == CT_ROOTS


@pytest.mark.parametrize(("index", "size", "path"), CT_INCLUSION)
def test_the_published_inclusion_proofs(index, size, path):
    hashes = [leaf_hash(d) for d in CT_LEAVES]
    path = [bytes.fromhex(h) for h in path]
    assert inclusion_path(index, hashes[:size]) == path
    root = bytes.fromhex(CT_ROOTS[size])
    assert verify_inclusion(index, size, hashes[index], path, root)
    for what, args in inclusion_tampers(index, size, hashes[index], path, root):
        assert not verify_inclusion(*args), what


@pytest.mark.parametrize(("first", "second", "path"), CT_CONSISTENCY)
def test_the_published_consistency_proofs(first, second, path):
    hashes = [leaf_hash(d) for d in CT_LEAVES]
    path = [bytes.fromhex(h) for h in path]
    assert consistency_path(first, hashes[:second]) == path
    root1, root2 = bytes.fromhex(CT_ROOTS[first]), bytes.fromhex(CT_ROOTS[second])
    assert verify_consistency(first, second, root1, root2, path)
    if path:
        for what, args in consistency_tampers(first, second, root1, root2, path):
            assert not verify_consistency(*args), what


# ------------------------------------------------------------------------------ every small tree


@pytest.mark.parametrize("size", range(1, MAX_SIZE + 1))
def test_every_inclusion_path_verifies_and_every_tamper_fails(size):
    leaves, root = LEAVES[:size], ROOTS[size]
    for index in range(size):
        path = inclusion_path(index, leaves)
        assert verify_inclusion(index, size, leaves[index], path, root), (index, size)
        # the path has one hash per level on the leaf's way up (fewer on the ragged right edge)
        assert len(path) <= (size - 1).bit_length()
        # another leaf's hash at this index fails
        if size > 1:
            assert not verify_inclusion(index, size, leaves[(index + 1) % size], path, root)
        for what, args in inclusion_tampers(index, size, leaves[index], path, root):
            assert not verify_inclusion(*args), (index, size, what)
    assert not verify_inclusion(size, size, SOME_HASH, [], root)  # beyond the tree


@pytest.mark.parametrize("second", range(1, MAX_SIZE + 1))
def test_every_consistency_proof_verifies_and_every_tamper_fails(second):
    leaves = LEAVES[:second]
    for first in range(1, second + 1):
        path = consistency_path(first, leaves)
        assert verify_consistency(first, second, ROOTS[first], ROOTS[second], path), (first, second)
        if first == second:
            assert path == []
            continue
        # a proof against another tree's head fails
        for other in (first - 1, first + 1):
            if 0 < other <= MAX_SIZE and other != first:
                assert not verify_consistency(first, second, ROOTS[other], ROOTS[second], path), (first, second)
        for what, args in consistency_tampers(first, second, ROOTS[first], ROOTS[second], path):
            assert not verify_consistency(*args), (first, second, what)


def test_consistency_edge_cases():
    # first == second: only the empty path and equal roots
    assert verify_consistency(5, 5, ROOTS[5], ROOTS[5], [])
    assert not verify_consistency(5, 5, ROOTS[5], ROOTS[4], [])
    assert not verify_consistency(5, 5, ROOTS[5], ROOTS[5], [ROOTS[5]])
    # first == 0 is not provable, whatever is sent
    assert not verify_consistency(0, 5, EMPTY_ROOT, ROOTS[5], [])
    assert not verify_consistency(0, 5, EMPTY_ROOT, ROOTS[5], [ROOTS[5]])
    assert not verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    # time travel
    assert not verify_consistency(6, 5, ROOTS[6], ROOTS[5], consistency_path(5, LEAVES[:6]))
    # a power-of-two first: its root is implied, not sent (sending it too fails)
    path = consistency_path(4, LEAVES[:7])
    assert ROOTS[4] not in path and verify_consistency(4, 7, ROOTS[4], ROOTS[7], path)
    assert not verify_consistency(4, 7, ROOTS[4], ROOTS[7], [ROOTS[4]] + path)
    # not a power of two: the path begins with a hash of the first tree and proves it
    path = consistency_path(3, LEAVES[:7])
    assert verify_consistency(3, 7, ROOTS[3], ROOTS[7], path)


def test_inclusion_edge_cases():
    assert verify_inclusion(0, 1, LEAVES[0], [], LEAVES[0])  # a one-leaf tree: its root is the leaf
    assert not verify_inclusion(0, 1, LEAVES[0], [], LEAVES[1])
    assert not verify_inclusion(0, 0, LEAVES[0], [], EMPTY_ROOT)
    assert not verify_inclusion(1, 0, LEAVES[0], [], EMPTY_ROOT)
    assert not verify_inclusion(2, 1, LEAVES[0], [], LEAVES[0])
    assert not verify_inclusion(0, 1, b"", [], b"")  # not hashes
    with pytest.raises(ValueError):
        inclusion_path(3, LEAVES[:3])
    with pytest.raises(ValueError):
        consistency_path(0, LEAVES[:3])
