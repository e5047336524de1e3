"""A real streaming replica for tests and benches: a hot standby of a PostgreSQL primary, made with
``pg_basebackup -X stream -R`` into a temporary folder owned by ``postgres`` (0700) and started with
``pg_ctl`` on a free port, both run as ``postgres`` (``runuser``); stopped (``pg_ctl stop -m fast``)
and removed at the end. Everything is bounded by ``budget`` seconds.

Whose replica: the server at ``admin_url`` when it allows replication connections (``wal_level``
replica or logical, ``max_wal_senders`` > 0, the role's REPLICATION attribute, a ``replication``
line for 127.0.0.1 in ``pg_hba.conf``). Its configuration is never changed: when it refuses them,
a primary of our own is made with the same server binaries (``initdb`` in the temporary folder,
replication allowed on loopback) and the replica streams from that one; ``Pair.whose`` says which
and why. ``Unavailable`` (to skip on) without root, ``runuser`` or the server binaries.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from dinhdanh.store.engine import make_engine, upgrade
from tests.ports import free_port as _free_port


class Unavailable(Exception):
    """A replica cannot be made on this machine (the reason is the message)."""


def _as_postgres(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(["runuser", "-u", "postgres", "--", *args], capture_output=True, text=True,
                          timeout=max(1.0, timeout))


def _url(port: int, database: str) -> str:
    return f"postgresql+psycopg://postgres@127.0.0.1:{port}/{database}"


def replication_refused(conn) -> str | None:
    """Why the server behind ``conn`` refuses ``pg_basebackup``, or None if it allows it."""
    wal_level = conn.exec_driver_sql("SHOW wal_level").scalar_one()
    if wal_level not in ("replica", "logical"):
        return f"wal_level is {wal_level}"
    if int(conn.exec_driver_sql("SHOW max_wal_senders").scalar_one()) < 1:
        return "max_wal_senders is 0"
    if not conn.exec_driver_sql("SELECT rolreplication FROM pg_roles WHERE rolname = current_user").scalar():
        return "the role has no REPLICATION attribute"
    try:
        rules = conn.exec_driver_sql("SELECT type, database, address FROM pg_hba_file_rules "
                                     "WHERE error IS NULL ORDER BY line_number").all()
    except sa.exc.DBAPIError:
        return "pg_hba_file_rules cannot be read (not a superuser)"
    for kind, databases, address in rules:  # the first line matching a loopback TCP connection decides
        if kind.startswith("host") and address in ("127.0.0.1", "all", "samehost", "samenet", "0.0.0.0"):
            if "replication" in (databases or []):
                return None
    return ("pg_hba.conf has no 'replication' line for 127.0.0.1 (only 'all', which does not match "
            "replication connections)")


@dataclass
class Pair:
    """A primary and its streaming hot standby, each with the migrated register database ``database``."""

    primary_port: int
    replica_port: int
    database: str
    whose: str  # "the test server" or why a private primary was made
    took: float = 0.0  # seconds to make the pair

    @property
    def primary_url(self) -> str:
        return _url(self.primary_port, self.database)

    @property
    def replica_url(self) -> str:
        return _url(self.replica_port, self.database)


class Servers:
    """The servers this fixture started (stopped and removed at the end, whatever happened)."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin = bin_dir
        self.scratch = Path(tempfile.mkdtemp(prefix="dd_replica_"))
        shutil.chown(self.scratch, "postgres", "postgres")
        os.chmod(self.scratch, 0o700)
        self.started: list[Path] = []

    def pg_ctl(self, *args: str, deadline: float) -> subprocess.CompletedProcess:
        return _as_postgres(str(self.bin / "pg_ctl"), *args, timeout=deadline - time.monotonic())

    def start(self, data: Path, port: int, deadline: float) -> None:
        log = self.scratch / f"{data.name}.log"
        left = max(5, int(deadline - time.monotonic()))
        done = self.pg_ctl("-D", str(data), "-o", f"-p {port} -k {self.scratch} -c listen_addresses=127.0.0.1",
                           "-l", str(log), "-w", "-t", str(left), "start", deadline=deadline + 5)
        self.started.append(data)
        if done.returncode != 0:
            text = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"the server in {data} did not start: {done.stderr}\n{text}")

    def close(self) -> None:
        for data in reversed(self.started):
            if (data / "postmaster.pid").exists():
                _as_postgres(str(self.bin / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "-t", "20", "stop",
                             timeout=30)
        shutil.rmtree(self.scratch, ignore_errors=True)


def _private_primary(servers: Servers, deadline: float) -> int:
    """A primary of the fixture's own (initdb), allowing replication on loopback; its port."""
    data = servers.scratch / "primary"
    made = _as_postgres(str(servers.bin / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
                        "-E", "UTF8", "--locale=C.UTF-8", "--no-sync", timeout=deadline - time.monotonic())
    if made.returncode != 0:
        raise RuntimeError(f"initdb failed: {made.stderr}")
    with (data / "postgresql.conf").open("a") as conf:
        conf.write("wal_level = replica\nmax_wal_senders = 4\nfsync = off\nsynchronous_commit = on\n"
                   "shared_buffers = 32MB\nmax_connections = 60\n")
    (data / "pg_hba.conf").write_text("local all all trust\nhost all all 127.0.0.1/32 trust\n"
                                      "host replication all 127.0.0.1/32 trust\n")
    port = _free_port()
    servers.start(data, port, deadline)
    return port


def _standby(servers: Servers, primary_port: int, deadline: float, extra_conf: str) -> int:
    data = servers.scratch / "standby"
    took = _as_postgres(str(servers.bin / "pg_basebackup"), "-D", str(data), "-X", "stream", "-R", "-c", "fast",
                        "--no-sync", "-h", "127.0.0.1", "-p", str(primary_port), "-U", "postgres",
                        timeout=deadline - time.monotonic())
    if took.returncode != 0:
        raise RuntimeError(f"pg_basebackup failed: {took.stderr}")
    if extra_conf:  # a copy of a Debian cluster has no postgresql.conf of its own (it is in /etc)
        conf = data / "postgresql.conf"
        conf.write_text(extra_conf)
        for name in ("pg_hba.conf", "pg_ident.conf"):
            if not (data / name).exists():
                (data / name).write_text("local all all trust\nhost all all 127.0.0.1/32 trust\n"
                                         if name == "pg_hba.conf" else "")
        for name in ("postgresql.conf", "pg_hba.conf", "pg_ident.conf"):
            shutil.chown(data / name, "postgres", "postgres")
    port = _free_port()
    servers.start(data, port, deadline)
    probe = sa.create_engine(_url(port, "postgres"), connect_args={"connect_timeout": 2})
    try:
        while True:
            try:
                with probe.connect() as conn:
                    if conn.exec_driver_sql("SELECT pg_is_in_recovery()").scalar_one():
                        return port
            except sa.exc.OperationalError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the standby did not answer in time")
            time.sleep(0.1)
    finally:
        probe.dispose()


@contextmanager
def streaming_pair(admin_url: str, budget: float = 60.0) -> Iterator[Pair]:
    """A primary with a migrated, empty register database and its streaming hot standby (module doc).
    Raises ``Unavailable`` when this machine cannot run one, ``RuntimeError`` when making it failed."""
    if os.geteuid() != 0 or shutil.which("runuser") is None:
        raise Unavailable("the replica runs as the postgres user: it needs root and runuser")
    url = sa.engine.make_url(admin_url).set(drivername="postgresql+psycopg")
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        major = conn.exec_driver_sql("SHOW server_version_num").scalar_one()[:-4]
        refused = replication_refused(conn)
        max_connections = conn.exec_driver_sql("SHOW max_connections").scalar_one()
    admin.dispose()
    if refused is None and url.host not in (None, "127.0.0.1", "localhost"):
        refused = f"the server is at {url.host}, not on this machine's loopback"
    bin_dir = Path(f"/usr/lib/postgresql/{major}/bin")
    missing = [n for n in ("initdb", "pg_basebackup", "pg_ctl", "postgres") if not (bin_dir / n).exists()]
    if missing:
        raise Unavailable(f"the server binaries of PostgreSQL {major} are missing: {', '.join(missing)} "
                          f"in {bin_dir}")
    started = time.monotonic()
    deadline = started + budget
    servers = Servers(bin_dir)
    database = "dd_replica_" + uuid.uuid4().hex[:10]
    made_on_shared = False
    try:
        if refused is None:
            primary_port, whose, extra = url.port or 5432, "the test server", (
                f"hot_standby = on\nmax_connections = {max_connections}\nshared_buffers = 32MB\nfsync = off\n"
                "ssl = off\nmax_wal_senders = 10\nmax_replication_slots = 10\nmax_worker_processes = 8\n")
        else:
            primary_port = _private_primary(servers, deadline)
            whose, extra = f"a private primary: the test server refuses replication ({refused})", ""
        primary_admin = sa.create_engine(_url(primary_port, "postgres"), isolation_level="AUTOCOMMIT")
        with primary_admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {database}")
        primary_admin.dispose()
        made_on_shared = refused is None
        made = make_engine(_url(primary_port, database))
        upgrade(made)
        made.dispose()
        replica_port = _standby(servers, primary_port, deadline, extra)
        yield Pair(primary_port, replica_port, database, whose, time.monotonic() - started)
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"the streaming replica was not ready within {budget:.0f} s: {exc}") from exc
    finally:
        servers.close()
        if made_on_shared:  # the database made on the shared server goes (its replica is gone already)
            admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
            admin.dispose()


@contextmanager
def private_server(budget: float = 60.0) -> Iterator[tuple[Servers, Path, int]]:
    """A PostgreSQL server of the test's own (``initdb`` with the binaries of the server at
    ``DINHDANH_TEST_POSTGRES_URL``), for tests that stop and restart it (faults): ``(servers, data
    directory, port)``; stopped and removed at the end. ``Unavailable`` without root, runuser or the
    binaries."""
    admin_url = os.environ.get("DINHDANH_TEST_POSTGRES_URL")
    if not admin_url:
        raise Unavailable("DINHDANH_TEST_POSTGRES_URL is not set")
    if os.geteuid() != 0 or shutil.which("runuser") is None:
        raise Unavailable("the server runs as the postgres user: it needs root and runuser")
    admin = sa.create_engine(sa.engine.make_url(admin_url).set(drivername="postgresql+psycopg"))
    with admin.connect() as conn:
        major = conn.exec_driver_sql("SHOW server_version_num").scalar_one()[:-4]
    admin.dispose()
    bin_dir = Path(f"/usr/lib/postgresql/{major}/bin")
    if not all((bin_dir / n).exists() for n in ("initdb", "pg_ctl", "postgres")):
        raise Unavailable(f"the server binaries of PostgreSQL {major} are missing in {bin_dir}")
    servers = Servers(bin_dir)
    try:
        port = _private_primary(servers, time.monotonic() + budget)
        yield servers, servers.scratch / "primary", port
    finally:
        servers.close()
