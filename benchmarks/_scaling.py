"""Does any cost grow that should not, as one stream and the whole table grow?

Stream dimension: one chronik stream (and one raw stream) grown by
1,000-event appends to 10, 100, ..., 100,000 events.  At each size:
``stream_load`` reads the whole stream (us per event: should stay flat once
round trips are amortised), ``stream_tail`` reads its last 10 events (what a
snapshot + tail load costs: should stay flat), ``stream_append`` appends 1
event per transaction to it (ms per append: should stay flat).  Load is
measured first, so it reads exactly N events; each append round adds a few
dozen.

Table dimension: a fresh schema grown to 10^4, 10^5, 10^6 events by
1,000-event appends into new streams (raw: the same number of rows generated
on the server).  At each size: ``table_append`` appends 1 event per
transaction to a fresh stream (ms per append), ``table_load`` reads one
fixed 100-event stream (ms) and ``table_feed_page`` reads 1,000 events of the
feed from the middle of the table (ms; raw: ``WHERE global_position > %s
ORDER BY global_position LIMIT 1000``, the plain, not gap-safe, limit).

raw: the same reads and writes on a raw table with chronik's columns and
indexes (see ``_raw``): single-row autocommit INSERTs with the version counted
on the client, ``SELECT ... WHERE stream_id = %s ORDER BY version``.

Both tables are ANALYZEd after each growth step, as autovacuum would do
soon after: on a table that was never analyzed the planner estimates two
rows for a stream and reads each 1,000-event page of a big stream by sorting
the whole rest of it (measured: a 100,000-event stream in 2.5 s instead of
0.8 s).

Each row's ``growth`` is its chronik median over the same metric's median at
the smallest size (1.0 = no growth).  It is part of the default run (about 70 s
here, most of it seeding a million events); ``--only scaling`` runs it alone.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from psycopg import sql

from eventstore import NewEvent, Position, PostgresEventStore

from ._cases import Case
from ._context import BenchContext
from ._harness import CaseResult, Measurement, Round, Stopwatch, measure, milliseconds
from ._raw import SELECT_COLUMNS, RawEvents

GROUP = "scaling"
BATCH = 1000
APPENDS_PER_ROUND = 20
PROBE_EVENTS = 100


def _events(first: int, count: int) -> list[NewEvent]:
    return [NewEvent("Deposited", {"amount": first + i}) for i in range(count)]


class _ChronikStream:
    def __init__(self, store: PostgresEventStore, stream: str) -> None:
        self.store, self.stream, self.version = store, stream, 0

    async def grow_to(self, size: int) -> None:
        while self.version < size:
            count = min(BATCH, size - self.version)
            result = await self.store.append(
                self.stream, _events(self.version, count), self.version
            )
            self.version = result.version

    async def append(self) -> float:
        watch = Stopwatch()
        with watch.running():
            for _ in range(APPENDS_PER_ROUND):
                result = await self.store.append(
                    self.stream, _events(self.version, 1), self.version
                )
                self.version = result.version
        return milliseconds(watch.seconds, APPENDS_PER_ROUND)

    async def load(self, per_event: bool = True) -> float:
        watch, count = Stopwatch(), 0
        with watch.running():
            async for _ in self.store.read_stream(self.stream):
                count += 1
        return watch.seconds * 1e6 / count if per_event else milliseconds(watch.seconds)

    async def tail(self) -> float:
        watch = Stopwatch()
        with watch.running():
            events = [e async for e in self.store.read_stream(self.stream, self.version - 9)]
        if len(events) != 10:
            raise RuntimeError(f"tail of {self.stream} had {len(events)} events, expected 10")
        return milliseconds(watch.seconds)


class _RawStream:
    def __init__(self, raw: RawEvents, connection: Any, stream: str) -> None:
        self.raw, self.connection, self.stream, self.version = raw, connection, stream, 0
        self.select_all = raw.select_stream()
        self.select_tail = sql.SQL(
            "SELECT {} FROM {} WHERE stream_id = %s AND version >= %s ORDER BY version"
        ).format(sql.SQL(SELECT_COLUMNS), raw.table)

    async def grow_to(self, size: int) -> None:
        while self.version < size:
            count = min(BATCH, size - self.version)
            rows = [("Deposited", {"amount": self.version + i}) for i in range(count)]
            await self.raw.append(self.connection, self.stream, self.version + 1, rows)
            self.version += count

    async def append(self) -> float:
        watch = Stopwatch()
        with watch.running():
            for _ in range(APPENDS_PER_ROUND):
                self.version += 1
                await self.raw.append(
                    self.connection, self.stream, self.version, [("Deposited", {"amount": 1})]
                )
        return milliseconds(watch.seconds, APPENDS_PER_ROUND)

    async def load(self, per_event: bool = True) -> float:
        watch = Stopwatch()
        with watch.running():
            cursor = await self.connection.execute(self.select_all, (self.stream,))
            rows = await cursor.fetchall()
        return watch.seconds * 1e6 / len(rows) if per_event else milliseconds(watch.seconds)

    async def tail(self) -> float:
        watch = Stopwatch()
        with watch.running():
            cursor = await self.connection.execute(
                self.select_tail, (self.stream, self.version - 9)
            )
            rows = await cursor.fetchall()
        if len(rows) != 10:
            raise RuntimeError(f"raw tail had {len(rows)} rows, expected 10")
        return milliseconds(watch.seconds)


def _row(
    metric: str, size: int, unit: str, measured: dict[str, Measurement], description: str
) -> CaseResult:
    return CaseResult(
        name=f"scaling.{metric}[{size}]",
        unit=unit,
        kind="latency",
        group=GROUP,
        description=description,
        raw_does="the same read/append on a raw table with chronik's columns and indexes",
        extra={"metric": metric, "size": size},
    ).record(measured)


def _add_growth(rows: Sequence[CaseResult]) -> None:
    first: dict[str, dict[str, float]] = {}
    for row in rows:
        metric = row.extra["metric"]
        for name in ("chronik", "raw"):
            measurement: Measurement | None = getattr(row, name)
            if measurement is None:
                continue
            base = first.setdefault(metric, {}).setdefault(name, measurement.median)
            key = "growth" if name == "chronik" else "raw_growth"
            row.extra[key] = round(measurement.median / base, 2)
        if "growth" in row.extra:
            growth, raw_growth = row.extra["growth"], row.extra.get("raw_growth", 0.0)
            row.target_text = f"growth x{growth:.2f} (raw x{raw_growth:.2f})"


async def _stream_dimension(context: BenchContext, sizes: Sequence[int]) -> list[CaseResult]:
    store = await context.chronik_store("scaling_stream")
    raw = RawEvents(context.schema("scaling_stream_raw"))
    connection = await context.raw_connection()
    await raw.create(connection)
    mine = _ChronikStream(store, f"big-{uuid.uuid4().hex}")
    theirs = _RawStream(raw, connection, f"big-{uuid.uuid4().hex}")
    rows: list[CaseResult] = []
    for size in sizes:
        await mine.grow_to(size)
        await theirs.grow_to(size)
        await _analyze(connection, sql.Identifier(store.schema, "events"), raw.table)
        metrics: list[tuple[str, str, Round, Round, str]] = [
            (
                "stream_load",
                "us/event",
                mine.load,
                theirs.load,
                f"read the whole stream of {size} events",
            ),
            ("stream_tail", "ms", mine.tail, theirs.tail, f"read the last 10 of {size} events"),
            (
                "stream_append",
                "ms/append",
                mine.append,
                theirs.append,
                f"append 1 event/tx to a stream of ~{size} events",
            ),
        ]
        for metric, unit, chronik_round, raw_round, description in metrics:
            measured = await measure(
                {"chronik": chronik_round, "raw": raw_round},
                repetitions=context.repetitions,
                warmup=context.warmup,
            )
            rows.append(_row(metric, size, unit, measured, description))
    return rows


async def _table_dimension(context: BenchContext, sizes: Sequence[int]) -> list[CaseResult]:
    store = await context.chronik_store("scaling_table")
    raw = RawEvents(context.schema("scaling_table_raw"))
    connection = await context.raw_connection()
    await raw.create(connection)
    probe = _ChronikStream(store, f"probe-{uuid.uuid4().hex}")
    raw_probe = _RawStream(raw, connection, f"probe-{uuid.uuid4().hex}")
    await probe.grow_to(PROBE_EVENTS)
    await raw_probe.grow_to(PROBE_EVENTS)
    table_size = raw_size = PROBE_EVENTS

    async def chronik_append() -> float:
        return await _ChronikStream(store, f"t-{uuid.uuid4().hex}").append()

    async def raw_append() -> float:
        return await _RawStream(raw, connection, f"t-{uuid.uuid4().hex}").append()

    async def chronik_load() -> float:
        return await probe.load(per_event=False)

    async def raw_load() -> float:
        return await raw_probe.load(per_event=False)

    feed_from: dict[str, Any] = {}
    page_size = min(BATCH, sizes[0] // 4)
    raw_page = sql.SQL(
        "SELECT {} FROM {} WHERE global_position > %s ORDER BY global_position LIMIT %s"
    ).format(sql.SQL(SELECT_COLUMNS), raw.table)

    async def chronik_feed() -> float:
        watch = Stopwatch()
        with watch.running():
            page = [e async for e in store.read_all(after=feed_from["chronik"], limit=page_size)]
        if len(page) != page_size:
            raise RuntimeError(f"feed page had {len(page)} events, expected {page_size}")
        return milliseconds(watch.seconds)

    async def raw_feed() -> float:
        watch = Stopwatch()
        with watch.running():
            cursor = await connection.execute(raw_page, (feed_from["raw"], page_size))
            page = await cursor.fetchall()
        if len(page) != page_size:
            raise RuntimeError(f"raw feed page had {len(page)} rows, expected {page_size}")
        return milliseconds(watch.seconds)

    rows: list[CaseResult] = []
    for size in sizes:
        while table_size < size:
            count = min(BATCH, size - table_size)
            await store.append(f"seed-{uuid.uuid4().hex}", _events(0, count), 0)
            table_size += count
        if raw_size < size:
            per_stream = min(BATCH, size - raw_size)
            streams = (size - raw_size) // per_stream
            await raw.seed(connection, f"seed-{uuid.uuid4().hex}-", streams, per_stream)
            raw_size += streams * per_stream
        await _analyze(connection, sql.Identifier(store.schema, "events"), raw.table)
        feed_from["chronik"] = await _middle(connection, store)
        feed_from["raw"] = feed_from["chronik"].global_position
        for metric, unit, mine, theirs, description in (
            (
                "table_load",
                "ms",
                chronik_load,
                raw_load,
                f"read a {PROBE_EVENTS}-event stream, table of {size} events",
            ),
            (
                "table_feed_page",
                "ms",
                chronik_feed,
                raw_feed,
                f"read {page_size} feed events from the middle, table of {size} events",
            ),
            (
                "table_append",
                "ms/append",
                chronik_append,
                raw_append,
                f"append 1 event/tx to a fresh stream, table of {size} events",
            ),
        ):
            measured = await measure(
                {"chronik": mine, "raw": theirs},
                repetitions=context.repetitions,
                warmup=context.warmup,
            )
            rows.append(_row(metric, size, unit, measured, description))
    return rows


async def _analyze(connection: Any, *tables: sql.Identifier) -> None:
    # Measure the steady state autovacuum would reach: right after a bulk load
    # the planner has no statistics (see the module docstring).
    for table in tables:
        await connection.execute(sql.SQL("ANALYZE {}").format(table))


async def _middle(connection: Any, store: PostgresEventStore) -> Position:
    """A feed position halfway through the chronik table."""
    cursor = await connection.execute(
        sql.SQL(
            "SELECT transaction_id::text::bigint AS txid, global_position AS position"
            "  FROM {} ORDER BY global_position"
            " OFFSET (SELECT count(*) / 2 FROM {}) LIMIT 1"
        ).format(sql.Identifier(store.schema, "events"), sql.Identifier(store.schema, "events"))
    )
    row = await cursor.fetchone()
    if row is None:
        raise RuntimeError(f"no events in {store.schema}.events")
    return Position(row[0], row[1])


async def scaling(context: BenchContext) -> list[CaseResult]:
    stream_sizes = (10, 100, 300) if context.quick else (10, 100, 1_000, 10_000, 100_000)
    table_sizes = (500, 2_000) if context.quick else (10_000, 100_000, 1_000_000)
    rows = await _stream_dimension(context, stream_sizes)
    rows += await _table_dimension(context, table_sizes)
    _add_growth(rows)
    return rows


CASES = (
    Case(
        "scaling",
        GROUP,
        scaling,
        summary="append/load cost as a stream grows to 1e5 and the table to 1e6 events",
    ),
)
