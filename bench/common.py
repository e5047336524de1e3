"""Shared by the benchmarks: machine facts, percentiles, and a cached synthetic population file.

Benchmarks print a ratio to a floor measured in the same run (see shared/design/benchmarks.md);
they are never part of the test suite's pass/fail.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import statistics
import sys
from pathlib import Path

OUT = Path(__file__).parent / "out"
sys.path.insert(0, str(Path(__file__).parent.parent / "src"))


def machine() -> str:
    mem = "?"
    try:
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
        mem = f"{kb / 1024 / 1024:.0f} GiB"
    except OSError:
        pass
    return (f"{os.cpu_count()} cores, {mem}, {platform.python_implementation()} {platform.python_version()}, "
            f"{dt.date.today().isoformat()}")


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def summary(samples: list[float]) -> dict:
    return {"p50": percentile(samples, 50), "p95": percentile(samples, 95), "p99": percentile(samples, 99),
            "mean": statistics.fmean(samples)}


def population_file(count: int, seed: int, suffix: str = ".parquet") -> Path:
    """The synthetic population of ``count`` people (generated once, kept under bench/out/)."""
    from dinhdanh.population import synthetic

    OUT.mkdir(exist_ok=True)
    path = OUT / f"population-{count}-{seed}{suffix}"
    if not path.exists():
        synthetic.write(synthetic.generate(count, seed), path)
    return path


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.3f} ms"


# ----------------------------------------------------------------------------- shared by the benches

def pkce() -> tuple[str, str]:
    """A PKCE verifier and its S256 challenge (RFC 7636)."""
    import base64
    import hashlib
    import secrets

    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def hidden_form(page: str) -> tuple[str, dict]:
    """The first POST form of a provider page: its action and hidden fields (unescaped)."""
    import html
    import re

    action = re.search(r'<form method="post" action="([^"]+)"', page).group(1)
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page))
    return action, {k: html.unescape(v) for k, v in fields.items()}


async def read_body(receive) -> bytes:
    """The whole request body of a bare ASGI app (the floors)."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body
