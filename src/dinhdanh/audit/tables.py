import sqlalchemy as sa

from dinhdanh.store.base import Id, UTCDateTime, metadata

access_log = sa.Table(
    "access_log", metadata,
    sa.Column("access_id", Id, primary_key=True, autoincrement=True),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("actor", sa.String(60), nullable=False),  # "officer:12", later "partner:..."
    sa.Column("person_id", Id, sa.ForeignKey("persons.person_id"), nullable=False),
    sa.Column("action", sa.String(20), nullable=False),  # read / search / history / event
    sa.Column("purpose", sa.String(40), nullable=False),
    sa.Index("ix_access_log_person_id_at", "person_id", "at"),
)
