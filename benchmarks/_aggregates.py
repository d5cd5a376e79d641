"""Loading aggregates: a 1,000-event Ledger, and a 10,000-event one with snapshots.

``load_ledger_1000`` (ms per load, lower is better)
  chronik: ``await Repository(store, [Ledger]).load(Ledger, id)`` of a Ledger
  with 1,000 events (``Opened`` + 999 ``Deposited`` with Decimal amounts):
  read, upcaster check, pydantic validation and apply of every event.
  raw: ``SELECT <the event columns> FROM <the same chronik table> WHERE
  stream_id = %s ORDER BY version`` and ``fetchall()`` (tuples, jsonb parsed),
  no decoding, no state.
  eventsourcing: ``app.repository.get(id)`` of an ``Account`` with 1,000
  events (created + 999 ``deposit(Decimal)``), default settings (no cache).

``load_with_snapshot`` (ms per load)
  chronik: the same Ledger at 10,000 events, snapshots every 100 events in
  the ``PostgresSnapshotStore`` beside the events (``EveryNEvents(100)``); the
  newest snapshot is at 9,950 and the load replays a 50-event tail (the
  average tail of that policy).  ``without_snapshot_ms`` is the full replay of
  all 10,000 events by a repository without snapshots.
  raw: the two statements a snapshot load needs: the newest snapshot row
  ``WHERE stream_id = %s AND version <= %s ORDER BY version DESC LIMIT 1``,
  then the events after it, both ``fetchall()``.
  eventsourcing: an application with ``snapshotting_intervals = {Account:
  100}``, an aggregate of 10,050 events (its snapshots land on multiples of
  100: newest at 10,000, so the tail is 50 as well); ``without_snapshot_ms`` is
  the same aggregate loaded by an application without snapshots.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from decimal import Decimal
from typing import Any

from psycopg import sql

from . import _peer as peer
from ._cases import Case, not_available, peer_application, peer_note
from ._context import BenchContext
from ._harness import CaseResult, Round, Stopwatch, measure, milliseconds
from ._raw import SELECT_COLUMNS

GROUP = "aggregates"
PER_SAVE = 100
SNAPSHOT_EVERY = 100
TAIL = 50


def _missing(snapshots: bool = False) -> str | None:
    try:
        import aggregates
        from aggregates.ledger import Ledger  # noqa: F401
    except ImportError as error:
        return f"aggregates cannot be imported ({error})"
    if not hasattr(aggregates, "Repository"):
        return "aggregates.Repository does not exist yet"
    if snapshots:
        try:
            from snapshots import EveryNEvents, PostgresSnapshotStore  # noqa: F401
        except ImportError as error:
            return f"snapshots cannot be imported ({error})"
    return None


def _amount(i: int) -> Decimal:
    return Decimal(i % 997 + 1) / 4


async def _build_ledger(
    repository: Any, ledger_id: str, events: int, first_save: int = PER_SAVE
) -> Any:
    """A Ledger of ``events`` events, saved at ``first_save``, then every 100 events."""
    from aggregates.ledger import Ledger

    ledger = Ledger(ledger_id)
    ledger.open("bench", "EUR")
    for i in range(1, events):
        ledger.deposit(_amount(i))
        if ledger.version >= first_save and (ledger.version - first_save) % PER_SAVE == 0:
            await repository.save(ledger)
    if ledger.pending_events:
        await repository.save(ledger)
    return ledger


async def _load(repository: Any, ledger_id: str, events: int, loads: int) -> float:
    from aggregates.ledger import Ledger

    watch = Stopwatch()
    for _ in range(loads):
        with watch.running():
            ledger = await repository.load(Ledger, ledger_id)
        if ledger.version != events:
            raise RuntimeError(f"loaded {ledger.stream_id} at v{ledger.version}, not {events}")
    return milliseconds(watch.seconds, loads)


async def _raw_select(
    connection: Any, query: sql.Composed, params: tuple[Any, ...], rows: int, loads: int
) -> float:
    watch = Stopwatch()
    for _ in range(loads):
        with watch.running():
            cursor = await connection.execute(query, params)
            found = await cursor.fetchall()
        if len(found) != rows:
            raise RuntimeError(f"raw select returned {len(found)} rows, expected {rows}")
    return milliseconds(watch.seconds, loads)


def _peer_load(app: Any, aggregate_id: Any, events: int, loads: int) -> float:
    elapsed = 0.0
    for _ in range(loads):
        start = time.perf_counter()
        account = app.repository.get(aggregate_id)
        elapsed += time.perf_counter() - start
        if account.version != events:
            raise RuntimeError(f"eventsourcing loaded v{account.version}, expected {events}")
    return milliseconds(elapsed, loads)


def _peer_build(app: Any, events: int) -> Any:
    """An Account of ``events`` events, saved every 100 events."""
    account = peer.Account()
    for i in range(1, events):
        account.deposit(_amount(i))
        if account.version % PER_SAVE == 0:
            app.save(account)
    app.save(account)
    return account.id


async def load_ledger_1000(context: BenchContext) -> list[CaseResult]:
    reason = _missing()
    if reason is not None:
        return [not_available("load_ledger_1000", GROUP, "ms", "latency", reason)]
    from aggregates import Repository
    from aggregates.ledger import Ledger

    events = context.size(1000, 50)
    loads = context.size(10, 2)
    store = await context.chronik_store("load")
    repository = Repository(store, [Ledger])
    ledger_id = uuid.uuid4().hex
    ledger = await _build_ledger(repository, ledger_id, events)
    connection = await context.raw_connection()
    query = sql.SQL("SELECT {} FROM {} WHERE stream_id = %s ORDER BY version").format(
        sql.SQL(SELECT_COLUMNS), sql.Identifier(store.schema, "events")
    )
    rounds: dict[str, Round] = {
        "chronik": lambda: _load(repository, ledger_id, events, loads),
        "raw": lambda: _raw_select(connection, query, (ledger.stream_id,), events, loads),
    }
    app = await peer_application(context, "load_es")
    if app is not None:
        account_id = await asyncio.to_thread(_peer_build, app, events)
        rounds["eventsourcing"] = lambda: asyncio.to_thread(
            _peer_load, app, account_id, events, loads
        )
    measured = await measure(rounds, repetitions=context.repetitions, warmup=context.warmup)
    result = CaseResult(
        name="load_ledger_1000",
        unit="ms",
        kind="latency",
        group=GROUP,
        description=f"load a {events}-event Ledger (decode + apply every event)",
        raw_does="SELECT of the stream's rows from the same table, fetchall(); no decoding",
        target=1 / 1.2,
        target_text="<= 1.2x raw time (>= 0.83)",
        extra={"events": events, "loads_per_round": loads},
    ).record(measured)
    peer_note(result)
    return [result]


async def _newest_snapshot(connection: Any, schema: str, stream_id: str) -> int:
    cursor = await connection.execute(
        sql.SQL("SELECT max(version) FROM {} WHERE stream_id = %s").format(
            sql.Identifier(schema, "snapshots")
        ),
        (stream_id,),
    )
    row = await cursor.fetchone()
    return int(row[0]) if row and row[0] is not None else 0


async def load_with_snapshot(context: BenchContext) -> list[CaseResult]:
    reason = _missing(snapshots=True)
    if reason is not None:
        return [not_available("load_with_snapshot", GROUP, "ms", "latency", reason)]
    from aggregates import Repository
    from aggregates.ledger import Ledger
    from snapshots import EveryNEvents, PostgresSnapshotStore

    events = context.size(10_000, 300)
    loads = context.size(50, 2)
    store = await context.chronik_store("snapshot")
    snapshot_store = PostgresSnapshotStore.from_event_store(store)
    with_snapshots = Repository(
        store, [Ledger], snapshots=snapshot_store, snapshot_policy=EveryNEvents(SNAPSHOT_EVERY)
    )
    plain = Repository(store, [Ledger])
    ledger_id = uuid.uuid4().hex
    # Snapshots land at 150, 250, ... events - TAIL; the last TAIL events come
    # through a repository without snapshots, so a load replays TAIL events.
    ledger = await _build_ledger(with_snapshots, ledger_id, events - TAIL, first_save=TAIL)
    for i in range(TAIL):
        ledger.deposit(_amount(i))
    await plain.save(ledger)
    connection = await context.raw_connection()
    snapshot_version = await _newest_snapshot(connection, store.schema, ledger.stream_id)
    if snapshot_version != events - TAIL:
        raise RuntimeError(f"newest snapshot at {snapshot_version}, expected {events - TAIL}")
    raw_snapshot = sql.SQL(
        "SELECT stream_id, aggregate_type, version, fingerprint, state, recorded_at FROM {}"
        " WHERE stream_id = %s AND version <= %s ORDER BY version DESC LIMIT 1"
    ).format(sql.Identifier(store.schema, "snapshots"))
    raw_tail = sql.SQL(
        "SELECT {} FROM {} WHERE stream_id = %s AND version > %s ORDER BY version"
    ).format(sql.SQL(SELECT_COLUMNS), sql.Identifier(store.schema, "events"))

    async def raw_round() -> float:
        watch = Stopwatch()
        for _ in range(loads):
            with watch.running():
                cursor = await connection.execute(raw_snapshot, (ledger.stream_id, 2**62))
                row = await cursor.fetchone()
                assert row is not None
                cursor = await connection.execute(raw_tail, (ledger.stream_id, row[2]))
                tail = await cursor.fetchall()
            if len(tail) != TAIL:
                raise RuntimeError(f"raw tail had {len(tail)} rows, expected {TAIL}")
        return milliseconds(watch.seconds, loads)

    rounds: dict[str, Round] = {
        "chronik": lambda: _load(with_snapshots, ledger_id, events, loads),
        "raw": raw_round,
        "chronik_full": lambda: _load(plain, ledger_id, events, 1),
    }
    app = await peer_application(context, "snapshot_es", snapshot_every=SNAPSHOT_EVERY)
    if app is not None:
        peer_events = events + TAIL
        account_id = await asyncio.to_thread(_peer_build, app, peer_events)
        plain_app = await asyncio.to_thread(
            peer.make_application, context.eventsourcing_env(context.schema("snapshot_es"))
        )
        context.on_close(plain_app.close)
        rounds["eventsourcing"] = lambda: asyncio.to_thread(
            _peer_load, app, account_id, peer_events, loads
        )
        rounds["eventsourcing_full"] = lambda: asyncio.to_thread(
            _peer_load, plain_app, account_id, peer_events, 1
        )
    measured = await measure(rounds, repetitions=context.repetitions, warmup=context.warmup)
    full = measured.pop("chronik_full")
    peer_full = measured.pop("eventsourcing_full", None)
    result = CaseResult(
        name="load_with_snapshot",
        unit="ms",
        kind="latency",
        group=GROUP,
        description=(
            f"load a {events}-event Ledger from its newest snapshot + a {TAIL}-event tail"
        ),
        raw_does="SELECT the newest snapshot row, then SELECT the events after it",
        target_value=2.0,
        target_text="<= 2 ms",
        extra={
            "events": events,
            "snapshot_version": snapshot_version,
            "tail_events": TAIL,
            "loads_per_round": loads,
            "without_snapshot_ms": full.median,
            "eventsourcing_without_snapshot_ms": None if peer_full is None else peer_full.median,
        },
    ).record(measured)
    peer_note(result)
    return [result]


CASES = (
    Case("load_ledger_1000", GROUP, load_ledger_1000, summary="load a 1,000-event Ledger"),
    Case(
        "load_with_snapshot",
        GROUP,
        load_with_snapshot,
        summary="load a 10,000-event Ledger from a snapshot every 100 events",
    ),
)
