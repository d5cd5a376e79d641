"""A real saga runner process killed with SIGKILL mid-work, a few times over.

Each round starts more transfers (some to a frozen ledger, some too large), runs
a runner subprocess until it has finished at least one more, and kills it with
SIGKILL: whatever it was doing stops dead, connections and all.  A last runner
then finishes the rest: every transfer ends completed or compensated and the
money over all ledgers is what it was.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

from support.saga_runs import balance, new_id, open_ledger, runner

from aggregates import Repository
from aggregates.ledger import Ledger
from sagas import SagaStatus, list_sagas, start_saga
from sagas.shipped import TRANSFER, transfer_data

D = Decimal
ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("saga_kill_worker.py")
KILLS = 4
PER_ROUND = 12


async def _finished(repo: Repository) -> int:
    done = (SagaStatus.COMPLETED, SagaStatus.COMPENSATED)
    return sum(1 for s in await list_sagas(repo.store) if s.status in done)


async def test_sigkilled_runners_leave_every_transfer_whole(repo: Repository, pg_dsn: str) -> None:
    ledgers = [await open_ledger(repo, 100) for _ in range(5)]
    await repo.update(Ledger, ledgers[4], lambda ledger: ledger.freeze("hold"))
    plan: list[tuple[str, int, int, int]] = []
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    killed = 0
    for round_number in range(KILLS):
        for n in range(PER_ROUND):
            source, target = (round_number + n) % 5, (round_number + 2 * n + 1) % 5
            amount = 5 + (n * 7) % 40 + (150 if n == 5 else 0)  # one too large per round
            saga_id = new_id()
            plan.append((saga_id, source, target, amount))
            await start_saga(
                repo,
                TRANSFER,
                saga_id,
                transfer_data(ledgers[source], ledgers[target], amount, "EUR"),
            )
        before = await _finished(repo)
        worker = await asyncio.create_subprocess_exec(
            sys.executable,
            str(WORKER),
            pg_dsn,
            repo.store.schema,
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            async with asyncio.timeout(60):
                while await _finished(repo) <= before:
                    assert worker.returncode is None, "the runner process ended by itself"
                    await asyncio.sleep(0.01)
        finally:
            worker.send_signal(signal.SIGKILL)
            async with asyncio.timeout(30):
                await worker.wait()
        killed += worker.returncode == -signal.SIGKILL
    assert killed == KILLS

    await runner(repo, sagas=[TRANSFER]).catch_up()
    finals = {s.saga_id: s.status for s in await list_sagas(repo.store)}
    expected = [D(100)] * 5
    for saga_id, source, target, amount in plan:
        assert finals[saga_id] in (SagaStatus.COMPLETED, SagaStatus.COMPENSATED)
        if finals[saga_id] == SagaStatus.COMPLETED:
            expected[source] -= amount
            expected[target] += amount
    balances = [await balance(repo, ledger) for ledger in ledgers]
    assert balances == expected
    assert sum(balances) == 500
