"""The ``dinhdanh`` command end to end: each test runs it in a subprocess, as an operator would.

The environment has ``DINHDANH_HOME`` pointing at the test's temporary folder and no
``DINHDANH_DATABASE_URL``; databases are given with ``--db`` (SQLite always, and a fresh PostgreSQL
schema when ``DINHDANH_TEST_POSTGRES_URL`` is set).
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import re
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from dinhdanh.audit.tables import access_log
from dinhdanh.cli.demo_dossiers import BIRTH_REGISTRATION
from dinhdanh.dossiers.tables import dossiers
from dinhdanh.ids import pid as pidfmt
from dinhdanh.officers.tables import officers
from dinhdanh.registry.tables import events, persons
from dinhdanh.store.engine import make_engine
from dinhdanh.web.app import create_app
from tests.ports import free_port as _free_port

try:
    from tests.support import FAMILY, FAMILY_COLUMNS, write_people
except ImportError:  # older layout: the data lived in conftest
    from tests.conftest import FAMILY, FAMILY_COLUMNS, write_people  # type: ignore[no-redef]

POSTGRES_URL = os.environ.get("DINHDANH_TEST_POSTGRES_URL")
AN, BINH, CHAU, DUNG, DUC, HOA, GIANG = (row[0] for row in FAMILY)


def _has_synthetic() -> bool:
    if importlib.util.find_spec("dinhdanh.population.synthetic") is None:
        return False
    from dinhdanh.population import synthetic

    return callable(getattr(synthetic, "generate", None)) and callable(getattr(synthetic, "write", None))


needs_synthetic = pytest.mark.skipif(not _has_synthetic(),
                                     reason="dinhdanh.population.synthetic (generate, write) does not exist yet")


class Cli:
    def __init__(self, home: Path):
        self.home = home
        self.env = {k: v for k, v in os.environ.items() if k != "DINHDANH_DATABASE_URL"}
        self.env["DINHDANH_HOME"] = str(home)
        self.env["PYTHONIOENCODING"] = "utf-8"

    def __call__(self, *args: str, input: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "dinhdanh", *args], capture_output=True, text=True,
                              encoding="utf-8", env=self.env, cwd=self.home, input=input, timeout=timeout)

    def ok(self, *args: str, **kw) -> subprocess.CompletedProcess:
        p = self(*args, **kw)
        assert p.returncode == 0, (args, p.returncode, p.stdout, p.stderr)
        return p

    def json(self, *args: str, **kw):
        return json.loads(self.ok(*args, **kw).stdout)


def assert_refused(p: subprocess.CompletedProcess, code: int, *words: str) -> str:
    """Exit ``code``, nothing on stdout, one line on stderr naming the problem."""
    assert p.returncode == code, (p.returncode, p.stdout, p.stderr)
    assert p.stdout.strip() == "", p.stdout
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    assert "Traceback" not in p.stderr
    for word in words:
        assert word.lower() in lines[0].lower(), (word, lines[0])
    return lines[0]


@pytest.fixture
def cli(tmp_path) -> Cli:
    return Cli(tmp_path)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request, tmp_path):
    """An empty database, given to the command as ``--db URL``."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'cli.sqlite'}"
        return
    if not POSTGRES_URL:
        pytest.skip("DINHDANH_TEST_POSTGRES_URL is not set: PostgreSQL tests skipped (.ci/run sets it)")
    schema = "t_" + uuid.uuid4().hex[:12]
    admin = make_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in POSTGRES_URL else "?"
    yield f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
    admin.dispose()


@pytest.fixture
def sqlite_db(tmp_path) -> str:
    """For what does not depend on the back-end: SQLite only, to keep the subprocesses few."""
    return f"sqlite:///{tmp_path / 'cli.sqlite'}"


def count(url: str, table=persons) -> int:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
    finally:
        engine.dispose()


def _load_family(cli: Cli, url: str, tmp_path: Path) -> str:
    report = cli.json("population", "import", str(write_people(tmp_path / "family.csv", FAMILY)), "--db", url)
    assert report["loaded"] == len(FAMILY), report
    return url


@pytest.fixture
def family_db(cli, db_url, tmp_path) -> str:
    """``db_url`` (SQLite and PostgreSQL) loaded with FAMILY through ``population import``."""
    return _load_family(cli, db_url, tmp_path)


@pytest.fixture
def family_sqlite(cli, sqlite_db, tmp_path) -> str:
    return _load_family(cli, sqlite_db, tmp_path)


# ------------------------------------------------------------------------------------ pid parse


def test_pid_parse_prints_the_decoded_number_as_json(cli):
    p = cli.ok("pid", "parse", "079301000123")
    assert p.stderr == ""
    assert json.loads(p.stdout) == {"pid": "079301000123", "place_code": "079", "place_name": "Hồ Chí Minh",
                                    "foreign_birth": False, "sex": "female", "birth_year": 2001,
                                    "serial": "000123"}
    male_1985 = cli.json("pid", "parse", "001 0 85 000001")  # typed in groups
    assert (male_1985["pid"], male_1985["sex"], male_1985["birth_year"], male_1985["place_name"]) == (
        "001085000001", "male", 1985, "Hà Nội")
    abroad = cli.json("pid", "parse", "101195000042")
    assert (abroad["foreign_birth"], abroad["place_name"]) == (True, None)


@pytest.mark.parametrize(("number", "words"), [
    ("12345", ["5 digits", "12"]),
    ("0793010001x3", ["not a digit", "'x'"]),
    ("", ["empty"]),
    ("999301000123", ["place code 999"]),
    ("0793010001234", ["13 digits"]),
])
def test_pid_parse_refuses_malformed_numbers_with_exit_2_and_one_line(cli, number, words):
    assert_refused(cli("pid", "parse", number), 2, *words)


def test_pid_parse_lenient_accepts_any_twelve_digits(cli):
    info = cli.json("pid", "parse", "--lenient", "999301000123")
    assert info == {"pid": "999301000123", "place_code": "999", "place_name": None, "foreign_birth": False,
                    "sex": "female", "birth_year": 2001, "serial": "000123"}
    assert_refused(cli("pid", "parse", "--lenient", "99930100012"), 2, "11 digits")


def test_pid_generate_makes_a_valid_number(cli):
    number = cli.ok("pid", "generate", "--place", "001", "--sex", "female", "--year", "1995").stdout.strip()
    assert pidfmt.validate(number) == number and number[:6] == "001195"
    assert_refused(cli("pid", "generate", "--place", "999", "--sex", "female", "--year", "1995"), 2, "999")


# ------------------------------------------------------------------------------------- database


def test_db_upgrade_works_twice(cli, db_url):
    for _ in range(2):
        p = cli.ok("db", "upgrade", "--db", db_url)
        assert re.fullmatch(r"database at revision \S+\n", p.stdout), p.stdout
    assert count(db_url) == 0


def test_default_database_lives_under_dinhdanh_home(cli, tmp_path):
    cli.ok("db", "upgrade")
    assert (tmp_path / "dinhdanh.sqlite").is_file()
    assert count(f"sqlite:///{tmp_path / 'dinhdanh.sqlite'}") == 0


# ------------------------------------------------------------------------------------- officers


def test_officer_add_prints_one_token_that_works_against_the_api(cli, family_db):
    p = cli.ok("officer", "add", "--name", "Cán bộ phường Hoàn Kiếm", "--role", "commune", "--area", "00070",
               "--roles", "registrar,data_steward", "--db", family_db)
    lines = p.stdout.splitlines()
    assert len(lines) == 1, p.stdout
    token = lines[0].strip()
    assert token.startswith("ddo_") and len(token) > 40 and " " not in token
    assert "00070" in p.stderr and "data_steward, registrar" in p.stderr and token not in p.stderr

    engine = make_engine(family_db)
    try:
        client = TestClient(create_app(engine), raise_server_exceptions=False)
        auth = {"Authorization": f"Bearer {token}"}
        r = client.get(f"/api/v1/citizens/{AN}", headers=auth)
        assert r.status_code == 200 and r.json()["full_name"] == "Nguyễn Văn An"
        assert client.get(f"/api/v1/citizens/{DUC}", headers=auth).status_code == 404  # not in 00070
        assert client.get(f"/api/v1/citizens/{AN}", headers={"Authorization": f"Bearer {token}x"}).status_code == 401
    finally:
        engine.dispose()
    # a second officer gets another token
    other = cli.ok("officer", "add", "--name", "Cán bộ", "--role", "national", "--roles", "auditor",
                   "--db", family_db).stdout.strip()
    assert other != token
    assert count(family_db, officers) == 2


def test_officer_add_refuses_bad_role_or_area(cli, sqlite_db):
    cli.ok("db", "upgrade", "--db", sqlite_db)
    for args, word in [
        (["--role", "mayor", "--area", "00070"], "role"),
        (["--role", "commune", "--area", "99999"], "area"),
        (["--role", "commune", "--area", "79"], "area"),
        (["--role", "commune"], "area"),
        (["--role", "province", "--area", "99"], "area"),
        (["--role", "national", "--area", "79"], "area"),
    ]:
        assert_refused(cli("officer", "add", "--name", "X", *args, "--roles", "registrar", "--db", sqlite_db), 2, word)
    assert_refused(cli("officer", "add", "--name", " ", "--role", "national", "--roles", "registrar",
                       "--db", sqlite_db), 2, "name")
    for roles in ("", " , ", "registrar,mayor", "all"):  # at least one role, each a known one
        assert_refused(cli("officer", "add", "--name", "X", "--role", "national", "--roles", roles,
                           "--db", sqlite_db), 2, "roles")
    assert_refused(cli("officer", "add", "--name", "X", "--role", "national", "--db", sqlite_db), 2, "roles")
    assert count(sqlite_db, officers) == 0


# --------------------------------------------------------------------------------------- import


def test_population_import_prints_a_report_and_is_idempotent(cli, db_url, tmp_path):
    file = write_people(tmp_path / "people.csv", FAMILY)
    first = cli.json("population", "import", str(file), "--db", db_url)
    assert (first["status"], first["rows"], first["loaded"], first["rejected"]) == ("done", 7, 7, 0)
    assert first["unresolved_links"] == 0
    assert count(db_url) == 7
    again = cli.json("population", "import", str(file), "--db", db_url)
    assert again["status"] == "already_done" and again["job_id"] == first["job_id"]
    assert count(db_url) == 7


def test_population_import_reports_rejected_rows(cli, sqlite_db, tmp_path):
    db_url = sqlite_db
    rows = [list(r) for r in FAMILY]
    rows[4][3] = "x"  # a sex that is neither male nor female
    rows[5][0] = "07919300000"  # 11 digits
    report = cli.json("population", "import", str(write_people(tmp_path / "people.csv", rows)), "--db", db_url)
    assert (report["loaded"], report["rejected"]) == (5, 2)
    rejects = Path(report["rejects_path"])
    if not rejects.is_absolute():
        rejects = tmp_path / rejects
    text = rejects.read_text(encoding="utf-8")
    assert "sex" in text and "pid" in text
    assert count(db_url) == 5


def test_population_import_refuses_a_missing_file(cli, sqlite_db, tmp_path):
    db_url = sqlite_db
    cli.ok("db", "upgrade", "--db", db_url)
    assert_refused(cli("population", "import", str(tmp_path / "nope.csv"), "--db", db_url), 2, "no such file",
                   "nope.csv")
    assert count(db_url) == 0


def test_population_import_refuses_a_file_missing_a_required_column(cli, sqlite_db, tmp_path):
    db_url = sqlite_db
    cli.ok("db", "upgrade", "--db", db_url)
    columns = tuple(c for c in FAMILY_COLUMNS if c != "commune_code")
    rows = [tuple(v for c, v in zip(FAMILY_COLUMNS, r) if c != "commune_code") for r in FAMILY]
    file = write_people(tmp_path / "people.csv", rows, columns)
    assert_refused(cli("population", "import", str(file), "--db", db_url), 2, "commune_code")
    assert count(db_url) == 0
    bad_type = tmp_path / "people.txt"
    bad_type.write_text("pid\n", encoding="utf-8")
    assert_refused(cli("population", "import", str(bad_type), "--db", db_url), 2, ".txt")
    assert count(db_url) == 0


# --------------------------------------------------------------------------------------- events


def test_event_birth_prints_the_new_pid(cli, family_db):
    body = {"full_name": "Nguyễn Văn Em", "sex": "male", "date_of_birth": "2020-02-03", "commune_code": "00070",
            "father_pid": AN, "mother_pid": BINH, "reason": "Khai sinh"}
    out = cli.json("event", "birth", "--data", json.dumps(body, ensure_ascii=False), "--db", family_db)
    number = out["pid"]
    assert out["kind"] == "birth" and pidfmt.validate(number) == number
    assert number[:3] == "001" and pidfmt.parse(number).birth_year == 2020 and pidfmt.parse(number).sex == "male"
    rec = cli.json("registry", "show", number, "--db", family_db)
    assert rec["full_name"] == "Nguyễn Văn Em"
    assert rec["relatives"]["father"]["pid"] == AN and rec["relatives"]["mother"]["pid"] == BINH
    assert rec["household"]["number"] == "0100000001"
    history = cli.json("registry", "history", number, "--db", family_db)
    assert [h["kind"] for h in history] == ["birth"]
    assert history[0]["actor"].startswith("cli") and history[0]["reason"] == "Khai sinh"
    assert count(family_db) == 8


def test_event_reads_the_json_from_stdin(cli, family_sqlite):
    family_db = family_sqlite
    out = cli.json("event", "death", "--data", "-", "--db", family_db,
                   input=json.dumps({"pid": GIANG, "date_of_death": "2024-01-01"}))
    assert out["pid"] == GIANG
    assert cli.json("registry", "show", GIANG, "--db", family_db)["status"] == "dead"


BAD_EVENTS = [
    ("birth", '{"full_name": "Nguyễn Văn Em", "sex": "male"', ["json"]),
    ("birth", "not json at all", ["json"]),
    ("death", '{"pid": "079095000007", "date_of_death": "2024-01-01", "cause": "x"}', ["cause"]),
    ("death", '{"pid": "079095000007", "date_of_death": 20240101}', ["date_of_death"]),
    ("death", '{"pid": "07909500000x", "date_of_death": "2024-01-01"}', ["pid"]),
    ("birth", '{"full_name": "Nguyễn Văn Em", "sex": "male", "date_of_birth": "2020-02-03", "commune_code": "99999",'
              ' "father_pid": "001085000001"}', ["commune_code"]),
    ("adoption", '{"pid": "001085000001"}', ["adoption"]),
]


def test_event_refuses_bad_input_with_exit_2(cli, family_sqlite):
    n_events = count(family_sqlite, events)
    for kind, data, words in BAD_EVENTS:
        assert_refused(cli("event", kind, "--data", data, "--db", family_sqlite), 2, *words)
    assert count(family_sqlite, events) == n_events and count(family_sqlite) == 7


def test_event_refused_by_the_rules_exits_1_naming_the_field(cli, family_sqlite):
    family_db = family_sqlite
    n_events = count(family_db, events)
    body = {"pid": DUC, "spouse_pid": DUNG, "date": "2024-06-01"}  # Dung was born in 2015
    line = assert_refused(cli("event", "marriage", "--data", json.dumps(body), "--db", family_db), 1, "spouse_pid")
    assert "marriage age" in line
    assert count(family_db, events) == n_events


# ------------------------------------------------------------------------------------- registry


def test_registry_show_and_history(cli, family_db):
    rec = cli.json("registry", "show", AN, "--db", family_db)
    assert (rec["pid"], rec["full_name"], rec["date_of_birth"], rec["sex"]) == (AN, "Nguyễn Văn An", "1985-03-04",
                                                                                "male")
    assert rec["relatives"]["spouse"]["pid"] == BINH
    assert [c["pid"] for c in rec["relatives"]["children"]] == [CHAU, DUNG]
    assert [h["kind"] for h in cli.json("registry", "history", AN, "--db", family_db)] == ["imported"]

    cli.ok("event", "name-change", "--data",
           json.dumps({"pid": AN, "full_name": "Nguyễn Văn Ân", "reason": "Đổi tên", "legal_basis": "Luật Hộ tịch"}),
           "--db", family_db)
    history = cli.json("registry", "history", AN, "--db", family_db, "--purpose", "civil_status")
    assert [h["kind"] for h in history] == ["imported", "name-change"]
    assert history[1]["changes"] == [{"field": "full_name", "old": "Nguyễn Văn An", "new": "Nguyễn Văn Ân"}]
    assert history[1]["legal_basis"] == "Luật Hộ tịch" and history[1]["actor"].startswith("cli")
    assert cli.json("registry", "show", AN, "--db", family_db)["full_name"] == "Nguyễn Văn Ân"

    engine = make_engine(family_db)
    try:
        with engine.connect() as conn:
            log = conn.execute(sa.select(access_log.c.actor, access_log.c.action, access_log.c.purpose)
                               .order_by(access_log.c.access_id)).all()
    finally:
        engine.dispose()
    assert [(a, p) for _, a, p in log] == [("read", "administration"), ("history", "administration"),
                                          ("history", "civil_status"), ("read", "administration")]
    assert all(actor.startswith("cli") for actor, _, _ in log)


def test_registry_show_refusals(cli, family_sqlite):
    family_db = family_sqlite
    assert_refused(cli("registry", "show", "001099999999", "--db", family_db), 1, "no person")
    assert_refused(cli("registry", "show", AN, "--db", family_db, "--as-of", "2020-13-01"), 2, "--as-of")
    assert_refused(cli("registry", "show", AN, "--db", family_db, "--purpose", "curiosity"), 2, "purpose")
    assert_refused(cli("registry", "history", "001099999999", "--db", family_db), 1, "no person")
    assert count(family_db, access_log) == 0


def test_registry_quality_as_json_and_as_a_table(cli, family_sqlite):
    family_db = family_sqlite
    report = cli.json("registry", "quality", "--db", family_db, "--json")
    by_code = {p["province_code"]: p for p in report["provinces"]}
    assert set(by_code) == {"01", "79"}
    assert (by_code["01"]["population"], by_code["79"]["population"]) == (4, 3)
    assert report["totals"]["incomplete"] == 7 and report["totals"]["pid_sex"] == 1
    assert by_code["01"]["checks"]["pid_sex"]["examples"] == [DUNG]

    only = cli.json("registry", "quality", "--db", family_db, "--json", "--province", "79")
    assert [p["province_code"] for p in only["provinces"]] == ["79"]

    p = cli.ok("registry", "quality", "--db", family_db)
    assert "Hà Nội" in p.stdout and "Hồ Chí Minh" in p.stdout
    assert re.search(r"^incomplete: 7 \(e\.g\. ", p.stdout, re.M), p.stdout
    assert re.search(rf"^pid_sex: 1 \(e\.g\. {DUNG}\)", p.stdout, re.M), p.stdout
    assert_refused(cli("registry", "quality", "--db", family_db, "--province", "1"), 2, "province")


# ------------------------------------------------------------------------------ synthetic data


@needs_synthetic
def test_population_generate_then_import(cli, sqlite_db, tmp_path):
    db_url = sqlite_db
    out = tmp_path / "gen" / "people.csv"
    p = cli.ok("population", "generate", "--count", "2000", "--seed", "1", "--out", str(out))
    assert p.stdout == ""
    assert out.is_file()
    lines = out.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2001  # header and 2000 people
    again = tmp_path / "again.csv"
    cli.ok("population", "generate", "--count", "2000", "--seed", "1", "--out", str(again))
    assert again.read_bytes() == out.read_bytes()  # same seed, same file

    report = cli.json("population", "import", str(out), "--db", db_url)
    assert report["rows"] == 2000
    assert report["loaded"] == 2000 and report["rejected"] == 0, report
    assert report["unresolved_links"] == 0
    assert count(db_url) == 2000
    header = lines[0].replace('"', "").split(",")
    first = dict(zip(header, next(iter(__import__("csv").reader([lines[1]])))))
    rec = cli.json("registry", "show", first["pid"], "--db", db_url)
    assert rec["full_name"] == first["full_name"] and rec["date_of_birth"] == first["date_of_birth"]
    assert pidfmt.validate(rec["pid"]) == rec["pid"]


@needs_synthetic
@pytest.mark.parametrize("name", ["people.txt", "people", "people.csv.gz"])
def test_population_generate_refuses_other_extensions(cli, tmp_path, name):
    assert_refused(cli("population", "generate", "--count", "100", "--out", str(tmp_path / name)), 2, "extension")
    assert not (tmp_path / name).exists()


def _get(url: str, token: str | None = None, timeout: float = 5):
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@needs_synthetic
def test_demo_serves_a_synthetic_register_with_a_national_token(cli, tmp_path):
    port = _free_port()
    db = f"sqlite:///{tmp_path / 'demo.sqlite'}"
    stdout, stderr = tmp_path / "demo.out", tmp_path / "demo.err"
    with stdout.open("w") as out, stderr.open("w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "dinhdanh", "demo", "--population", "2000", "--port", str(port),
                                 "--db", db], stdout=out, stderr=err, env=cli.env, cwd=tmp_path)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, f"demo exited with {proc.returncode}: {stderr.read_text()}"
            try:
                if _get(f"{base}/healthz", timeout=2) == (200, {"status": "ok"}):
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            assert time.monotonic() < deadline, f"demo not up after 120 s: {stderr.read_text()}"
            time.sleep(0.3)
        text = stdout.read_text(encoding="utf-8")
        token = re.search(r"national officer token:\s+(\S+)", text)
        sample = re.search(r"/api/v1/citizens/(\d{12})", text)
        assert token and sample, text
        status, rec = _get(f"{base}/api/v1/citizens/{sample[1]}", token[1])
        assert status == 200, rec
        assert rec["pid"] == sample[1] and rec["full_name"]
        status, page = _get(f"{base}/api/v1/citizens?name=nguyen&page_size=5", token[1])
        assert status == 200 and page["items"], page
        assert _get(f"{base}/api/v1/citizens/{sample[1]}")[0] == 401
        # the demo's bank: a client-credentials token, then a verification of the sample person
        bank = re.search(r"client_id (\S+)\s+client_secret (\S+)", text)
        assert bank, text
        basic = base64.b64encode(f"{bank[1]}:{bank[2]}".encode()).decode()
        request = urllib.request.Request(f"{base}/token", data=b"grant_type=client_credentials&scope=dinhdanh.verify",
                                         headers={"Authorization": f"Basic {basic}",
                                                  "Content-Type": "application/x-www-form-urlencoded"})
        with urllib.request.urlopen(request, timeout=10) as r:
            access = json.loads(r.read())["access_token"]
        request = urllib.request.Request(f"{base}/api/v1/verify", data=json.dumps(
            {"pid": sample[1], "full_name": rec["full_name"]}).encode(), headers={
            "Authorization": f"Bearer {access}", "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as r:
            assert json.loads(r.read())["fields"] == {"full_name": "match"}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    # the synthetic population, and the children the demo's approved birth registrations registered
    births = sa.and_(dossiers.c.service_code == BIRTH_REGISTRATION, dossiers.c.status == "approved")
    born = count(db, sa.select(dossiers.c.dossier_id).where(births).subquery())
    assert born >= 1
    assert count(db) == 2000 + born


def test_a_command_beside_a_busy_server_waits_for_the_writer_instead_of_failing(cli, tmp_path):
    """SQLite: while another process commits write after write (a server under load), one-shot
    commands that read then write wait for the write lock; begun as a plain read, their write was
    refused at once ("database is locked") whenever a commit came in between."""
    from dinhdanh.store.engine import upgrade

    db = f"sqlite:///{tmp_path / 'busy.sqlite'}"
    engine = make_engine(db)
    upgrade(engine)
    stop = tmp_path / "stop"
    server = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import pathlib
        from dinhdanh.store.base import utcnow
        from dinhdanh.store.engine import make_engine
        from dinhdanh.store.outbox import outbox
        from dinhdanh.store.unit_of_work import UnitOfWork
        units, stop = UnitOfWork(make_engine({db!r})), pathlib.Path({str(stop)!r})
        while not stop.exists():
            with units.begin() as conn:
                conn.execute(outbox.insert().values(topic="test.busy", payload={{}}, created_at=utcnow()))
        """)], env=cli.env)
    try:
        time.sleep(1.0)
        cli.ok("officer", "add", "--name", "Cán bộ", "--role", "national", "--roles", "registrar", "--db", db)
        for i in range(3):
            cli.ok("partner", "add", "--name", f"Ngân hàng {i}", "--kind", "bank", "--operations", "verify",
                   "--fields", "full_name", "--db", db)
    finally:
        stop.touch()
        assert server.wait(30) == 0
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(officers)).scalar_one() == 1
        assert conn.execute(sa.text("SELECT count(*) FROM outbox WHERE topic = 'test.busy'")).scalar_one() > 100
    engine.dispose()
