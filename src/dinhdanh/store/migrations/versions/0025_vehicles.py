"""the vehicle register: vehicles, identified plates, plate counters

``vehicles``: motorbikes registered to their owner (frame and engine numbers unique among the
vehicles not deregistered); ``plates``: the plates identified by their owner (assigned, held
between vehicles, retired); ``plate_counters``: the last order number per (plate code, series),
incremented by one upsert per new plate (``dinhdanh.vehicles``).

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-06 03:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0025'
down_revision = '0024'
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
REGISTERED = 'deregistered_at IS NULL'


def KEY(length: int):
    return sa.String(length=length).with_variant(sa.String(length=length, collation='C'), 'postgresql')


def _one_of(column: str, *values: str) -> str:
    return " OR ".join(f"{column} = '{v}'" for v in values)


def upgrade() -> None:
    op.create_table('vehicles',
    sa.Column('vehicle_id', ID, autoincrement=True, nullable=False),
    sa.Column('person_id', ID, nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('brand', sa.String(length=60), nullable=False),
    sa.Column('model', sa.String(length=60), nullable=True),
    sa.Column('colour', sa.String(length=40), nullable=True),
    sa.Column('frame_number', KEY(30), nullable=False),
    sa.Column('engine_number', KEY(30), nullable=False),
    sa.Column('capacity_cc', sa.Integer(), nullable=True),
    sa.Column('manufacture_year', sa.SmallInteger(), nullable=True),
    sa.Column('registered_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('deregistered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('plate', sa.String(length=16), nullable=False),
    sa.Column('dossier_code', KEY(40), nullable=True),
    sa.Column('certificate_number', KEY(20), nullable=True),
    sa.CheckConstraint(_one_of('kind', 'motorbike', 'moped', 'electric_moped'), name=op.f('ck_vehicles_kind')),
    sa.ForeignKeyConstraint(['person_id'], ['persons.person_id'], name=op.f('fk_vehicles_person_id_persons')),
    sa.PrimaryKeyConstraint('vehicle_id', name=op.f('pk_vehicles')),
    sa.UniqueConstraint('certificate_number', name=op.f('uq_vehicles_certificate_number'))
    )
    op.create_index('ix_vehicles_person_id', 'vehicles', ['person_id'], unique=False)
    op.create_index('ix_vehicles_plate', 'vehicles', ['plate'], unique=False)
    for column in ('frame_number', 'engine_number', 'plate'):
        op.create_index(f'uq_vehicles_{column}_registered', 'vehicles', [column], unique=True,
                        sqlite_where=sa.text(REGISTERED), postgresql_where=sa.text(REGISTERED))
    op.create_table('plates',
    sa.Column('plate_id', ID, autoincrement=True, nullable=False),
    sa.Column('plate', sa.String(length=16), nullable=False),
    sa.Column('person_id', ID, nullable=False),
    sa.Column('province_code', KEY(2), nullable=False),
    sa.Column('plate_code', KEY(2), nullable=False),
    sa.Column('series', sa.String(length=3), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('vehicle_id', ID, nullable=True),
    sa.Column('issued_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('changed_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint(_one_of('status', 'assigned', 'held', 'retired'), name=op.f('ck_plates_status')),
    sa.CheckConstraint("(status = 'assigned' AND vehicle_id IS NOT NULL) OR "
                       "(status <> 'assigned' AND vehicle_id IS NULL)", name=op.f('ck_plates_assigned_vehicle')),
    sa.ForeignKeyConstraint(['person_id'], ['persons.person_id'], name=op.f('fk_plates_person_id_persons')),
    sa.ForeignKeyConstraint(['vehicle_id'], ['vehicles.vehicle_id'], name=op.f('fk_plates_vehicle_id_vehicles')),
    sa.PrimaryKeyConstraint('plate_id', name=op.f('pk_plates')),
    sa.UniqueConstraint('plate', name=op.f('uq_plates_plate')),
    sa.UniqueConstraint('plate_code', 'series', 'number', name=op.f('uq_plates_plate_code_series_number')),
    sa.UniqueConstraint('vehicle_id', name=op.f('uq_plates_vehicle_id'))
    )
    op.create_index('ix_plates_person_id', 'plates', ['person_id'], unique=False)
    op.create_table('plate_counters',
    sa.Column('plate_code', KEY(2), nullable=False),
    sa.Column('series', sa.String(length=3), nullable=False),
    sa.Column('last_number', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('plate_code', 'series', name=op.f('pk_plate_counters'))
    )


def downgrade() -> None:
    op.drop_table('plate_counters')
    op.drop_index('ix_plates_person_id', table_name='plates')
    op.drop_table('plates')
    for column in ('frame_number', 'engine_number', 'plate'):
        op.drop_index(f'uq_vehicles_{column}_registered', table_name='vehicles')
    op.drop_index('ix_vehicles_plate', table_name='vehicles')
    op.drop_index('ix_vehicles_person_id', table_name='vehicles')
    op.drop_table('vehicles')
