"""The indexes of persons' mostly empty columns (migration 0030): they cover the rows where the
column is set, every lookup by a value still uses them on SQLite and PostgreSQL, and the migration
matches the tables both ways."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic import command

from dinhdanh.population.importer import import_population
from dinhdanh.registry.tables import PERSONS_SPARSE_INDEXES, persons
from dinhdanh.store.engine import alembic_config, upgrade
from tests.support import FAMILY, query_plan, schema_drift, write_people

AN, BINH, CHAU, DUNG = (row[0] for row in FAMILY[:4])


@pytest.fixture
def family(engine, tmp_path):
    report = import_population(engine, write_people(tmp_path / "family.csv", FAMILY))
    assert report.loaded == len(FAMILY)
    with engine.connect() as conn:
        return dict(conn.execute(sa.select(persons.c.pid, persons.c.person_id)).all())


def _definitions(engine) -> dict[str, str]:
    """The SQL each sparse index is made with, as the database keeps it."""
    names = [name for name, _ in PERSONS_SPARSE_INDEXES]
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            rows = conn.execute(sa.text("SELECT name, sql FROM sqlite_master WHERE type = 'index'"))
        else:
            rows = conn.execute(sa.text("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'persons' "
                                        "AND schemaname = current_schema()"))
        return {name: sql for name, sql in rows if name in names}


def test_the_migration_matches_the_tables_and_the_indexes_are_partial(engine):
    assert schema_drift(engine, "persons") == []
    made = _definitions(engine)
    assert set(made) == {name for name, _ in PERSONS_SPARSE_INDEXES}
    for name, column in PERSONS_SPARSE_INDEXES:
        assert "IS NOT NULL" in made[name] and column in made[name], made[name]


def test_each_lookup_by_value_uses_its_partial_index(engine, family):
    an = family[AN]
    cases = (
        (sa.select(persons.c.pid).where(sa.or_(persons.c.father_id == an, persons.c.mother_id == an)),
         ("ix_persons_father_id", "ix_persons_mother_id")),
        (sa.select(persons.c.pid).where(persons.c.spouse_id == an), ("ix_persons_spouse_id",)),
        (sa.select(persons.c.pid).where(persons.c.representative_id == an), ("ix_persons_representative_id",)),
        (sa.select(persons.c.pid).where(persons.c.temp_commune_code == "00070"), ("ix_persons_temp_commune_code",)),
    )
    with engine.begin() as conn:
        for statement, indexes in cases:
            plan = query_plan(conn, statement, {})
            assert all(index in plan for index in indexes), plan
        children = conn.execute(cases[0][0]).scalars().all()
        spouse = conn.execute(cases[1][0]).scalars().all()
    assert sorted(children) == [CHAU, DUNG] and spouse == [BINH]


def test_the_downgrade_gives_whole_indexes_back_and_the_upgrade_makes_them_partial_again(engine, family):
    config = alembic_config(engine)
    command.downgrade(config, "0029")
    assert not any("IS NOT NULL" in sql for sql in _definitions(engine).values())
    upgrade(engine)
    assert all("IS NOT NULL" in sql for sql in _definitions(engine).values())
    assert schema_drift(engine, "persons") == []
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(persons)
                            .where(persons.c.father_id == family[AN])).scalar_one() == 2
