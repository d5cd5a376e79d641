"""``--instrument``: run the cases with tracing and/or metrics switched on, to price them.

- ``none``: OpenTelemetry installed, no provider configured (chronik's spans are skipped);
- ``absent``: as if ``opentelemetry`` were not installed (set before chronik is imported,
  see ``benchmarks/__main__``);
- ``otel-off``: an SDK provider whose sampler drops every span, with an exporter;
- ``otel-on``: every span sampled and exported (to memory, cleared as it goes);
- ``metrics``: the Prometheus counters of ``chronik run --metrics-port`` (no server);
- ``all``: ``otel-on`` and ``metrics``.

Compare like with like: with ``--instrument`` (any mode, ``none`` included) the
cases that seed events first (``project_redis``) give every event the same
``traceparent``, so each mode reads the same stored bytes.  Without it, a traced
mode's own appends would stamp a ``traceparent`` that an untraced mode's lack,
and the projection would be charged for decoding the bigger metadata (about 1 µs
of client CPU per event here), which is a cost of storing the context, paid by
every reader whether it traces or not, not of the reader's tracing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

MODES = ("none", "absent", "otel-off", "otel-on", "metrics", "all")


def instrument(mode: str) -> Callable[[], None]:
    """Switch ``mode`` on; returns what switches it off (and releases it)."""
    switch = Switch(mode)
    switch.on()

    def off() -> None:
        switch.off()
        switch.close()

    return off


class Switch:
    """A mode built once and switched on and off cheaply, as often as wanted: the
    ``tracing_overhead`` case alternates the modes between single appends."""

    def __init__(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown instrument mode {mode!r}; known: {', '.join(MODES)}")
        self.mode = mode
        self.provider: Any = None
        self.observe: Any = None
        self._remove: Callable[[], None] | None = None
        if mode in ("otel-off", "otel-on", "all"):
            self.provider = _provider(sampled=mode != "otel-off")
        if mode in ("metrics", "all"):
            from chronik._metrics import MetricsServer

            self.observe = MetricsServer(0)._observe

    def on(self) -> None:
        from eventstore import add_span_observer, use_tracer_provider

        if self.provider is not None:
            use_tracer_provider(self.provider)
        if self.observe is not None:
            self._remove = add_span_observer(self.observe)

    def off(self) -> None:
        from eventstore import use_tracer_provider

        if self.provider is not None:
            use_tracer_provider(None)
        if self._remove is not None:
            self._remove()
            self._remove = None

    def close(self) -> None:
        if self.provider is not None:
            self.provider.shutdown()


def _provider(*, sampled: bool) -> Any:
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON

    class Counting(SpanExporter):
        """An exporter that keeps nothing: the cost measured is chronik's, not I/O's."""

        def __init__(self) -> None:
            self.exported = 0

        def export(self, spans: Any) -> SpanExportResult:
            batch: list[ReadableSpan] = list(spans)
            self.exported += len(batch)
            return SpanExportResult.SUCCESS

    provider = TracerProvider(sampler=ALWAYS_ON if sampled else ALWAYS_OFF)
    provider.add_span_processor(SimpleSpanProcessor(Counting()))
    return provider
