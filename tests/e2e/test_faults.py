"""Faults with nothing lost (issue 13): PostgreSQL stopped and started again under load. While it is
down the API answers 503 with Retry-After (never a 500, never a hang); the server process recovers
by itself once the database is back; every acknowledged (200) audited read has its access-log entry.
The server is one of the test's own (``tests.replica_support.private_server``): the shared test
server is never stopped. (Redis down: tests/e2e/test_verify_api.py; NATS down:
tests/integration/test_changes_nats.py; a worker SIGKILLed: tests/e2e/test_serve_workers.py.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter

import pytest
import sqlalchemy as sa

from dinhdanh.audit.tables import access_log
from dinhdanh.officers.service import add_officer
from dinhdanh.population.importer import import_population
from dinhdanh.store.engine import make_engine, upgrade
from tests import replica_support
from tests.oidc_support import free_port
from tests.support import FAMILY, write_people

AN = "001085000001"


def call(url: str, token: str | None = None) -> int:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=15) as r:
            r.read()
            return r.status
    except urllib.error.HTTPError as e:
        e.read()
        return e.code


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.xdist_group("cluster-copies")  # a private copy of the cluster, like the replica tests
def test_postgresql_restarted_under_load(tmp_path):
    try:
        server = replica_support.private_server(60)
        servers, data, port = server.__enter__()
    except replica_support.Unavailable as exc:
        pytest.skip(str(exc))
    proc = None
    try:
        url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
        engine = make_engine(url)
        upgrade(engine)
        import_population(engine, write_people(tmp_path / "family.csv", FAMILY))
        with engine.begin() as conn:
            _, token = add_officer(conn, "Cán bộ Bộ Công an", "national", None, roles=["registrar"])
        api = free_port()
        base = f"http://127.0.0.1:{api}"
        err = (tmp_path / "serve.err").open("w")
        proc = subprocess.Popen([sys.executable, "-m", "dinhdanh", "serve", "--port", str(api), "--db", url,
                                 "--log-format", "text"], stdout=subprocess.DEVNULL, stderr=err, cwd=tmp_path,
                                env={**os.environ, "DINHDANH_LOG_LEVEL": "WARNING"})
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (tmp_path / "serve.err").read_text()
            try:
                if call(f"{base}/healthz") == 200:
                    break
            except (urllib.error.URLError, OSError):
                pass
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.2)

        statuses: Counter = Counter()
        stop = threading.Event()

        def load() -> None:
            while not stop.is_set():
                statuses[call(f"{base}/api/v1/citizens/{AN}", token)] += 1
                time.sleep(0.01)

        threads = [threading.Thread(target=load) for _ in range(3)]
        for t in threads:
            t.start()
        time.sleep(1.5)
        stopped = servers.pg_ctl("-D", str(data), "-m", "fast", "-w", "-t", "20", "stop",
                                 deadline=time.monotonic() + 25)
        assert stopped.returncode == 0, stopped.stderr
        time.sleep(2.0)  # down: every request in this window gets 503
        during = Counter(statuses)
        servers.start(data, port, time.monotonic() + 30)
        time.sleep(3.0)
        stop.set()
        for t in threads:
            t.join(30)
        assert set(statuses) <= {200, 503}, statuses  # never a 500
        assert during[503] > 0 and statuses[200] > during[200], (during, statuses)
        assert call(f"{base}/readyz") == 200  # recovered without a restart of the server
        assert call(f"{base}/api/v1/citizens/{AN}", token) == 200
        with engine.connect() as conn:
            logged = conn.execute(sa.select(sa.func.count()).select_from(access_log)
                                  .where(access_log.c.action == "read")).scalar_one()
        assert logged >= statuses[200] + 1  # every acknowledged read was committed
        engine.dispose()
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        server.__exit__(None, None, None)
