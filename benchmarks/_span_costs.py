"""``python -m benchmarks._span_costs``: where tracing's cost goes, for diagnosis.

The official overhead figure is the ``tracing_overhead`` case (``python -m
benchmarks --only tracing_overhead``, ``benchmarks._overhead``).  This tool breaks
it down, in one process:

1. tight loops: an append span (with the ``traceparent`` it stamps) and a
   500-event projection batch span (each event with a ``traceparent``), as the
   client's CPU (``time.process_time()``), best of ``--loops`` rounds;
2. the ``tracing_overhead`` case's interleaved rounds (the same code), with the
   time spent in the append's span and stamp code timed inside each append block;
3. their end-to-end wall and client CPU per append and per projected event, min
   and median per mode;
4. the floor under ``append_1.tracing_off``: appends taking turns with no tracing,
   inside a dropped span the SDK starts and ends around them (the benchmark's own:
   ``sdk-alone`` not attached, ``sdk-current`` with OpenTelemetry's
   ``start_as_current_span``, what an app's own span costs), and with chronik's own
   span (``otel-off``); median wall per mode and its ratio to no tracing.

Modes as in ``benchmarks._instrument`` (``absent`` needs a process of its own:
``python -m benchmarks --instrument absent``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import eventstore._store as _store
from eventstore import _tracing as tracing

from ._append import _event
from ._context import bench_context
from ._instrument import Switch, instrument
from ._overhead import MODES, Sizes, measure_modes
from ._projection import SEEDED_TRACEPARENT
from ._server import benchmark_server

_STAMPED = {tracing.TRACEPARENT: SEEDED_TRACEPARENT}


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
        span, stamp, stamp_of = module.span, module.current_trace_context, module.trace_context_of

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

        def timed_stamp_of(current: Any) -> Any:
            return self._timed(lambda: stamp_of(current))

        module.span, module.current_trace_context = timed_span, timed_stamp
        module.trace_context_of = timed_stamp_of
        try:
            yield
        finally:
            module.span, module.current_trace_context = span, stamp
            module.trace_context_of = stamp_of

    def _timed(self, call: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        try:
            return call()
        finally:
            self.seconds += time.perf_counter() - started


async def interleaved(
    dsn: str, rounds: int, appends: int, events: int
) -> tuple[dict[str, dict[str, list[tuple[float, float]]]], dict[str, list[float]]]:
    """The ``tracing_overhead`` benchmark's rounds (``benchmarks._overhead``), with
    the span's and the stamp's own time inside each append beside them."""
    clock = _SpanClock()
    spans: dict[str, list[float]] = {mode: [] for mode in MODES}

    @contextlib.contextmanager
    def around(work: str, mode: str) -> Iterator[None]:
        if work != "append_1":
            yield
            return
        before = clock.seconds
        with clock.installed():
            yield
        spans[mode].append(clock.seconds - before)

    async with bench_context(dsn, quick=False, repetitions=1, warmup=0) as context:
        size = Sizes(rounds=rounds, appends=appends, events=events)
        measured = await measure_modes(context, size, around=around)
    return measured, spans


async def sdk_floor(dsn: str, rounds: int, appends: int) -> dict[str, list[float]]:
    """Wall seconds per append: none, the SDK's dropped span alone around it, and
    chronik's (``otel-off``), taking turns append by append as in ``_overhead``."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

    tracer = TracerProvider(sampler=ALWAYS_OFF).get_tracer("bench")
    chronik_off = Switch("otel-off")
    walls: dict[str, list[float]] = {mode: [] for mode in FLOOR_MODES}
    async with bench_context(dsn, quick=False, repetitions=1, warmup=0) as context:
        store = await context.chronik_store("sdk_floor")
        for _ in range(rounds):
            streams = {mode: f"acct-{uuid.uuid4().hex}" for mode in FLOOR_MODES}
            for version in range(appends):
                shift = version % len(FLOOR_MODES)
                for mode in FLOOR_MODES[shift:] + FLOOR_MODES[:shift]:
                    if mode == "otel-off":
                        chronik_off.on()
                    try:
                        started = time.perf_counter()
                        if mode == "sdk-alone":
                            dropped = tracer.start_span("append")
                            await store.append(streams[mode], [_event(version)], version)
                            dropped.end()
                        elif mode == "sdk-current":
                            with tracer.start_as_current_span("append"):
                                await store.append(streams[mode], [_event(version)], version)
                        else:
                            await store.append(streams[mode], [_event(version)], version)
                        walls[mode].append(time.perf_counter() - started)
                    finally:
                        chronik_off.off()
    chronik_off.close()
    return walls


FLOOR_MODES = ("none", "sdk-alone", "sdk-current", "otel-off")


def _us(values: list[float]) -> str:
    return f"min {min(values) * 1e6:7.2f}  median {statistics.median(values) * 1e6:7.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks._span_costs")
    parser.add_argument("--loops", type=int, default=15, help="tight-loop rounds (best of)")
    parser.add_argument("--rounds", type=int, default=12, help="interleaved rounds per mode")
    parser.add_argument("--appends", type=int, default=100, help="appends per round and mode")
    parser.add_argument(
        "--events", type=int, default=30_000, help="events replayed per round (by 100s)"
    )
    arguments = parser.parse_args()
    print("tight loops, µs (best of rounds): append span / 500-event batch span")
    for mode, (append, batch) in tight_loops(arguments.loops).items():
        print(f"  {mode:9} {append:7.1f} {batch:9.1f}")
    with benchmark_server(None, None) as server:
        measured, spans = asyncio.run(
            interleaved(server.dsn, arguments.rounds, arguments.appends, arguments.events)
        )
        walls = asyncio.run(sdk_floor(server.dsn, arguments.rounds, arguments.appends * 5))
    print("span + stamp inside appends, µs per append (wall)")
    for mode in MODES:
        print(f"  {mode:9} {_us(spans[mode])}")
    for work, by_mode in measured.items():
        for at, what in ((1, "client CPU"), (0, "wall")):
            print(f"{work}: {what} per event, µs")
            for mode in MODES:
                print(f"  {mode:9} {_us([timing[at] for timing in by_mode[mode]])}")
    print("append_1 wall per append, µs, and x none: the SDK's dropped span alone vs chronik's")
    baseline = statistics.median(walls["none"])
    for mode in FLOOR_MODES:
        median = statistics.median(walls[mode])
        print(f"  {mode:11} median {median * 1e6:7.1f}  x none {median / baseline:.3f}")


if __name__ == "__main__":
    main()
