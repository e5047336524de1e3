"""The access log as an RFC 9162 transparency log, on SQLite and PostgreSQL: entries are appended
unsequenced and integrated by the sequencer; heads are signed; proofs verify with the independent
reference in tests/rfc9162.py; tampering of every kind is caught; concurrent appends from many
threads never fork or lose an entry."""

from __future__ import annotations

import base64
import json
import threading

import pytest
import sqlalchemy as sa

from dinhdanh.audit import checks, heads, proofs, sequencer
from dinhdanh.audit.leaves import leaf_bytes
from dinhdanh.audit.service import record_access
from dinhdanh.audit.tables import access_log, audit_sequencer, audit_tiles, audit_tree_heads
from dinhdanh.registry.tables import persons
from dinhdanh.store.unit_of_work import UnitOfWork
from dinhdanh.store.vault import Vault
from tests import rfc9162 as ref

VAULT = Vault(bytes(range(32)))


def person_ids(engine) -> list[int]:
    with engine.connect() as conn:
        return conn.execute(sa.select(persons.c.person_id).order_by(persons.c.person_id)).scalars().all()


def write(engine, n: int, actor: str = "officer:1") -> None:
    ids = person_ids(engine)
    with engine.begin() as conn:
        for i in range(n):
            record_access(conn, actor, [ids[i % len(ids)]], "read", "administration", fields=["record"])


def leaves(engine) -> list[bytes]:
    with engine.connect() as conn:
        return [bytes(h) for h in conn.execute(sa.select(access_log.c.leaf_hash).where(
            access_log.c.leaf_index.is_not(None)).order_by(access_log.c.leaf_index)).scalars()]


def sql(engine, statement, **params):
    with engine.begin() as conn:
        return conn.execute(sa.text(statement), params)


@pytest.fixture
def log(family):
    return family, UnitOfWork(family)


def test_sequenced_leaves_hash_as_rfc9162_says_and_heads_verify(log):
    engine, uow = log
    write(engine, 5)
    assert sequencer.integrate_all(uow, VAULT) == 5
    write(engine, 300)  # more than a tile: level-1 tiles are grown
    assert sequencer.integrate(uow, VAULT, limit=100) == 100
    assert sequencer.integrate_all(uow, VAULT) == 200
    hashes = leaves(engine)
    assert len(hashes) == 305
    with engine.connect() as conn:
        rows = conn.execute(sa.select(access_log).order_by(access_log.c.leaf_index)).all()
        head = heads.latest_head(conn)
        jwks = heads.public_keys(conn)
        sizes = conn.execute(sa.select(audit_tree_heads.c.tree_size).order_by(audit_tree_heads.c.tree_size)
                             ).scalars().all()
    assert [r.leaf_index for r in rows] == list(range(305))
    for r in rows:  # the leaf hash is SHA-256(0x00 || leaf bytes), the bytes salted and recomputable
        assert bytes(r.leaf_hash) == ref.leaf_hash(leaf_bytes(r._mapping))
        assert len(r.salt) == 16
    assert len({bytes(r.salt) for r in rows}) == 305
    assert sizes == [5, 105, 305]
    assert head.tree_size == 305 and head.root_hash == ref.mth(hashes)
    heads.check_head(head, jwks)
    with pytest.raises(heads.HeadError):
        heads.check_head(heads.Head(head.tree_size, ref.mth(hashes[:-1]), head.timestamp, head.signature), jwks)


def test_proofs_verify_with_the_independent_reference(log):
    engine, uow = log
    write(engine, 600)
    for size in (1, 2, 3, 7, 8, 255, 256, 257, 511, 600):  # heads at awkward sizes, tiles partial and full
        with engine.begin() as conn:
            conn.execute(sa.update(audit_sequencer).values(holder=None, lease_until=None))
        sequencer.integrate(uow, VAULT, limit=size - len(leaves(engine)))
    hashes = leaves(engine)
    assert len(hashes) == 600
    with engine.connect() as conn:
        for size in (1, 2, 3, 7, 8, 255, 256, 257, 511, 600):
            root = ref.mth(hashes[:size])
            assert heads.head_at(conn, size).root_hash == root
            for index in sorted({0, 1, size // 2, size - 2, size - 1} & set(range(size))):
                leaf, path = proofs.inclusion(conn, index, size)
                assert leaf == hashes[index]
                assert ref.verify_inclusion(index, size, leaf, path, root)
                assert path == ref.inclusion_path(index, hashes[:size])
            for first in sorted({1, 2, 3, 7, 8, 255, 256, 257, 511} & set(range(1, size + 1))):
                path = proofs.consistency(conn, first, size)
                assert ref.verify_consistency(first, size, ref.mth(hashes[:first]), root, path), (first, size)
                assert path == ref.consistency_path(first, hashes[:size])


def test_bad_proof_requests_are_refused_naming_the_field(log):
    from dinhdanh.registry.errors import InvalidInput

    engine, uow = log
    write(engine, 3)
    sequencer.integrate_all(uow, VAULT)
    with engine.connect() as conn:
        for call, field in ((lambda: proofs.inclusion(conn, 3, 3), "leaf_index"),
                            (lambda: proofs.inclusion(conn, 0, 4), "tree_size"),
                            (lambda: proofs.consistency(conn, 0, 3), "first"),
                            (lambda: proofs.consistency(conn, 3, 2), "first"),
                            (lambda: proofs.consistency(conn, 1, 4), "second")):
            with pytest.raises(InvalidInput) as refused:
                call()
            assert refused.value.field == field


def saved_head(uow) -> heads.Head:
    return proofs.current_head(uow, VAULT)


def verdict(uow, *saved) -> dict:
    return checks.verify_log(uow, [(f"head{i}", h) for i, h in enumerate(saved)]).as_dict()


def test_verify_passes_a_good_log_and_reports_pending(log):
    engine, uow = log
    write(engine, 10)
    sequencer.integrate_all(uow, VAULT)
    early = saved_head(uow)
    write(engine, 4)
    report = verdict(uow, early)
    assert report["valid"] and report["tree_size"] == 10 and report["pending"] == 4
    sequencer.integrate_all(uow, VAULT)
    report = verdict(uow, early, saved_head(uow))
    assert report["valid"] and report["tree_size"] == 14 and report["pending"] == 0
    assert [s["valid"] for s in report["saved"]] == [True, True]


def test_a_changed_entry_is_named(log):
    engine, uow = log
    write(engine, 20)
    sequencer.integrate_all(uow, VAULT)
    sql(engine, "UPDATE access_log SET purpose = 'investigation' WHERE leaf_index = 7")
    report = verdict(uow)
    assert not report["valid"]
    assert report["first_bad"]["leaf_index"] == 7 and report["first_bad"]["reason"] == "leaf hash mismatch"


def test_a_deleted_entry_and_a_cut_tail_are_caught(log):
    engine, uow = log
    write(engine, 20)
    sequencer.integrate_all(uow, VAULT)
    sql(engine, "DELETE FROM access_log WHERE leaf_index = 19")
    report = verdict(uow)
    assert not report["valid"] and report["first_bad"]["reason"] == "leaf missing"
    assert report["first_bad"]["leaf_index"] == 19
    sql(engine, "DELETE FROM access_log WHERE leaf_index = 4")
    report = verdict(uow)
    assert report["first_bad"] == {"leaf_index": 4, "access_id": None, "reason": "leaf missing"}


def test_reordered_entries_are_caught(log):
    engine, uow = log
    write(engine, 20)
    sequencer.integrate_all(uow, VAULT)
    sql(engine, "UPDATE access_log SET leaf_index = -1 WHERE leaf_index = 3")
    sql(engine, "UPDATE access_log SET leaf_index = 3 WHERE leaf_index = 9")
    sql(engine, "UPDATE access_log SET leaf_index = 9 WHERE leaf_index = -1")
    report = verdict(uow)
    assert report["first_bad"]["leaf_index"] == 3 and report["first_bad"]["reason"] == "leaf hash mismatch"


def test_an_insider_who_rebuilds_the_tree_is_caught_by_a_saved_head(log):
    """Change an entry, recompute its leaf hash, every tile and every head, re-signed with the log's
    own key: the database agrees with itself; the head an auditor saved does not."""
    engine, uow = log
    write(engine, 600)
    sequencer.integrate_all(uow, VAULT)
    kept = saved_head(uow)
    with engine.begin() as conn:
        conn.execute(sa.update(access_log).where(access_log.c.leaf_index == 300).values(purpose="investigation"))
        row = conn.execute(sa.select(access_log).where(access_log.c.leaf_index == 300)).one()
        conn.execute(sa.update(access_log).where(access_log.c.leaf_index == 300)
                     .values(leaf_hash=ref.leaf_hash(leaf_bytes(row._mapping))))
        conn.execute(sa.delete(audit_tiles))
        conn.execute(sa.delete(audit_tree_heads))
        conn.execute(sa.update(access_log).values(leaf_index=None, leaf_hash=None, salt=None))
    sequencer.integrate_all(uow, VAULT)  # the insider re-sequences everything, with new salts
    alone = verdict(uow)
    assert alone["valid"], alone  # consistent with itself...
    report = verdict(uow, kept)
    assert not report["valid"]  # ... but not with what the auditor kept
    assert report["saved"][0]["reason"].startswith("saved head not matched")
    forged = heads.Head(kept.tree_size, kept.root_hash, kept.timestamp + 1, kept.signature)
    assert "signature" in verdict(uow, forged)["saved"][0]["reason"]


def test_a_tile_that_disagrees_with_its_leaves_is_named(log):
    engine, uow = log
    write(engine, 300)
    sequencer.integrate_all(uow, VAULT)
    with engine.begin() as conn:  # an edit whose leaf hash was recomputed, tiles left alone
        conn.execute(sa.update(access_log).where(access_log.c.leaf_index == 10).values(actor="officer:2"))
        row = conn.execute(sa.select(access_log).where(access_log.c.leaf_index == 10)).one()
        conn.execute(sa.update(access_log).where(access_log.c.leaf_index == 10)
                     .values(leaf_hash=ref.leaf_hash(leaf_bytes(row._mapping))))
    report = verdict(uow)
    assert report["first_bad"] == {"leaf_index": 0, "access_id": None, "reason": "tile mismatch"}


def test_many_threads_appending_while_two_sequencers_integrate_never_fork_or_lose(log):
    engine, uow = log
    ids = person_ids(engine)
    errors: list[BaseException] = []
    stop = threading.Event()

    def reader(k: int) -> None:
        try:
            for i in range(25):
                with uow.begin() as conn:
                    record_access(conn, f"officer:{k}", [ids[(k + i) % len(ids)]], "read", "administration")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    def sequencer_thread(name: str) -> None:
        try:
            while not stop.is_set():
                with engine.begin() as conn:  # two holders: make the lease change hands often
                    conn.execute(sa.update(audit_sequencer).values(lease_until=None))
                if sequencer.integrate(UnitOfWork(engine), VAULT, holder=name, limit=7) == 0:
                    stop.wait(0.01)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    seqs = [threading.Thread(target=sequencer_thread, args=(f"s{i}",)) for i in range(2)]
    readers = [threading.Thread(target=reader, args=(k,)) for k in range(16)]
    for t in seqs + readers:
        t.start()
    for t in readers:
        t.join(120)
    stop.set()
    for t in seqs:
        t.join(30)
    assert not errors, errors[:3]
    sequencer.release(uow, "s0")
    sequencer.release(uow, "s1")
    sequencer.integrate_all(uow, VAULT)
    report = verdict(uow)
    assert report["valid"], report
    assert report["tree_size"] == 16 * 25 and report["pending"] == 0
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count(sa.distinct(access_log.c.leaf_index)))).scalar_one() == 400


def test_existing_entries_before_the_log_are_integrated(family):
    """Entries written and never sequenced (as the migration leaves the old chain's) get places."""
    uow = UnitOfWork(family)
    write(family, 3)
    assert sequencer.integrate_all(uow, VAULT) == 3
    assert saved_head(uow).tree_size == 3


def test_the_head_of_an_empty_log_is_signed(family):
    uow = UnitOfWork(family)
    head = saved_head(uow)
    assert head.tree_size == 0 and head.root_hash == ref.mth([])
    with family.connect() as conn:
        heads.check_head(head, heads.public_keys(conn))
    assert json.loads(json.dumps(head.as_dict()))["root_hash"] == base64.b64encode(ref.mth([])).decode()


@pytest.mark.parametrize("field", ["actor", "action", "purpose", "outcome"])
def test_an_entry_too_long_for_its_column_is_refused_on_both_back_ends(family, field):
    args = {"actor": "officer:1", "action": "read", "purpose": "identity_check", "outcome": "ok"}
    args[field] = "x" * (access_log.c[field].type.length + 1)
    ids = person_ids(family)[:1]
    with pytest.raises(ValueError, match=field):
        with UnitOfWork(family).begin() as conn:
            record_access(conn, args["actor"], ids, args["action"], args["purpose"], outcome=args["outcome"])
    with family.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(access_log)).scalar_one() == 0
