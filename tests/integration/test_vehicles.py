"""The vehicle register on SQLite and PostgreSQL: a motorbike registered to its owner gets a plate of
the province's code; a frame or engine number already registered is refused naming the field; a
deregistered vehicle's plate is held by its owner and goes on their next vehicle; the dead are
refused; concurrent registrations (threads, each its own unit of work) never share a plate; the
dossier approval's effect; and the migration matches the tables.

The register is FAMILY (tests/support.py): An lives in Hà Nội (01), Đức in Hồ Chí Minh City (79).
"""

from __future__ import annotations

import datetime as dt
import threading
import types
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from dinhdanh.registry import commands as cmd
from dinhdanh.registry import events as ev
from dinhdanh.registry.area import Area
from dinhdanh.registry.errors import Conflict, Forbidden, InvalidInput, NotFound, RuleViolation
from dinhdanh.registry.records import history
from dinhdanh.store.unit_of_work import UnitOfWork
from dinhdanh.vehicles import plates as fmt
from dinhdanh.vehicles import service
from dinhdanh.vehicles.tables import plate_counters, plates, vehicles
from tests.support import schema_drift

NATIONAL = ev.Actor("test")
HANOI = ev.Actor("officer:hanoi", Area(commune="00070"))
AN, BINH, CHAU, DUNG, DUC, HOA, GIANG = ("001085000001", "001187000002", "001212000003", "001215000004",
                                         "079090000005", "079193000006", "079095000007")
EVERYONE = (AN, BINH, CHAU, DUNG, DUC, HOA, GIANG)
NOW = dt.datetime(2026, 12, 6, 3, 0, tzinfo=dt.UTC)


def bike(n: int = 1, **extra) -> dict:
    return {"kind": "motorbike", "brand": "Honda", "model": "Vision", "colour": "Đỏ đen",
            "frame_number": f"RLHJF{n:012d}", "engine_number": f"JF81E{n:07d}", "capacity_cc": 110,
            "manufacture_year": 2025, "value": 32000000, **extra}


def register(engine, pid=AN, vehicle=None, province="01", actor=NATIONAL, **kw) -> dict:
    with UnitOfWork(engine).begin() as conn:
        return service.register_vehicle(conn, actor, pid, vehicle or bike(), province=province, now=NOW, **kw)


def deregister(engine, plate, actor=NATIONAL) -> dict:
    with UnitOfWork(engine).begin() as conn:
        return service.deregister(conn, actor, plate, now=NOW + dt.timedelta(days=1), reason="Bán xe")


def refused(error, code, field, work, *args, **kw):
    with pytest.raises(error) as caught:
        work(*args, **kw)
    assert (caught.value.code, caught.value.field) == (code, field)
    return caught.value


def plate_rows(engine) -> list:
    with engine.connect() as conn:
        return conn.execute(sa.select(plates).order_by(plates.c.plate_id)).all()


def test_a_motorbike_is_registered_with_a_plate_of_the_province(family):
    done = register(family)
    assert done["plate"] == "29-AA 000.01" == fmt.validate(done["plate"])
    assert (done["pid"], done["status"], done["reused_plate"]) == (AN, "registered", False)
    assert done["certificate_number"] == f"29-{done['vehicle_id']:08d}"
    assert done["frame_number"] == "RLHJF000000000001" and done["registered_at"] == NOW.isoformat()
    second = register(family, BINH, bike(2))
    assert second["plate"] == "29-AA 000.02"
    hcmc = register(family, DUC, bike(3), province="79")
    assert hcmc["plate"] == "41-AA 000.01" and fmt.parse(hcmc["plate"]).province == "79"
    other_code = register(family, HOA, bike(4), province="79", plate_code="59", series="KA")
    assert other_code["plate"] == "59-KA 000.01"
    with family.connect() as conn:
        mine = service.vehicles_of(conn, NATIONAL, AN)
        assert [v["plate"] for v in mine] == ["29-AA 000.01"] and mine[0]["brand"] == "Honda"
        assert service.plates_of(conn, NATIONAL, AN) == [
            {"plate": "29-AA 000.01", "status": "assigned", "vehicle_id": done["vehicle_id"], "province_code": "01",
             "issued_at": NOW.isoformat()}]
        steps = [h for h in history(conn, AN) if h["kind"].startswith("vehicle.")]
    assert [s["kind"] for s in steps] == ["vehicle.registered"]
    assert steps[0]["changes"][0]["field"] == "vehicle" and steps[0]["changes"][0]["new"]["plate"] == "29-AA 000.01"
    assert steps[0]["legal_basis"] == service.LEGAL_BASIS and steps[0]["event_id"] == done["event_id"]
    row = plate_rows(family)[0]
    assert (row.plate_code, row.series, row.number, row.status) == ("29", "AA", 1, "assigned")


def test_a_frame_or_engine_number_already_registered_is_refused(family):
    first = register(family)
    # the same frame number, typed with spaces and in small letters, is the same frame
    refused(Conflict, "frame_number_registered", "frame_number", register, family, BINH,
            bike(2, frame_number="rlhjf 0000-0000-0001"))
    refused(Conflict, "engine_number_registered", "engine_number", register, family, BINH,
            bike(2, engine_number="JF81E0000001"))
    assert len(plate_rows(family)) == 1  # nothing of the refused ones stayed
    with family.connect() as conn:
        assert conn.execute(sa.select(plate_counters.c.last_number)).scalar_one() == 1  # no number wasted
    # once deregistered (sold), the same motorbike is registered to its new owner
    deregister(family, first["plate"])
    again = register(family, BINH, bike(1))
    assert again["plate"] == "29-AA 000.02" and again["frame_number"] == first["frame_number"]


def test_the_database_refuses_a_second_registered_frame_even_past_the_service(engine, family):
    register(family)
    with pytest.raises(sa.exc.IntegrityError), UnitOfWork(family).begin() as conn:
        row = conn.execute(sa.select(vehicles)).one()._mapping
        conn.execute(vehicles.insert().values({k: v for k, v in row.items() if k not in ("vehicle_id",
                                                                                            "certificate_number")}
                                              | {"plate": "29-AA 000.99", "engine_number": "OTHER1"}))


def test_deregistering_holds_the_plate_for_the_owners_next_vehicle(family):
    first = register(family)
    gone = deregister(family, "29aa00001")  # any spelling of the plate
    assert gone["status"] == "deregistered" and gone["deregistered_at"] == (NOW + dt.timedelta(days=1)).isoformat()
    assert [(r.plate, r.status, r.vehicle_id) for r in plate_rows(family)] == [("29-AA 000.01", "held", None)]
    refused(NotFound, "not_found", "plate", deregister, family, "29-AA 000.01")  # no vehicle carries it now
    other = register(family, BINH, bike(2))  # someone else: a new plate, not An's held one
    assert other["plate"] == "29-AA 000.02"
    # An's next motorbike, even registered in another province, gets An's identified plate back
    nxt = register(family, AN, bike(3), province="79")
    assert nxt["plate"] == "29-AA 000.01" and nxt["reused_plate"] and nxt["vehicle_id"] != first["vehicle_id"]
    rows = {r.plate: r for r in plate_rows(family)}
    assert (rows["29-AA 000.01"].status, rows["29-AA 000.01"].vehicle_id) == ("assigned", nxt["vehicle_id"])
    with family.connect() as conn:
        mine = service.vehicles_of(conn, NATIONAL, AN)
        kinds = [h["kind"] for h in history(conn, AN) if h["kind"].startswith("vehicle.")]
    assert [(v["plate"], v["status"]) for v in mine] == [("29-AA 000.01", "registered"),
                                                         ("29-AA 000.01", "deregistered")]
    assert kinds == ["vehicle.registered", "vehicle.deregistered", "vehicle.registered"]
    third = register(family, AN, bike(4))  # no held plate left: a new one
    assert third["plate"] == "29-AA 000.03" and not third["reused_plate"]


def test_a_retired_plate_is_not_given_again(family):
    first = register(family)
    refused(Conflict, "plate_assigned", "plate", retire, family, first["plate"])
    deregister(family, first["plate"])
    assert retire(family, first["plate"])["status"] == "retired"
    refused(Conflict, "plate_retired", "plate", retire, family, first["plate"])
    refused(NotFound, "not_found", "plate", retire, family, "29-AA 000.09")
    nxt = register(family, AN, bike(2))
    assert nxt["plate"] == "29-AA 000.02" and not nxt["reused_plate"]
    assert [(r.plate, r.status) for r in plate_rows(family)] == [("29-AA 000.01", "retired"),
                                                                ("29-AA 000.02", "assigned")]


def retire(engine, plate) -> dict:
    with UnitOfWork(engine).begin() as conn:
        return service.retire_plate(conn, NATIONAL, plate, now=NOW, reason="Chủ xe đề nghị")


def test_refusals_name_the_field(family):
    refused(RuleViolation, "moped_capacity", "capacity_cc", register, family, vehicle=bike(kind="moped"))
    refused(InvalidInput, "invalid_input", "kind", register, family, vehicle=bike(kind="car"))
    refused(InvalidInput, "invalid_input", "brand", register, family, vehicle=bike(brand=" "))
    refused(InvalidInput, "invalid_input", "frame_number", register, family, vehicle=bike(frame_number="số khung"))
    refused(InvalidInput, "invalid_input", "capacity_cc", register, family, vehicle=bike(capacity_cc=True))
    refused(InvalidInput, "invalid_input", "manufacture_year", register, family, vehicle=bike(manufacture_year=2099))
    refused(InvalidInput, "invalid_input", "province", register, family, province="02")
    refused(InvalidInput, "invalid_input", "plate_code", register, family, plate_code="41")
    refused(InvalidInput, "invalid_input", "series", register, family, series="B1")
    refused(InvalidInput, "invalid_input", "plate", deregister, family, "29-HI 000.01")
    refused(NotFound, "not_found", "pid", register, family, "001099999999")
    refused(Forbidden, "forbidden", "province", register, family, actor=HANOI, province="79")
    refused(NotFound, "not_found", "pid", register, family, DUC, actor=HANOI)  # Đức lives outside the commune
    assert register(family, actor=HANOI)["plate"] == "29-AA 000.01"
    assert plate_rows(family)[0].number == 1


def test_the_dead_are_refused(family):
    with family.begin() as conn:
        ev.record_event(conn, NATIONAL, "death", cmd.EVENT_KINDS["death"].model_validate(
            {"pid": GIANG, "date_of_death": "2026-12-01"}))
    refused(RuleViolation, "person_dead", "pid", register, family, GIANG, province="79")
    assert plate_rows(family) == []


def test_a_full_series_moves_on_to_the_next(family):
    with family.begin() as conn:
        conn.execute(plate_counters.insert().values(plate_code="29", series="AA", last_number=fmt.MAX_NUMBER - 1))
    assert register(family)["plate"] == "29-AA 999.99"
    assert register(family, BINH, bike(2))["plate"] == "29-AB 000.01"
    assert register(family, CHAU, bike(3))["plate"] == "29-AB 000.02"
    with family.begin() as conn:  # a series configured further on starts there
        assert service.allocate_number(conn, "29", "HA") == ("HA", 1)
        assert service.allocate_number(conn, "29", "AA") == ("AB", 3)  # AA is full: never tried again


def at_once(n: int, work) -> list:
    gate = threading.Barrier(n)

    def run(i):
        gate.wait(timeout=30)
        return work(i)

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(run, range(n)))


def test_concurrent_registrations_get_distinct_plates(family):
    done = at_once(8, lambda i: register(family, EVERYONE[i % len(EVERYONE)], bike(100 + i)))
    got = [d["plate"] for d in done]
    assert len(set(got)) == 8 and sorted(got) == [f"29-AA 000.0{n}" for n in range(1, 9)]
    rows = plate_rows(family)
    assert sorted(r.plate for r in rows) == sorted(got) and all(r.status == "assigned" for r in rows)
    with family.connect() as conn:
        assert conn.execute(sa.select(plate_counters.c.last_number)).scalar_one() == 8


def test_concurrent_registrations_of_one_owner_share_out_the_held_plate_once(family):
    deregister(family, register(family)["plate"])
    done = at_once(4, lambda i: register(family, AN, bike(200 + i)))
    reused = [d for d in done if d["reused_plate"]]
    assert len(reused) == 1 and reused[0]["plate"] == "29-AA 000.01"
    assert sorted(d["plate"] for d in done) == ["29-AA 000.01", "29-AA 000.02", "29-AA 000.03", "29-AA 000.04"]


def test_concurrent_registrations_of_one_frame_register_it_once(family):
    def attempt(i):
        try:
            return register(family, EVERYONE[i], bike(7))
        except Conflict as exc:
            return exc

    done = at_once(4, attempt)
    won = [d for d in done if isinstance(d, dict)]
    lost = [d for d in done if isinstance(d, Conflict)]
    assert len(won) == 1 and len(lost) == 3
    assert {e.field for e in lost} == {"frame_number"}
    with family.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(vehicles)).scalar_one() == 1


def test_the_dossier_approval_registers_the_vehicle(family):
    from dinhdanh.dossiers.effects import RegisterRefused
    from dinhdanh.registry.tables import persons

    with family.connect() as conn:
        person_id = conn.execute(sa.select(persons.c.person_id).where(persons.c.pid == DUC)).scalar_one()
    dossier = types.SimpleNamespace(code="G22.79.26743-261206-0001", person_id=person_id, place_province="79",
                                    place_commune="26743", service_code="dd.motorbike-registration")
    ctx = types.SimpleNamespace(now=NOW, vault=None)
    officer = ev.Actor("officer:1", Area(commune="26743"))
    form = {"vehicle": bike(9, kind="electric_moped", capacity_cc=None)}
    with UnitOfWork(family).begin() as conn:
        effect = service.dossier_effect(conn, dossier, form, officer, ctx)
    assert effect == {"event": "vehicle_registered", "event_id": effect["event_id"], "pid": DUC,
                      "plate": "41-AA 000.01", "vehicle_id": effect["vehicle_id"],
                      "certificate_number": f"41-{effect['vehicle_id']:08d}", "reused_plate": False}
    with family.connect() as conn:
        row = conn.execute(sa.select(vehicles)).one()
        event = [h for h in history(conn, DUC) if h["kind"] == "vehicle.registered"][0]
    assert (row.dossier_code, row.kind, row.plate) == (dossier.code, "electric_moped", "41-AA 000.01")
    assert (event["actor"], event["reason"]) == ("officer:1", f"Hồ sơ {dossier.code}")
    again = types.SimpleNamespace(**{**vars(dossier), "code": "G22.79.26743-261206-0002"})
    with pytest.raises(RegisterRefused) as caught, UnitOfWork(family).begin() as conn:
        service.dossier_effect(conn, again, form, officer, ctx)
    assert (caught.value.code, caught.value.field) == ("frame_number_registered", "vehicle.frame_number")
    with pytest.raises(RegisterRefused) as caught, UnitOfWork(family).begin() as conn:
        service.dossier_effect(conn, again, {"vehicle": bike(10, kind="moped")}, officer, ctx)
    assert (caught.value.code, caught.value.field) == ("moped_capacity", "vehicle.capacity_cc")


def test_the_migration_matches_the_tables(engine):
    assert schema_drift(engine, "vehicles", "plates", "plate_counters") == []


def test_approving_the_online_dossier_registers_the_motorbike(family):
    """The whole path: the citizen files the online service, pays, the commune police receive and
    approve; the approval's effect (``dossiers.effects``) registers the motorbike and its plate in
    the approval's unit of work."""
    from dinhdanh.dossiers import effects
    from dinhdanh.store.vault import for_database
    from tests.integration.test_dossier_groups import act, file
    from tests.integration.test_dossiers import pay

    assert effects.EFFECTS[effects.MOTORBIKE] is service.dossier_effect
    register_ = (family, for_database(family.url.render_as_string(hide_password=False)))
    form = {"applicant": {"pid": AN, "full_name": "Nguyễn Văn An", "date_of_birth": "1985-03-04"},
            "vehicle": bike(11), "registration_tax_receipt": "LPTB-2026-000123",
            "invoice": {"number": "00001234", "date": "2026-12-01", "seller_tax_code": "0101234567"},
            "delivery": {"method": "electronic"}}
    filed = file(family, effects.MOTORBIKE, form)
    if filed["fee_amount"]:
        pay(family, filed["code"], filed["fee_amount"])
    act(register_, filed["dossier_id"], "receive")
    done = act(register_, filed["dossier_id"], "approve")
    assert done["status"] == "approved"
    assert done["effect"]["event"] == "vehicle_registered" and done["effect"]["pid"] == AN
    assert done["effect"]["plate"] == "29-AA 000.01"
    with family.connect() as conn:
        row = conn.execute(sa.select(vehicles)).one()
    assert (row.dossier_code, row.plate) == (filed["code"], "29-AA 000.01")
    assert row.vehicle_id == done["effect"]["vehicle_id"]
