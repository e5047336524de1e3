"""Tables of the vehicle register: vehicles, the plates identified by their owner, and the counters
that give out plate numbers.

- ``vehicles``: a registration of one vehicle to one owner, from ``registered_at`` until
  ``deregistered_at``. A frame number and an engine number belong to one registered vehicle at a
  time (unique among the vehicles not deregistered: a deregistered motorbike, sold on, is
  registered again to its new owner under a new row); a plate is on at most one registered vehicle.
- ``plates``: every plate ever given out, unique; ``assigned`` to a vehicle, ``held`` by its owner
  between vehicles (an identified plate is theirs for life, Circular 24/2023 and 79/2024), or
  ``retired``. ``(plate_code, series, number)`` is unique too: the plate's text is made from them.
- ``plate_counters``: the last order number given out per (plate code, series). A new number is one
  upsert that increments the row and returns it (``INSERT ... ON CONFLICT DO UPDATE ... RETURNING``):
  concurrent registrations queue on the row (PostgreSQL) or on the writer lock (SQLite) and never
  get the same number; the unique constraints of ``plates`` are the second guard.
"""

from __future__ import annotations

import sqlalchemy as sa

from dinhdanh.store.base import Id, Key, UTCDateTime, metadata, one_of

KINDS = ("motorbike", "moped", "electric_moped")  # the form's "Loại xe": mô tô, gắn máy, gắn máy điện
PLATE_STATUSES = ("assigned", "held", "retired")

vehicles = sa.Table(
    "vehicles", metadata,
    sa.Column("vehicle_id", Id, primary_key=True, autoincrement=True),
    sa.Column("person_id", Id, sa.ForeignKey("persons.person_id"), nullable=False, index=True),  # the owner
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("brand", sa.String(60), nullable=False),
    sa.Column("model", sa.String(60)),
    sa.Column("colour", sa.String(40)),
    sa.Column("frame_number", Key(30), nullable=False),  # số khung, compacted (capitals, no separators)
    sa.Column("engine_number", Key(30), nullable=False),  # số máy, likewise
    sa.Column("capacity_cc", sa.Integer),
    sa.Column("manufacture_year", sa.SmallInteger),
    sa.Column("registered_at", UTCDateTime, nullable=False),
    sa.Column("deregistered_at", UTCDateTime),
    sa.Column("plate", sa.String(16), nullable=False, index=True),  # as printed: "29-HA 002.33"
    sa.Column("dossier_code", Key(40)),  # the online dossier it was registered from, if any
    sa.Column("certificate_number", Key(20), unique=True),  # chứng nhận đăng ký xe
    sa.CheckConstraint(one_of("kind", *KINDS), name="kind"),
    sa.Index("uq_vehicles_frame_number_registered", "frame_number", unique=True,
             sqlite_where=sa.text("deregistered_at IS NULL"), postgresql_where=sa.text("deregistered_at IS NULL")),
    sa.Index("uq_vehicles_engine_number_registered", "engine_number", unique=True,
             sqlite_where=sa.text("deregistered_at IS NULL"), postgresql_where=sa.text("deregistered_at IS NULL")),
    sa.Index("uq_vehicles_plate_registered", "plate", unique=True,
             sqlite_where=sa.text("deregistered_at IS NULL"), postgresql_where=sa.text("deregistered_at IS NULL")),
)

plates = sa.Table(
    "plates", metadata,
    sa.Column("plate_id", Id, primary_key=True, autoincrement=True),
    sa.Column("plate", sa.String(16), nullable=False, unique=True),  # as printed
    sa.Column("person_id", Id, sa.ForeignKey("persons.person_id"), nullable=False, index=True),  # the owner
    sa.Column("province_code", Key(2), nullable=False),  # the 2025 province that gave it out
    sa.Column("plate_code", Key(2), nullable=False),  # the locality code printed on it ("29")
    sa.Column("series", sa.String(3), nullable=False),
    sa.Column("number", sa.Integer, nullable=False),
    sa.Column("status", sa.String(8), nullable=False),
    sa.Column("vehicle_id", Id, sa.ForeignKey("vehicles.vehicle_id"), unique=True),
    sa.Column("issued_at", UTCDateTime, nullable=False),
    sa.Column("changed_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("plate_code", "series", "number"),
    sa.CheckConstraint(one_of("status", *PLATE_STATUSES), name="status"),
    # a plate is on a vehicle exactly when it is assigned
    sa.CheckConstraint("(status = 'assigned' AND vehicle_id IS NOT NULL) OR "
                       "(status <> 'assigned' AND vehicle_id IS NULL)", name="assigned_vehicle"),
)

plate_counters = sa.Table(
    "plate_counters", metadata,
    sa.Column("plate_code", Key(2), primary_key=True),
    sa.Column("series", sa.String(3), primary_key=True),
    sa.Column("last_number", sa.Integer, nullable=False),
)
