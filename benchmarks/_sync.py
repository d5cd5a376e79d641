"""The synchronous API beside raw synchronous psycopg and the (synchronous) peer.

``append_1_sync`` (events/s): 1 event per transaction to a fresh stream.
  chronik: ``eventstore.sync.PostgresEventStore.append(stream, [event],
  <exact version>)`` on the store's pool, from plain sync code.
  raw: the same one-statement ``INSERT ... VALUES`` as ``append_1``'s raw column,
  on a synchronous autocommit ``psycopg.Connection``.
  eventsourcing: ``account.deposit(i)`` then ``app.save(account)``.
  In the JSON, ``statement_alone_x_raw``: chronik's append statement alone, with no
  chronik code around it (see ``_statement_appends``): the most any client could
  reach on chronik's schema.

``load_ledger_1000_sync`` (ms per load): ``aggregates.sync.Repository.load`` of
  a 1,000-event Ledger; raw is the stream's ``SELECT`` and ``fetchall()`` on a
  synchronous connection; eventsourcing is ``app.repository.get(id)``.

Every implementation here is synchronous and runs in the benchmark's thread
(each round blocks the event loop, on purpose: nothing else runs meanwhile).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from eventstore import NewEvent
from eventstore._pg_append import AppendStatements

from . import _peer as peer
from ._aggregates import PER_SAVE, _amount, _peer_build, _peer_load
from ._cases import Case, peer_application, peer_note
from ._context import BenchContext
from ._harness import (
    CaseResult,
    Round,
    Stopwatch,
    cpu_per_event,
    measure,
    milliseconds,
    per_second,
)
from ._raw import EMPTY_METADATA, SELECT_COLUMNS, RawEvents

GROUP = "sync"


def _sync_store(context: BenchContext, label: str) -> Any:
    from eventstore.sync import PostgresEventStore

    store = PostgresEventStore.connect(context.dsn, schema=context.schema(label))
    context.on_close(store.close)
    return store


def _sync_connection(context: BenchContext) -> psycopg.Connection[Any]:
    connection = psycopg.Connection.connect(context.dsn, autocommit=True)
    context.on_close(connection.close)
    return connection


def _chronik_appends(store: Any, transactions: int, cpu: list[float]) -> float:
    stream = f"acct-{uuid.uuid4().hex}"
    watch = Stopwatch()
    with watch.running():
        for version in range(transactions):
            store.append(stream, [NewEvent("Deposited", {"amount": version})], version)
    cpu.append(watch.cpu_seconds / transactions * 1e6)
    return per_second(transactions, watch.seconds)


def _raw_appends(
    raw: RawEvents, connection: psycopg.Connection[Any], transactions: int, cpu: list[float]
) -> float:
    stream = f"acct-{uuid.uuid4().hex}"
    insert = raw.insert(1)
    watch = Stopwatch()
    with watch.running():
        for version in range(1, transactions + 1):
            connection.execute(
                insert,
                (
                    stream,
                    version,
                    uuid.uuid4(),
                    "Deposited",
                    1,
                    Jsonb({"amount": version}),
                    Jsonb(EMPTY_METADATA),
                ),
            )
    cpu.append(watch.cpu_seconds / transactions * 1e6)
    return per_second(transactions, watch.seconds)


def _statement_appends(
    schema: str, connection: psycopg.Connection[Any], transactions: int
) -> float:
    """chronik's own append statement, bare: prepared, on a raw cursor, the event's
    JSON written by hand, no chronik code around it.  What the stream claim (the
    optimistic-concurrency check and the feed's order guard) costs the server, and
    so how close to raw any client could bring ``append_1_sync``."""
    statements = AppendStatements(schema)
    cursor = psycopg.RawCursor(connection)
    stream = f"acct-{uuid.uuid4().hex}"
    start = time.perf_counter()
    for version in range(transactions):
        params: list[Any] = [stream, 1, str(uuid.uuid4()), "Deposited", 1]
        params += [f'{{"amount":{version}}}', "{}"]
        if version:
            params.append(version)
        cursor.execute(statements.statement_for(version, single=True), params, prepare=True)
        if cursor.fetchone() is None:
            raise RuntimeError(f"the bare append statement wrote nothing at v{version}")
    return per_second(transactions, time.perf_counter() - start)


def _peer_appends(app: Any, transactions: int) -> float:
    account = peer.new_account(app)
    start = time.perf_counter()
    count = peer.append(app, account, transactions, 1)
    return per_second(count, time.perf_counter() - start)


async def append_1_sync(context: BenchContext) -> list[CaseResult]:
    transactions = context.size(1000, 20)
    store = _sync_store(context, "append_sync")
    raw = RawEvents(context.schema("append_sync_raw"))
    await raw.create(await context.raw_connection())
    connection = _sync_connection(context)
    app = await peer_application(context, "append_sync_es")

    # Client CPU per append (this process's; the server's is not in it): steadier
    # than the rate on a busy machine, and where the sync API's own cost shows.
    chronik_cpu: list[float] = []
    raw_cpu: list[float] = []

    async def chronik() -> float:
        return _chronik_appends(store, transactions, chronik_cpu)

    async def raw_round() -> float:
        return _raw_appends(raw, connection, transactions, raw_cpu)

    async def statement_round() -> float:
        return _statement_appends(store.schema, statement_connection, transactions)

    statement_connection = _sync_connection(context)
    rounds: dict[str, Round] = {
        "chronik": chronik,
        "raw": raw_round,
        "statement": statement_round,
    }
    if app is not None:

        async def peer_round() -> float:
            return _peer_appends(app, transactions)

        rounds["eventsourcing"] = peer_round
    measured = await measure(rounds, repetitions=context.repetitions, warmup=context.warmup)
    statement = measured.pop("statement")
    result = CaseResult(
        name="append_1_sync",
        unit="events/s",
        kind="throughput",
        group=GROUP,
        description=(
            f"{transactions} sequential 1-event transactions from sync code "
            "(eventstore.sync) to one fresh stream per round"
        ),
        raw_does=(
            "one INSERT ... VALUES per autocommit statement on a sync psycopg connection, "
            "into a table with chronik's columns and indexes"
        ),
        target=0.9,
        target_text=">= 0.9x raw sync",
        extra={
            "events_per_round": transactions,
            "chronik_cpu_us_per_event": cpu_per_event(chronik_cpu, context.warmup),
            "raw_cpu_us_per_event": cpu_per_event(raw_cpu, context.warmup),
            # The ceiling for any client of chronik's schema (see _statement_appends).
            "statement_alone_events_per_s": statement.median,
            "statement_alone_x_raw": statement.median / measured["raw"].median,
        },
    ).record(measured)
    peer_note(result)
    return [result]


def _build_ledger(repository: Any, ledger_id: str, events: int) -> Any:
    from aggregates.ledger import Ledger

    ledger = Ledger(ledger_id)
    ledger.open("bench", "EUR")
    for i in range(1, events):
        ledger.deposit(_amount(i))
        if ledger.version % PER_SAVE == 0:
            repository.save(ledger)
    if ledger.pending_events:
        repository.save(ledger)
    return ledger


def _loads(repository: Any, ledger_id: str, events: int, loads: int) -> float:
    from aggregates.ledger import Ledger

    watch = Stopwatch()
    for _ in range(loads):
        with watch.running():
            ledger = repository.load(Ledger, ledger_id)
        if ledger.version != events:
            raise RuntimeError(f"loaded {ledger.stream_id} at v{ledger.version}, not {events}")
    return milliseconds(watch.seconds, loads)


def _raw_loads(
    connection: psycopg.Connection[Any], query: sql.Composed, stream_id: str, rows: int, loads: int
) -> float:
    watch = Stopwatch()
    for _ in range(loads):
        with watch.running():
            found = connection.execute(query, (stream_id,)).fetchall()
        if len(found) != rows:
            raise RuntimeError(f"raw select returned {len(found)} rows, expected {rows}")
    return milliseconds(watch.seconds, loads)


async def load_ledger_1000_sync(context: BenchContext) -> list[CaseResult]:
    from aggregates.ledger import Ledger
    from aggregates.sync import Repository

    events = context.size(1000, 50)
    loads = context.size(10, 2)
    store = _sync_store(context, "load_sync")
    repository = Repository(store, [Ledger])
    ledger_id = uuid.uuid4().hex
    ledger = _build_ledger(repository, ledger_id, events)
    connection = _sync_connection(context)
    query = sql.SQL("SELECT {} FROM {} WHERE stream_id = %s ORDER BY version").format(
        sql.SQL(SELECT_COLUMNS), sql.Identifier(store.schema, "events")
    )

    async def chronik() -> float:
        return _loads(repository, ledger_id, events, loads)

    async def raw_round() -> float:
        return _raw_loads(connection, query, ledger.stream_id, events, loads)

    rounds: dict[str, Round] = {"chronik": chronik, "raw": raw_round}
    app = await peer_application(context, "load_sync_es")
    if app is not None:
        account_id = _peer_build(app, events)

        async def peer_round() -> float:
            return _peer_load(app, account_id, events, loads)

        rounds["eventsourcing"] = peer_round
    measured = await measure(rounds, repetitions=context.repetitions, warmup=context.warmup)
    result = CaseResult(
        name="load_ledger_1000_sync",
        unit="ms",
        kind="latency",
        group=GROUP,
        description=f"load a {events}-event Ledger with aggregates.sync.Repository",
        raw_does="SELECT of the stream's rows on a sync connection, fetchall(); no decoding",
        target=0.5,
        target_text="<= 2x raw time (>= 0.50)",
        extra={"events": events, "loads_per_round": loads},
    ).record(measured)
    peer_note(result)
    return [result]


CASES = (
    Case("append_1_sync", GROUP, append_1_sync, summary="append 1 event/transaction, sync API"),
    Case(
        "load_ledger_1000_sync",
        GROUP,
        load_ledger_1000_sync,
        summary="load a 1,000-event Ledger, sync Repository",
    ),
)
