"""Property tests of the officer API.

1. From its own OpenAPI document (schemathesis): every operation is called with generated
   requests, valid and invalid, on a small SQLite register holding the test FAMILY, with a national
   officer's token. No response is ever a server error (5xx), and every response conforms to the
   document (status code, content type, body schema).
2. Realistic life events (Hypothesis): schema-generated bodies almost never get past validation
   (a random string is not a PID of someone in the register), so a second test draws sequences of
   plausible events on the register's real people and communes. Every response must be documented
   and well formed, never a 5xx; every record must stay readable; and the events must not make the
   register inconsistent (the quality report's "inconsistent" checks find nothing new).
"""

from __future__ import annotations

import datetime as dt
import shutil
import string

import pytest
import schemathesis
import sqlalchemy as sa
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import checks as sc

from dinhdanh.store.unit_of_work import UnitOfWork
from dinhdanh.ids import pid as pidfmt
from dinhdanh.officers.permissions import ROLES
from dinhdanh.officers.service import add_officer
from dinhdanh.population.importer import import_population
from dinhdanh.registry.commands import CORRECTABLE
from dinhdanh.store.engine import make_engine
from dinhdanh.web.api.schemas import CitizenRecord, ErrorBody, EventOutcome, HistoryEntry
from dinhdanh.web.app import create_app

try:
    from tests.support import FAMILY, write_people
except ImportError:  # older layout: the data lived in conftest
    from tests.conftest import FAMILY, write_people  # type: ignore[no-redef]

# The schema is read from the app once, at import; the app's database is set per test (below), so
# each operation is fuzzed against a fresh register. (``schemathesis.pytest.from_fixture`` would be
# the natural way, but schemathesis 4.32 reads ``request.node._nodeid``, which pytest 9 dropped.)
APP = create_app(sa.create_engine("sqlite://"))
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)

CHECKS = [sc.not_a_server_error, sc.status_code_conformance, sc.content_type_conformance,
          sc.response_schema_conformance]


def _load_family(engine, tmp_path) -> str:
    report = import_population(engine, write_people(tmp_path / "family.csv", FAMILY))
    assert report.loaded == len(FAMILY), report
    with engine.begin() as conn:
        # every role, so that the fuzzer reaches every officer route (no role holds them all)
        _, token = add_officer(conn, "Fuzz", "national", None, roles=list(ROLES))
    return token


@pytest.fixture
def national_token(sqlite_engine, tmp_path):
    token = _load_family(sqlite_engine, tmp_path)
    APP.state.engine = sqlite_engine
    APP.state.uow = UnitOfWork(sqlite_engine)
    yield token
    APP.state.engine = None


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_error_and_conforms_to_schema(case, national_token):
    response = case.call(headers={"Authorization": f"Bearer {national_token}"})
    assert response.status_code < 500, (case.operation.label, response.status_code, response.text[:500])
    case.validate_response(response, checks=CHECKS)


# ------------------------------------------------------------------------------ realistic events

TODAY = dt.date.today()
COMMUNES = ("00070", "26743", "00004", "26740")  # Hoàn Kiếm, Bến Thành, Ba Đình, Sài Gòn
HOUSEHOLDS = ("0100000001", "7900000001", "7900000002", "7900000003")
NAMES = ("Nguyễn Văn An", "Trần Thị Bình", "Lê Thị Hồng", "Phạm Minh Tuấn", "Đặng Thu Hà", "Tôn Nữ Mai",
         "Hoàng Văn Giang", "Ngô Bảo Châu")

dates = st.dates(min_value=dt.date(1900, 1, 1), max_value=TODAY + dt.timedelta(days=800)).map(dt.date.isoformat)
recent = st.dates(min_value=dt.date(1990, 1, 1), max_value=TODAY).map(dt.date.isoformat)
text = st.text(alphabet=string.ascii_letters + " ăâđêôơưÀÁẠ", min_size=1, max_size=30).filter(str.strip)
maybe = st.none() | st.just(True)

CORRECTION_VALUES = {
    "full_name": st.sampled_from(NAMES),
    "other_names": st.none() | text,
    # bug: a year of birth before 1900 is not refused (see test_api.py); stay on valid years here
    "date_of_birth": dates,
    "place_of_birth": text, "hometown": text, "ethnicity": st.sampled_from(("Kinh", "Tày", "Thái")),
    "religion": st.none() | st.sampled_from(("Không", "Phật giáo", "Công giáo")),
    "nationality": st.sampled_from(("VNM", "LAO", "vnm")),
    "blood_type": st.sampled_from(("O+", "AB-", "C+")),
    "old_id_number": st.sampled_from(("012345678", "012345678901", "1234")),
    "phone": st.sampled_from(("0912345678", "912345678")),
    "email": st.sampled_from(("an@example.vn", "not-an-email")),
    "address": text, "current_address": st.none() | text,
}
assert set(CORRECTION_VALUES) == set(CORRECTABLE)


def _event(kind: str, pids: list[str]):
    """A strategy for (kind, body) of one plausible event on the people in ``pids``."""
    pid = st.sampled_from(pids)
    common = {"reason": st.none() | text, "legal_basis": st.none() | text}

    def body(**fields):
        return st.fixed_dictionaries(fields, optional=common).map(lambda b: (kind, b))

    if kind == "birth":
        return body(full_name=st.sampled_from(NAMES), sex=st.sampled_from(("male", "female")), date_of_birth=dates,
                    commune_code=st.sampled_from(COMMUNES), father_pid=st.none() | pid, mother_pid=st.none() | pid,
                    household_number=st.none() | st.sampled_from(HOUSEHOLDS))
    if kind == "death":
        return body(pid=pid, date_of_death=dates)
    if kind == "missing":
        return body(pid=pid, date_missing=dates)
    if kind in ("marriage", "divorce"):
        return body(pid=pid, spouse_pid=pid, date=recent)
    if kind == "permanent-residence":
        return st.one_of(
            body(pid=pid, commune_code=st.sampled_from(COMMUNES), address=text, new_household=st.just(True)),
            body(pid=pid, commune_code=st.sampled_from(COMMUNES), address=text,
                 household_number=st.sampled_from(HOUSEHOLDS),
                 relation_to_head=st.sampled_from(("spouse", "child", "other", "head"))),
        )
    if kind == "temporary-residence":
        return body(pid=pid, commune_code=st.sampled_from(COMMUNES), address=text, until=dates)
    if kind == "temporary-absence":
        return body(pid=pid, from_date=recent, until=dates, destination=text)
    if kind == "name-change":
        return st.fixed_dictionaries({"pid": pid, "full_name": st.sampled_from(NAMES), "reason": text}).map(
            lambda b: (kind, b))
    if kind == "sex-change":
        return st.fixed_dictionaries({"pid": pid, "sex": st.sampled_from(("male", "female")),
                                      "reason": text}).map(lambda b: (kind, b))
    assert kind == "correction"
    return st.fixed_dictionaries({
        "pid": pid, "reason": text,
        "fields": st.dictionaries(st.sampled_from(sorted(CORRECTABLE)), st.none(), min_size=1, max_size=3)
        .flatmap(lambda d: st.fixed_dictionaries({k: CORRECTION_VALUES[k] for k in d})),
    }).map(lambda b: (kind, b))


KINDS = ("birth", "death", "missing", "marriage", "divorce", "permanent-residence", "temporary-residence",
         "temporary-absence", "name-change", "sex-change", "correction")
DOCUMENTED = {201, 401, 403, 404, 409, 422}


def _inconsistencies(client, headers) -> dict[str, set[str]]:
    r = client.get("/api/v1/quality", headers=headers)
    assert r.status_code == 200, r.text
    found: dict[str, set[str]] = {}
    for province in r.json()["provinces"]:
        for name, check in province["checks"].items():
            if check["kind"] == "inconsistent":
                found.setdefault(name, set()).update(check["examples"])
    return found


@pytest.fixture
def template(sqlite_engine, tmp_path):
    """A FAMILY register on disk, copied afresh for each Hypothesis example."""
    token = _load_family(sqlite_engine, tmp_path)
    path = sqlite_engine.url.database
    sqlite_engine.dispose()  # checkpoints the WAL into the file
    return path, token


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_realistic_events_never_fail_or_corrupt_the_register(template, tmp_path_factory, data):
    source, token = template
    copy = tmp_path_factory.mktemp("example") / "register.sqlite"
    shutil.copyfile(source, copy)
    engine = make_engine(f"sqlite:///{copy}")
    headers = {"Authorization": f"Bearer {token}"}
    try:
        client = TestClient(create_app(engine), raise_server_exceptions=False)
        before = _inconsistencies(client, headers)
        pids = [row[0] for row in FAMILY]
        for _ in range(data.draw(st.integers(1, 8), label="events")):
            kind = data.draw(st.sampled_from(KINDS), label="kind")
            kind, body = data.draw(_event(kind, pids), label="event")
            r = client.post(f"/api/v1/events/{kind}", headers=headers, json=body)
            assert r.status_code < 500 and r.status_code in DOCUMENTED, (kind, body, r.status_code, r.text[:500])
            if r.status_code == 201:
                outcome = EventOutcome.model_validate(r.json())
                assert outcome.kind == kind
                if outcome.pid not in pids:  # a new number (birth, change of sex or of year of birth)
                    pids.append(outcome.pid)
                    if kind == "birth":
                        assert pidfmt.validate(outcome.pid) == outcome.pid
            else:
                ErrorBody.model_validate(r.json())
        for pid in pids:  # current and retired numbers alike find the record
            r = client.get(f"/api/v1/citizens/{pid}", headers=headers)
            assert r.status_code == 200, (pid, r.text[:500])
            CitizenRecord.model_validate(r.json())
            r = client.get(f"/api/v1/citizens/{pid}/history", headers=headers)
            assert r.status_code == 200, (pid, r.text[:500])
            for entry in r.json():
                HistoryEntry.model_validate(entry)
        after = _inconsistencies(client, headers)
        new = {name: found - before.get(name, set()) for name, found in after.items()}
        assert not {k: v for k, v in new.items() if v}, f"events made the register inconsistent: {new}"
    finally:
        engine.dispose()
