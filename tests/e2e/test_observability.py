"""What operators see: request ids, HTTP metrics by route template (never a PID), the scrape-time
gauges, /readyz, masked JSON logs, and ``dinhdanh serve --log-format json`` writing them."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from dinhdanh import logs
from dinhdanh.officers.service import add_officer
from dinhdanh.store import outbox
from dinhdanh.store.engine import make_engine
from dinhdanh.web import observability
from dinhdanh.web.app import create_app
from tests.ports import free_port as _free_port
from tests.support import FAMILY

PID = FAMILY[0][0]
MRZ = "IDVNM0850000011001085000001<<<4"  # a card's first MRZ line: 30 characters of [A-Z0-9<]


def _metric(text: str, name: str, **labels) -> float | None:
    """The value of the sample ``name`` with exactly ``labels`` in the Prometheus text ``text``."""
    for line in text.splitlines():
        found = re.fullmatch(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)", line)
        if found is None or found[1] != name:
            continue
        have = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', found[2] or ""))
        if have == labels:
            return float(found[3])
    return None


def test_every_answer_carries_a_request_id(sqlite_engine):
    client = TestClient(create_app(sqlite_engine))
    given = client.get("/healthz", headers={"X-Request-Id": "lb-7.Ab_c-9"})
    assert given.status_code == 200 and given.headers["x-request-id"] == "lb-7.Ab_c-9"
    made = [client.get("/healthz").headers["x-request-id"] for _ in range(2)]
    assert all(re.fullmatch(r"[0-9a-f]{32}", m) for m in made) and made[0] != made[1]
    for bad in ("two words", "x" * 65, "<script>", "Nguyễn"):
        echoed = client.get("/healthz", headers={"X-Request-Id": bad.encode("utf-8")}).headers["x-request-id"]
        assert re.fullmatch(r"[0-9a-f]{32}", echoed), (bad, echoed)
    # errors too, and what no route matches
    assert re.fullmatch(r"[0-9a-f]{32}", client.get("/api/v1/citizens/1").headers["x-request-id"])
    assert client.get("/nowhere", headers={"X-Request-Id": "r1"}).headers["x-request-id"] == "r1"


def test_http_metrics_label_the_route_template_never_the_pid(family):
    with family.begin() as conn:
        _, token = add_officer(conn, "Cán bộ", "national", None, roles=["registrar"])
    client = TestClient(create_app(family))
    route = "/api/v1/citizens/{pid}"

    def scrape() -> str:
        answer = client.get("/metrics")
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
        return answer.text

    before = scrape()
    ok = _metric(before, "dinhdanh_http_requests_total", method="GET", route=route, status="200") or 0
    seen = _metric(before, "dinhdanh_http_request_duration_seconds_count", method="GET", route=route) or 0
    unmatched = _metric(before, "dinhdanh_http_requests_total", method="GET", route="unmatched", status="404") or 0
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get(f"/api/v1/citizens/{PID}", headers=headers).status_code == 200
    assert client.get(f"/api/v1/citizens/{PID}", headers=headers).status_code == 200
    assert client.get(f"/api/v1/nowhere/{PID}").status_code == 404
    after = scrape()
    assert _metric(after, "dinhdanh_http_requests_total", method="GET", route=route, status="200") == ok + 2
    assert _metric(after, "dinhdanh_http_request_duration_seconds_count", method="GET", route=route) == seen + 2
    assert _metric(after, "dinhdanh_http_request_duration_seconds_bucket", method="GET", route=route,
                   le="+Inf") == seen + 2
    assert _metric(after, "dinhdanh_http_requests_total", method="GET", route="unmatched",
                   status="404") == unmatched + 1
    assert PID not in after and "nowhere" not in after
    labels = set(re.findall(r'route="([^"]*)"', after))
    assert not any(re.search(r"\d{9}", label) for label in labels), labels


def test_scrape_time_gauges_read_the_database(family):
    from dinhdanh.scheduler.tables import scheduled_jobs
    from dinhdanh.store.base import utcnow

    with family.begin() as conn:
        _, token = add_officer(conn, "Cán bộ", "national", None, roles=["registrar"])
    app = create_app(family)
    client = TestClient(app)
    text = client.get("/metrics").text
    for name in ("dinhdanh_db_pool_size", "dinhdanh_db_pool_checked_out", "dinhdanh_db_pool_overflow",
                 "dinhdanh_webhook_backlog", "dinhdanh_webhook_backlog_oldest_seconds",
                 "dinhdanh_audit_sequencer_lag_entries", "dinhdanh_audit_sequencer_lag_seconds"):
        assert _metric(text, name) is not None, name
    assert _metric(text, "dinhdanh_replica_lag_seconds") is None  # no replica configured
    lag = _metric(text, "dinhdanh_audit_sequencer_lag_entries")
    backlog = _metric(text, "dinhdanh_outbox_backlog", consumer="router")
    assert backlog is not None
    pending = _metric(text, "dinhdanh_scheduler_jobs", status="pending")
    assert pending is not None

    # a read (one access-log entry waits for the sequencer), an event in the outbox, a scheduled job
    assert client.get(f"/api/v1/citizens/{PID}", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    now = utcnow()
    with family.begin() as conn:
        outbox.enqueue(conn, "test.observability", None, {"n": 1})
        conn.execute(scheduled_jobs.insert().values(kind="test.observability", key="k1", due_at=now, payload={},
                                                    status="pending", attempts=0, created_at=now, updated_at=now))
    app.state.replica_lag = lambda: 2.5  # the replica's hook, when one is configured
    text = client.get("/metrics").text
    assert _metric(text, "dinhdanh_audit_sequencer_lag_entries") == lag + 1
    assert _metric(text, "dinhdanh_audit_sequencer_lag_seconds") >= 0
    assert _metric(text, "dinhdanh_outbox_backlog", consumer="router") == backlog + 1
    assert _metric(text, "dinhdanh_scheduler_jobs", status="pending") == pending + 1
    assert _metric(text, "dinhdanh_replica_lag_seconds") == 2.5
    assert PID not in text


def test_readyz_names_what_is_not_ready(sqlite_engine, tmp_path, monkeypatch):
    monkeypatch.delenv("DINHDANH_REDIS_URL", raising=False)
    monkeypatch.delenv("DINHDANH_NATS_URL", raising=False)
    client = TestClient(create_app(sqlite_engine))
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json() == {"status": "ready", "checks": {"database": "ok", "migrations": "ok"}}
    paths = client.get("/openapi.json").json()["paths"]
    assert "/readyz" not in paths and "/healthz" not in paths and "/metrics" not in paths

    # a database whose migrations are behind the code
    with sqlite_engine.begin() as conn:
        head = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar_one()
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0001'")
    behind = client.get("/readyz")
    assert behind.status_code == 503 and behind.json()["checks"]["migrations"].startswith("at 0001")
    assert behind.json()["checks"]["database"] == "ok"

    # an engine whose database is missing
    missing = make_engine(f"sqlite:///{tmp_path / 'gone' / 'register.sqlite'}")
    shutil.rmtree(tmp_path / "gone")
    gone = TestClient(create_app(missing)).get("/readyz")
    assert gone.status_code == 503 and gone.json()["status"] == "not ready"
    assert gone.json()["checks"]["database"] == "the database file does not exist"
    assert not (tmp_path / "gone" / "register.sqlite").exists()  # the check made no empty database
    missing.dispose()
    if os.environ.get("DINHDANH_TEST_POSTGRES_URL"):  # a server database that is not there
        url = sa.engine.make_url(os.environ["DINHDANH_TEST_POSTGRES_URL"]).set(database="dd_no_such_database")
        absent = make_engine(url.render_as_string(hide_password=False))
        refused = TestClient(create_app(absent)).get("/readyz")
        absent.dispose()
        assert refused.status_code == 503 and refused.json()["checks"]["database"].startswith("OperationalError")
        assert refused.json()["checks"]["migrations"].startswith("not checked")

    # a configured Redis or NATS that does not answer
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]  # nobody listens here once closed
    monkeypatch.setenv("DINHDANH_REDIS_URL", f"redis://127.0.0.1:{dead}/0")
    monkeypatch.setenv("DINHDANH_NATS_URL", f"nats://127.0.0.1:{dead}")
    with sqlite_engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = :v"), {"v": head})
    down = client.get("/readyz")
    assert down.status_code == 503
    checks = down.json()["checks"]
    assert checks["database"] == checks["migrations"] == "ok"
    assert checks["redis"].startswith("ConnectionError") and checks["nats"] == "ConnectionRefusedError"

    # a Redis and a NATS that take the connection and never answer: the answer still comes, bounded
    # by the checks' own timeout (a client without one would wait for good). The bound asserted is
    # loose on purpose: a busy CI machine has stalled a 1.2 s answer past 4 s.
    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen(8)  # the kernel completes the handshakes; nobody reads or writes
        port = hung.getsockname()[1]
        monkeypatch.setenv("DINHDANH_REDIS_URL", f"redis://127.0.0.1:{port}/0")
        monkeypatch.setenv("DINHDANH_NATS_URL", f"nats://127.0.0.1:{port}")
        started = time.monotonic()
        silent = client.get("/readyz")
        elapsed = time.monotonic() - started
    assert elapsed < observability.CHECK_TIMEOUT + 8, elapsed
    assert silent.status_code == 503
    checks = silent.json()["checks"]
    assert checks["database"] == checks["migrations"] == "ok"
    for name in ("redis", "nats"):
        assert checks[name] == f"no answer within {observability.CHECK_TIMEOUT:g} s" \
            or "Timeout" in checks[name], checks


@pytest.mark.skipif(not (os.environ.get("DINHDANH_TEST_REDIS_URL") and os.environ.get("DINHDANH_TEST_NATS_URL")),
                    reason="DINHDANH_TEST_REDIS_URL and DINHDANH_TEST_NATS_URL are not set")
def test_readyz_checks_configured_redis_and_nats(sqlite_engine, monkeypatch):
    client = TestClient(create_app(sqlite_engine))  # made before: its rate limiter stays the database's
    monkeypatch.setenv("DINHDANH_REDIS_URL", os.environ["DINHDANH_TEST_REDIS_URL"])
    monkeypatch.setenv("DINHDANH_NATS_URL", os.environ["DINHDANH_TEST_NATS_URL"])
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"database": "ok", "migrations": "ok", "redis": "ok", "nats": "ok"}


def test_json_log_lines_mask_personal_data():
    def log(logger):
        token = logs.REQUEST_ID.set("req-1")
        try:
            logger.info("read %s; card %s; old CMND 012345678; otp: 246810", PID, MRZ,
                        extra={"pid": PID, "passcode": "135790", "code": 246810, "commune_code": "00070",
                               "status": 200, "people": [PID, "x"]})
            try:
                raise ValueError(f"no person {PID}")
            except ValueError:
                logger.exception("failed for %s", PID)
        finally:
            logs.REQUEST_ID.reset(token)

    text = _json_text(log)
    lines = [json.loads(line) for line in text.splitlines()]
    assert len(lines) == 2
    first, second = lines
    assert first["message"] == "read [pid]; card [mrz]; old CMND [cmnd]; otp: [code]"
    assert first["level"] == "INFO" and first["logger"] == "dinhdanh.test_observability.lines"
    assert first["request_id"] == "req-1" and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", first["time"])
    assert first["pid"] == "[pid]" and first["passcode"] == "[masked]" and first["code"] == "[masked]"
    assert first["commune_code"] == "00070" and first["status"] == 200 and first["people"] == ["[pid]", "x"]
    assert second["level"] == "ERROR" and "ValueError" in second["exception"]
    assert PID not in text and MRZ not in text and "246810" not in text
    assert logs.mask("mã xác thực 123456 và passcode=654321") == "mã xác thực [code] và passcode=[code]"
    assert logs.mask("commune 00070, 2026-12-06, 10 people") == "commune 00070, 2026-12-06, 10 people"


def _json_lines(log) -> list[dict]:
    return [json.loads(line) for line in _json_text(log).splitlines()]


def _json_text(log) -> str:
    """What ``log(logger)`` writes through a masked JSON handler."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(logs.PersonalDataFilter())
    handler.setFormatter(logs.JsonFormatter())
    logger = logging.getLogger("dinhdanh.test_observability.lines")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    try:
        log(logger)
    finally:
        logger.removeHandler(handler)
    return out.getvalue()


def test_a_record_with_nothing_to_mask_is_written_as_it_is_and_others_are_still_masked():
    # the access line's fields: a route template is code's, whatever the URL held
    template = "/api/v1/citizens/{pid}"
    access, other = _json_lines(lambda logger: (
        logger.info("%s %s %d", "GET", template, 200,
                    extra=logs.nothing_to_mask(method="GET", route=template, status=200, duration_ms=1.5)),
        logger.info("GET %s", f"/api/v1/citizens/{PID}", extra={"route": f"/api/v1/citizens/{PID}"})))
    assert access["message"] == f"GET {template} 200" and access["route"] == template
    assert access["status"] == 200 and access["duration_ms"] == 1.5
    assert other["message"] == "GET /api/v1/citizens/[pid]" and other["route"] == "/api/v1/citizens/[pid]"
    # left as it is: not rendered, nothing of it looked at
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "%s %s %d", ("GET", template, 200), None)
    record.__dict__.update(logs.nothing_to_mask(route=template))
    assert logs.PersonalDataFilter().filter(record) and record.args == ("GET", template, 200)


def test_json_lines_keep_diacritics_and_write_what_the_fast_encoder_refuses():
    import datetime as dt

    line, = _json_lines(lambda logger: logger.info(
        "xã %s", "Phường Bến Nghé", extra={"commune": "Phường Bến Nghé", "big": 2 ** 70,
                                           "at": dt.datetime(2026, 12, 7, 21, 30, tzinfo=dt.UTC)}))
    assert line["message"] == "xã Phường Bến Nghé" and line["commune"] == "Phường Bến Nghé"
    assert line["big"] == 2 ** 70  # beyond 64 bits: the json module's line, not an exception
    assert line["at"].startswith("2026-12-07")
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logs.JsonFormatter())
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "Nguyễn Văn An", (), None)
    assert "Nguyễn Văn An" in handler.format(record)  # UTF-8 as it is, not \u escapes


class _Writes(io.StringIO):
    """A stream that remembers each write."""

    def __init__(self):
        super().__init__()
        self.writes: list[str] = []

    def write(self, text):
        self.writes.append(text)
        return super().write(text)


def _turn_logger(stream):
    handler = logs.TurnHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger = logging.getLogger("dinhdanh.test_observability.turns")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger


def test_lines_of_one_turn_of_the_loop_leave_in_one_write_before_the_next_turn():
    stream = _Writes()
    logger = _turn_logger(stream)

    async def main():
        for i in range(5):
            logger.info("line %d", i)
        assert stream.writes == []  # waiting for the end of the turn
        await asyncio.sleep(0)
        seen = list(stream.writes)
        logger.info("line 5")
        logger.warning("at once")  # a warning is written at once, after what waits
        return seen

    seen = asyncio.run(main())
    assert seen == ["".join(f"INFO line {i}\n" for i in range(5))]
    assert stream.writes[1:] == ["INFO line 5\nWARNING at once\n"]


def test_lines_without_a_loop_are_written_at_once():
    stream = _Writes()
    logger = _turn_logger(stream)
    logger.info("one")
    thread = threading.Thread(target=logger.info, args=("two",))
    thread.start()
    thread.join()
    assert stream.writes == ["INFO one\n", "INFO two\n"]


def test_lines_from_many_threads_and_a_loop_each_reach_the_stream_once_and_whole():
    stream = _Writes()
    logger = _turn_logger(stream)

    def thread_lines(t):
        for i in range(300):
            logger.info("thread %d line %d %s", t, i, "x" * 40)

    async def loop_lines():
        for i in range(300):
            logger.info("loop line %d %s", i, "y" * 40)
            if i % 7 == 0:
                await asyncio.sleep(0)  # a turn ends: what waits is written

    threads = [threading.Thread(target=thread_lines, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    asyncio.run(loop_lines())
    for thread in threads:
        thread.join()
    logger.handlers[0].flush()
    lines = stream.getvalue().splitlines()
    expected = {f"INFO thread {t} line {i} {'x' * 40}" for t in range(8) for i in range(300)} | {
        f"INFO loop line {i} {'y' * 40}" for i in range(300)}
    assert len(lines) == len(expected) and set(lines) == expected
    loop_order = [line for line in lines if line.startswith("INFO loop")]
    assert loop_order == [f"INFO loop line {i} {'y' * 40}" for i in range(300)]  # in the order written


def test_a_flush_writes_the_lines_waiting():
    stream = _Writes()
    logger = _turn_logger(stream)

    async def main():
        logger.info("waiting")
        logger.handlers[0].flush()  # what logging.shutdown does at exit
        return list(stream.writes)

    assert asyncio.run(main()) == ["INFO waiting\n"]
    assert stream.getvalue() == "INFO waiting\n"


def test_configuring_again_writes_what_the_replaced_handler_held(configured):
    first = configured(json=False)
    second = []

    async def main():
        logging.getLogger("dinhdanh.test_configure_again").info("held in the turn")
        assert first.getvalue() == ""
        second.append(configured(json=False))  # within the same turn
        return first.getvalue()  # written then, not left to a turn the loop may never take

    assert "held in the turn" in asyncio.run(main())
    assert "held in the turn" in first.getvalue() and second[0].getvalue() == ""


@pytest.fixture
def configured():
    """``logs.configure`` on a stream of the test's, everything it changes put back afterwards."""
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)

    def configure(json: bool, level_name: str = "INFO"):
        stream = _Writes()
        logs.configure(json=json, level=level_name, stream=stream)
        return stream

    yield configure
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
    logging._srcfile = os.path.normcase(logging.addLevelName.__code__.co_filename)
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = True


def _access_both_ways(logger_name: str) -> None:
    logger = logging.getLogger(logger_name)
    token = logs.REQUEST_ID.set("req-7")
    try:
        logs.write_access(logger, "GET", "/api/v1/citizens/{pid}", 404, 1.25)
        logger.info("%s %s %d", "GET", "/api/v1/citizens/{pid}", 404,
                    extra=logs.nothing_to_mask(method="GET", route="/api/v1/citizens/{pid}", status=404,
                                               duration_ms=1.25))
    finally:
        logs.REQUEST_ID.reset(token)


def test_the_access_line_written_straight_is_the_line_logging_writes(configured):
    stream = configured(json=True)
    _access_both_ways("dinhdanh.test_access_json")
    straight, through = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert straight.pop("time")[:16] == through.pop("time")[:16]
    assert straight == through == {"level": "INFO", "logger": "dinhdanh.test_access_json",
                                   "message": "GET /api/v1/citizens/{pid} 404", "request_id": "req-7",
                                   "method": "GET", "route": "/api/v1/citizens/{pid}", "status": 404,
                                   "duration_ms": 1.25}
    stream = configured(json=False)
    _access_both_ways("dinhdanh.test_access_text")
    straight, through = (line.split(" ", 1)[1] for line in stream.getvalue().splitlines())
    assert straight == through == ("INFO    dinhdanh.test_access_text [req-7] GET /api/v1/citizens/{pid} 404 "
                                   "method=GET route=/api/v1/citizens/{pid} status=404 duration_ms=1.25")


def test_the_access_line_goes_through_logging_to_any_other_handler(configured):
    stream = configured(json=True)
    seen = []
    other = logging.Handler()
    other.emit = seen.append
    logging.getLogger().addHandler(other)  # a test's capture, say
    try:
        logs.write_access(logging.getLogger("dinhdanh.test_access_other"), "POST", "/token", 200, 2.0)
    finally:
        logging.getLogger().removeHandler(other)
    assert [r.getMessage() for r in seen] == ["POST /token 200"]
    assert json.loads(stream.getvalue())["route"] == "/token"


def test_no_access_line_above_info(configured):
    stream = configured(json=True, level_name="WARNING")
    logs.write_access(logging.getLogger("dinhdanh.test_access_quiet"), "GET", "/jwks", 200, 0.1)
    assert stream.getvalue() == ""


def test_serve_writes_json_log_lines_with_the_request_id(tmp_path):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DINHDANH_DATABASE_URL", "DINHDANH_LOG_FORMAT")}
    env.update(DINHDANH_HOME=str(tmp_path), PYTHONIOENCODING="utf-8")
    err = tmp_path / "serve.err"
    with err.open("w") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "dinhdanh", "serve", "--port", str(port),
                                 "--db", f"sqlite:///{tmp_path / 'serve.sqlite'}", "--log-format", "json"],
                                stdout=subprocess.DEVNULL, stderr=stderr, env=env, cwd=tmp_path)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, f"serve exited with {proc.returncode}: {err.read_text()}"
            try:
                with urllib.request.urlopen(f"{base}/readyz", timeout=2) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            assert time.monotonic() < deadline, f"serve not up after 60 s: {err.read_text()}"
            time.sleep(0.2)
        request = urllib.request.Request(f"{base}/api/v1/citizens/{PID}", headers={"X-Request-Id": "e2e-json-1"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=5)
        assert refused.value.code == 401 and refused.value.headers["X-Request-Id"] == "e2e-json-1"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    text = err.read_text(encoding="utf-8")
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]  # every line is JSON
    assert any(line["logger"].startswith("uvicorn") for line in lines), text
    access = [line for line in lines if line.get("request_id") == "e2e-json-1"]
    assert len(access) == 1, text
    assert access[0]["logger"] == "dinhdanh.access" and access[0]["route"] == "/api/v1/citizens/{pid}"
    assert access[0]["status"] == 401 and access[0]["level"] == "INFO" and access[0]["time"].endswith("Z")
    assert PID not in text


def test_an_unexpected_error_answers_500_with_its_request_id_and_is_counted(sqlite_engine):
    """The 500 FastAPI's outermost error middleware writes passes through the request id and the
    metrics too (they wrap the whole stack), and names nothing of the error."""
    app = create_app(sqlite_engine)

    @app.get("/boom-for-test")
    def boom():
        raise RuntimeError("secret detail 079085000001")

    client = TestClient(app, raise_server_exceptions=False)
    answer = client.get("/boom-for-test", headers={"X-Request-Id": "boom-1"})
    assert answer.status_code == 500 and answer.headers["x-request-id"] == "boom-1"
    assert answer.json()["error"]["code"] == "internal_error" and "079085000001" not in answer.text
    assert re.fullmatch(r"[0-9a-f]{32}", client.get("/boom-for-test").headers["x-request-id"])
    text = client.get("/metrics").text
    assert _metric(text, "dinhdanh_http_requests_total", method="GET", route="/boom-for-test", status="500") == 2.0
