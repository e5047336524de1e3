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
    if not path.exists():  # above synthetic.CHUNK_ROWS made part by part, in bounded memory
        if count > synthetic.CHUNK_ROWS:
            synthetic.write_chunks(count, seed, path)
        else:
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


# ----------------------------------------------------------------------------- an existing register

def sample_people(conn, n: int, columns: str, seed: int = 1) -> list:
    """``n`` people drawn uniformly at random from ``persons`` (fewer if it holds fewer), in random order;
    ``columns`` is the SELECT list and starts with ``person_id``.

    Drawn by primary key: random ``person_id`` values between the smallest and the largest, kept
    where a person has them (an import numbers people densely, so one or two rounds do). No scan
    and no sort of the table, unlike ``ORDER BY random()`` or ``TABLESAMPLE BERNOULLI``; unlike
    ``TABLESAMPLE SYSTEM`` the people are not clustered in a few pages (a household is stored
    together, and one page's people would make the reads that follow look warmer than they are).
    Only the sample is held in memory: fast at ten million people, on SQLite and PostgreSQL.
    """
    import random

    import sqlalchemy as sa

    rng = random.Random(seed)
    lo, hi = conn.exec_driver_sql("SELECT min(person_id), max(person_id) FROM persons").one()
    if lo is None:
        return []
    span = hi - lo + 1
    query = sa.text(f"SELECT {columns} FROM persons WHERE person_id IN :ids").bindparams(
        sa.bindparam("ids", expanding=True))
    got: dict = {}
    tried: set[int] = set()
    for _ in range(50):
        want = min(span - len(tried), 2 * (n - len(got)) + 100)
        if len(got) >= n or want <= 0:
            break
        ids = [i for i in (lo + k for k in rng.sample(range(span), min(span, want + len(tried))))
               if i not in tried][:want]
        tried.update(ids)
        for i in range(0, len(ids), 5000):
            for row in conn.execute(query, {"ids": ids[i:i + 5000]}):
                got[row[0]] = row
    people = list(got.values())
    rng.shuffle(people)
    return people[:n]


def pg_database_size(url: str) -> str:
    """``pg_size_pretty(pg_database_size(current_database()))`` of a SQLAlchemy PostgreSQL URL."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.exec_driver_sql("SELECT pg_size_pretty(pg_database_size(current_database()))").scalar_one()
    finally:
        engine.dispose()


def peak_rss_mib() -> float:
    """This process's peak resident set size so far (``ru_maxrss``), MiB."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ----------------------------------------------------------------------------- servers and databases

def conninfo(url: str, database: str | None = None) -> str:
    """A libpq conninfo for a SQLAlchemy PostgreSQL URL (optionally another database on its server)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url).set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


def pg_pool(dsn: str, connections: int):
    """For a floor on PostgreSQL: ``await pool()`` gives a queue of ``connections`` async psycopg
    connections (take one, put it back), opened once, at the first request (the first requests arrive
    together: they wait for the one pool)."""
    import asyncio

    import psycopg

    state: dict = {}
    opening = asyncio.Lock()

    async def pool() -> asyncio.Queue:
        async with opening:
            if "q" not in state:
                q: asyncio.Queue = asyncio.Queue()
                for _ in range(connections):
                    q.put_nowait(await psycopg.AsyncConnection.connect(dsn))
                state["q"] = q
        return state["q"]

    return pool


def scratch_database(url: str, prefix: str) -> tuple[str, str]:
    """A new, empty database ``<prefix>_<random>`` on ``url``'s server: (its SQLAlchemy URL, its name)."""
    import uuid

    import psycopg
    from sqlalchemy.engine import make_url

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return make_url(url).set(database=name).render_as_string(hide_password=False), name


def drop_database(url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(port: int, timeout: float = 60.0) -> None:
    """Until something listens on 127.0.0.1:``port`` (SystemExit after ``timeout`` seconds)."""
    import socket
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"server on port {port} did not start")


def pinned(core: int) -> list[str]:
    """``taskset -c core`` to prefix a command with, when there is more than one core to choose from."""
    import shutil

    return ["taskset", "-c", str(core)] if shutil.which("taskset") and (os.cpu_count() or 1) > 1 else []
