"""Webhooks never reach inside (SSRF), end to end on SQLite and PostgreSQL: registration refuses
targets inside with 422 ``webhook_url_not_allowed``; delivery resolves the host itself and refuses
(a failed attempt, retried, then dead) a name that resolves inside, and nothing reaches the
loopback server; plain http to 127.0.0.1 is delivered only with the operator's switch on."""

from __future__ import annotations

import socket
import threading

import pytest

from dinhdanh.changes import routing, targets, webhooks
from tests.e2e.test_changes_api import http, partner  # noqa: F401 - the fixture
from tests.integration.test_changes import (
    AN,
    Clock,
    Receiver,
    delivery,
    follow,
    record,
    subscribe,
    subscriber,
    vault_of,
)
from tests.unit.test_webhook_targets import NOT_ALLOWED, SWITCH, resolver_of


@pytest.fixture
def switch_off(monkeypatch):
    monkeypatch.delenv(SWITCH, raising=False)


class Listener:
    """A bare TCP server on 127.0.0.1 that counts the connections it accepts (and answers none)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            conn.close()

    def close(self):
        self.stop.set()
        self.thread.join(2)
        self.sock.close()


def test_registering_a_target_inside_is_a_422(family, http, switch_off):  # noqa: F811
    _, auth = partner(family, http)
    for url in NOT_ALLOWED:
        if len(url) > 500:
            continue
        r = http.post("/api/v1/subscriptions", json={"kinds": ["person.died"], "scope": "follows",
                                                     "webhook_url": url}, headers=auth)
        assert r.status_code == 422, (url, r.text)
        error = r.json()["error"]
        assert (error["code"], error["field"]) == ("webhook_url_not_allowed", "webhook_url"), (url, error)
    assert http.get("/api/v1/subscriptions", headers=auth).json() == []
    ok = http.post("/api/v1/subscriptions", json={"kinds": ["person.died"], "scope": "follows",
                                                  "webhook_url": "https://hooks.example.vn/dinhdanh"}, headers=auth)
    assert ok.status_code == 201, ok.text


def test_a_name_resolving_to_loopback_is_refused_at_delivery(family, switch_off, monkeypatch):
    bank, bank_row = subscriber(family)
    listener = Listener()
    try:
        # registered while the name resolved outside (registration does not resolve: delivery does)
        subscribe(family, bank_row, ["person.died"], webhook_url=f"https://hooks.example.vn:{listener.port}/hook")
        follow(family, bank_row, [AN])
        record(family, "death", pid=AN, date_of_death="2024-05-01")
        routing.route_all(family)
        calls: list = []
        monkeypatch.setattr(socket, "getaddrinfo", resolver_of("127.0.0.1", calls=calls))  # now it points inside
        clock = Clock()
        deliverer = webhooks.Deliverer(family, vault_of(family), clock=clock, rand=lambda: 0.0, max_attempts=2,
                                       timeout=2)
        try:
            assert deliverer.run() == {"delivered": 0, "retry": 1, "dead": 0}
            row = delivery(family, bank["client_id"])[0]
            assert (row.status, row.attempts, row.last_error) == ("pending", 1, targets.REFUSED)
            clock.now = row.next_attempt_at  # retried per the back-off, then given up
            monkeypatch.setattr(socket, "getaddrinfo", resolver_of("93.184.216.34", "127.0.0.1", calls=calls))
            assert deliverer.run() == {"delivered": 0, "retry": 0, "dead": 1}
        finally:
            deliverer.close()
        row = delivery(family, bank["client_id"])[0]
        assert (row.status, row.attempts, row.last_error) == ("dead", 2, targets.REFUSED)
        assert calls == ["hooks.example.vn", "hooks.example.vn"]
    finally:
        listener.close()
    assert listener.accepted == 0  # nothing reached the loopback server


def test_http_to_127_0_0_1_is_delivered_only_with_the_switch(family, monkeypatch):
    bank, bank_row = subscriber(family)
    receiver = Receiver().start()
    try:
        monkeypatch.delenv(SWITCH, raising=False)
        with pytest.raises(Exception) as caught:
            subscribe(family, bank_row, ["person.died"], webhook_url=receiver.url)
        assert getattr(caught.value, "code", None) == "webhook_url_not_allowed"
        monkeypatch.setenv(SWITCH, "1")
        receiver.secret = subscribe(family, bank_row, ["person.died"], webhook_url=receiver.url)["webhook_secret"]
        follow(family, bank_row, [AN])
        record(family, "death", pid=AN, date_of_death="2024-05-01")
        routing.route_all(family)
        clock = Clock()
        deliverer = webhooks.Deliverer(family, vault_of(family), clock=clock, rand=lambda: 0.0, timeout=2)
        try:
            monkeypatch.delenv(SWITCH)  # the operator turned it off since: refused at delivery
            assert deliverer.run() == {"delivered": 0, "retry": 1, "dead": 0}
            row = delivery(family, bank["client_id"])[0]
            assert row.last_error.startswith("webhook_url_not_allowed")
            assert receiver.got == [] and receiver.bad == 0
            monkeypatch.setenv(SWITCH, "1")
            clock.now = row.next_attempt_at
            assert deliverer.run() == {"delivered": 1, "retry": 0, "dead": 0}
        finally:
            deliverer.close()
    finally:
        receiver.stop()
    assert [(e["type"], e["data"]["pid"]) for e in receiver.events()] == [("person.died", AN)]


def test_a_redirect_is_a_failed_attempt(family, monkeypatch):
    """follow_redirects stays off: a 3xx (to a target inside or not) is not followed."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    monkeypatch.setenv(SWITCH, "1")
    hits = []

    class Redirect(BaseHTTPRequestHandler):
        def do_POST(self):
            hits.append(self.path)
            self.rfile.read(int(self.headers.get("content-length", 0)))
            self.send_response(307)
            self.send_header("location", "http://169.254.169.254/latest/meta-data/")
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    bank, bank_row = subscriber(family)
    try:
        subscribe(family, bank_row, ["person.died"], webhook_url=f"http://127.0.0.1:{server.server_port}/hook")
        follow(family, bank_row, [AN])
        record(family, "death", pid=AN, date_of_death="2024-05-01")
        routing.route_all(family)
        deliverer = webhooks.Deliverer(family, vault_of(family), clock=Clock(), rand=lambda: 0.0, timeout=2)
        try:
            assert deliverer.run() == {"delivered": 0, "retry": 1, "dead": 0}
        finally:
            deliverer.close()
    finally:
        server.shutdown()
        server.server_close()
    assert hits == ["/hook"]
    assert delivery(family, bank["client_id"])[0].last_error == "HTTP 307"
