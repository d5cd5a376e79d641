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

import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

try:
    from opentelemetry import context as _context
    from opentelemetry import trace as _trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
except ImportError:  # pragma: no cover - exercised only without the extra
    _trace = None  # type: ignore[assignment]

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
#: Links kept per batch span: enough to follow, bounded for big batches.
_MAX_LINKS = 32
#: A ``traceparent`` as chronik and most tracers write it (see ``_span_context_of``).
_USUAL_TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")

if _trace is not None:
    _propagator = TraceContextTextMapPropagator()
    _unset_providers: tuple[type, ...] = (_trace.ProxyTracerProvider, _trace.NoOpTracerProvider)

SpanObserver = Callable[[str, Mapping[str, Any], float, "BaseException | None"], None]
_observers: list[SpanObserver] = []

#: A provider given to :func:`use_tracer_provider` (else the global one is used).
_chosen: Any = None
_chosen_tracer: Any = None
_global: tuple[Any, Any] = (None, None)


def tracing_available() -> bool:
    """Whether ``opentelemetry-api`` is installed."""
    return _trace is not None


def use_tracer_provider(provider: Any) -> None:
    """Trace chronik with ``provider`` instead of the global one (``None``: the global
    one again).  For tests and for apps that keep chronik's spans apart."""
    global _chosen, _chosen_tracer
    _chosen = provider
    _chosen_tracer = provider.get_tracer("chronik") if provider is not None else None


def _tracer() -> Any:
    """The tracer to use now; ``None`` while nobody configured a provider, so an
    installed but unconfigured API costs one check instead of a span per call."""
    if _chosen_tracer is not None:
        return _chosen_tracer
    if _trace is None:
        return None
    global _global
    provider = _trace.get_tracer_provider()
    if isinstance(provider, _unset_providers):
        return None
    if _global[0] is not provider:
        # An SDK provider builds a new tracer per call: keep one per provider.
        _global = (provider, provider.get_tracer("chronik"))
    return _global[1]


def instrumented() -> bool:
    """Whether chronik's spans are traced or observed now: hot loops check this once
    per batch and skip building spans and their attributes otherwise."""
    return bool(_observers) or _tracer() is not None


def current_trace_context() -> dict[str, str]:
    """``traceparent`` (and ``tracestate``) of the current span; empty without one.

    Formatted here as the W3C propagator does (version 00), not through it: this
    runs on every append, and the propagator's generic carrier API cost a third
    of what tracing adds to an append whose span is not sampled.
    """
    if _trace is None:
        return {}
    found = _trace.get_current_span().get_span_context()
    if not found.is_valid:
        return {}
    carrier = {
        TRACEPARENT: f"00-{found.trace_id:032x}-{found.span_id:016x}-{found.trace_flags:02x}"
    }
    if found.trace_state:
        carrier[TRACESTATE] = found.trace_state.to_header()
    return carrier


def _span_context_of(metadata: Mapping[str, Any] | None) -> Any:
    """The valid remote span context ``metadata`` carries, else ``None``: what the W3C
    propagator extracts.  The usual case (what an append stamps: version 00, no
    ``tracestate``) is parsed here, at a third of the propagator's cost, since a
    sampled batch span parses up to 33 of them; anything else goes to the propagator."""
    if not metadata:
        return None
    parent = metadata.get(TRACEPARENT)
    if not isinstance(parent, str):
        return None
    state = metadata.get(TRACESTATE)
    usual = None if isinstance(state, str) else _USUAL_TRACEPARENT.fullmatch(parent)
    if usual is not None:
        trace_id, span_id, flags = usual.groups()
        found = _trace.SpanContext(
            int(trace_id, 16),
            int(span_id, 16),
            is_remote=True,
            trace_flags=_trace.TraceFlags(int(flags, 16)),
        )
    else:
        carrier = {TRACEPARENT: parent}
        if isinstance(state, str):
            carrier[TRACESTATE] = state
        found = _trace.get_current_span(_propagator.extract(carrier)).get_span_context()
    return found if found.is_valid else None


def _context_of(metadata: Mapping[str, Any] | None) -> Any:
    """A context whose current span is the one ``metadata`` names (as the propagator's:
    nothing else of the current context in it), else ``None``."""
    found = _span_context_of(metadata)
    if found is None:
        return None
    return _trace.set_span_in_context(_trace.NonRecordingSpan(found), _context.Context())


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
    tracer = _tracer()
    if tracer is None and not _observers:
        yield None
        return
    started = time.perf_counter()
    error: BaseException | None = None
    try:
        if tracer is None:
            yield None
        else:
            # start_span and attach by hand rather than start_as_current_span: the
            # same span, context and error recording, without two layers of
            # generator-based context managers on every append (see the benchmark).
            current = _start(tracer, name, attributes, parents)
            token = _context.attach(_trace.set_span_in_context(current))
            try:
                yield current
            except Exception as caught:
                # As OpenTelemetry's use_span: errors, not GeneratorExit and the like.
                if current.is_recording():
                    current.record_exception(caught)
                    current.set_status(
                        _trace.Status(_trace.StatusCode.ERROR, f"{type(caught).__name__}: {caught}")
                    )
                raise
            finally:
                _context.detach(token)
                current.end()
    except BaseException as caught:
        error = caught
        raise
    finally:
        if _observers:
            seconds = time.perf_counter() - started
            for observe in _observers:
                observe(name, attributes or {}, seconds, error)


def _start(
    tracer: Any,
    name: str,
    attributes: Mapping[str, Any] | None,
    parents: Iterable[Mapping[str, Any] | None],
) -> Any:
    """Start the span: the first trace context found is its parent; the next ones
    become links, but only once the sampler kept the span.

    The parent is needed for the sampling decision (a parent-based sampler follows
    the caller's choice), the links are not (the SDK's samplers ignore them), so
    a span that is not recorded parses one context, not one per event: parsing
    33 of a 500-event batch's contexts for links an unsampled span throws away
    cost more than the rest of its span.
    """
    remaining = iter(parents)
    parent = None
    for metadata in remaining:
        parent = _context_of(metadata)
        if parent is not None:
            break
    current = tracer.start_span(
        name, context=parent, attributes=dict(attributes) if attributes else None
    )
    if parent is not None and current.is_recording():
        _link(current, remaining)
    return current


def _link(current: Any, parents: Iterator[Mapping[str, Any] | None]) -> None:
    linked = 0
    for metadata in parents:
        context = _span_context_of(metadata)
        if context is None:
            continue
        current.add_link(context)
        linked += 1
        if linked >= _MAX_LINKS:
            return


def add_span_observer(observe: SpanObserver) -> Callable[[], None]:
    """Call ``observe(name, attributes, seconds, error)`` as each chronik span ends,
    traced or not (metrics hang here); returns the function that removes it.

    An observer runs inline on the hot path: keep it to counter increments.
    """
    _observers.append(observe)
    return lambda: _observers.remove(observe)


def set_attribute(current: Any, key: str, value: Any) -> None:
    """Set an attribute on a span from :func:`span` (nothing without the extra)."""
    if current is not None and current.is_recording():
        current.set_attribute(key, value)
