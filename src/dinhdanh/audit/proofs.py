"""What the log answers anyone: its signed head, inclusion and consistency proofs, its keys."""

from __future__ import annotations

import time

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from dinhdanh.audit import heads, merkle
from dinhdanh.audit.tables import audit_tree_heads
from dinhdanh.audit.tree import TreeStore
from dinhdanh.registry.errors import InvalidInput
from dinhdanh.store.unit_of_work import UnitOfWork
from dinhdanh.store.vault import Vault


def current_head(uow: UnitOfWork, vault: Vault) -> heads.Head:
    """The newest signed head; for a log that has never integrated anything, a signed empty head."""
    with uow.read() as conn:
        found = heads.latest_head(conn)
    if found is not None:
        return found
    with uow.begin() as conn:
        found = heads.latest_head(conn)
        if found is None:
            found = heads.sign_head(conn, vault, 0, merkle.EMPTY_ROOT, int(time.time() * 1000))
            insert = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(audit_tree_heads)
            conn.execute(insert.values(tree_size=0, root_hash=found.root_hash, timestamp=found.timestamp,
                                       signature=found.signature).on_conflict_do_nothing())
    return found


def _size(conn: sa.Connection) -> int:
    head = heads.latest_head(conn)
    return head.tree_size if head else 0


def inclusion(conn: sa.Connection, leaf_index: int, tree_size: int) -> tuple[bytes, list[bytes]]:
    """The leaf's hash and its audit path in the tree of ``tree_size`` (any size up to the head's)."""
    if tree_size > _size(conn):
        raise InvalidInput("The log is not that large yet.", code="beyond_tree", field="tree_size")
    if leaf_index >= tree_size:
        raise InvalidInput("The leaf index must be below the tree size.", code="leaf_outside_tree",
                           field="leaf_index")
    store = TreeStore(conn)
    return store.node(0, leaf_index), merkle.inclusion_path(leaf_index, tree_size, store.node)


def consistency(conn: sa.Connection, first: int, second: int) -> list[bytes]:
    """The proof that the tree of ``first`` leaves is a prefix of the tree of ``second``."""
    if second > _size(conn):
        raise InvalidInput("The log is not that large yet.", code="beyond_tree", field="second")
    if first == 0 or first > second:
        raise InvalidInput("first must be between 1 and second.", code="bad_range", field="first")
    if first == second:
        return []
    return merkle.consistency_path(first, second, TreeStore(conn).node)


def keys(conn: sa.Connection) -> dict:
    return heads.public_keys(conn)
