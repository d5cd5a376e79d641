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
from contextlib import AbstractContextManager
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
    # The key the API keeps the current span under (what get_current_span reads).
    _SPAN_KEY = _trace.propagation._SPAN_KEY
    # What a span context without a trace state holds (one shared object).
    _EMPTY_TRACE_STATE = _trace.DEFAULT_TRACE_STATE

SpanObserver = Callable[[str, Mapping[str, Any], float, "BaseException | None"], None]
_observers: list[SpanObserver] = []

#: A provider given to :func:`use_tracer_provider` (else the global one is used).
_chosen: Any = None
_chosen_tracer: Any = None
#: The global provider last seen and chronik's tracer from it (``None``: unset).
_global: tuple[Any, Any] = (None, None)
#: Whether OpenTelemetry's own lookup has run once (see ``_global_tracer``).
_looked_up = False
_UNKNOWN = object()


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
    return _global_tracer()


def _global_tracer() -> Any:
    """chronik's tracer from the global provider, ``None`` while there is none.

    ``get_tracer_provider()`` reads ``os.environ`` on every call while no provider
    is set (a provider may be named by ``OTEL_PYTHON_TRACER_PROVIDER``): half a
    microsecond, a third of what an append's tracing cost with no provider.  So it
    runs once; after it, the module global that ``set_tracer_provider`` fills is
    read directly, which still sees a provider an app sets after chronik's first
    span.  (A provider named in the environment only after that first span is
    picked up once anything calls ``get_tracer_provider()``, as OpenTelemetry's
    own instrumentations do.)  An API without that global is asked every time.
    """
    global _global, _looked_up
    provider: Any = getattr(_trace, "_TRACER_PROVIDER", _UNKNOWN)
    if provider is None and _looked_up:
        return None
    if provider is None or provider is _UNKNOWN:
        _looked_up = True
        provider = _trace.get_tracer_provider()
    if _global[0] is not provider:
        # get_tracer takes a lock and edits the warnings filters on every call (older
        # SDKs even built a new tracer each time): keep one per provider.
        unset = isinstance(provider, _unset_providers)
        _global = (provider, None if unset else provider.get_tracer("chronik"))
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
    # The context's own lookup, not get_current_span(): with no span current (no
    # provider, or outside any span) this is all an append's stamp costs.
    return trace_context_of(_context.get_current().get(_SPAN_KEY))


def trace_context_of(current: Any) -> dict[str, str]:
    """What propagates span ``current`` (see :func:`current_trace_context`): for a
    caller holding the span, which then needs no lookup in the context."""
    if current is None:
        return {}
    found = current.get_span_context()
    if not found.is_valid:
        return {}
    # %-formatting: a quarter cheaper than the f-string's format specs, per append.
    carrier = {
        TRACEPARENT: "00-%032x-%016x-%02x"  # noqa: UP031
        % (found.trace_id, found.span_id, found.trace_flags)
    }
    state = found.trace_state
    # The shared empty state first: a TraceState's truth is a Python-level __len__.
    if state is not _EMPTY_TRACE_STATE and state:
        carrier[TRACESTATE] = state.to_header()
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


def span(
    name: str,
    attributes: Mapping[str, Any] | None = None,
    *,
    parents: Iterable[Mapping[str, Any] | None] = (),
) -> AbstractContextManager[Any]:
    """A span named ``name`` around the block (``None`` is yielded without the extra,
    or while no provider is configured and nothing observes spans).

    ``attributes``: what the span is about, known before it starts (a stream id, a
    projection's name): the sampler sees them, so an attribute-based sampler can
    decide on them.  Facts known only later (how many events, whether a snapshot was
    used) belong in :func:`set_attribute`, which costs nothing on a span that is not
    recorded.  The mapping is not copied: observers read it when the span ends, so a
    caller may add to it meanwhile (the append adds its event count).

    ``parents``: the metadata of the events being handled.  The first one with a
    trace context becomes the span's parent (one trace from command to read model);
    the others are linked, since a batch has one parent but may carry many traces.
    """
    tracer = _tracer()
    if tracer is None and not _observers:
        return _NO_SPAN
    return _Span(tracer, name, attributes, parents)


class _NoSpan:
    """The block without a span: one shared object, nothing allocated per call."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


_NO_SPAN = _NoSpan()


class _Span:
    """A span started and attached by hand, as a plain context manager.

    Neither ``start_as_current_span`` nor a generator-based context manager: the
    same span, context and error recording without their layers of generator
    machinery, which cost a noticeable part of an unsampled append span.
    """

    __slots__ = ("attributes", "current", "name", "parents", "started", "token", "tracer")

    def __init__(
        self,
        tracer: Any,
        name: str,
        attributes: Mapping[str, Any] | None,
        parents: Iterable[Mapping[str, Any] | None],
    ) -> None:
        self.tracer = tracer
        self.name = name
        self.attributes = attributes
        self.parents = parents
        self.current: Any = None
        self.token: Any = None
        self.started = 0.0

    def __enter__(self) -> Any:
        if _observers:
            self.started = time.perf_counter()
        tracer = self.tracer
        if tracer is not None:
            # Looked up once: the SDK would look the current context up twice more
            # (for the parent and for the sampler) when given none.
            outer = _context.get_current()
            current = _start(tracer, self.name, self.attributes, self.parents, outer)
            self.current = current
            self.token = _context.attach(_context.set_value(_SPAN_KEY, current, outer))
        return self.current

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, _traceback: Any
    ) -> None:
        current = self.current
        try:
            if current is not None:
                try:
                    # As OpenTelemetry's use_span: errors, not GeneratorExit and the like.
                    if isinstance(error, Exception) and current.is_recording():
                        current.record_exception(error)
                        current.set_status(
                            _trace.Status(
                                _trace.StatusCode.ERROR, f"{type(error).__name__}: {error}"
                            )
                        )
                finally:
                    _context.detach(self.token)
                    current.end()
        finally:
            if _observers:
                seconds = time.perf_counter() - self.started if self.started else 0.0
                for observe in _observers:
                    observe(self.name, self.attributes or {}, seconds, error)


def _start(
    tracer: Any,
    name: str,
    attributes: Mapping[str, Any] | None,
    parents: Iterable[Mapping[str, Any] | None],
    outer: Any,
) -> Any:
    """Start the span: the first trace context found is its parent (else the
    current span of ``outer``, the current context); the next ones become links,
    but only once the sampler kept the span.

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
    # Not copied: the SDK copies what it keeps into the span, and a sampler that
    # drops the span reads the mapping only while deciding.
    current = tracer.start_span(
        name, context=outer if parent is None else parent, attributes=attributes or None
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
