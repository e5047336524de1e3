"""Request body limits (``web.body_limits``): every route refuses a body over 1 MiB with 413 and the
project's JSON error, before reading it when its length is declared and as it arrives when it is
not; the batch upload keeps its own limit; and a real server stays small and healthy under six
parallel 200 MiB bodies."""

from __future__ import annotations

import asyncio
import json
import select
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from dinhdanh.web import body_limits
from dinhdanh.web.app import create_app
from tests.e2e.test_cli import Cli
from tests.oidc_support import free_port

MIB = 1 << 20
ROUTES = ["/api/v1/eid/registrations", "/api/v1/events/death", "/api/v1/verify", "/token"]


@pytest.fixture
def http(engine, tmp_path, monkeypatch):
    monkeypatch.setenv("DINHDANH_HOME", str(tmp_path / "home"))
    monkeypatch.delenv(body_limits.ENV, raising=False)
    with TestClient(create_app(engine), base_url="https://testserver") as client:
        yield client


def refused(r, code: str = "body_too_large", field: str = "body") -> dict:
    assert r.status_code == 413, (r.status_code, r.text[:300])
    assert r.headers["content-type"].startswith("application/json")
    error = r.json()["error"]
    assert (error["code"], error["field"]) == (code, field), error
    return error


@pytest.mark.parametrize("path", ROUTES)
def test_a_declared_length_over_the_limit_is_refused(http, path):
    body = b"{" + b" " * MIB + b"}"  # 1 MiB + 2 bytes, Content-Length declared
    error = refused(http.post(path, content=body, headers={"Content-Type": "application/json"}))
    assert error["message"] == "Nội dung yêu cầu vượt quá dung lượng cho phép."  # Vietnamese first
    error = refused(http.post(path, content=body, headers={"Content-Type": "application/json",
                                                           "Accept-Language": "en"}))
    assert "1048576 bytes" in error["message"]
    # at the limit the body is the route's to judge (401, 422: never 413)
    assert http.post(path, content=b" " * MIB, headers={"Content-Type": "application/json"}).status_code != 413


@pytest.mark.parametrize("path", ["/api/v1/eid/registrations", "/token"])
def test_a_chunked_body_is_counted_as_it_arrives(http, path):
    sent = []

    def chunks():  # no Content-Length: Transfer-Encoding chunked
        for _ in range(40):
            sent.append(1)
            yield b" " * (64 << 10)

    r = http.post(path, content=chunks(), headers={"Content-Type": "application/json", "Accept-Language": "en"})
    refused(r)
    small = http.post(path, content=iter([b"{}"]), headers={"Content-Type": "application/json"})
    assert small.status_code != 413


def test_nothing_is_read_before_a_declared_length_is_refused():
    called = []

    async def app(scope, receive, send):  # never reached
        called.append(scope)

    async def receive():
        raise AssertionError("the body was read")

    sent = []

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/api/v1/eid/registrations", "query_string": b"",
             "headers": [(b"content-length", str(200 * MIB).encode()), (b"accept-language", b"en")]}
    asyncio.run(body_limits.BodyLimit(app, max_bytes=MIB)(scope, receive, send))
    assert not called and sent[0]["status"] == 413
    assert (b"connection", b"close") in sent[0]["headers"]
    assert json.loads(sent[1]["body"])["error"]["code"] == "body_too_large"


def test_the_limit_is_configurable_once(engine, tmp_path, monkeypatch):
    monkeypatch.setenv("DINHDANH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv(body_limits.ENV, "1000")
    client = TestClient(create_app(engine), base_url="https://testserver")
    monkeypatch.setenv(body_limits.ENV, "10")  # read when the app was built, not per request
    assert client.post("/api/v1/eid/registrations", content=b" " * 500).status_code == 422
    refused(client.post("/api/v1/eid/registrations", content=b" " * 1001))
    monkeypatch.setenv(body_limits.ENV, "lots")
    with pytest.raises(ValueError, match=body_limits.ENV):
        create_app(engine)


def test_the_batch_upload_keeps_its_own_limit(http, monkeypatch):
    monkeypatch.setenv("DINHDANH_BATCH_MAX_BYTES", str(4 * MIB))
    big = b"pid,full_name,date_of_birth\n" + b"001085000001,An,1985-03-04\n" * 80_000  # ~2 MiB
    r = http.post("/api/v1/batches", files={"file": ("f.csv", big, "text/csv")})
    assert r.status_code == 401  # past the body limit of other routes, the partner's token is asked for
    monkeypatch.setenv("DINHDANH_BATCH_MAX_BYTES", "1000")
    error = refused(http.post("/api/v1/batches", files={"file": ("f.csv", big, "text/csv")}),
                    "upload_too_large", "file")
    assert error["message"] == "Tệp tải lên vượt quá dung lượng cho phép."
    # other routes keep 1 MiB whatever the batch limit
    monkeypatch.setenv("DINHDANH_BATCH_MAX_BYTES", str(4 * MIB))
    refused(http.post("/api/v1/eid/registrations", content=big))


# ------------------------------------------------------------------------------ a real server


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def _get(port: int, path: str) -> int:
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status
    except OSError:
        return 0


def _oversized_client(port: int, chunked: bool, total: int, out: list) -> None:
    """POST ``total`` bytes of JSON-ish filler from a generator, stopping as soon as the server
    answers or closes; appends the status line (or the error that ended the upload)."""
    head = (f"POST /api/v1/eid/registrations HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            "Content-Type: application/json\r\n"
            + ("Transfer-Encoding: chunked\r\n" if chunked else f"Content-Length: {total}\r\n") + "\r\n").encode()
    block = b" " * (64 << 10)

    def body():
        sent = 0
        while sent < total:
            piece = block[:total - sent]
            sent += len(piece)
            yield (f"{len(piece):x}\r\n".encode() + piece + b"\r\n") if chunked else piece
        if chunked:
            yield b"0\r\n\r\n"

    answer = b""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        try:
            s.sendall(head)
            for piece in body():
                readable, _, _ = select.select([s], [], [], 0)
                if readable:
                    break  # the server has answered (or closed): stop sending
                s.sendall(piece)
        except OSError as exc:  # reset or broken pipe: the server closed after answering
            out.append(f"send: {type(exc).__name__}")
        try:
            s.settimeout(10)
            while b"\r\n" not in answer:
                got = s.recv(65536)
                if not got:
                    break
                answer += got
        except OSError as exc:
            out.append(f"recv: {type(exc).__name__}")
    out.append(answer.split(b"\r\n", 1)[0].decode("latin-1"))


def test_a_server_under_parallel_oversized_bodies_stays_small_and_healthy(tmp_path):
    cli = Cli(tmp_path)
    db = f"sqlite:///{tmp_path / 'register.sqlite'}"
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "dinhdanh", "serve", "--db", db, "--port", str(port)],
                            env=cli.env, cwd=cli.home, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while _get(port, "/healthz") != 200:
            assert proc.poll() is None, "the server stopped"
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)
        warm: list = []  # the route's first (small, refused) requests load what it needs
        _oversized_client(port, True, 2 * MIB, warm)
        _oversized_client(port, False, 2 * MIB, warm)
        time.sleep(0.3)
        baseline = peak = _rss(proc.pid)
        stop = threading.Event()

        def sample():
            nonlocal peak
            while not stop.is_set():
                peak = max(peak, _rss(proc.pid))
                time.sleep(0.005)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        results: list[list] = [[] for _ in range(6)]
        clients = [threading.Thread(target=_oversized_client, args=(port, i % 2 == 0, 200 * MIB, results[i]))
                   for i in range(6)]
        started = time.monotonic()
        for c in clients:
            c.start()
        for c in clients:
            c.join(30)
        assert not any(c.is_alive() for c in clients), "a client hung"
        stop.set()
        sampler.join()
        assert time.monotonic() - started < 20
        assert peak - baseline < 100 * MIB, (baseline, peak)
        for outcome in results:
            status = outcome[-1]
            # a 413, or the connection closed after it (the client was still sending)
            assert status.startswith("HTTP/1.1 413") or (status == "" and outcome[:-1]), outcome
        assert sum(o[-1].startswith("HTTP/1.1 413") for o in results) >= 3, results
        assert _get(port, "/healthz") == 200 and proc.poll() is None
    finally:
        proc.kill()
        proc.wait(10)
