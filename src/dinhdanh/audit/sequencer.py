"""The sequencer: integrates unsequenced access-log entries into the Merkle tree, in batches, and
signs a tree head after each (Trillian's log signer, in small).

One writer: a lease (``audit_sequencer``, one row) says which process integrates; each batch is one
transaction that locks that row, checks the lease, reads the newest head, gives the next entries
(in ``access_id`` order among those committed) their leaf index, salt and leaf hash, grows the tiles
and inserts the new signed head. A crash anywhere rolls the batch back whole: the entries stay
unsequenced and the next holder integrates them. Two holders (a lease that ran out mid-batch) cannot
fork the tree: the row lock and the head read inside the same transaction serialise them.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import time

import sqlalchemy as sa

from dinhdanh.audit import heads, merkle
from dinhdanh.audit.leaves import SALT_BYTES, leaf_bytes
from dinhdanh.audit.tables import access_log, audit_sequencer, audit_tree_heads
from dinhdanh.audit.tree import TreeStore
from dinhdanh.store.base import utcnow
from dinhdanh.store.unit_of_work import UnitOfWork
from dinhdanh.store.vault import Vault

log = logging.getLogger("dinhdanh.audit")
LEASE = dt.timedelta(seconds=15)
# entries per batch: a SQLite batch holds the database's writer, so it stays short there
BATCH = {"sqlite": 2_000, "postgresql": 20_000}
PAUSE = 0.25  # seconds between looks when there is nothing to do

_PENDING = (sa.select(access_log.c.access_id, access_log.c.at, access_log.c.actor, access_log.c.person_id,
                      access_log.c.action, access_log.c.purpose, access_log.c.fields, access_log.c.outcome)
            .where(access_log.c.leaf_index.is_(None)).order_by(access_log.c.access_id)
            .limit(sa.bindparam("limit")))
_WAITING = sa.select(access_log.c.access_id).where(access_log.c.leaf_index.is_(None)).limit(1)
_PLACE = (access_log.update().where(access_log.c.access_id == sa.bindparam("aid"))
          .values(leaf_index=sa.bindparam("li"), salt=sa.bindparam("s"), leaf_hash=sa.bindparam("h")))


def holder_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"[:100]


def _take_lease(conn: sa.Connection, holder: str, now: dt.datetime) -> bool:
    query = sa.select(audit_sequencer.c.holder, audit_sequencer.c.lease_until).where(audit_sequencer.c.id == 1)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)  # another holder is integrating: not our turn
    row = conn.execute(query).first()
    if row is None:
        return False
    if row.holder not in (None, holder) and row.lease_until is not None and row.lease_until > now:
        return False
    conn.execute(audit_sequencer.update().where(audit_sequencer.c.id == 1)
                 .values(holder=holder, lease_until=now + LEASE))
    return True


def integrate(uow: UnitOfWork, vault: Vault, *, holder: str | None = None, limit: int | None = None,
              now: dt.datetime | None = None) -> int:
    """Integrate one batch; the number of entries integrated (0: nothing waiting, or not our lease)."""
    holder = holder or holder_name()
    limit = limit or BATCH.get(uow.engine.dialect.name, 2_000)
    with uow.read() as conn:  # idle: look without writing (no lease renewal, no writer lock taken)
        if conn.execute(_WAITING).first() is None:
            return 0
    with uow.begin() as conn:
        now = now or utcnow()
        if not _take_lease(conn, holder, now):
            return 0
        rows = conn.execute(_PENDING, {"limit": limit}).all()
        if not rows:
            return 0
        head = heads.latest_head(conn)
        size = head.tree_size if head else 0
        salts = os.urandom(SALT_BYTES * len(rows))
        places, hashes = [], []
        for i, row in enumerate(rows):
            salt = salts[i * SALT_BYTES:(i + 1) * SALT_BYTES]
            digest = merkle.leaf_hash(leaf_bytes({**row._mapping, "salt": salt, "leaf_index": size + i}))
            hashes.append(digest)
            places.append({"aid": row.access_id, "li": size + i, "s": salt, "h": digest})
        store = TreeStore(conn)
        store.prime_leaves(size, hashes)
        conn.execute(_PLACE, places)
        new_size = size + len(rows)
        store.append(size, new_size)
        root = merkle.root(new_size, store.node)
        signed = heads.sign_head(conn, vault, new_size, root, int(time.time() * 1000))
        conn.execute(audit_tree_heads.insert().values(tree_size=new_size, root_hash=root,
                                                      timestamp=signed.timestamp, signature=signed.signature))
    return len(rows)


def integrate_all(uow: UnitOfWork, vault: Vault, *, holder: str | None = None) -> int:
    """Integrate until nothing is waiting (or another process holds the lease)."""
    holder = holder or holder_name()
    total = 0
    while True:
        done = integrate(uow, vault, holder=holder)
        total += done
        if done == 0:
            return total


def release(uow: UnitOfWork, holder: str) -> None:
    """Give the lease up (a clean stop), so another process takes over at once."""
    with uow.begin() as conn:
        conn.execute(audit_sequencer.update().where(audit_sequencer.c.id == 1, audit_sequencer.c.holder == holder)
                     .values(holder=None, lease_until=None))


def sequencer_loop(uow: UnitOfWork, vault: Vault, stop: threading.Event) -> None:
    """Integrate as entries arrive until ``stop`` is set (``dinhdanh serve`` runs it in a thread)."""
    holder = holder_name()
    try:
        while not stop.is_set():
            done = integrate(uow, vault, holder=holder)
            if done == 0:
                stop.wait(PAUSE)
    finally:
        try:
            release(uow, holder)
        except Exception:  # the database may be gone at shutdown; the lease then simply runs out
            log.warning("could not release the sequencer lease")
