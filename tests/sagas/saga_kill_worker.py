"""A saga runner process for the SIGKILL tests: runs the transfer saga until killed.

Usage: python saga_kill_worker.py DSN SCHEMA
Logs the runner's leadership ("leading", "standing by") on stderr.
"""

from __future__ import annotations

import asyncio
import logging
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
        options=SagaRunnerOptions(batch_size=5, idle_timeout=0.05, standby_poll=0.1),
    )
    print("ready", flush=True)
    await runner.run(asyncio.Event())  # until SIGKILL


if __name__ == "__main__":
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="%(message)s")
    logging.getLogger("chronik.sagas").setLevel(logging.INFO)
    asyncio.run(main(sys.argv[1], sys.argv[2]))
