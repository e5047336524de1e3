"""The PostgreSQL runbook (docs/operations.md), tested: a base backup of the running test cluster,
a second server started from it on another port with the WAL recovered, and the rows written
before the backup found there.

Two ways, as the runbook gives them:

- ``pg_basebackup -X stream`` (needs a replication connection: ``wal_level`` replica or logical,
  the role's REPLICATION attribute, and a ``replication`` line in ``pg_hba.conf`` for 127.0.0.1);
- the low-level API (``pg_backup_start``, a file copy of the data directory, ``pg_backup_stop``,
  its ``backup_label``), with the WAL copied into an archive folder and replayed by
  ``restore_command`` up to a recovery target: point-in-time recovery, a row written after the
  target is not there. Needs a superuser and this process to read the data directory (root).

The server's configuration is never changed: what it does not allow is skipped, with the reason.
The copy lives in a temporary folder owned by ``postgres``; the servers run as ``postgres``
(``runuser``), and each test is bounded to 60 s.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.ports import free_port as _free_port

POSTGRES_URL = os.environ.get("DINHDANH_TEST_POSTGRES_URL")
# xdist_group: the copies of the PostgreSQL cluster (pg_basebackup) are made one at a time, on one worker
pytestmark = [pytest.mark.postgres, pytest.mark.xdist_group("cluster-copies")]
BUDGET = 60.0
MAX_CLUSTER_BYTES = 3 << 30  # a bigger cluster does not copy within the test's minute


def _as_postgres(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(["runuser", "-u", "postgres", "--", *args], capture_output=True, text=True,
                          timeout=timeout)


class Cluster:
    """What the running test cluster allows, or why a test must skip."""

    def __init__(self) -> None:
        if not POSTGRES_URL:
            pytest.skip("DINHDANH_TEST_POSTGRES_URL is not set: PostgreSQL tests skipped (.ci/run sets it)")
        self.url = sa.engine.make_url(POSTGRES_URL)
        self.admin = sa.create_engine(self.url.set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT")
        with self.admin.connect() as conn:
            major = conn.exec_driver_sql("SHOW server_version_num").scalar_one()[:-4]
            self.wal_level = conn.exec_driver_sql("SHOW wal_level").scalar_one()
            role = conn.exec_driver_sql("SELECT rolsuper, rolreplication FROM pg_roles "
                                        "WHERE rolname = current_user").one()
            self.superuser, self.replication_role = bool(role[0]), bool(role[1])
            self.data_directory = (conn.exec_driver_sql("SHOW data_directory").scalar_one()
                                   if self.superuser else None)
            self.size = conn.exec_driver_sql("SELECT sum(pg_database_size(oid)) FROM pg_database").scalar_one()
            self.hba_replication = self._hba_allows_replication(conn) if self.superuser else None
        self.bin = Path(f"/usr/lib/postgresql/{major}/bin")
        self.port = self.url.port or 5432
        self.host = self.url.host or "127.0.0.1"
        self.user = self.url.username or "postgres"
        missing = [name for name in ("pg_basebackup", "pg_ctl", "postgres") if not (self.bin / name).exists()]
        if missing:
            found = ", ".join(glob.glob("/usr/lib/postgresql/*/bin")) or "none"
            pytest.skip(f"the server binaries of PostgreSQL {major} are missing ({', '.join(missing)} "
                        f"in {self.bin}; found: {found})")
        if os.geteuid() != 0 or shutil.which("runuser") is None:
            pytest.skip("the test runs the second server as the postgres user: it needs root and runuser")
        if self.size and self.size > MAX_CLUSTER_BYTES:
            pytest.skip(f"the test cluster holds {self.size / (1 << 30):.1f} GiB: a base backup would not be "
                        f"taken and restored within {BUDGET:.0f} s")

    @staticmethod
    def _hba_allows_replication(conn) -> bool:
        rules = conn.exec_driver_sql("SELECT type, database, address FROM pg_hba_file_rules "
                                     "WHERE error IS NULL").all()
        return any("replication" in (database or []) and
                   (kind == "local" or address in ("127.0.0.1", "0.0.0.0", "all", "samehost", "samenet"))
                   for kind, database, address in rules)

    def scratch(self) -> Path:
        """A folder the postgres user owns (0700), outside pytest's root-only folders."""
        folder = Path(tempfile.mkdtemp(prefix="dd_pg_restore_"))
        shutil.chown(folder, "postgres", "postgres")
        return folder


def _write_config(data: Path, port: int, socket_dir: Path, extra: str = "") -> None:
    """The copy's own configuration (Debian keeps the cluster's in /etc, outside the data directory):
    its own port and socket, loopback only, small memory; trust for local connections."""
    (data / "postgresql.conf").write_text(
        f"port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{socket_dir}'\n"
        "shared_buffers = 16MB\nmax_connections = 20\nssl = off\narchive_mode = off\n"
        # a throwaway server: no fsync (nor the whole-directory sync a recovery starts with); no hot
        # standby (it would need the primary's connection limits), so it answers once promoted
        "max_wal_senders = 0\nwal_level = replica\nhot_standby = off\nfsync = off\n" + extra)
    (data / "pg_hba.conf").write_text("local all all trust\nhost all all 127.0.0.1/32 trust\n")
    (data / "pg_ident.conf").write_text("")
    for name in ("postgresql.conf", "pg_hba.conf", "pg_ident.conf"):
        shutil.chown(data / name, "postgres", "postgres")
        os.chmod(data / name, 0o600)


def _start(cluster: Cluster, data: Path, deadline: float) -> None:
    left = max(5, int(deadline - time.monotonic()))
    started = _as_postgres(str(cluster.bin / "pg_ctl"), "-D", str(data), "-l", str(data.parent / "server.log"),
                           "-w", "-t", str(left), "start", timeout=left + 5)
    if started.returncode != 0:
        log = (data.parent / "server.log").read_text(errors="replace")[-3000:]
        pytest.fail(f"the restored server did not start: {started.stdout}{started.stderr}\n{log}")


def _stop(cluster: Cluster, data: Path) -> None:
    if (data / "postmaster.pid").exists():
        _as_postgres(str(cluster.bin / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "-t", "20", "stop")


def _restored_engine(cluster: Cluster, port: int, database: str) -> sa.Engine:
    url = cluster.url.set(drivername="postgresql+psycopg", host="127.0.0.1", port=port, database=database,
                          username="postgres", password=None)
    return sa.create_engine(url, connect_args={"connect_timeout": 5})


def _wait_promoted(engine: sa.Engine, deadline: float) -> None:
    while True:
        try:
            with engine.connect() as conn:
                if not conn.exec_driver_sql("SELECT pg_is_in_recovery()").scalar_one():
                    return
        except sa.exc.OperationalError:
            pass
        assert time.monotonic() < deadline, "the restored server did not finish recovery in time"
        time.sleep(0.2)


@pytest.fixture
def probe():
    """A database of its own on the test cluster, with a table and a row written before the backup."""
    cluster = Cluster()
    name = "dd_backup_" + uuid.uuid4().hex[:10]
    with cluster.admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    engine = sa.create_engine(cluster.url.set(drivername="postgresql+psycopg", database=name))
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE probe (id integer PRIMARY KEY, note text NOT NULL)")
        conn.exec_driver_sql("INSERT INTO probe VALUES (1, 'viết trước khi sao lưu')")
    yield cluster, name, engine
    engine.dispose()
    with cluster.admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    cluster.admin.dispose()


def test_pg_basebackup_restores_into_a_second_server(probe):
    cluster, name, engine = probe
    if cluster.wal_level not in ("replica", "logical"):
        pytest.skip(f"wal_level is {cluster.wal_level}: pg_basebackup needs replica or logical")
    if not cluster.replication_role:
        pytest.skip(f"the role {cluster.user} has no REPLICATION attribute")
    if not cluster.hba_replication:
        pytest.skip("pg_hba.conf has no 'replication' line for 127.0.0.1 (only 'all', which does not match "
                    "replication connections): pg_basebackup is refused; the configuration is left as it is "
                    "(the low-level base backup test covers the restore)")
    deadline = time.monotonic() + BUDGET
    scratch = cluster.scratch()
    data = scratch / "data"
    try:
        took = _as_postgres(str(cluster.bin / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(cluster.port),
                            "-U", cluster.user, "-D", str(data), "-X", "stream", "-c", "fast", "--no-sync",
                            timeout=max(5, deadline - time.monotonic()))
        assert took.returncode == 0, took.stderr
        with engine.begin() as conn:  # after the backup: not in it (no WAL archive to replay)
            conn.exec_driver_sql("INSERT INTO probe VALUES (2, 'viết sau khi sao lưu')")
        port = _free_port()
        _write_config(data, port, scratch)
        _start(cluster, data, deadline)
        restored = _restored_engine(cluster, port, name)
        try:
            _wait_promoted(restored, deadline)
            with restored.connect() as conn:
                rows = conn.exec_driver_sql("SELECT id, note FROM probe ORDER BY id").all()
        finally:
            restored.dispose()
        assert [tuple(r) for r in rows] == [(1, "viết trước khi sao lưu")]
    finally:
        _stop(cluster, data)
        shutil.rmtree(scratch, ignore_errors=True)
    assert time.monotonic() < deadline + 5


def _copy_tree(source: Path, target: Path, *, skip=()) -> None:
    """Copy a live data directory: files may vanish meanwhile (a dropped table, a recycled WAL
    segment); the WAL replay puts that right, so a vanished file is passed over."""
    for root, dirs, files in os.walk(source):
        rel = Path(root).relative_to(source)
        if rel.parts and rel.parts[0] in skip:
            dirs[:] = []
            continue
        (target / rel).mkdir(mode=0o700, exist_ok=True)
        for file in files:
            if not rel.parts and file in ("postmaster.pid", "postmaster.opts", "backup_label", "tablespace_map"):
                continue
            try:
                shutil.copy2(Path(root) / file, target / rel / file)
            except FileNotFoundError:
                pass
        if not rel.parts:
            for folder in skip:  # recreated empty (pg_wal must exist)
                (target / folder).mkdir(mode=0o700, exist_ok=True)


def test_low_level_base_backup_and_point_in_time_recovery(probe):
    cluster, name, engine = probe
    if not cluster.superuser:
        pytest.skip(f"the role {cluster.user} is not a superuser: pg_backup_start and the data directory "
                    "are out of reach")
    source = Path(cluster.data_directory)
    if not source.is_dir():
        pytest.skip(f"the data directory {source} is not on this machine")
    deadline = time.monotonic() + BUDGET
    scratch = cluster.scratch()
    data, archive = scratch / "data", scratch / "archive"
    try:
        archive.mkdir(mode=0o700)
        with cluster.admin.connect() as conn:  # one session from start to stop (a non-exclusive backup)
            # a temporary replication slot (gone with this session) keeps every WAL segment from here on,
            # which checkpoints would otherwise recycle under load before they are copied; no setting changes
            conn.exec_driver_sql(f"SELECT pg_create_physical_replication_slot('{name}', true, true)")
            conn.exec_driver_sql("SELECT pg_backup_start('dinhdanh test', true)")
            try:
                _copy_tree(source, data, skip=("pg_wal", "pg_replslot", "pg_stat_tmp", "pg_dynshmem",
                                               "pg_notify", "pg_serial", "pg_snapshots", "pg_subtrans"))
            finally:
                stop = conn.exec_driver_sql("SELECT lsn, labelfile, spcmapfile FROM pg_backup_stop(false)").one()
            assert not (stop.spcmapfile or "").strip(), "tablespaces are not covered by this test"
            (data / "backup_label").write_text(stop.labelfile)
            # the recovery target: after the backup's end, before the row written next
            target = conn.exec_driver_sql("SELECT pg_current_wal_insert_lsn()").scalar_one()
            with engine.begin() as writer:
                writer.exec_driver_sql("INSERT INTO probe VALUES (2, 'viết sau mốc khôi phục')")
            conn.exec_driver_sql("SELECT pg_switch_wal()")  # the row's segment complete, as archive_command sees it
            _copy_tree(source / "pg_wal", archive, skip=("archive_status",))  # the "archive": the kept segments
        (data / "recovery.signal").write_text("")
        port = _free_port()
        _write_config(data, port, scratch, extra=(
            f"restore_command = 'cp {archive}/%f %p'\n"
            f"recovery_target_lsn = '{target}'\nrecovery_target_action = 'promote'\n"))
        subprocess.run(["chown", "-R", "postgres:postgres", str(scratch)], check=True)
        os.chmod(data, 0o700)
        assert time.monotonic() < deadline, "copying the cluster took the whole budget"
        _start(cluster, data, deadline)
        restored = _restored_engine(cluster, port, name)
        try:
            _wait_promoted(restored, deadline)
            with restored.connect() as conn:
                rows = conn.exec_driver_sql("SELECT id, note FROM probe ORDER BY id").all()
        finally:
            restored.dispose()
        assert [tuple(r) for r in rows] == [(1, "viết trước khi sao lưu")]  # the later row: after the target
        with engine.connect() as conn:  # the primary has both
            assert conn.exec_driver_sql("SELECT count(*) FROM probe").scalar_one() == 2
        log = (scratch / "server.log").read_text(errors="replace")
        assert "recovery stopping" in log and "archive recovery complete" in log, log[-3000:]
    finally:
        _stop(cluster, data)
        shutil.rmtree(scratch, ignore_errors=True)
    assert time.monotonic() < deadline + 5
