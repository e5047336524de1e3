"""Tables of the population register (Law on Identification 2023, art. 9).

``persons`` holds each person's current record; ``changes`` keeps every field's old and new value
per ``events`` row (who, when, why, legal basis), so a record can be read as it stood on any past
date. ``former_pids`` holds every number a person held before their current one (a change of
sex or of year of birth gives a new number); a new number is checked against both tables, so a PID
is never reused.
Keys are a surrogate ``person_id`` because a person's PID can change (change of sex); on Citus the
person tables would be distributed and co-located by ``person_id``.
"""

import sqlalchemy as sa

from dinhdanh.store.base import Id, Key, UTCDateTime, metadata, one_of

# (name, column) of the indexes of persons over the rows where the column is set
PERSONS_SPARSE_INDEXES = (
    ("ix_persons_temp_commune_code", "temp_commune_code"),
    ("ix_persons_father_id", "father_id"),
    ("ix_persons_mother_id", "mother_id"),
    ("ix_persons_spouse_id", "spouse_id"),
    ("ix_persons_representative_id", "representative_id"),
)

persons = sa.Table(
    "persons", metadata,
    sa.Column("person_id", Id, primary_key=True, autoincrement=True),
    sa.Column("pid", Key(12), nullable=False, unique=True),
    sa.Column("full_name", sa.String(100), nullable=False),
    sa.Column("name_key", Key(100), nullable=False),  # names.fold(full_name)
    sa.Column("other_names", sa.String(200)),
    sa.Column("date_of_birth", sa.Date, nullable=False),
    sa.Column("birth_year", sa.SmallInteger, nullable=False),  # search column (index with name_key)
    sa.Column("sex", sa.String(6), nullable=False),
    sa.Column("place_of_birth", sa.String(200)),
    sa.Column("birth_registration_code", Key(3)),  # pre-2025 province or country code, as in PIDs
    sa.Column("hometown", sa.String(200)),
    sa.Column("ethnicity", sa.String(40)),
    sa.Column("religion", sa.String(40)),
    sa.Column("nationality", Key(3), nullable=False, server_default="VNM"),
    sa.Column("blood_type", sa.String(3)),
    sa.Column("old_id_number", Key(12)),
    sa.Column("father_id", Id, sa.ForeignKey("persons.person_id")),
    sa.Column("mother_id", Id, sa.ForeignKey("persons.person_id")),
    sa.Column("spouse_id", Id, sa.ForeignKey("persons.person_id")),
    sa.Column("representative_id", Id, sa.ForeignKey("persons.person_id")),
    sa.Column("household_id", Id, sa.ForeignKey("households.household_id")),
    sa.Column("relation_to_head", sa.String(20)),
    # permanent residence (the 2025 commune and its province)
    sa.Column("province_code", Key(2)),
    sa.Column("commune_code", Key(5)),
    sa.Column("address", sa.String(200)),
    sa.Column("residence_dossier", sa.String(30)),
    # temporary residence
    sa.Column("temp_province_code", Key(2)),
    sa.Column("temp_commune_code", Key(5)),
    sa.Column("temp_address", sa.String(200)),
    sa.Column("temp_until", sa.Date),
    # current place of living, where it differs from both
    sa.Column("current_address", sa.String(200)),
    # temporary absence
    sa.Column("absent_from", sa.Date),
    sa.Column("absent_until", sa.Date),
    sa.Column("absent_to", sa.String(200)),
    sa.Column("marital_status", sa.String(10), nullable=False, server_default="single"),
    sa.Column("status", sa.String(8), nullable=False, server_default="alive"),
    sa.Column("date_of_death", sa.Date),
    sa.Column("date_missing", sa.Date),
    sa.Column("phone", sa.String(15)),
    sa.Column("email", sa.String(254)),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("version", sa.Integer, nullable=False, server_default="1"),
    # written as OR chains: SQLite evaluates "IN (...)" in a CHECK ten times slower, per row
    sa.CheckConstraint(one_of("sex", "male", "female"), name="sex"),
    sa.CheckConstraint(one_of("status", "alive", "dead", "missing"), name="status"),
    sa.CheckConstraint(one_of("marital_status", "single", "married", "divorced", "widowed"), name="marital"),
    sa.Index("ix_persons_name_key_birth_year", "name_key", "birth_year"),
    sa.Index("ix_persons_commune_code", "commune_code"),
    # answers "name + year of birth + province" wholly, in the order search returns it
    sa.Index("ix_persons_province_code_birth_year_name_key", "province_code", "birth_year", "name_key"),
    # every foreign key to persons is indexed: SQLite checks referencing rows through them. Where
    # most rows hold no value (no temporary residence, parent, spouse or representative recorded)
    # the index covers the rows that do: every lookup is by value ("father_id = ?" implies "IS NOT
    # NULL", on SQLite and PostgreSQL alike), and a row without one costs no index entry
    *(sa.Index(name, column, sqlite_where=sa.text(f"{column} IS NOT NULL"),
               postgresql_where=sa.text(f"{column} IS NOT NULL")) for name, column in PERSONS_SPARSE_INDEXES),
    sa.Index("ix_persons_household_id", "household_id"),
)

households = sa.Table(
    "households", metadata,
    sa.Column("household_id", Id, primary_key=True, autoincrement=True),
    sa.Column("number", Key(20), nullable=False, unique=True),
    sa.Column("head_id", Id),  # persons.person_id; no FK: the two tables refer to each other
    sa.Column("province_code", Key(2), nullable=False),
    sa.Column("commune_code", Key(5), nullable=False),
    sa.Column("address", sa.String(200)),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("dissolved_at", UTCDateTime),
)

former_pids = sa.Table(
    "former_pids", metadata,
    sa.Column("pid", Key(12), primary_key=True),
    sa.Column("person_id", Id, sa.ForeignKey("persons.person_id"), nullable=False, index=True),
    sa.Column("retired_at", UTCDateTime, nullable=False),
    sa.Column("retired_reason", sa.String(100), nullable=False),
)

events = sa.Table(
    "events", metadata,
    sa.Column("event_id", Id, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(30), nullable=False),
    sa.Column("person_id", Id, sa.ForeignKey("persons.person_id"), index=True),
    sa.Column("recorded_at", UTCDateTime, nullable=False),
    sa.Column("effective_date", sa.Date),
    sa.Column("actor", sa.String(60), nullable=False),  # "officer:12", "import:3", "cli"
    sa.Column("reason", sa.Text),
    sa.Column("legal_basis", sa.String(200)),
    sa.Column("payload", sa.JSON),
)

changes = sa.Table(
    "changes", metadata,
    sa.Column("change_id", Id, primary_key=True, autoincrement=True),
    sa.Column("event_id", Id, sa.ForeignKey("events.event_id"), nullable=False),
    sa.Column("person_id", Id, sa.ForeignKey("persons.person_id"), nullable=False),
    sa.Column("field", sa.String(40), nullable=False),
    sa.Column("old_value", sa.JSON),
    sa.Column("new_value", sa.JSON),
    sa.Index("ix_changes_person_id_change_id", "person_id", "change_id"),
)
