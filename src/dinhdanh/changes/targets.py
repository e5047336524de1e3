"""Where a webhook may go: a public address, never inside the platform (SSRF).

Twice checked:

- at registration (``check_url``): an absolute ``https://`` URL without user info or fragment,
  whose host is a DNS name (ASCII, at least two labels, none of ``localhost``, ``*.localhost``,
  ``*.local``, ``*.internal``, ``*.localdomain``, ``*.home.arpa``, and not a number in disguise
  such as ``2130706433``, ``0x7f.1`` or ``127.1``) or an IP literal in a public range. Refused: loopback,
  private (10/8, 172.16/12, 192.168/16, fc00::/7), link-local (169.254/16 with the cloud metadata
  address, fe80::/10), multicast, unspecified, reserved, shared/CGNAT (100.64/10), documentation
  and benchmark ranges, and IPv6 forms that carry such an IPv4 (mapped, 6to4, NAT64, Teredo);
- at delivery (``PinnedTransport``): the host is resolved here (``socket.getaddrinfo``), the
  message is refused if ANY address is not allowed, and the connection goes to the address that was
  checked (the URL's host is replaced by it; the ``Host`` header and the TLS server name, so the
  certificate check, stay the name). A DNS answer that changes between check and connect (DNS
  rebinding) therefore changes nothing.

Loopback (``127.0.0.0/8``, ``::1``, ``localhost``), and plain ``http://`` to it only, is allowed
when the operator turns it on (``config.webhooks_allow_http_loopback``, for tests and demos).
Refusals at registration are ``InvalidInput`` with the code ``webhook_url_not_allowed`` (422); at
delivery, ``TargetRefused`` (an ``httpx.ConnectError``): the attempt fails and is retried, then
dead-lettered, like any unreachable receiver. Its message names no address: a partner must not
learn how the platform's resolver answers for internal names.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import threading
from collections.abc import Callable
from urllib.parse import urlsplit

import httpx

from dinhdanh import config
from dinhdanh.registry.errors import InvalidInput

CODE = "webhook_url_not_allowed"
FIELD = "webhook_url"
MAX_LENGTH = 500
LOCAL_NAMES = ("localhost",)
LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".localdomain", ".home.arpa")
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_NUMERIC = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")  # a label inet_aton would read as a number
_SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT (RFC 6598), not "private" in Python
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_EXTRA = tuple(ipaddress.ip_network(n) for n in (
    "0.0.0.0/8", "192.0.0.0/24", "192.0.2.0/24", "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24",
    "240.0.0.0/4", "2001:db8::/32", "64:ff9b:1::/48", "100::/64"))
REFUSED = "webhook_url_not_allowed: the host does not resolve to public addresses only"


class TargetRefused(httpx.ConnectError):
    """A delivery refused before connecting: the host is not allowed, or resolves inside."""


def _embedded_v4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address leads to through 6to4, Teredo or NAT64 (not mapped ones)."""
    out = []
    if ip.sixtofour is not None:
        out.append(ip.sixtofour)
    if ip.teredo is not None:
        out.extend(ip.teredo)
    if ip in _NAT64:
        out.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return out


def address_allowed(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, *, loopback: bool = False) -> bool:
    """Whether a webhook may connect to ``ip``: a public unicast address (loopback too if ``loopback``)."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            return False
        if ip.ipv4_mapped is not None:  # ::ffff:a.b.c.d is a.b.c.d
            return address_allowed(ip.ipv4_mapped, loopback=loopback)
        inner = _embedded_v4(ip)
        if inner and not all(address_allowed(v4) for v4 in inner):
            return False
    if ip.is_loopback:
        return loopback
    if (ip.is_private or ip.is_link_local or ip.is_multicast or ip.is_unspecified or ip.is_reserved
            or ip.is_loopback or ip in _SHARED or any(ip in n for n in _EXTRA if n.version == ip.version)):
        return False
    return ip.is_global


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _refuse(message: str) -> InvalidInput:
    return InvalidInput(message, code=CODE, field=FIELD)


def _check_name(host: str) -> None:
    """A DNS name that can only be public: ASCII, two labels or more, no local suffix, not a number."""
    name = host[:-1] if host.endswith(".") else host
    if not name.isascii():
        raise _refuse("Give the webhook host in ASCII (punycode, xn--...).")
    labels = name.split(".")
    if not all(_LABEL.match(label) for label in labels):
        raise _refuse("The webhook host is not a valid host name.")
    if _NUMERIC.match(labels[-1]):  # 2130706433, 0x7f000001, 127.1, 0177.0.0.1: an address in disguise
        raise _refuse("Give an IP address in the usual dotted form, or a host name.")
    if name in LOCAL_NAMES or name.endswith(LOCAL_SUFFIXES):
        raise _refuse("The webhook host is a local name.")
    if len(labels) < 2:
        raise _refuse("The webhook host must be a fully qualified domain name.")


def check_url(url, *, allow_loopback: bool | None = None) -> str:
    """``url`` if a webhook may be registered to it; ``InvalidInput`` (code ``webhook_url_not_allowed``
    for a target that is not allowed, ``invalid_input`` for what is not a URL) otherwise."""
    loopback = config.webhooks_allow_http_loopback() if allow_loopback is None else allow_loopback
    if not isinstance(url, str) or len(url) > MAX_LENGTH or any(c.isspace() or ord(c) < 32 or ord(c) == 127
                                                                 for c in url):
        raise InvalidInput(f"The webhook URL must be an absolute https URL (at most {MAX_LENGTH} characters).",
                           field=FIELD)
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise InvalidInput("The webhook URL is not a valid URL.", field=FIELD) from None
    if parts.scheme not in ("https", "http") or not host:
        raise _refuse("The webhook URL must be an absolute https URL.")
    if "@" in parts.netloc or parts.username is not None or parts.password is not None:
        raise _refuse("The webhook URL may not carry a user name or password.")
    if parts.fragment or "#" in url:
        raise InvalidInput("The webhook URL may not have a fragment.", field=FIELD)
    if "\\" in url or "%" in parts.netloc:
        raise _refuse("The webhook URL's host is not a plain host name.")
    ip = _ip(host)
    if ip is not None:
        if not address_allowed(ip, loopback=loopback):
            raise _refuse("The webhook URL's address is not a public address.")
        is_loopback = ip.is_loopback
    elif loopback and host.rstrip(".") == "localhost":
        is_loopback = True
    else:
        _check_name(host)
        is_loopback = False
    if parts.scheme == "http" and not (loopback and is_loopback):
        raise _refuse("The webhook URL must use https.")
    return url


Resolver = Callable[..., list]


def resolve(host: str, port: int, resolver: Resolver | None = None) -> list[str]:
    """Every address ``host`` resolves to (an IP literal: itself), in the resolver's order."""
    ip = _ip(host.strip("[]"))
    if ip is not None:
        return [str(ip)]
    try:
        infos = (resolver or socket.getaddrinfo)(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    seen: list[str] = []
    for info in infos:
        address = info[4][0]
        if address not in seen:
            seen.append(address)
    return seen


def pinned_address(url: httpx.URL, *, allow_loopback: bool | None = None, resolver: Resolver | None = None) -> str:
    """The checked address to connect to for ``url``; ``TargetRefused`` if the URL or any address
    its host resolves to is not allowed."""
    loopback = config.webhooks_allow_http_loopback() if allow_loopback is None else allow_loopback
    try:
        check_url(str(url), allow_loopback=loopback)
    except InvalidInput:
        raise TargetRefused("webhook_url_not_allowed: the URL is not allowed") from None
    host = url.host
    addresses = resolve(host, url.port or (443 if url.scheme == "https" else 80), resolver)
    parsed = [_ip(a) for a in addresses]
    if not parsed or any(ip is None or not address_allowed(ip, loopback=loopback) for ip in parsed):
        raise TargetRefused(REFUSED)
    if url.scheme == "http" and not all(ip.is_loopback for ip in parsed):
        raise TargetRefused(REFUSED)
    return str(parsed[0])


class PinnedTransport(httpx.BaseTransport):
    """An ``httpx`` transport that connects only to checked addresses (see the module doc): each
    request's host is resolved and checked, then the request goes to the address checked, with the
    ``Host`` header and the TLS server name (``sni_hostname``) left at the name.

    Connections are pooled per host name (one inner transport each): a connection opened, and its
    certificate checked, for one name is never reused for another name at the same address."""

    def __init__(self, *, allow_loopback: bool | None = None, resolver: Resolver | None = None,
                 transport: Callable[[], httpx.BaseTransport] = httpx.HTTPTransport, max_hosts: int = 1000):
        self.allow_loopback = allow_loopback
        self.resolver = resolver
        self.transport = transport
        self.max_hosts = max_hosts
        self._inner: dict[str, httpx.BaseTransport] = {}
        self._lock = threading.Lock()

    def _for(self, name: str) -> httpx.BaseTransport:
        with self._lock:
            inner = self._inner.get(name)
            if inner is None:
                if len(self._inner) >= self.max_hosts:  # bounded: the oldest pool goes
                    self._inner.pop(next(iter(self._inner))).close()
                inner = self._inner[name] = self.transport()
            return inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        name = request.url.host
        address = pinned_address(request.url, allow_loopback=self.allow_loopback, resolver=self.resolver)
        if _ip(name) is None:
            request.headers.setdefault("host", request.url.netloc.decode("ascii"))
            if request.url.scheme == "https":
                request.extensions = {**request.extensions, "sni_hostname": name}
            request.url = request.url.copy_with(host=address)
        return self._for(name).handle_request(request)

    def close(self) -> None:
        with self._lock:
            inner, self._inner = list(self._inner.values()), {}
        for transport in inner:
            transport.close()
