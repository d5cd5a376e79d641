"""chronik's spans sent to an in-memory exporter, for tests that read them back."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from eventstore import use_tracer_provider


@contextlib.contextmanager
def in_memory_tracing(
    sampler: Any = None,
) -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    """Trace chronik with a fresh SDK provider (``sampler``: the SDK's default when
    ``None``) exporting to memory, for the block; the global provider is untouched."""
    exported = InMemorySpanExporter()
    provider = TracerProvider() if sampler is None else TracerProvider(sampler=sampler)
    provider.add_span_processor(SimpleSpanProcessor(exported))
    use_tracer_provider(provider)
    try:
        yield provider, exported
    finally:
        use_tracer_provider(None)
        provider.shutdown()
