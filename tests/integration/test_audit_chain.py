"""The access log's hash chain on SQLite and PostgreSQL: appends link, ``verify`` finds the first
tampered, deleted, reordered or inserted entry, and concurrent appends leave a valid chain."""

from __future__ import annotations

import json
import threading

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from dinhdanh.audit.chain import GENESIS, entry_hash, verify
from dinhdanh.audit.service import record_access
from dinhdanh.audit.tables import access_log, audit_chain_head
from dinhdanh.registry.tables import persons


def person_ids(engine) -> list[int]:
    with engine.connect() as conn:
        return conn.execute(sa.select(persons.c.person_id).order_by(persons.c.person_id)).scalars().all()


@pytest.fixture
def logged(family):
    """Six entries: a search of three people (one insert), then three single reads."""
    ids = person_ids(family)
    with family.begin() as conn:
        record_access(conn, "officer:1", ids[:3], "search", "administration")
    for pid in ids[:3]:
        with family.begin() as conn:
            record_access(conn, "cli:root", [pid], "read", "residence", fields=["full_name", "address"])
    return family


def rows(engine) -> list:
    with engine.connect() as conn:
        return conn.execute(sa.select(access_log).order_by(access_log.c.access_id)).all()


def sql(engine, statement, **params):
    with engine.begin() as conn:
        conn.execute(sa.text(statement), params)


def test_appends_link_from_genesis_and_keep_fields_and_outcome(logged):
    entries = rows(logged)
    assert len(entries) == 6
    assert entries[0].prev_hash == GENESIS
    for before, entry in zip(entries, entries[1:], strict=False):
        assert entry.prev_hash == before.hash
    assert all(e.hash == entry_hash(e._mapping) for e in entries)
    assert [e.outcome for e in entries] == ["ok"] * 6
    assert entries[0].fields is None and json.loads(entries[5].fields) == ["full_name", "address"]
    with logged.connect() as conn:
        head = conn.execute(sa.select(audit_chain_head)).one()
    assert (head.last_access_id, head.last_hash) == (entries[-1].access_id, entries[-1].hash)
    assert verify(logged).as_dict() == {"entries": 6, "valid": True, "first_broken": None}


def test_empty_log_is_valid(family):
    assert verify(family).as_dict() == {"entries": 0, "valid": True, "first_broken": None}
    with family.begin() as conn:
        record_access(conn, "officer:1", [], "search", "administration")  # nothing found: nothing logged
    assert verify(family).valid


def test_refused_outcome(family):
    ids = person_ids(family)
    with family.begin() as conn:
        record_access(conn, "officer:1", ids[:1], "read", "investigation", outcome="refused", fields=[])
    (entry,) = rows(family)
    assert (entry.outcome, entry.fields) == ("refused", "[]")
    assert verify(family).valid


def broken(engine) -> tuple[int, str]:
    verdict = verify(engine)
    assert not verdict.valid
    return verdict.first_broken["access_id"], verdict.first_broken["reason"]


@pytest.mark.parametrize("column, value", [("purpose", "investigation"), ("actor", "officer:2"),
                                           ("fields", None), ("outcome", "refused"), ("person_id", None)])
def test_a_tampered_field_is_found_at_its_entry(logged, column, value):
    target = rows(logged)[3]
    if column == "person_id":
        value = person_ids(logged)[5]
    sql(logged, f"UPDATE access_log SET {column} = :v WHERE access_id = :id", v=value, id=target.access_id)
    assert broken(logged) == (target.access_id, "hash mismatch")


def test_a_tampered_time_and_a_tampered_hash(logged):
    entries = rows(logged)
    with logged.begin() as conn:
        conn.execute(access_log.update().where(access_log.c.access_id == entries[2].access_id)
                     .values(at=entries[2].at.replace(microsecond=(entries[2].at.microsecond + 1) % 10**6)))
    assert broken(logged) == (entries[2].access_id, "hash mismatch")
    sql(logged, "UPDATE access_log SET at = :at WHERE access_id = :id", at=None, id=0)  # no-op
    with logged.begin() as conn:  # restore it, then rewrite a hash: the next entry no longer links
        conn.execute(access_log.update().where(access_log.c.access_id == entries[2].access_id).values(at=entries[2].at))
    assert verify(logged).valid
    sql(logged, "UPDATE access_log SET hash = :h WHERE access_id = :id", h="f" * 64, id=entries[4].access_id)
    assert broken(logged) == (entries[4].access_id, "hash mismatch")


def test_a_deleted_entry_is_found_at_the_next(logged):
    entries = rows(logged)
    sql(logged, "DELETE FROM access_log WHERE access_id = :id", id=entries[2].access_id)
    assert broken(logged) == (entries[3].access_id, "prev_hash does not link")


def test_a_deleted_first_entry(logged):
    entries = rows(logged)
    sql(logged, "DELETE FROM access_log WHERE access_id = :id", id=entries[0].access_id)
    assert broken(logged) == (entries[1].access_id, "prev_hash does not link")


def test_deleted_last_entries_are_found_by_the_head(logged):
    entries = rows(logged)
    sql(logged, "DELETE FROM access_log WHERE access_id >= :id", id=entries[4].access_id)
    assert broken(logged) == (entries[5].access_id, "chain head does not match")
    sql(logged, "DELETE FROM access_log")
    assert broken(logged) == (entries[5].access_id, "chain head does not match")


def test_reordered_entries_are_found_at_the_first_moved(logged):
    entries = rows(logged)
    a, b = entries[2].access_id, entries[3].access_id
    with logged.begin() as conn:  # swap the two entries' positions (their ids)
        conn.execute(sa.text("UPDATE access_log SET access_id = :tmp WHERE access_id = :a"), {"tmp": 1000, "a": a})
        conn.execute(sa.text("UPDATE access_log SET access_id = :a WHERE access_id = :b"), {"a": a, "b": b})
        conn.execute(sa.text("UPDATE access_log SET access_id = :b WHERE access_id = :tmp"), {"tmp": 1000, "b": b})
    assert broken(logged) == (a, "prev_hash does not link")


def _spread(engine) -> list:
    """Ids times ten (and the head with them), leaving room to insert between entries."""
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE access_log SET access_id = access_id * 10"))
        conn.execute(sa.text("UPDATE audit_chain_head SET last_access_id = last_access_id * 10"))
    assert verify(engine).valid
    return rows(engine)


def _forge(engine, entries, after: int, prev_hash: str, access_id: int) -> None:
    forged = {"at": entries[after].at, "actor": "officer:9", "person_id": entries[after].person_id,
              "action": "read", "purpose": "administration", "fields": None, "outcome": "ok",
              "prev_hash": prev_hash}
    forged["hash"] = entry_hash(forged)
    with engine.begin() as conn:
        conn.execute(access_log.insert().values(access_id=access_id, **forged))


def test_an_inserted_entry_is_found(logged):
    entries = _spread(logged)
    # linked from the entry before it: the entry after it no longer links
    _forge(logged, entries, 2, entries[2].hash, entries[2].access_id + 5)
    assert broken(logged) == (entries[3].access_id, "prev_hash does not link")
    sql(logged, "DELETE FROM access_log WHERE access_id = :id", id=entries[2].access_id + 5)
    # not linked: found at itself
    _forge(logged, entries, 2, GENESIS, entries[2].access_id + 5)
    assert broken(logged) == (entries[2].access_id + 5, "prev_hash does not link")


def test_an_entry_appended_past_the_head_is_found(logged):
    entries = rows(logged)
    _forge(logged, entries, 5, entries[5].hash, entries[5].access_id + 1)
    assert broken(logged) == (entries[5].access_id + 1, "beyond the chain head")


def test_cli_verify(logged):
    from dinhdanh.cli import app

    url = logged.url.render_as_string(hide_password=False)
    if logged.dialect.name == "postgresql":
        pytest.skip("the CLI takes a URL; the PostgreSQL test schema is set by connect_args")
    runner = CliRunner()
    r = runner.invoke(app, ["audit", "verify", "--db", url])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == {"entries": 6, "valid": True, "first_broken": None}
    target = rows(logged)[1]
    sql(logged, "UPDATE access_log SET purpose = 'investigation' WHERE access_id = :id", id=target.access_id)
    r = runner.invoke(app, ["audit", "verify", "--db", url])
    assert r.exit_code == 1
    assert json.loads(r.stdout) == {"entries": 2, "valid": False,
                                    "first_broken": {"access_id": target.access_id, "reason": "hash mismatch"}}


@pytest.mark.postgres
def test_concurrent_appends_on_postgresql_leave_a_valid_chain(family):
    if family.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer: appends cannot interleave")
    ids = person_ids(family)
    start = threading.Barrier(4)
    errors = []

    def work(n: int) -> None:
        try:
            start.wait()
            for i in range(25):
                with family.begin() as conn:
                    conn.execute(sa.text("SELECT 1"))  # the transaction is open before it appends
                    record_access(conn, f"officer:{n}", ids[i % 3: i % 3 + 1 + n], "search", "administration")
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    verdict = verify(family)
    assert verdict.as_dict() == {"entries": 25 * (1 + 2 + 3 + 4), "valid": True, "first_broken": None}


def test_the_migration_seals_entries_written_before_the_chain(tmp_path):
    """A register upgraded from 0003 with access-log entries: they join the chain, and the chain
    goes on from them (the migration's own copy of the encoding equals chain.canonical)."""
    from dinhdanh.audit import chain
    from dinhdanh.audit.service import record_access
    from dinhdanh.population.importer import import_population
    from dinhdanh.store.engine import make_engine, upgrade
    from tests.support import FAMILY, write_people

    engine = make_engine(f"sqlite:///{tmp_path / 'old.sqlite'}")
    upgrade(engine, "0003")
    import_population(engine, write_people(tmp_path / "f.csv", FAMILY))
    with engine.begin() as conn:
        people = conn.execute(sa.text("SELECT person_id FROM persons ORDER BY person_id")).scalars().all()
        for person_id in people:
            conn.execute(sa.text("INSERT INTO access_log (at, actor, person_id, action, purpose) "
                                 "VALUES ('2026-01-02 03:04:05.123456', 'officer:1', :p, 'read', 'administration')"),
                         {"p": person_id})
    upgrade(engine)
    with engine.begin() as conn:
        record_access(conn, "officer:2", people[:2], "read", "residence")
    verdict = chain.verify(engine)
    assert (verdict.entries, verdict.valid) == (len(people) + 2, True)
    engine.dispose()
