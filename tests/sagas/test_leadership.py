"""Several saga runners on one store: one leads, the others stand by; and even two
leaders act once.

Two real runner processes: only the one holding the leader lock drives sagas; when
it is SIGKILLed its database session ends, the lock with it, and the standby takes
over the sagas started afterwards.  Then the lock is taken out of the picture (each
runner gets locks of its own, so both lead): on the same triggers, every saga still
completes exactly once and every command's events are appended once, because each
transition is one transaction that expects the saga stream's version, with event
ids derived from the saga and the step.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path

import pytest
from support.projection_runs import until
from support.saga_runs import balance, new_id, open_ledger, runner

from aggregates import Repository
from aggregates.ledger import Ledger
from aggregates.order import Order, OrderStatus
from eventstore import PostgresEventStore
from projections import LocalLocks
from sagas import SagaRunner, SagaStatus, list_sagas, start_saga
from sagas.shipped import PAY_ON_PLACE, TRANSFER, transfer_data

D = Decimal
ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("saga_kill_worker.py")
DONE = (SagaStatus.COMPLETED, SagaStatus.COMPENSATED)


class _Worker:
    """A runner subprocess whose stderr (its leadership log) is collected line by line."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[str] = []
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process.stderr is not None
        async for line in self.process.stderr:
            self.lines.append(line.decode(errors="replace").rstrip())

    def said(self, words: str) -> bool:
        return any(words in line for line in self.lines)

    async def kill(self) -> None:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)
        async with asyncio.timeout(30):
            await self.process.wait()
            await self.reader


async def _spawn(pg_dsn: str, schema: str) -> _Worker:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(WORKER),
        pg_dsn,
        schema,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    return _Worker(process)


async def _wait(condition: Callable[[], Awaitable[bool]], workers: list[_Worker]) -> None:
    async with asyncio.timeout(60):
        while not await condition():
            for worker in workers:
                assert worker.process.returncode is None, "\n".join(worker.lines)
            await asyncio.sleep(0.02)


async def _transfers(repo: Repository, ledgers: list[str], count: int) -> list[str]:
    ids = []
    for n in range(count):
        saga_id = new_id()
        source, target = ledgers[n % 3], ledgers[(n + 1) % 3]
        await start_saga(repo, TRANSFER, saga_id, transfer_data(source, target, 5, "EUR"))
        ids.append(saga_id)
    return ids


async def _all_done(repo: Repository, ids: list[str]) -> bool:
    finished = {s.saga_id for s in await list_sagas(repo.store) if s.status in DONE}
    return finished >= set(ids)


async def test_a_standby_runner_takes_over_when_the_leader_is_sigkilled(
    repo: Repository, pg_dsn: str
) -> None:
    ledgers = [await open_ledger(repo, 100) for _ in range(3)]
    schema = repo.store.schema
    workers = [await _spawn(pg_dsn, schema), await _spawn(pg_dsn, schema)]
    try:
        await until(lambda: any(w.said("leading") for w in workers), deadline=60)
        await until(lambda: any(w.said("standing by") for w in workers), deadline=60)
        leader = next(w for w in workers if w.said("leading"))
        standby = next(w for w in workers if w is not leader)
        assert standby.said("standing by") and not standby.said("leading")

        first = await _transfers(repo, ledgers, 6)
        await _wait(lambda: _all_done(repo, first), workers)
        assert not standby.said("leading"), "two runners led at once"

        await leader.kill()
        assert leader.process.returncode == -signal.SIGKILL
        second = await _transfers(repo, ledgers, 6)
        await _wait(lambda: _all_done(repo, second), [standby])
        assert standby.said("saga runner sagas: leading")
    finally:
        for worker in workers:
            await worker.kill()
    assert sum([await balance(repo, ledger) for ledger in ledgers], D(0)) == D(300)


async def _two_leaders(
    repo: Repository, make_store: Callable[..., Awaitable[PostgresEventStore]], **kind: object
) -> tuple[list[SagaRunner], list[PostgresEventStore]]:
    stores = [await make_store(repo.store.schema) for _ in range(2)]
    runners = [
        runner(Repository(store, [Ledger, Order]), locks=LocalLocks(), **kind) for store in stores
    ]
    return runners, stores


@pytest.mark.parametrize("kind", ["saga", "reaction"])
async def test_two_leading_runners_act_once_per_trigger(
    repo: Repository, make_pg_store: Callable[..., Awaitable[PostgresEventStore]], kind: str
) -> None:
    options: dict[str, object] = (
        {"sagas": [TRANSFER]} if kind == "saga" else {"reactions": [PAY_ON_PLACE]}
    )
    runners, stores = await _two_leaders(repo, make_pg_store, **options)
    stop = asyncio.Event()
    tasks = [asyncio.create_task(r.run(stop)) for r in runners]
    try:
        await until(lambda: all(r.stats.leading for r in runners))
        if kind == "saga":
            ledgers = [await open_ledger(repo, 50) for _ in range(3)]
            await repo.update(Ledger, ledgers[2], lambda ledger: ledger.freeze("hold"))
            ids = await _transfers(repo, ledgers, 12)
            await _wait(lambda: _all_done(repo, ids), [])
        else:
            # Each customer's money pays one of their two orders: a second charge
            # would show as a second paid order.
            customers = [await open_ledger(repo, 15) for _ in range(4)]
            orders = {c: [new_id(), new_id()] for c in customers}
            for customer, ids in orders.items():
                for order_id in ids:
                    await repo.create(
                        Order, order_id, lambda o, c=customer: o.place(c, [("pen", 2, "5")])
                    )

            async def decided() -> bool:
                for ids in orders.values():
                    for order_id in ids:
                        if (await repo.load(Order, order_id)).status is OrderStatus.PLACED:
                            return False
                return True

            await _wait(decided, [])
        # Both read the same triggers (a wait: which one acted first is up to the race).
        await until(lambda: all(r.stats.events > 0 for r in runners))
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        for store in stores:
            await store.close()
    assert all(r.stats.restarts == 0 for r in runners), [r.stats.error for r in runners]
    if kind == "saga":
        for saga_id in ids:
            types = [e.type async for e in repo.store.read_stream(f"saga-{saga_id}")]
            ends = [t for t in types if t in ("saga.Completed", "saga.Compensated")]
            assert len(ends) == 1, types
        # 0->1 moves 5 four times; 1->2 is refunded (2 is frozen); 2->0 is refused.
        # A command appended twice would show in the balances and the event counts.
        assert [await balance(repo, ledger) for ledger in ledgers] == [D(30), D(70), D(50)]
        counts = [await repo.store.stream_version(Ledger.stream_id_for(x)) for x in ledgers]
        assert counts == [2 + 4, 2 + 4 + 4 + 4, 3]
    else:
        for customer, ids in orders.items():
            statuses = sorted([(await repo.load(Order, o)).status for o in ids], key=str)
            assert statuses == [OrderStatus.CANCELLED, OrderStatus.PAID]
            assert await balance(repo, customer) == D(5)
