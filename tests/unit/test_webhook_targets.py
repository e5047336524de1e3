"""Where a webhook may go (``changes.targets``): the URL check at registration, the address check at
delivery, and the pinning of the connection to the address checked (Host and TLS name kept)."""

from __future__ import annotations

import ipaddress
import socket

import httpx
import pytest

from dinhdanh.changes import service, targets
from dinhdanh.registry.errors import InvalidInput

SWITCH = "DINHDANH_WEBHOOKS_ALLOW_HTTP_LOOPBACK"

# Every one of these is refused at registration, whatever the switch (the loopback ones: with it off).
NOT_ALLOWED = [
    # loopback
    "http://127.0.0.1:8080/hook", "https://127.0.0.1/hook", "https://127.8.9.10/hook", "https://[::1]/hook",
    "http://localhost:8080/hook", "https://localhost/hook", "https://LOCALHOST./hook", "https://api.localhost/hook",
    # private
    "https://10.0.0.1/hook", "https://10.255.255.255/hook", "https://172.16.5.4/hook", "https://172.31.0.1/hook",
    "https://192.168.1.1/hook", "https://[fc00::1]/hook", "https://[fd12:3456::1]/hook",
    # link-local, the cloud metadata address
    "https://169.254.169.254/latest/meta-data/", "http://169.254.169.254/", "https://169.254.1.1/hook",
    "https://[fe80::1]/hook",
    # multicast, unspecified, reserved, shared (CGNAT), documentation
    "https://224.0.0.1/hook", "https://239.255.255.250/hook", "https://[ff02::1]/hook", "https://0.0.0.0/hook",
    "https://[::]/hook", "https://240.0.0.1/hook", "https://255.255.255.255/hook", "https://100.64.0.1/hook",
    "https://100.127.255.254/hook", "https://192.0.2.10/hook", "https://[2001:db8::1]/hook",
    # IPv6 forms carrying a forbidden IPv4
    "https://[::ffff:127.0.0.1]/hook", "https://[::ffff:10.0.0.1]/hook", "https://[::ffff:a9fe:a9fe]/hook",
    "https://[2002:7f00:1::]/hook", "https://[64:ff9b::a9fe:a9fe]/hook",
    # local names
    "https://metadata.google.internal/computeMetadata/v1/", "https://printer.local/hook",
    "https://router.home.arpa/hook", "https://intranet/hook", "https://db.localdomain/hook",
    # user info
    "https://user@hooks.example.vn/hook", "https://user:pw@hooks.example.vn/hook", "https://:pw@hooks.example.vn/",
    "https://hooks.example.vn@127.0.0.1/hook",
    # numbers in disguise
    "http://2130706433/", "https://2130706433/", "https://0x7f000001/", "https://0177.0.0.1/", "https://127.1/",
    "https://0x7f.0.0.1/", "https://017700000001/", "https://10.1/", "https://1.2.3.04/",
    # plain http to a public host, other schemes, odd hosts
    "http://hooks.example.vn/hook", "http://8.8.8.8/hook", "ftp://hooks.example.vn/x", "file:///etc/passwd",
    "gopher://127.0.0.1:25/", "https://%6c%6fcalhost/hook", "https://ｌｏｃａｌｈｏｓｔ/hook",
    "https://hooks.example.vn\\@127.0.0.1/",
]
ALLOWED = ["https://hooks.example.vn/dinhdanh", "https://hooks.example.vn:8443/x?a=1", "https://8.8.8.8/hook",
           "https://[2606:4700:4700::1111]/hook", "https://xn--bcher-kva.example/hook", "https://a-b.example.com."]
LOOPBACK = ["http://127.0.0.1:8080/hook", "http://localhost:8080/hook", "http://[::1]:8080/hook",
            "https://127.0.0.1/hook"]


@pytest.fixture
def switch_off(monkeypatch):
    monkeypatch.delenv(SWITCH, raising=False)


@pytest.fixture
def switch_on(monkeypatch):
    monkeypatch.setenv(SWITCH, "1")


@pytest.mark.parametrize("url", NOT_ALLOWED)
def test_a_url_inside_is_refused_at_registration(switch_off, url):
    with pytest.raises(InvalidInput) as caught:
        service.check_webhook_url(url)
    assert (caught.value.code, caught.value.field) in {("webhook_url_not_allowed", "webhook_url"),
                                                       ("invalid_input", "webhook_url")}
    if "#" not in url and " " not in url:
        assert caught.value.code == "webhook_url_not_allowed", url


@pytest.mark.parametrize("url", ALLOWED)
def test_a_public_https_url_is_accepted(switch_off, url):
    assert service.check_webhook_url(url) == url


@pytest.mark.parametrize("url", LOOPBACK)
def test_loopback_only_with_the_operator_s_switch(monkeypatch, url):
    monkeypatch.setenv(SWITCH, "1")
    assert service.check_webhook_url(url) == url
    for value in ("", "0", "no"):
        monkeypatch.setenv(SWITCH, value)
        with pytest.raises(InvalidInput) as caught:
            service.check_webhook_url(url)
        assert caught.value.code == "webhook_url_not_allowed"


SWITCH_OPENS = {"http://127.0.0.1:8080/hook", "https://127.0.0.1/hook", "https://127.8.9.10/hook",
                "https://[::1]/hook", "http://localhost:8080/hook", "https://localhost/hook",
                "https://LOCALHOST./hook", "https://[::ffff:127.0.0.1]/hook"}


@pytest.mark.parametrize("url", [u for u in NOT_ALLOWED if u not in SWITCH_OPENS])
def test_the_switch_opens_loopback_only(switch_on, url):
    with pytest.raises(InvalidInput):
        service.check_webhook_url(url)


@pytest.mark.parametrize("address, allowed", [
    ("8.8.8.8", True), ("2606:4700:4700::1111", True), ("127.0.0.1", False), ("::1", False), ("10.1.2.3", False),
    ("172.20.0.1", False), ("192.168.0.1", False), ("169.254.169.254", False), ("100.64.0.1", False),
    ("fe80::1", False), ("fc00::1", False), ("::ffff:169.254.169.254", False), ("::ffff:8.8.8.8", True),
    ("224.0.0.251", False), ("0.0.0.0", False), ("::", False), ("2002:a00:1::", False), ("64:ff9b::7f00:1", False),
])
def test_address_allowed(address, allowed):
    assert targets.address_allowed(ipaddress.ip_address(address)) is allowed


def resolver_of(*addresses: str, calls: list | None = None):
    def getaddrinfo(host, port, *args, **kw):
        if calls is not None:
            calls.append(host)
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
                for a in addresses]
    return getaddrinfo


@pytest.mark.parametrize("addresses", [("127.0.0.1",), ("93.184.216.34", "127.0.0.1"), ("10.0.0.7",),
                                       ("169.254.169.254",), ("::1",), ("::ffff:127.0.0.1",), ("fe80::1%1",), ()])
def test_delivery_is_refused_when_any_address_is_inside(switch_off, monkeypatch, addresses):
    monkeypatch.setattr(socket, "getaddrinfo", resolver_of(*addresses))
    sent = []
    client = httpx.Client(transport=targets.PinnedTransport(
        transport=lambda: httpx.MockTransport(lambda r: sent.append(r) or httpx.Response(204))))
    with pytest.raises(targets.TargetRefused) as caught:
        client.post("https://hooks.example.vn/dinhdanh", content=b"{}")
    assert sent == []
    assert str(caught.value) == targets.REFUSED and "127" not in str(caught.value)


def test_the_connection_goes_to_the_address_checked_with_the_name_kept(switch_off, monkeypatch):
    """DNS rebinding: whatever the resolver says later, the request goes to the address checked."""
    calls: list = []
    answers = iter([("93.184.216.34",), ("127.0.0.1",)])
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **kw: resolver_of(*next(answers), calls=calls)(*a, **kw))
    sent = []
    client = httpx.Client(transport=targets.PinnedTransport(
        transport=lambda: httpx.MockTransport(lambda r: sent.append(r) or httpx.Response(204))))
    assert client.post("https://hooks.example.vn:8443/dinhdanh?x=1", content=b"{}").status_code == 204
    (request,) = sent
    assert request.url.host == "93.184.216.34" and request.url.port == 8443 and request.url.path == "/dinhdanh"
    assert request.headers["host"] == "hooks.example.vn:8443"
    assert request.extensions["sni_hostname"] == "hooks.example.vn"  # TLS checks the certificate of the name
    assert calls == ["hooks.example.vn"]  # resolved once, by us
    with pytest.raises(targets.TargetRefused):  # the next answer is inside: refused, not followed
        client.post("https://hooks.example.vn:8443/dinhdanh", content=b"{}")
    assert len(sent) == 1


def test_delivery_rechecks_a_url_registered_before(switch_off, monkeypatch):
    monkeypatch.setattr(socket, "getaddrinfo", resolver_of("93.184.216.34"))
    client = httpx.Client(transport=targets.PinnedTransport(
        transport=lambda: httpx.MockTransport(lambda r: httpx.Response(204))))
    for url in ("http://hooks.example.vn/x", "https://localhost/x", "http://127.0.0.1:9/x", "https://10.0.0.1/x"):
        with pytest.raises(targets.TargetRefused):
            client.post(url, content=b"{}")


def test_http_to_loopback_is_delivered_only_with_the_switch(monkeypatch):
    sent = []
    client = httpx.Client(transport=targets.PinnedTransport(
        transport=lambda: httpx.MockTransport(lambda r: sent.append(r) or httpx.Response(204))))
    monkeypatch.setenv(SWITCH, "1")
    assert client.post("http://127.0.0.1:9/x", content=b"{}").status_code == 204
    monkeypatch.setattr(socket, "getaddrinfo", resolver_of("93.184.216.34"))
    with pytest.raises(targets.TargetRefused):  # http to a name that is not loopback: never
        client.post("http://hooks.example.vn/x", content=b"{}")
    monkeypatch.delenv(SWITCH)
    with pytest.raises(targets.TargetRefused):
        client.post("http://127.0.0.1:9/x", content=b"{}")
    assert len(sent) == 1
