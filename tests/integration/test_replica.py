"""Reads on a real streaming replica (store.replica), through the app: the replica answers the
routed reads, the access log is written on the primary, reads fall back to the primary when the
replica is behind, and this process reads its own writes.

The session fixture (``tests.replica_support.streaming_pair``) starts a hot standby with
``pg_basebackup -X stream -R`` into a temporary folder owned by ``postgres``, on another port, run
as ``postgres``, waits until it answers ``pg_is_in_recovery()``, and stops and removes it at the
end, all within ``BUDGET`` seconds. It is the test PostgreSQL's replica when that server allows
replication connections; its configuration is never changed, and when it refuses them (the test
server and CI's have only ``host all all 127.0.0.1/32 trust``, and ``all`` does not match
replication connections) the standby streams from a primary the fixture makes with the same
binaries (``initdb``); which one is printed. Skipped, with the reason, without
``DINHDANH_TEST_POSTGRES_URL``, root, ``runuser`` or the server binaries.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from dinhdanh.audit.tables import access_log
from dinhdanh.officers.service import add_officer
from dinhdanh.population.importer import import_population
from dinhdanh.registry.tables import persons
from dinhdanh.store.engine import make_engine
from dinhdanh.store.replica import ReplicaRouter, parse_lsn
from dinhdanh.web.app import create_app
from tests.oidc_support import add_partner
from tests.replica_support import Unavailable, streaming_pair
from tests.support import FAMILY, write_people

POSTGRES_URL = os.environ.get("DINHDANH_TEST_POSTGRES_URL")
# xdist_group: the copies of the PostgreSQL cluster (pg_basebackup) are made one at a time, on one worker
pytestmark = [pytest.mark.postgres, pytest.mark.xdist_group("cluster-copies")]
BUDGET = 60.0
AN, GIANG, DUC = "001085000001", "079095000007", "079090000005"


@pytest.fixture(scope="session")
def pair():
    """The streaming pair (tests.replica_support), for the session; skipped with the reason when
    this machine cannot run one."""
    if not POSTGRES_URL:
        pytest.skip("DINHDANH_TEST_POSTGRES_URL is not set: PostgreSQL tests skipped (.ci/run sets it)")
    try:
        with streaming_pair(POSTGRES_URL, BUDGET) as made:
            print(f"\nstreaming replica on port {made.replica_port} of {made.whose} (port {made.primary_port}), "
                  f"ready in {made.took:.1f} s")
            yield made
    except Unavailable as exc:
        pytest.skip(str(exc))


@dataclass
class Setup:
    primary: sa.Engine
    replica: sa.Engine
    officer_token: str
    officer_label: str
    partner: dict


@pytest.fixture(scope="session")
def register(pair, tmp_path_factory):
    """The register on the primary (FAMILY, an officer, a partner), replayed on the replica."""
    primary = make_engine(pair.primary_url)
    replica = make_engine(pair.replica_url)
    import_population(primary, write_people(tmp_path_factory.mktemp("replica") / "family.csv", FAMILY))
    with primary.begin() as conn:
        officer, token = add_officer(conn, "Cán bộ Bộ Công an", "national", None, roles=["registrar"])
    partner = add_partner(primary, kind="bank", fields=("full_name", "date_of_birth", "status"),
                          purposes=["customer_verification"])
    _wait_replayed(primary, replica)
    yield Setup(primary, replica, token, officer.label, partner)
    with replica.connect() as conn:  # never leave the standby paused
        conn.exec_driver_sql("SELECT pg_wal_replay_resume()")
    primary.dispose()
    replica.dispose()


def _wait_replayed(primary: sa.Engine, replica: sa.Engine, timeout: float = 10) -> None:
    with primary.connect() as conn:
        target = parse_lsn(conn.exec_driver_sql("SELECT pg_current_wal_lsn()::text").scalar())
    deadline = time.monotonic() + timeout
    while True:
        with replica.connect() as conn:
            if parse_lsn(conn.exec_driver_sql("SELECT pg_last_wal_replay_lsn()::text").scalar()) >= target:
                return
        assert time.monotonic() < deadline, "the replica did not catch up"
        time.sleep(0.02)


@pytest.fixture
def app_of(pair, register, monkeypatch):
    """Apps on the primary with DINHDANH_REPLICA_URL set: each is one process's state (its router)."""
    monkeypatch.setenv("DINHDANH_REPLICA_URL", pair.replica_url)
    made = []

    def make(max_lag: float = 1.0):
        monkeypatch.setenv("DINHDANH_REPLICA_MAX_LAG", str(max_lag))
        app = create_app(register.primary)
        made.append(app)
        return app, TestClient(app, base_url="https://testserver", raise_server_exceptions=True)

    yield make
    for app in made:
        app.state.replica.close()
    with register.replica.connect() as conn:
        conn.exec_driver_sql("SELECT pg_wal_replay_resume()")
    _wait_replayed(register.primary, register.replica)


def _officer(register) -> dict:
    return {"Authorization": f"Bearer {register.officer_token}"}


def _name_of(engine: sa.Engine, pid: str) -> str:
    with engine.connect() as conn:
        return conn.execute(sa.select(persons.c.full_name).where(persons.c.pid == pid)).scalar_one()


def _pause(register) -> None:
    """Replay paused, once the replica has everything written so far."""
    replica = register.replica
    _wait_replayed(register.primary, replica)
    with replica.connect() as conn:
        conn.exec_driver_sql("SELECT pg_wal_replay_pause()")
        deadline = time.monotonic() + 5
        while conn.exec_driver_sql("SELECT pg_get_wal_replay_pause_state()").scalar() != "paused":
            assert time.monotonic() < deadline
            time.sleep(0.01)
            conn.rollback()


def _search(client, register, name: str) -> list[str]:
    r = client.get("/api/v1/citizens", params={"name": name}, headers=_officer(register))
    assert r.status_code == 200, r.text
    return [item["full_name"] for item in r.json()["items"]]


# ----------------------------------------------------------------------------------------- tests


def test_the_replica_is_a_streaming_hot_standby(pair, register):
    with register.replica.connect() as conn:
        assert conn.exec_driver_sql("SELECT pg_is_in_recovery()").scalar() is True
        assert conn.exec_driver_sql("SELECT status FROM pg_stat_wal_receiver").scalar() == "streaming"
        with pytest.raises(sa.exc.DBAPIError, match="read-only"):
            conn.exec_driver_sql("INSERT INTO access_log (at, actor, person_id, action, purpose) "
                                 "VALUES (now(), 'x', 1, 'read', 'x')")
    assert _name_of(register.replica, AN) == "Nguyễn Văn An"  # the register was replayed there
    print(f"replica of {pair.whose}")


def test_reads_are_served_by_the_replica_and_audited_on_the_primary(register, app_of):
    app, client = app_of()
    router: ReplicaRouter = app.state.replica
    before = dict(router.served)
    r = client.get(f"/api/v1/citizens/{AN}", headers=_officer(register))
    assert r.status_code == 200 and r.json()["full_name"] == "Nguyễn Văn An"
    assert _search(client, register, "Nguyễn Văn") != []
    token = client.post("/token", data={"grant_type": "client_credentials", "scope": "dinhdanh.verify"},
                        auth=(register.partner["client_id"], register.partner["client_secret"])).json()
    r = client.post("/api/v1/verify", json={"pid": AN, "full_name": "Nguyễn Văn An"},
                    headers={"Authorization": f"Bearer {token['access_token']}"})
    assert r.status_code == 200 and r.json()["match"] is True and r.json()["status"] == "alive"
    # the three reads (record, search, verification) ran on the replica...
    assert router.served["replica"] - before["replica"] == 3, router.served
    # ... and each access-log entry is on the primary, committed before the answer
    with register.primary.connect() as conn:
        actions = conn.execute(sa.select(access_log.c.action).where(
            access_log.c.actor.in_([register.officer_label, f"partner:{register.partner['client_id']}"]))
            .order_by(access_log.c.access_id.desc()).limit(3)).scalars().all()
    assert sorted(actions) == ["read", "search", "verify"]


def test_a_paused_replica_serves_old_data_only_within_the_bound(register, app_of):
    """Replay paused, a name changed on the primary by another process: a process that did not
    write it reads the old name from the replica (a search, the bounded kind) while within its lag
    bound; a record read (current) and every read once the lag exceeds the bound go to the primary."""
    lagging, lagging_client = app_of(max_lag=30.0)  # another worker, tolerant of a stale replica
    bounded, bounded_client = app_of(max_lag=1.0)
    assert _search(lagging_client, register, "Lê Văn Đức") == ["Lê Văn Đức"]  # both see the replica fresh
    assert _search(bounded_client, register, "Lê Văn Đức") == ["Lê Văn Đức"]
    _pause(register)
    with register.primary.begin() as conn:  # another path: no app of this test wrote it
        conn.execute(persons.update().where(persons.c.pid == DUC).values(full_name="Lê Văn Đức Mới"))
    assert _name_of(register.primary, DUC) == "Lê Văn Đức Mới" and _name_of(register.replica, DUC) == "Lê Văn Đức"

    served = lagging.state.replica.served["replica"]
    assert _search(lagging_client, register, "Lê Văn Đức") == ["Lê Văn Đức"]  # old data: the replica answered
    assert lagging.state.replica.served["replica"] == served + 1
    # a record read must not miss a commit made before it: the primary answers, with the new name
    r = lagging_client.get(f"/api/v1/citizens/{DUC}", headers=_officer(register))
    assert r.status_code == 200 and r.json()["full_name"] == "Lê Văn Đức Mới"

    time.sleep(1.3)  # past the bounded app's max_lag (and a probe's refresh)
    lag = bounded.state.replica_lag()
    assert lag is not None and lag > 1.0  # the gauge
    assert bounded.state.replica.lag_bytes() > 0
    assert _search(bounded_client, register, "Lê Văn Đức") == ["Lê Văn Đức Mới"]  # fell back: fresh
    assert bounded.state.replica.served["primary"] >= 1
    metrics = bounded_client.get("/metrics").text
    values = [float(line.split()[-1]) for line in metrics.splitlines()
              if line.startswith("dinhdanh_replica_lag_seconds")]
    assert values and values[0] > 1.0, values


def test_this_process_reads_its_own_writes(register, app_of):
    """A death recorded through this app, replay paused: this app's next reads go to the primary
    (the death is seen), another app's search, within its bound, still sees the replica's past."""
    writer, writer_client = app_of(max_lag=30.0)
    other, other_client = app_of(max_lag=30.0)
    _search(writer_client, register, "Hoàng Văn Giang")  # both probe a fresh replica
    _search(other_client, register, "Hoàng Văn Giang")
    _pause(register)
    r = writer_client.post("/api/v1/events/death", json={"pid": GIANG, "date_of_death": "2024-01-01"},
                           headers=_officer(register))
    assert r.status_code == 201, r.text
    assert writer.state.replica._written > 0
    with register.replica.connect() as conn:  # the replica has not got it
        assert conn.execute(sa.select(persons.c.status).where(persons.c.pid == GIANG)).scalar() == "alive"

    def statuses(client) -> list[str]:
        r = client.get("/api/v1/citizens", params={"name": "Hoàng Văn Giang"}, headers=_officer(register))
        assert r.status_code == 200, r.text
        return [item["status"] for item in r.json()["items"]]

    primary_before = writer.state.replica.served["primary"]
    assert statuses(writer_client) == ["dead"]  # read your writes: the primary answered
    assert writer.state.replica.served["primary"] == primary_before + 1
    assert statuses(other_client) == ["alive"]  # another process's bounded read: the replica's past
    # the partner's verification is current whoever recorded the death: never "alive" now
    token = other_client.post("/token", data={"grant_type": "client_credentials", "scope": "dinhdanh.verify"},
                              auth=(register.partner["client_id"], register.partner["client_secret"])).json()
    r = other_client.post("/api/v1/verify", json={"pid": GIANG, "full_name": "Hoàng Văn Giang"},
                          headers={"Authorization": f"Bearer {token['access_token']}"})
    assert r.status_code == 200 and r.json()["status"] == "dead", r.text

    with register.replica.connect() as conn:  # replay resumed: the replica serves this process again
        conn.exec_driver_sql("SELECT pg_wal_replay_resume()")
    _wait_replayed(register.primary, register.replica)
    served = writer.state.replica.served["replica"]
    assert statuses(writer_client) == ["dead"]
    assert writer.state.replica.served["replica"] == served + 1
