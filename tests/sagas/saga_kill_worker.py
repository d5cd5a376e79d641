"""A saga runner process for the SIGKILL test: runs the transfer saga until killed.

Usage: python saga_kill_worker.py DSN SCHEMA
"""

from __future__ import annotations

import asyncio
import sys

from aggregates import Repository
from aggregates.ledger import Ledger
from eventstore import PostgresEventStore
from projections import StoreFeedSource
from sagas import SagaRunner, SagaRunnerOptions
from sagas.shipped import TRANSFER


async def main(dsn: str, schema: str) -> None:
    store = await PostgresEventStore.connect(dsn, schema=schema, create_schema=False)
    runner = SagaRunner(
        Repository(store, [Ledger]),
        StoreFeedSource(store, poll_interval=0.05),
        sagas=[TRANSFER],
        options=SagaRunnerOptions(batch_size=5, idle_timeout=0.05),
    )
    print("ready", flush=True)
    await runner.run(asyncio.Event())  # until SIGKILL


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
