"""OpenTelemetry spans, when ``opentelemetry-api`` is installed (the ``otel`` extra).

Without the package every helper here is a no-op that costs a function call.  With
it but no SDK configured, the API hands out non-recording spans: cheap, and no
``traceparent`` is stamped (an invalid span context has nothing to propagate).

The W3C trace context travels in event metadata (``traceparent``), written at
append from the span current then, so whoever handles the event later (a
projection, a saga, a Kafka consumer after the relay copied it into a header)
continues the same trace: :func:`span` takes the handled events' trace parents.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

try:
    from opentelemetry import trace as _trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
except ImportError:  # pragma: no cover - exercised only without the extra
    _trace = None  # type: ignore[assignment]

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"

if _trace is not None:
    _propagator = TraceContextTextMapPropagator()
    # A proxy tracer: it follows a provider the application sets later.
    _tracer = _trace.get_tracer("chronik")


def tracing_available() -> bool:
    """Whether ``opentelemetry-api`` is installed."""
    return _trace is not None


def current_trace_context() -> dict[str, str]:
    """``traceparent`` (and ``tracestate``) of the current span; empty without one."""
    if _trace is None or not _trace.get_current_span().get_span_context().is_valid:
        return {}
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier


def _context_of(metadata: Mapping[str, Any] | None) -> Any:
    if not metadata:
        return None
    parent = metadata.get(TRACEPARENT)
    if not isinstance(parent, str):
        return None
    carrier = {TRACEPARENT: parent}
    state = metadata.get(TRACESTATE)
    if isinstance(state, str):
        carrier[TRACESTATE] = state
    context = _propagator.extract(carrier)
    return context if _trace.get_current_span(context).get_span_context().is_valid else None


@contextmanager
def span(
    name: str,
    attributes: Mapping[str, Any] | None = None,
    *,
    parents: Iterable[Mapping[str, Any] | None] = (),
) -> Iterator[Any]:
    """A span named ``name`` around the block (``None`` is yielded without the extra).

    ``parents``: the metadata of the events being handled.  The first one with a
    trace context becomes the span's parent (one trace from command to read model);
    the others are linked, since a batch has one parent but may carry many traces.
    """
    if _trace is None:
        yield None
        return
    parent = None
    links: list[Any] = []
    for metadata in parents:
        context = _context_of(metadata)
        if context is None:
            continue
        if parent is None:
            parent = context
        elif len(links) < 32:
            links.append(_trace.Link(_trace.get_current_span(context).get_span_context()))
    with _tracer.start_as_current_span(
        name, context=parent, attributes=dict(attributes) if attributes else None, links=links
    ) as current:
        yield current


def set_attribute(current: Any, key: str, value: Any) -> None:
    """Set an attribute on a span from :func:`span` (nothing without the extra)."""
    if current is not None and current.is_recording():
        current.set_attribute(key, value)
