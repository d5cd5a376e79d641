"""Measurement method and the shape of one result row.

Method: every implementation of a case (chronik, raw psycopg, the
``eventsourcing`` peer) runs ``warmup`` untimed rounds, then ``repetitions``
timed rounds *interleaved* (chronik, raw, peer, then the next round in a
rotated order), so a slow minute on a shared machine hits all of them rather
than whichever happened to run then.  A round returns one number in the case's
unit; the row reports the median and the min-max of those numbers.

Ratios always read "speed relative to the other": >= 1.00 means chronik is at
least as fast.  For throughput cases (higher is better) that is chronik/other,
for latency cases (lower is better) other/chronik.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

Kind = Literal["throughput", "latency"]
Status = Literal["ok", "not available", "failed"]
Round = Callable[[], Awaitable[float]]
"""One timed round of one implementation; returns a value in the case's unit."""

IMPLEMENTATIONS = ("chronik", "raw", "eventsourcing", "wire")


@dataclass(frozen=True, slots=True)
class Measurement:
    """The values of the timed rounds of one implementation."""

    samples: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def low(self) -> float:
        return min(self.samples)

    @property
    def high(self) -> float:
        return max(self.samples)

    def to_json(self) -> dict[str, Any]:
        return {
            "median": self.median,
            "min": self.low,
            "max": self.high,
            "samples": list(self.samples),
        }


@dataclass(slots=True)
class CaseResult:
    """One row of the table and one entry of ``cases`` in the JSON."""

    name: str
    unit: str
    kind: Kind
    group: str
    description: str = ""
    raw_does: str = ""
    chronik: Measurement | None = None
    raw: Measurement | None = None
    eventsourcing: Measurement | None = None
    wire: Measurement | None = None
    """The physical limit where it differs from raw: the server delivering the same
    rows to a client that decodes nothing (so far only the feed has one)."""
    target: float | None = None
    """Minimum acceptable ``ratio_raw`` (in the ratio's own orientation)."""
    target_eventsourcing: float | None = None
    """Minimum acceptable ``ratio_eventsourcing``, checked besides ``target``."""
    target_text: str = ""
    target_value: float | None = None
    """An absolute target for chronik's median instead (at most this, for latency)."""
    status: Status = "ok"
    reason: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    repetitions: int = 0
    warmup: int = 0
    run_ratios: dict[str, float | None] = field(default_factory=dict)
    """Set when several runs are folded into this row: per other implementation, the
    median of the runs' own ratios.  A ratio is a comparison within one run (same
    server, same minute); dividing the median of chronik's run medians by the median
    of raw's would pair numbers from different runs, which flattered a row that
    missed its target in two runs of three."""

    def record(self, measured: Mapping[str, Measurement]) -> CaseResult:
        """Attach the measurements of ``measure`` (keys: chronik, raw, eventsourcing, wire)."""
        unknown = measured.keys() - set(IMPLEMENTATIONS)
        if unknown:
            raise ValueError(f"case {self.name}: unknown implementations {sorted(unknown)}")
        self.chronik = measured.get("chronik")
        self.raw = measured.get("raw")
        self.eventsourcing = measured.get("eventsourcing")
        self.wire = measured.get("wire")
        return self

    def ratio(self, other: Measurement | None) -> float | None:
        if self.chronik is None or other is None:
            return None
        mine, theirs = self.chronik.median, other.median
        if mine <= 0 or theirs <= 0:
            return None
        return mine / theirs if self.kind == "throughput" else theirs / mine

    @property
    def ratio_raw(self) -> float | None:
        return self.ratio_to("raw")

    @property
    def ratio_eventsourcing(self) -> float | None:
        return self.ratio_to("eventsourcing")

    @property
    def ratio_wire(self) -> float | None:
        return self.ratio_to("wire")

    def ratio_to(self, name: str) -> float | None:
        """chronik relative to implementation ``name`` (folded rows: see run_ratios)."""
        if name in self.run_ratios:
            return self.run_ratios[name]
        other: Measurement | None = getattr(self, name)
        return self.ratio(other)

    @property
    def meets_target(self) -> bool | None:
        if self.target_value is not None and self.chronik is not None:
            if self.kind == "latency":
                return self.chronik.median <= self.target_value
            return self.chronik.median >= self.target_value
        ratio = self.ratio_raw
        if self.target is None or ratio is None:
            return None
        peer = self.ratio_eventsourcing
        if self.target_eventsourcing is not None and peer is not None:
            return ratio >= self.target and peer >= self.target_eventsourcing
        return ratio >= self.target

    def to_json(self) -> dict[str, Any]:
        def median(m: Measurement | None) -> float | None:
            return None if m is None else m.median

        row: dict[str, Any] = {
            "name": self.name,
            "group": self.group,
            "status": self.status,
            "reason": self.reason or None,
            "unit": self.unit,
            "kind": self.kind,
            "higher_is_better": self.kind == "throughput",
            "chronik": median(self.chronik),
            "raw": median(self.raw),
            "eventsourcing": median(self.eventsourcing),
            "wire": median(self.wire),
            "ratio_raw": self.ratio_raw,
            "ratio_eventsourcing": self.ratio_eventsourcing,
            "ratio_wire": self.ratio_wire,
            "min": None if self.chronik is None else self.chronik.low,
            "max": None if self.chronik is None else self.chronik.high,
            "repetitions": self.repetitions,
            "warmup": self.warmup,
            "target_ratio_raw": self.target,
            "target_value": self.target_value,
            "target": self.target_text or None,
            "meets_target": self.meets_target,
            "description": self.description,
            "raw_does": self.raw_does,
            "detail": {
                name: measurement.to_json()
                for name, measurement in (
                    ("chronik", self.chronik),
                    ("raw", self.raw),
                    ("eventsourcing", self.eventsourcing),
                    ("wire", self.wire),
                )
                if measurement is not None
            },
        }
        # Case-specific facts (``skipped``, sizes, ...) sit beside the standard keys.
        clash = row.keys() & self.extra.keys()
        if clash:
            raise ValueError(f"case {self.name}: extra keys {sorted(clash)} clash with the row")
        row.update(self.extra)
        return row


async def measure(
    rounds: dict[str, Round], *, repetitions: int, warmup: int
) -> dict[str, Measurement]:
    """Warm up each implementation, then time them in interleaved, rotated rounds."""
    names = list(rounds)
    for _ in range(warmup):
        for name in names:
            await rounds[name]()
    samples: dict[str, list[float]] = {name: [] for name in names}
    for repetition in range(repetitions):
        shift = repetition % len(names)
        for name in names[shift:] + names[:shift]:
            value = await rounds[name]()
            if not value > 0:
                raise RuntimeError(f"{name}: a round measured {value!r}, not a positive number")
            samples[name].append(value)
    return {name: Measurement(tuple(values)) for name, values in samples.items()}


class Stopwatch:
    """``with watch.running(): ...`` accumulates elapsed seconds (excluding setup),
    and this process's CPU seconds over the same spans (``cpu_seconds``: what the
    client spent, which other load on a shared machine disturbs less than wall time;
    the servers' CPU is not in it)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.cpu_seconds = 0.0

    @contextmanager
    def running(self) -> Iterator[None]:
        start, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.seconds += time.perf_counter() - start
            self.cpu_seconds += time.process_time() - cpu


def cpu_per_event(samples: list[float], warmup: int) -> float | None:
    """The median client CPU µs per event of the timed rounds (``samples``: one per
    round, warm-up rounds first)."""
    timed = samples[warmup:]
    return round(statistics.median(timed), 2) if timed else None


def per_second(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else 0.0


def milliseconds(seconds: float, operations: int = 1) -> float:
    return seconds * 1000.0 / operations
