"""``dinhdanh changes`` end to end, in subprocesses, on a SQLite register: the kill test (the
deliverer SIGKILLed mid-delivery and restarted, the receiver killed mid-way and back: every event
arrives, in order per person), and the dead-letter commands."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import sqlalchemy as sa

from dinhdanh.changes.tables import change_deliveries
from dinhdanh.registry.tables import persons
from dinhdanh.store.engine import make_engine
from dinhdanh.store.outbox import enqueue
from tests.e2e.test_cli import Cli, assert_refused
from tests.integration.test_changes import (
    AN,
    Receiver,
    follow,
    record,
    subscribe,
    subscriber,
)
from tests.support import FAMILY, write_people

PER_PERSON = 50


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def setup_register(tmp_path, receiver: Receiver):
    cli = Cli(tmp_path)
    db = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    cli.ok("population", "import", str(write_people(tmp_path / "family.csv", FAMILY)), "--db", db)
    engine = make_engine(db)
    made, row = subscriber(engine)
    sub = subscribe(engine, row, ["person.renamed", "person.died"], webhook_url=receiver.url)
    receiver.secret = sub["webhook_secret"]
    pids = [p[0] for p in FAMILY]
    follow(engine, row, pids)
    return cli, db, engine, made, sub, pids


def start_deliverer(cli: Cli, db: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "dinhdanh", "changes", "deliver", "--db", db], env=cli.env,
                            cwd=cli.home, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_every_event_arrives_in_order_per_person_when_deliverer_and_receiver_are_killed(tmp_path):
    receiver = Receiver(delay=0.004).start()
    cli, db, engine, _, _, pids = setup_register(tmp_path, receiver)
    with engine.connect() as conn:
        ids = dict(conn.execute(sa.select(persons.c.pid, persons.c.person_id)).all())
    with engine.begin() as conn:  # 350 renames, persons interleaved, as the register writes them
        for i in range(PER_PERSON):
            for pid in pids:
                enqueue(conn, "person.renamed", ids[pid], {"event_id": i, "pid": pid})
    record(engine, "death", pid=AN, date_of_death="2024-05-01")  # and a real death, last
    total = PER_PERSON * len(pids) + 1
    first = start_deliverer(cli, db)
    second = None
    try:
        wait_for(lambda: len(receiver.got) >= total // 4, 60, "a quarter of the events")
        first.send_signal(signal.SIGKILL)  # in the middle of delivery
        first.wait(10)
        killed_at = len(receiver.got)
        assert killed_at < total
        second = start_deliverer(cli, db)
        wait_for(lambda: len(receiver.first_arrivals()) >= total // 2, 60, "half of the events")
        receiver.stop()  # the receiver dies: connections refused
        time.sleep(1.0)
        receiver.start()  # and comes back on the same port; the deliverer retries after ~5 s
        wait_for(lambda: len(receiver.first_arrivals()) >= total, 90, "every event")
        second.send_signal(signal.SIGTERM)
        assert second.wait(15) == 0, second.stderr.read().decode()
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
        receiver.stop()
    arrivals = receiver.first_arrivals()
    assert receiver.bad == 0  # every signature verified
    assert len(arrivals) == total
    by_person: dict[str, list[int]] = {}
    for _, event in arrivals:
        by_person.setdefault(event["data"]["pid"], []).append(event["data"]["seq"])
    assert set(by_person) == set(pids)
    for pid, seqs in by_person.items():
        assert seqs == sorted(seqs), pid  # in order per person
    assert [e["data"]["pid"] for _, e in arrivals if e["type"] == "person.died"] == [AN]
    with engine.connect() as conn:
        statuses = conn.execute(sa.select(change_deliveries.c.status, sa.func.count())
                                .group_by(change_deliveries.c.status)).all()
    assert dict(statuses) == {"delivered": total}
    engine.dispose()


def test_the_server_killed_during_delivery_loses_no_event(tmp_path):
    """``dinhdanh serve`` delivers beside the API; SIGKILLed mid-delivery and started again, it
    sends every event, in order per person, and the death that a clerk records through the API of
    the restarted server arrives too."""
    from tests.oidc_support import free_port

    receiver = Receiver(delay=0.004).start()
    cli, db, engine, _, _, pids = setup_register(tmp_path, receiver)
    with engine.connect() as conn:
        ids = dict(conn.execute(sa.select(persons.c.pid, persons.c.person_id)).all())
    with engine.begin() as conn:
        for i in range(PER_PERSON // 2):
            for pid in pids:
                enqueue(conn, "person.renamed", ids[pid], {"event_id": i, "pid": pid})
    total = PER_PERSON // 2 * len(pids) + 1

    def serve() -> tuple[subprocess.Popen, int]:
        port = free_port()
        proc = subprocess.Popen([sys.executable, "-m", "dinhdanh", "serve", "--db", db, "--port", str(port)],
                                env=cli.env, cwd=cli.home, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return proc, port

    first, _ = serve()
    second = None
    try:
        wait_for(lambda: len(receiver.got) >= total // 4, 60, "a quarter of the events")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        assert len(receiver.first_arrivals()) < total
        second, port = serve()
        # a death recorded by a clerk through the restarted server's API
        token = cli.ok("officer", "add", "--name", "Cán bộ", "--role", "national", "--roles", "registrar",
                       "--db", db).stdout.strip()

        def died() -> bool:
            import urllib.request

            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/api/v1/events/death", method="POST",
                data=json.dumps({"pid": AN, "date_of_death": "2024-05-01"}).encode(),
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=5) as r:
                    return r.status == 201
            except OSError:
                return False

        wait_for(died, 60, "the restarted server")
        wait_for(lambda: len(receiver.first_arrivals()) >= total, 90, "every event")
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(10)
        receiver.stop()
    arrivals = receiver.first_arrivals()
    assert receiver.bad == 0 and len(arrivals) == total
    by_person: dict[str, list[int]] = {}
    for _, event in arrivals:
        by_person.setdefault(event["data"]["pid"], []).append(event["data"]["seq"])
    for pid, seqs in by_person.items():
        assert seqs == sorted(seqs), pid
    an = [e["type"] for _, e in arrivals if e["data"]["pid"] == AN]
    assert an[-1] == "person.died" and an.count("person.died") == 1  # after all of AN's renames
    engine.dispose()


def test_deliver_once_dead_letters_and_retry_commands(tmp_path):
    receiver = Receiver()  # never started: connection refused
    cli, db, engine, partner, sub, _ = setup_register(tmp_path, receiver)
    record(engine, "death", pid=AN, date_of_death="2024-05-01")
    out = cli.json("changes", "deliver", "--once", "--db", db)
    assert out["routed_events"] >= 1 and out["deliveries"] == 1 and out["retry"] == 1 and out["delivered"] == 0
    with engine.begin() as conn:
        conn.execute(change_deliveries.update().values(status="dead"))
    dead = cli.json("changes", "dead-letters", "--partner", partner["client_id"], "--db", db)
    assert [(d["type"], d["subscription_id"]) for d in dead] == [("person.died", sub["subscription_id"])]
    assert cli.json("changes", "dead-letters", "--partner", "nobody", "--db", db) == []
    assert cli.json("changes", "retry", str(sub["subscription_id"]), "--db", db)["requeued"] == 1
    receiver.start()
    try:
        out = cli.json("changes", "deliver", "--once", "--db", db)
    finally:
        receiver.stop()
    assert out["delivered"] == 1 and [e["type"] for e in receiver.events()] == ["person.died"]
    assert_refused(cli("changes", "retry", "999", "--db", db), 1, "subscription")
    assert_refused(cli("changes", "retry", "0", "--db", db), 2)
    env = {k: v for k, v in cli.env.items() if k != "DINHDANH_NATS_URL"}
    p = subprocess.run([sys.executable, "-m", "dinhdanh", "changes", "publish-nats", "--once", "--db", db],
                       capture_output=True, text=True, env=env, cwd=cli.home, check=False)
    assert_refused(p, 2, "DINHDANH_NATS_URL")
    engine.dispose()
    json.dumps(out)
