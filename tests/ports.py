"""Free TCP ports for the servers the tests start (uvicorn subprocesses, PostgreSQL copies, webhook
receivers), safe when pytest-xdist runs the suite on several workers.

Why not ``bind(("127.0.0.1", 0))`` and close: that hands out a port from the kernel's ephemeral range,
and between the close and the server's own ``bind`` any outgoing connection of this machine (the other
worker's connections to PostgreSQL, Redis, NATS, its HTTP clients) may be given the very same port:
"address already in use", now and then. The ports here are taken below the ephemeral range, where the
kernel never picks a source port, and each worker (``PYTEST_XDIST_WORKER``: gw0, gw1...) has a slice of
its own, so two workers never hand out the same one; within a worker a cursor walks the slice, so a
port just handed out (its server maybe not listening yet) is not handed out again soon. Each candidate
is checked by binding it (without ``SO_REUSEADDR``: a port still in TIME_WAIT is passed over too).
"""

from __future__ import annotations

import os
import random
import socket

LOW = 20000  # above the well-known and most registered service ports


def _ephemeral_low() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def _slice() -> range:
    """This worker's ports: the range [LOW, ephemeral low) cut into one slice per worker."""
    high = max(_ephemeral_low(), LOW + 2000)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    index = int(worker[2:]) if worker[2:].isdigit() else 0
    size = (high - LOW) // max(count, 1)
    start = LOW + (index % max(count, 1)) * size
    return range(start, start + size)


_ports = _slice()
_cursor = random.randrange(len(_ports))  # a random start: two sessions on one machine rarely meet


def free_port() -> int:
    """A port on 127.0.0.1 that nobody listens on or is bound to now, from this worker's slice."""
    global _cursor
    for _ in range(len(_ports)):
        port = _ports[_cursor % len(_ports)]
        _cursor += 1
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {_ports.start}-{_ports.stop - 1}")
