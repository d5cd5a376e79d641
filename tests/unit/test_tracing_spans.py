"""``eventstore.span`` starts and ends OpenTelemetry spans by hand (cheaper than
``start_as_current_span``): the same context, error recording and W3C header; a
batch span's parent and links come from the handled events' metadata, and a span
that is not sampled reads no further than its parent."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
)
from opentelemetry.trace import StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from support.tracing import in_memory_tracing

from eventstore import (
    InMemoryEventStore,
    InvalidAppendError,
    NewEvent,
    add_span_observer,
    current_trace_context,
    trace_span,
)


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    with in_memory_tracing() as (_, exported):
        yield exported


def test_a_failing_block_marks_its_span_and_restores_the_context(
    exporter: InMemorySpanExporter,
) -> None:
    with (
        pytest.raises(ValueError, match="boom"),
        trace_span("outer"),
        trace_span("inner", {"chronik.stream_id": "s-1"}) as inner,
    ):
        assert trace.get_current_span() is inner
        raise ValueError("boom")
    assert not trace.get_current_span().get_span_context().is_valid
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert set(spans) == {"outer", "inner"}
    for span in spans.values():
        assert span.status.status_code is StatusCode.ERROR
        assert span.status.description == "ValueError: boom"
        assert [e.name for e in span.events] == ["exception"]
    assert spans["inner"].parent is not None
    assert spans["inner"].parent.span_id == spans["outer"].context.span_id
    assert spans["inner"].attributes == {"chronik.stream_id": "s-1"}


def test_the_stamped_context_is_what_the_w3c_propagator_writes(
    exporter: InMemorySpanExporter,
) -> None:
    assert current_trace_context() == {}
    with trace_span("append"):
        expected: dict[str, str] = {}
        TraceContextTextMapPropagator().inject(expected)
        assert current_trace_context() == expected
        assert expected["traceparent"].startswith("00-")


def _metadata(trace_id: int, span_id: int, *, sampled: bool = True) -> dict[str, str]:
    return {"traceparent": f"00-{trace_id:032x}-{span_id:016x}-{'01' if sampled else '00'}"}


class _Counted:
    """The handled events' metadata, counting how many a span read."""

    def __init__(self, items: list[dict[str, str] | None]) -> None:
        self.items, self.read = items, 0

    def __iter__(self) -> Iterator[dict[str, str] | None]:
        for item in self.items:
            self.read += 1
            yield item


def test_a_recorded_batch_span_continues_the_first_trace_and_links_the_next_ones(
    exporter: InMemorySpanExporter,
) -> None:
    # No context on the first event, then 40 events of 40 traces: a parent, 32 links.
    parents = [None, *(_metadata(100 + n, 1 + n) for n in range(40))]
    with trace_span("batch", parents=parents):
        pass
    (batch,) = exporter.get_finished_spans()
    assert batch.parent is not None
    assert (batch.parent.trace_id, batch.parent.span_id) == (100, 1)
    assert batch.context.trace_id == 100
    linked = [(link.context.trace_id, link.context.span_id) for link in batch.links]
    assert linked == [(100 + n, 1 + n) for n in range(1, 33)]


def test_an_unsampled_batch_span_reads_only_as_far_as_its_parent() -> None:
    with in_memory_tracing(ALWAYS_OFF) as (_, exported):
        parents = _Counted([None, {}, *(_metadata(7, 1 + n) for n in range(500))])
        with trace_span("batch", parents=parents) as current:
            assert not current.is_recording()
            # The span is still in the trace its parent names (for whatever it calls).
            assert current.get_span_context().trace_id == 7
    assert parents.read == 3
    assert exported.get_finished_spans() == ()


def test_a_parent_based_sampler_follows_the_first_event() -> None:
    with in_memory_tracing(ParentBased(ALWAYS_ON)) as (_, exported):
        dropped = _Counted([_metadata(8, 1, sampled=False), _metadata(9, 2)])
        with trace_span("dropped", parents=dropped):
            pass
        kept = _Counted([_metadata(10, 3), _metadata(11, 4, sampled=False)])
        with trace_span("kept", parents=kept):
            pass
    assert dropped.read == 1
    (span,) = exported.get_finished_spans()
    assert span.name == "kept"
    assert [link.context.trace_id for link in span.links] == [11]


class _StreamSampler(Sampler):
    """Keeps the spans of streams named ``keep-...``: it decides on the attributes
    a span starts with, as an attribute-based sampler of an app would."""

    def should_sample(
        self,
        parent_context: Any,
        trace_id: int,
        name: str,
        kind: Any = None,
        attributes: Any = None,
        links: Any = None,
        trace_state: Any = None,
    ) -> SamplingResult:
        stream = (attributes or {}).get("chronik.stream_id", "")
        decision = Decision.RECORD_AND_SAMPLE if stream.startswith("keep-") else Decision.DROP
        return SamplingResult(decision, attributes)

    def get_description(self) -> str:
        return "keep-streams"


async def test_a_sampler_sees_the_stream_at_start_and_counts_are_set_on_recorded_spans() -> None:
    store = InMemoryEventStore()
    with in_memory_tracing(_StreamSampler()) as (_, exported):
        await store.append("keep-1", [NewEvent("x", {}), NewEvent("x", {})])
        await store.append("drop-1", [NewEvent("x", {})])
    (span,) = exported.get_finished_spans()
    # The event count is known only after the span started: set on the recorded span.
    assert span.attributes == {"chronik.stream_id": "keep-1", "chronik.events": 2}
    # The dropped append still stamps its (unsampled) context for whoever handles it.
    [dropped] = [e async for e in store.read_stream("drop-1")]
    assert int(dropped.metadata["traceparent"].split("-")[3], 16) & 1 == 0  # not sampled


def test_an_observer_sees_each_span_traced_or_not() -> None:
    seen: list[tuple[str, dict[str, Any], bool]] = []
    remove = add_span_observer(
        lambda name, attrs, _s, error: seen.append((name, dict(attrs), error is None))
    )
    try:
        with trace_span("untraced", {"k": 1}) as current:
            assert current is None  # no provider: observed, not traced
        with pytest.raises(ValueError), trace_span("failed"):
            raise ValueError("boom")
    finally:
        remove()
    with trace_span("unobserved"):
        pass
    assert seen == [("untraced", {"k": 1}, True), ("failed", {}, False)]


async def test_every_event_of_an_append_carries_its_span_unless_it_set_the_key() -> None:
    store = InMemoryEventStore()
    with in_memory_tracing() as (_, exported):
        await store.append(
            "stamped-1",
            [
                NewEvent("x", {}),
                NewEvent("x", {}, metadata={"who": "me"}),
                NewEvent(
                    "x", {}, metadata={"traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01"}
                ),
                NewEvent("x", {}),
            ],
        )
    (span,) = exported.get_finished_spans()
    ids = span.context
    parent = f"00-{ids.trace_id:032x}-{ids.span_id:016x}-{ids.trace_flags:02x}"
    assert [e.metadata async for e in store.read_stream("stamped-1")] == [
        {"traceparent": parent},
        {"traceparent": parent, "who": "me"},
        {"traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01"},
        {"traceparent": parent},
    ]


async def test_a_trace_state_travels_with_the_stamp() -> None:
    store = InMemoryEventStore()
    remote = trace.SpanContext(
        0xABC,
        0xDEF,
        is_remote=True,
        trace_flags=trace.TraceFlags(1),
        trace_state=trace.TraceState([("vendor", 'q"b\\s')]),
    )
    with in_memory_tracing(), trace.use_span(trace.NonRecordingSpan(remote)):
        await store.append("stamped-2", [NewEvent("x", {})])
    [event] = [e async for e in store.read_stream("stamped-2")]
    assert event.metadata["tracestate"] == 'vendor=q"b\\s'  # escaped in JSON, read back
    assert event.metadata["traceparent"].startswith(f"00-{0xABC:032x}-")


@pytest.mark.parametrize("metadata", [[1], "text", 5])
async def test_metadata_that_is_not_a_dict_is_refused_with_or_without_a_stamp(
    metadata: Any,
) -> None:
    store = InMemoryEventStore()
    for tracing in (False, True):
        with (
            in_memory_tracing() if tracing else contextlib.nullcontext(),
            pytest.raises(InvalidAppendError, match=r"event 1 \('x'\): metadata must be"),
        ):
            await store.append("refused", [NewEvent("x", {}), NewEvent("x", {}, metadata=metadata)])
    assert await store.stream_version("refused") == 0
