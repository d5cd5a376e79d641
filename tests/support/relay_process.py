"""A relay in a process of its own, for tests that SIGKILL it.

Processes come from a fork server that has already imported chronik and the
Kafka client, so a restart costs a fork and a connection rather than half a
second of imports: that is what lets a test kill the relay 20+ times quickly.
Each relay is still a separate process with its own PostgreSQL session and
Kafka clients, and SIGKILL gives it no chance to clean up.
"""

from __future__ import annotations

import asyncio
import faulthandler
import logging
import multiprocessing
import os
import signal
from multiprocessing.process import BaseProcess

_CONTEXT = multiprocessing.get_context("forkserver")
_CONTEXT.set_forkserver_preload(["support.relay_process", "messaging", "eventstore"])


def start_relay(
    dsn: str, schema: str, bootstrap: str, prefix: str, mode: str = "at-least-once"
) -> BaseProcess:
    process = _CONTEXT.Process(
        target=_run, args=(dsn, schema, bootstrap, prefix, mode), daemon=True
    )
    process.start()
    return process


def _run(dsn: str, schema: str, bootstrap: str, prefix: str, mode: str) -> None:
    # What the relay says (leading, stuck, fenced) reaches the test's output.
    logging.basicConfig(level=logging.WARNING, format=f"relay {os.getpid()}: %(message)s")
    logging.getLogger("chronik.messaging").setLevel(logging.INFO)
    # ``kill -USR1 PID`` prints where a relay is: for a test stuck waiting on it.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    asyncio.run(_main(dsn, schema, bootstrap, prefix, mode))


async def _main(dsn: str, schema: str, bootstrap: str, prefix: str, mode: str) -> None:
    from support.kafka import relay_options

    from eventstore import PostgresEventStore
    from messaging import Relay

    store = await PostgresEventStore.connect(dsn, schema=schema, pool_size=2)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    options = relay_options(prefix, exactly_once=mode == "exactly-once", batch_size=25)
    try:
        await Relay(store, bootstrap, options).run(stop)
    finally:
        await store.close()
