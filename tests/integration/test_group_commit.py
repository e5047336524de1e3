"""Group commit (``store.group_commit``): the units ready at one turn of the event loop share one
SQLite transaction, each in its savepoint; a caller is answered only after the commit; a unit that
raises is undone alone; with the writer held elsewhere the group waits for it in the thread pool,
whole, and the groups after it run on the loop again."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time

import pytest
import sqlalchemy as sa

from dinhdanh.store.base import utcnow
from dinhdanh.store.group_commit import GroupCommit
from dinhdanh.store.outbox import outbox
from dinhdanh.store.unit_of_work import DatabaseBusy, UnitOfWork


def _topics(engine) -> list[str]:
    with engine.connect() as conn:
        return conn.execute(sa.select(outbox.c.topic).order_by(outbox.c.seq)).scalars().all()


def _write(topic: str):
    def work(conn):
        conn.execute(outbox.insert().values(topic=topic, payload={}, created_at=utcnow()))
        return topic
    return work


@pytest.fixture
def commits(sqlite_engine):
    counted: list[int] = []

    def count(conn):
        counted.append(1)

    sa.event.listen(sqlite_engine, "commit", count)
    yield counted
    sa.event.remove(sqlite_engine, "commit", count)


def test_units_ready_together_share_one_transaction_each_answered_after_the_commit(sqlite_engine, commits):
    group = GroupCommit(UnitOfWork(sqlite_engine))
    seen_committed = []

    async def one(i):
        result = await group.run(_write(f"t.{i:02d}"))
        # answered only once committed: another connection sees the row
        seen_committed.append(f"t.{i:02d}" in _topics(sqlite_engine))
        return result

    async def main():
        return await asyncio.gather(*(one(i) for i in range(40)))

    results = asyncio.run(main())
    assert results == [f"t.{i:02d}" for i in range(40)]
    assert _topics(sqlite_engine) == [f"t.{i:02d}" for i in range(40)]  # in the order queued
    assert all(seen_committed)
    assert len(commits) < 10, len(commits)  # 40 units, a handful of transactions


def test_a_unit_that_raises_is_undone_alone_and_its_caller_gets_the_error(sqlite_engine):
    group = GroupCommit(UnitOfWork(sqlite_engine))

    def fails(conn):
        _write("t.failed")(conn)
        raise ValueError("refused")

    async def main():
        return await asyncio.gather(group.run(_write("t.a")), group.run(fails), group.run(_write("t.b")),
                                    return_exceptions=True)

    a, failed, b = asyncio.run(main())
    assert (a, b) == ("t.a", "t.b") and isinstance(failed, ValueError)
    assert _topics(sqlite_engine) == ["t.a", "t.b"]


def test_a_unit_sees_the_units_queued_before_it(sqlite_engine):
    group = GroupCommit(UnitOfWork(sqlite_engine))

    def count(conn):
        return conn.execute(sa.select(sa.func.count()).select_from(outbox)).scalar_one()

    async def main():
        return await asyncio.gather(group.run(_write("t.a")), group.run(count), group.run(_write("t.b")),
                                    group.run(count))

    assert asyncio.run(main()) == ["t.a", 1, "t.b", 2]


def _where(topic: str, threads: dict[str, int]):
    """A unit writing ``topic`` that notes the thread it ran on."""
    def work(conn):
        threads[topic] = threading.get_ident()
        return _write(topic)(conn)
    return work


class _Holder:
    """Another thread's unit holding the writer until ``release``."""

    def __init__(self, uow: UnitOfWork):
        self.holding, self.release = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self._hold, args=(uow,))

    def _hold(self, uow):
        with uow.begin():
            self.holding.set()
            self.release.wait(10)

    def __enter__(self):
        self.thread.start()
        assert self.holding.wait(10)
        return self

    def __exit__(self, *exc):
        self.release.set()
        self.thread.join()


def test_with_the_writer_held_elsewhere_the_group_waits_for_it_in_the_pool_whole(sqlite_engine, commits):
    uow = UnitOfWork(sqlite_engine)
    group = GroupCommit(uow)
    threads: dict[str, int] = {}
    topics = [f"t.{i}" for i in range(5)]

    async def main():
        runs = [asyncio.ensure_future(group.run(_where(t, threads))) for t in topics]
        for _ in range(20):
            await asyncio.sleep(0)  # the flush found the writer held: nothing ran, nothing answered
        assert threads == {} and not any(run.done() for run in runs)
        holder.release.set()  # the writer free: the group runs
        return await asyncio.gather(*runs), threading.get_ident()

    with _Holder(uow) as holder:
        results, loop_thread = asyncio.run(main())
    assert results == topics and _topics(sqlite_engine) == topics
    assert len(commits) == 2, len(commits)  # the holder's, then the five units' one transaction
    assert len(set(threads.values())) == 1 and loop_thread not in threads.values()  # in one worker thread


def test_the_groups_behind_one_in_the_pool_run_after_it_on_the_loop(sqlite_engine):
    uow = UnitOfWork(sqlite_engine)
    group = GroupCommit(uow)
    threads: dict[str, int] = {}

    async def main():
        first = [asyncio.ensure_future(group.run(_where(f"a.{i}", threads))) for i in range(3)]
        for _ in range(20):
            await asyncio.sleep(0)  # the first group is in the pool, waiting for the writer
        later = [asyncio.ensure_future(group.run(_where(f"b.{i}", threads))) for i in range(3)]
        for _ in range(20):
            await asyncio.sleep(0)  # the second group is flushed: it waits behind the first
        assert threads == {}
        holder.release.set()
        return await asyncio.gather(*first, *later), threading.get_ident()

    with _Holder(uow) as holder:
        results, loop_thread = asyncio.run(main())
    order = [f"a.{i}" for i in range(3)] + [f"b.{i}" for i in range(3)]
    assert results == order and _topics(sqlite_engine) == order  # in the order queued
    assert {threads[f"b.{i}"] for i in range(3)} == {loop_thread}  # back on the loop
    assert loop_thread not in {threads[f"a.{i}"] for i in range(3)}


def test_a_writer_held_past_the_lock_timeout_fails_the_group_and_those_behind_it(sqlite_engine):
    """The group waiting in the pool gives up after the bound (``DatabaseBusy``); a group queued
    behind it meanwhile fails with it, not after a bound of its own more."""
    uow = UnitOfWork(sqlite_engine, lock_timeout=1.0)
    group = GroupCommit(uow)

    async def main():
        began = time.monotonic()
        first = asyncio.gather(*(group.run(_write(f"a.{i}")) for i in range(4)), return_exceptions=True)
        await asyncio.sleep(0.2)
        behind = asyncio.gather(*(group.run(_write(f"b.{i}")) for i in range(3)), return_exceptions=True)
        outcomes = [*await first, *await behind]
        return outcomes, time.monotonic() - began

    with _Holder(uow):
        outcomes, took = asyncio.run(main())
    assert len(outcomes) == 7 and all(isinstance(o, DatabaseBusy) for o in outcomes), outcomes
    assert took < 1.6, took  # one bound (1 s), not two
    assert _topics(sqlite_engine) == []


def test_chains_of_units_go_back_to_the_loop_after_the_writer_was_held(sqlite_engine, commits):
    """Eight chains, each sending its next unit when the last is answered (a server under eight
    refresh chains), and the writer held by another thread for a moment: the units of that moment
    wait in the pool, and then the chains run on the loop again, in groups. (Before, each unit whose
    flush found the writer held went to the pool alone, in a transaction of its own, and with every
    new unit finding the writer held by one of those, nearly all the rest followed it there.)"""
    uow = UnitOfWork(sqlite_engine)
    group = GroupCommit(uow)
    threads: dict[str, int] = {}

    held = threading.Event()

    def hold() -> None:  # as a checkpoint starting the log over holds it
        with uow.begin():
            held.set()
            time.sleep(0.05)

    async def chain(c: int) -> None:
        for i in range(40):
            await group.run(_where(f"t.{c}.{i:02d}", threads))
            if c == 0 and i == 5:
                threading.Thread(target=hold).start()
                while not held.is_set():
                    await asyncio.sleep(0.001)

    async def main():
        await asyncio.gather(*(chain(c) for c in range(8)))
        return threading.get_ident()

    loop_thread = asyncio.run(main())
    assert held.is_set() and len(threads) == 320 and len(_topics(sqlite_engine)) == 320
    off_loop = sum(ident != loop_thread for ident in threads.values())
    assert 1 <= off_loop <= 16, off_loop  # the groups of the moment the writer was held, no more
    assert len(commits) <= 320 // 3, len(commits)


def test_a_cancelled_caller_s_unit_does_not_run(sqlite_engine):
    group = GroupCommit(UnitOfWork(sqlite_engine))

    async def main():
        gone = asyncio.ensure_future(group.run(_write("t.gone")))
        kept = asyncio.ensure_future(group.run(_write("t.kept")))
        await asyncio.sleep(0)  # both queued; the flush is a turn away
        gone.cancel()
        return await kept

    assert asyncio.run(main()) == "t.kept"
    assert _topics(sqlite_engine) == ["t.kept"]


def test_a_group_is_capped(sqlite_engine, commits):
    group = GroupCommit(UnitOfWork(sqlite_engine), max_units=4)

    async def main():
        return await asyncio.gather(*(group.run(_write(f"t.{i:02d}")) for i in range(12)))

    assert asyncio.run(main()) == [f"t.{i:02d}" for i in range(12)]
    assert len(commits) >= 3


async def _one_a_turn(group: GroupCommit, topics: list[str], gaps: dict[int, int] | None = None):
    """``group.run`` of each topic from the turn after the one before (``gaps``: more idle turns before
    the i-th); the results."""
    runs = []
    for i, topic in enumerate(topics):
        for _ in range(1 + (gaps or {}).get(i, 0)):
            await asyncio.sleep(0)  # one turn of the loop
        runs.append(asyncio.ensure_future(group.run(_write(topic))))
    return await asyncio.gather(*runs)


def test_units_arriving_turn_after_turn_share_one_transaction(sqlite_engine, commits):
    # requests read one turn apart (a busy server's): one group while the arrivals go on
    group = GroupCommit(UnitOfWork(sqlite_engine))
    topics = [f"t.{i:02d}" for i in range(6)]
    assert asyncio.run(_one_a_turn(group, topics)) == topics
    assert _topics(sqlite_engine) == topics
    assert len(commits) == 1, len(commits)


def test_a_turn_without_a_new_unit_flushes_the_group(sqlite_engine, commits):
    group = GroupCommit(UnitOfWork(sqlite_engine))
    topics = [f"t.{i:02d}" for i in range(4)]
    assert asyncio.run(_one_a_turn(group, topics, gaps={2: 3})) == topics  # three idle turns before the third
    assert _topics(sqlite_engine) == topics
    assert len(commits) == 2, len(commits)


def test_a_lone_unit_is_committed_within_three_turns(sqlite_engine):
    group = GroupCommit(UnitOfWork(sqlite_engine))

    async def main():
        run = asyncio.ensure_future(group.run(_write("t.alone")))
        turns = 0
        while not run.done():
            await asyncio.sleep(0)
            turns += 1
        return run.result(), turns

    result, turns = asyncio.run(main())
    assert result == "t.alone" and turns <= 4, turns  # its own first step, then at most three turns


def test_a_group_waits_at_most_max_turns(sqlite_engine, commits):
    # arrivals that never pause: a group is flushed after ``max_turns`` turns all the same
    group = GroupCommit(UnitOfWork(sqlite_engine), max_turns=4)
    topics = [f"t.{i:02d}" for i in range(12)]
    assert asyncio.run(_one_a_turn(group, topics)) == topics
    assert _topics(sqlite_engine) == topics
    assert 3 <= len(commits) <= 4, len(commits)


_CALLER: contextvars.ContextVar[str | None] = contextvars.ContextVar("test_group_commit_caller", default=None)


def test_each_unit_runs_in_its_caller_s_context_on_the_loop_and_in_the_pool(sqlite_engine):
    """What a unit logs carries its own request's id (a context variable), not that of the unit
    that opened the group."""
    uow = UnitOfWork(sqlite_engine)
    group = GroupCommit(uow)

    def seen(conn):
        return _CALLER.get()

    async def caller(name: str):
        _CALLER.set(name)  # in this caller's task only
        return await group.run(seen)

    async def main():
        return await asyncio.gather(*(caller(f"request-{i}") for i in range(4)))

    assert asyncio.run(main()) == [f"request-{i}" for i in range(4)]  # on the loop

    async def pooled():
        runs = asyncio.gather(*(caller(f"request-{i}") for i in range(4)))
        for _ in range(20):
            await asyncio.sleep(0)  # flushed, waiting for the writer in the pool
        holder.release.set()
        return await runs

    with _Holder(uow) as holder:
        assert asyncio.run(pooled()) == [f"request-{i}" for i in range(4)]
