"""What upcasting costs on a replay.

One event class at schema version 3 (``amount_cents``, ``currency``, ``note``)
and a two-step chain: v1 ``{"amount": "12.34"}`` -> v2 adds ``currency`` ->
v3 turns the decimal string into integer cents and adds ``note``.

chronik (with upcasters): replay a stream of N events stored as v1:
``read_stream`` + ``EventCodec.decode`` (which runs both steps, then validates
into the v3 class).

baseline, in the "raw" column (without upcasters): the same replay of a stream
of N events stored as v3 through the same codec (no step applies).  The
ratio is without/with, so 0.87 is 15% overhead.  ``decode_only_overhead_pct``
repeats the comparison on events already in memory (decode alone), the
harshest view of the same cost.  The eventsourcing library is not measured
here.
"""

from __future__ import annotations

import time
import uuid
from decimal import Decimal
from typing import Any, ClassVar

from eventstore import Event, EventCodec, NewEvent, PostgresEventStore, RecordedEvent
from upcasters import UpcasterChain

from ._cases import Case
from ._context import BenchContext
from ._harness import CaseResult, Measurement, Round, Stopwatch, measure, milliseconds

GROUP = "upcast"
BATCH = 1000


class Deposited(Event):
    event_type: ClassVar[str] = "bench.Deposited"
    event_version: ClassVar[int] = 3
    amount_cents: int
    currency: str
    note: str


def _chain() -> UpcasterChain:
    chain = UpcasterChain()

    @chain.upcaster("bench.Deposited", from_version=1)
    def add_currency(data: dict[str, Any]) -> dict[str, Any]:
        data["currency"] = "EUR"
        return data

    @chain.upcaster("bench.Deposited", from_version=2)
    def to_cents(data: dict[str, Any]) -> dict[str, Any]:
        data["amount_cents"] = int(Decimal(data.pop("amount")) * 100)
        data["note"] = ""
        return data

    return chain


def _v1(i: int) -> NewEvent:
    return NewEvent("bench.Deposited", {"amount": f"{i % 1000}.{i % 100:02d}"}, 1)


def _v3(i: int) -> NewEvent:
    data = {"amount_cents": (i % 1000) * 100 + i % 100, "currency": "EUR", "note": ""}
    return NewEvent("bench.Deposited", data, 3)


async def _seed(store: PostgresEventStore, events: int, make: Any) -> str:
    stream = f"upcast-{uuid.uuid4().hex}"
    for start in range(0, events, BATCH):
        size = min(BATCH, events - start)
        await store.append(stream, [make(start + i) for i in range(size)], start)
    return stream


async def _replay(store: PostgresEventStore, codec: EventCodec, stream: str, events: int) -> float:
    watch, count = Stopwatch(), 0
    with watch.running():
        async for recorded in store.read_stream(stream):
            codec.decode(recorded)
            count += 1
    if count != events:
        raise RuntimeError(f"replayed {count} events of {stream}, expected {events}")
    return milliseconds(watch.seconds)


def _decode_only(codec: EventCodec, records: list[RecordedEvent]) -> float:
    start = time.perf_counter()
    for recorded in records:
        codec.decode(recorded)
    return milliseconds(time.perf_counter() - start)


async def upcast_overhead(context: BenchContext) -> list[CaseResult]:
    events = context.size(20_000, 200)
    store = await context.chronik_store("upcast")
    codec = EventCodec([Deposited], upcasters=_chain())
    old = await _seed(store, events, _v1)
    current = await _seed(store, events, _v3)
    rounds: dict[str, Round] = {
        "chronik": lambda: _replay(store, codec, old, events),
        "raw": lambda: _replay(store, codec, current, events),
    }
    measured = await measure(rounds, repetitions=context.repetitions, warmup=context.warmup)

    old_records = [r async for r in store.read_stream(old)]
    current_records = [r async for r in store.read_stream(current)]

    async def decode_old() -> float:
        return _decode_only(codec, old_records)

    async def decode_current() -> float:
        return _decode_only(codec, current_records)

    decode = await measure(
        {"with": decode_old, "without": decode_current},
        repetitions=context.repetitions,
        warmup=context.warmup,
    )
    result = CaseResult(
        name="upcast_overhead",
        unit="ms",
        kind="latency",
        group=GROUP,
        description=f"replay {events} events (read + decode) through a two-step chain",
        raw_does="not raw psycopg: the same replay of v3 events, no upcaster applies",
        target=1 / 1.15,
        target_text="<= 15% overhead (>= 0.87)",
        extra={
            "events": events,
            "overhead_pct": _overhead(measured["chronik"], measured["raw"]),
            "decode_only_with_ms": decode["with"].median,
            "decode_only_without_ms": decode["without"].median,
            "decode_only_overhead_pct": _overhead(decode["with"], decode["without"]),
            "eventsourcing_note": "not measured in this case",
        },
    ).record(measured)
    return [result]


def _overhead(with_chain: Measurement, without: Measurement) -> float:
    return round((with_chain.median / without.median - 1) * 100, 1)


CASES = (Case("upcast_overhead", GROUP, upcast_overhead, summary="replay through a 2-step chain"),)
