"""The demo's dossiers (issue 12): a commune dossier officer and about fifteen dossiers of four
services in every state, some overdue, filed and moved only through ``dossiers.service``.

``seed(engine, vault, base_url, citizen_pid)`` works in the commune where the demo's level-2
citizen lives (temporary absence is routed by the applicant's residence; the other services by the
place named in the form, here the same commune), so the printed officer sees them all and the
citizen finds several of their own. The overdue ones are filed and received in the past (the
service functions' ``now``), so their legal due date is behind today. One unit of work: all or
nothing. Idempotent: a home that already holds the demo's dossiers keeps them (only the officer's
token is new on every start, as for the demo's other officer).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import sqlalchemy as sa

from dinhdanh import places
from dinhdanh.store.vault import Vault

TEMPORARY_RESIDENCE = "1.004194"  # 3 working days; fee-exempt here (disability ground)
TEMPORARY_ABSENCE = "1.003677"  # 1 working day, free
STAY_NOTIFICATION = "2.001159"  # at once, free
BIRTH_REGISTRATION = "1.001193"  # the same day; free when on time (within 60 days of the birth)
DEMO_OFFICER_PREFIX = "Cán bộ demo hồ sơ"
DEMO_ACTOR = "demo"


@dataclass
class DemoDossiers:
    token: str
    officer: str
    commune: str
    commune_name: str
    citizen_pid: str
    counts: dict[str, int] = field(default_factory=dict)
    overdue: int = 0
    seeded: bool = False  # made on this start (False: the home held them already)


def _at(now: dt.datetime, days_ago: int, hour: int = 2) -> dt.datetime:
    """``days_ago`` days before ``now``, at ``hour`` UTC (9 o'clock in Việt Nam for 2)."""
    day = (now - dt.timedelta(days=days_ago)).date()
    return dt.datetime.combine(day, dt.time(hour), tzinfo=dt.UTC)


def _applicant(person) -> dict:
    return {"pid": person.pid, "full_name": person.full_name, "date_of_birth": person.date_of_birth.isoformat()}


def _address(commune: str, street: str) -> dict:
    return {"province_code": places.COMMUNES[commune].province_code, "commune_code": commune, "street": street}


def _residence(person, commune: str, when: dt.datetime) -> dict:
    start = when.date()
    return {"applicant": _applicant(person), "registration": "individual",
            "stay_address": _address(commune, "12 đường Lê Lợi"), "from": start.isoformat(),
            "until": (start + dt.timedelta(days=365)).isoformat(), "basis": "rented",
            "fee_exemption_ground": "disability"}


def _absence(person, commune: str, when: dt.datetime) -> dict:
    start = when.date() + dt.timedelta(days=7)
    other = next(c for c in sorted(places.COMMUNES) if c != commune)
    return {"applicant": _applicant(person), "absent_from": start.isoformat(),
            "absent_until": (start + dt.timedelta(days=400)).isoformat(),
            "destination": _address(other, "5 đường Trần Phú"), "reason": "Đi làm việc xa nhà",
            "case": "long_absence"}


def _stay(person, guest, commune: str, when: dt.datetime) -> dict:
    start = when.date()
    return {"applicant": _applicant(person), "stay_address": _address(commune, "8 ngõ Hòa Bình"),
            "guest": {"pid": guest.pid, "full_name": guest.full_name}, "from": start.isoformat(),
            "until": (start + dt.timedelta(days=5)).isoformat(), "reason": "Thăm người thân"}


def _birth(person, commune: str, when: dt.datetime, child: str) -> dict:
    return {"applicant": _applicant(person), "applicant_role": "mother",
            "child": {"full_name": child, "sex": "female",
                      "date_of_birth": (when.date() - dt.timedelta(days=20)).isoformat(),  # on time: no fee
                      "place_of_birth": "Trạm y tế " + places.COMMUNES[commune].name, "ethnicity": "Kinh",
                      "nationality": "VNM"},
            "registration_commune_code": commune, "delivery": {"method": "electronic"}}


def _officer(conn: sa.Connection, commune: str) -> tuple[str, str]:
    """The commune's demo dossier officer (made once) and a fresh token (the earlier ones revoked)."""
    from dinhdanh.officers import credentials
    from dinhdanh.officers.service import add_officer
    from dinhdanh.officers.tables import officers

    name = f"{DEMO_OFFICER_PREFIX} ({places.COMMUNES[commune].name})"[:100]
    officer_id = conn.execute(sa.select(officers.c.officer_id).where(
        officers.c.name == name, officers.c.role == "commune", officers.c.area_code == commune)
        .order_by(officers.c.officer_id)).scalar()
    if officer_id is None:
        _, token = add_officer(conn, name, "commune", commune, roles=["dossier_officer"], granted_by=DEMO_ACTOR)
        return name, token
    conn.execute(officers.update().where(officers.c.officer_id == officer_id).values(active=True))
    return name, credentials.rotate(conn, officer_id, label="demo").token


def _people(conn: sa.Connection, citizen_pid: str, now: dt.datetime):
    """The demo citizen, and other living adults (women first: the birth registrations' mothers)."""
    from dinhdanh.registry.tables import persons

    cols = (persons.c.person_id, persons.c.pid, persons.c.full_name, persons.c.date_of_birth, persons.c.sex,
            persons.c.commune_code)
    citizen = conn.execute(sa.select(*cols).where(persons.c.pid == citizen_pid)).one()
    adult = now.date().replace(year=now.year - 20, day=1)
    young = now.date().replace(year=now.year - 45, day=1)
    others = conn.execute(sa.select(*cols).where(
        persons.c.status == "alive", persons.c.date_of_birth < adult, persons.c.date_of_birth > young,
        persons.c.pid != citizen_pid).order_by(persons.c.person_id).limit(40)).all()
    women = [p for p in others if p.sex == "female"][:2]
    men = [p for p in others if p not in women][:3]
    return citizen, women, men


def seed(engine: sa.Engine, vault: Vault, base_url: str, citizen_pid: str, *,
         now: dt.datetime | None = None) -> DemoDossiers:
    """The demo officer and dossiers in the commune of ``citizen_pid`` (see the module's doc)."""
    from dinhdanh.dossiers import service, workflow
    from dinhdanh.dossiers.tables import dossier_events, dossiers
    from dinhdanh.registry.area import Area
    from dinhdanh.store.base import utcnow, vietnam_date
    from dinhdanh.store.unit_of_work import UnitOfWork

    now = now or utcnow()
    with UnitOfWork(engine).begin() as conn:
        citizen, women, men = _people(conn, citizen_pid, now)
        commune = citizen.commune_code
        if commune not in places.COMMUNES:  # a register without 2025 communes: the first one
            commune = sorted(places.COMMUNES)[0]
        name, token = _officer(conn, commune)
        area = Area.of_code(commune)
        actor = f"officer:{name}"
        present = conn.execute(sa.select(sa.func.count()).select_from(dossier_events)
                               .where(dossier_events.c.actor == actor)).scalar_one()
        seeded = False
        if present == 0:
            _file_all(conn, vault, base_url, service, area, actor, now, citizen, women, men, commune)
            seeded = True
        today = vietnam_date(now)
        rows = conn.execute(sa.select(dossiers.c.status, dossiers.c.due_date)
                            .where(dossiers.c.place_commune == commune)).all()
    counts = {state: sum(r.status == state for r in rows) for state in workflow.STATES}
    overdue = sum(r.status == workflow.RECEIVED and r.due_date < today for r in rows)
    return DemoDossiers(token=token, officer=name, commune=commune, commune_name=places.COMMUNES[commune].name,
                        citizen_pid=citizen.pid, counts=counts, overdue=overdue, seeded=seeded)


def _file_all(conn, vault, base_url, service, area, actor, now, citizen, women, men, commune) -> None:
    everyone = [citizen, *women, *men]
    mother1, mother2 = (women + [citizen, citizen])[:2]
    host1, host2, host3 = (men + [citizen] * 3)[:3]
    guest = next((p for p in everyone if p.pid != host1.pid), citizen)

    def file(person, code, form, when):
        return service.file(conn, person.person_id, code, form, now=when)["dossier_id"]

    def act(dossier_id, action, when, **kw):
        service.act(conn, vault, dossier_id, action, actor=actor, area=area, base_url=base_url, now=when, **kw)

    def receive(person, code, form, when):
        dossier_id = file(person, code, form, when)
        act(dossier_id, "receive", when + dt.timedelta(hours=2))
        return dossier_id

    recent = _at(now, 2)

    # submitted: waiting for the officer
    file(citizen, TEMPORARY_RESIDENCE, _residence(citizen, commune, now), now - dt.timedelta(hours=1))
    file(host1, STAY_NOTIFICATION, _stay(host1, guest, commune, now), now - dt.timedelta(minutes=30))
    # received, in time
    receive(host2, TEMPORARY_RESIDENCE, _residence(host2, commune, now), now - dt.timedelta(hours=3))
    # supplement requested (today: the 7 working days run from today)
    asked = receive(mother1, BIRTH_REGISTRATION, _birth(mother1, commune, now, "Nguyễn Thị Mai"),
                    now - dt.timedelta(hours=4))
    act(asked, "request_supplement", now - dt.timedelta(hours=1),
        items=["Giấy chứng sinh của cơ sở y tế (bản chụp rõ nét)"])
    asked = receive(host3, TEMPORARY_RESIDENCE, _residence(host3, commune, now), now - dt.timedelta(hours=5))
    act(asked, "request_supplement", now - dt.timedelta(hours=1),
        items=["Hợp đồng thuê nhà có chữ ký của chủ nhà"], reason="Chưa chứng minh được chỗ ở hợp pháp")
    # approved, each with its signed result
    done = receive(citizen, TEMPORARY_ABSENCE, _absence(citizen, commune, recent), recent)
    act(done, "approve", recent + dt.timedelta(hours=4))
    done = receive(host1, STAY_NOTIFICATION, _stay(host1, guest, commune, recent), recent)
    act(done, "approve", recent + dt.timedelta(hours=1))
    done = receive(mother2, BIRTH_REGISTRATION, _birth(mother2, commune, recent, "Trần Minh Anh"), recent)
    act(done, "approve", recent + dt.timedelta(hours=3), reason="Đã cấp Giấy khai sinh bản điện tử.")
    # refused, with reasons: after review, and at reception
    no = receive(host2, TEMPORARY_RESIDENCE, _residence(host2, commune, recent), recent)
    act(no, "refuse", recent + dt.timedelta(hours=5),
        reason="Địa chỉ đăng ký tạm trú không phải chỗ ở hợp pháp (nhà đã có quyết định giải tỏa).")
    no = file(host3, STAY_NOTIFICATION, _stay(host3, guest, commune, recent), recent)
    act(no, "refuse", recent + dt.timedelta(hours=1), reason="Trùng với thông báo lưu trú đã tiếp nhận.")
    # withdrawn by the citizen
    gone = file(citizen, STAY_NOTIFICATION, _stay(citizen, guest, commune, recent), recent)
    service.withdraw(conn, gone, citizen.person_id, reason="Khách đã hủy chuyến", now=recent + dt.timedelta(hours=2))
    # overdue: received weeks ago, never decided (their due dates are behind today)
    long_ago = _at(now, 30)
    receive(host1, TEMPORARY_RESIDENCE, _residence(host1, commune, long_ago), long_ago)
    long_ago = _at(now, 21)
    receive(citizen, TEMPORARY_ABSENCE, _absence(citizen, commune, long_ago), long_ago)
    long_ago = _at(now, 14)
    receive(mother1, BIRTH_REGISTRATION, _birth(mother1, commune, long_ago, "Lê Gia Hân"), long_ago)
    # overdue once, then extended with an apology slip: received, due again later
    long_ago = _at(now, 25)
    late = receive(host2, TEMPORARY_RESIDENCE, _residence(host2, commune, long_ago), long_ago)
    act(late, "extend", now - dt.timedelta(minutes=10), new_due_date=(now + dt.timedelta(days=10)).date(),
        reason="Cần xác minh thêm chỗ ở hợp pháp")


def summary_lines(made: DemoDossiers, base: str, citizen: dict | None) -> str:
    """What the demo prints about its dossiers: the officer's token, the worklist, how to file."""
    states = ", ".join(f"{state} {n}" for state, n in made.counts.items())
    who = citizen["pid"] if citizen else made.citizen_pid
    return (f"  online public services (dossiers) in {made.commune_name} ({made.commune}): {states}; "
            f"overdue {made.overdue}\n"
            f"  dossier officer token:   {made.token}   ({made.officer}, role dossier_officer)\n"
            f"  try:  curl -H \"Authorization: Bearer {made.token}\" \"{base}/api/v1/dossiers?overdue=true\"\n"
            f"        services: {base}/api/v1/services   one dossier: {base}/api/v1/dossiers/ID\n"
            f"  file a dossier as citizen {who} (e-ID above) in the portal: {base}/portal/services "
            f"(my dossiers: {base}/portal/dossiers), or over the API: POST {base}/api/v1/dossiers "
            f"{{\"service\": \"{TEMPORARY_ABSENCE}\", \"data\": {{...}}}} with a provider access token of scope "
            f"dinhdanh.dossiers (form and pre-filled fields: GET {base}/api/v1/services/{TEMPORARY_ABSENCE}/prefill)\n")
