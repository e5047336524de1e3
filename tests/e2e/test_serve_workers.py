"""``dinhdanh serve --workers 2`` on SQLite and PostgreSQL (issue 13): two worker processes answer on
one port; one is SIGKILLed under load: its in-flight requests may fail, every acknowledged (200)
audited read has its access-log entry, the supervisor starts a new worker, and the background loops
(run once, in the parent) go on sequencing the access log."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import sqlalchemy as sa

from dinhdanh.audit.tables import access_log
from dinhdanh.officers.service import add_officer
from tests.oidc_support import free_port
from tests.support import proc_stat

AN = "001085000001"


def workers_of(parent: int) -> list[int]:
    """uvicorn's worker processes: the parent's children started by multiprocessing's spawn."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            ppid = int(proc_stat(proc / "stat")[1])
            cmdline = (proc / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == parent and b"spawn_main" in cmdline:
            found.append(int(proc.name))
    return sorted(found)


def get(url: str, token: str | None = None, timeout: float = 5.0) -> int:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            r.read()
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def wait_for(predicate, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, f"not within {seconds} s: {what}"
        time.sleep(0.2)


@pytest.mark.slow
def test_two_workers_survive_a_sigkill_under_load(family, tmp_path):
    with family.begin() as conn:
        _, token = add_officer(conn, "Cán bộ Bộ Công an", "national", None, roles=["registrar"])
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    err = (tmp_path / "serve.err").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "dinhdanh", "serve", "--workers", "2", "--port", str(port),
                             "--db", family.url.render_as_string(hide_password=False), "--log-format", "text"],
                            stdout=subprocess.DEVNULL, stderr=err, cwd=tmp_path,
                            env={**os.environ, "DINHDANH_LOG_LEVEL": "WARNING"})
    try:
        def up() -> bool:
            assert proc.poll() is None, (tmp_path / "serve.err").read_text()
            try:
                return get(f"{base}/healthz", timeout=2) == 200 and len(workers_of(proc.pid)) == 2
            except (urllib.error.URLError, OSError):
                return False

        wait_for(up, 90, "two workers answering")
        first = workers_of(proc.pid)
        ok, failed, stop = [0], [0], threading.Event()

        def load() -> None:
            while not stop.is_set():
                try:
                    status = get(f"{base}/api/v1/citizens/{AN}", token)
                except (urllib.error.URLError, OSError):  # the killed worker's connections
                    failed[0] += 1
                    continue
                if status == 200:
                    ok[0] += 1
                else:
                    failed[0] += 1

        threads = [threading.Thread(target=load) for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(2)
        os.kill(first[0], signal.SIGKILL)
        time.sleep(3)
        stop.set()
        for t in threads:
            t.join(30)
        assert ok[0] > 20, (ok, failed)
        wait_for(lambda: len(workers_of(proc.pid)) == 2 and first[0] not in workers_of(proc.pid), 60,
                 "the supervisor's new worker")
        assert get(f"{base}/api/v1/citizens/{AN}", token) == 200
        with family.connect() as conn:
            logged = conn.execute(sa.select(sa.func.count()).select_from(access_log)
                                  .where(access_log.c.action == "read")).scalar_one()
        assert logged >= ok[0] + 1  # every acknowledged read was committed with its entry

        def sequenced() -> bool:  # the parent's sequencer (run once) gives every entry its leaf
            with family.connect() as conn:
                return conn.execute(sa.select(sa.func.count()).select_from(access_log)
                                    .where(access_log.c.leaf_index.is_(None))).scalar_one() == 0

        wait_for(sequenced, 60, "every access-log entry sequenced")
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        err.close()


def scrape(base: str) -> str:
    with urllib.request.urlopen(f"{base}/metrics", timeout=10) as r:
        return r.read().decode()


def requests_counted(text: str, route: str, status: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith("dinhdanh_http_requests_total{") and f'route="{route}"' in line \
                and f'status="{status}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


@pytest.mark.slow
def test_metrics_sum_every_workers_requests(family, tmp_path):
    """Whichever worker answers ``/metrics``, it counts the requests both answered; a previous run's
    files in the operator's directory are not added to this run's."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    folder = tmp_path / "metrics"
    folder.mkdir()
    (folder / "counter_999999.db").write_bytes(b"stale")  # a previous run's file: removed at start
    err = (tmp_path / "serve.err").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "dinhdanh", "serve", "--workers", "2", "--port", str(port),
                             "--db", family.url.render_as_string(hide_password=False), "--log-format", "text"],
                            stdout=subprocess.DEVNULL, stderr=err, cwd=tmp_path,
                            env={**os.environ, "DINHDANH_LOG_LEVEL": "WARNING",
                                 "PROMETHEUS_MULTIPROC_DIR": str(folder)})
    try:
        def up() -> bool:
            assert proc.poll() is None, (tmp_path / "serve.err").read_text()
            try:
                return get(f"{base}/healthz", timeout=2) == 200 and len(workers_of(proc.pid)) == 2
            except (urllib.error.URLError, OSError):
                return False

        wait_for(up, 90, "two workers answering")
        assert not (folder / "counter_999999.db").exists()
        workers = workers_of(proc.pid)
        sent = 0

        def both_wrote() -> bool:  # each worker's counters are in a file named by its process id
            return all(any(folder.glob(f"*_{pid}.db")) for pid in workers)

        # new connections each time: the kernel spreads them over the two workers' accept queues
        while sent < 400 and not (sent >= 40 and both_wrote()):
            assert get(f"{base}/api/v1/citizens/{AN}") == 401  # no token
            sent += 1
        assert both_wrote(), "one worker took every connection"
        for _ in range(6):  # each scrape is answered by one worker or the other; all see the total
            assert requests_counted(scrape(base), "/api/v1/citizens/{pid}", "401") == sent
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        err.close()
