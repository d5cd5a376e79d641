"""``python -m benchmarks._sync_costs``: where ``append_1_sync``'s time goes, for diagnosis.

The official figure is the ``append_1_sync`` case (``python -m benchmarks --only
append_1_sync``, ``benchmarks._sync``).  This tool runs four one-event append loops
in turn, round after round (the order rotating), each on a fresh stream, and
reports the median wall and client CPU per append and each one's ratio to raw:

- ``raw``: the case's raw column (``_sync._raw_appends``: single-row ``INSERT``s);
- ``statement``: chronik's append statement alone, bare (``_sync._statement_appends``);
- ``held``: chronik's validation and encoding (``prepare_batch``) and its append
  (``append_batch``) on one held connection: everything but the pool and the
  store's own call layers;
- ``store``: the case's chronik column (``_sync._chronik_appends``).

So ``statement`` prices the stream claim, ``held`` minus ``statement`` chronik's
client code, and ``store`` minus ``held`` the pooled connection and the store.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from collections.abc import Callable

import psycopg

from eventstore import NewEvent
from eventstore._pg_append import AppendStatements
from eventstore._validation import DEFAULT_MAX_EVENT_BYTES, prepare_batch
from eventstore.sync import PostgresEventStore
from eventstore.sync._pg_append import append_batch

from ._raw import RawEvents
from ._server import benchmark_server
from ._sync import _chronik_appends, _raw_appends, _statement_appends

LOOPS = ("raw", "statement", "held", "store")


def _loops(dsn: str, appends: int) -> dict[str, Callable[[], object]]:
    store = PostgresEventStore.connect(dsn, schema="sync_costs")
    statements = AppendStatements(store.schema)
    raw = RawEvents("sync_costs_raw")

    async def create() -> None:
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as connection:
            await raw.create(connection)

    asyncio.run(create())
    raw_connection = psycopg.Connection.connect(dsn, autocommit=True)
    bare = psycopg.Connection.connect(dsn, autocommit=True)
    held = psycopg.Connection.connect(dsn, autocommit=True)

    def held_loop() -> None:
        stream = f"acct-{uuid.uuid4().hex}"
        for version in range(appends):
            batch = prepare_batch(
                stream, [NewEvent("Deposited", {"amount": version})], DEFAULT_MAX_EVENT_BYTES
            )
            append_batch(held, statements, stream, batch, version, own_transaction=True)

    unused: list[float] = []  # the case's own CPU samples: measured here instead
    return {
        "raw": lambda: _raw_appends(raw, raw_connection, appends, unused),
        "statement": lambda: _statement_appends(store.schema, bare, appends),
        "held": held_loop,
        "store": lambda: _chronik_appends(store, appends, unused),
    }


def measure(dsn: str, rounds: int, appends: int) -> dict[str, list[tuple[float, float]]]:
    """Per loop, (wall, client CPU) seconds per append of each round after the first."""
    loops = _loops(dsn, appends)
    found: dict[str, list[tuple[float, float]]] = {name: [] for name in LOOPS}
    for turn in range(rounds + 1):
        order = LOOPS[turn % len(LOOPS) :] + LOOPS[: turn % len(LOOPS)]
        for name in order:
            cpu, started = time.process_time(), time.perf_counter()
            loops[name]()
            if turn:  # the first round warms up
                found[name].append(
                    (
                        (time.perf_counter() - started) / appends,
                        (time.process_time() - cpu) / appends,
                    )
                )
    return found


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks._sync_costs")
    parser.add_argument("--rounds", type=int, default=21, help="rounds of each loop")
    parser.add_argument("--appends", type=int, default=1000, help="appends per loop and round")
    arguments = parser.parse_args()
    with benchmark_server(None, None) as server:
        found = measure(server.dsn, arguments.rounds, arguments.appends)
    raw_walls = [wall for wall, _ in found["raw"]]
    print("one-event sync appends, per append: median wall, client CPU; x raw (per-round median)")
    for name in LOOPS:
        walls = [wall for wall, _ in found[name]]
        ratios = [raw / mine for raw, mine in zip(raw_walls, walls, strict=True)]
        cpu = statistics.median(cpu for _, cpu in found[name])
        print(
            f"  {name:9} {statistics.median(walls) * 1e6:6.0f} µs  {cpu * 1e6:5.0f} µs CPU"
            f"  x raw {statistics.median(ratios):.3f} ({min(ratios):.2f}-{max(ratios):.2f})"
        )


if __name__ == "__main__":
    main()
