"""Tracing is optional: without opentelemetry every helper is a no-op, and with the
API installed but no provider configured nothing is stamped."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from eventstore import InMemoryEventStore, NewEvent, trace_span, tracing_available

REPO = Path(__file__).resolve().parents[2]

_WITHOUT_OTEL = """
import asyncio, sys
sys.modules["opentelemetry"] = None  # an import of it now fails, as when absent
from eventstore import InMemoryEventStore, NewEvent, correlation, trace_span, tracing_available

async def main():
    store = InMemoryEventStore()
    with trace_span("outer") as span, correlation("c-1"):
        assert span is None
        await store.append("s-1", [NewEvent("x", {})])
    [event] = [e async for e in store.read_stream("s-1")]
    print(tracing_available(), sorted(event.metadata))

asyncio.run(main())
"""

_GLOBAL_PROVIDER = """
import asyncio
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from eventstore import InMemoryEventStore, NewEvent

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)

async def main():
    store = InMemoryEventStore()
    await store.append("s-1", [NewEvent("x", {})])
    [event] = [e async for e in store.read_stream("s-1")]
    [span] = exporter.get_finished_spans()
    print(span.name, event.metadata["traceparent"].split("-")[2] == f"{span.context.span_id:016x}")

asyncio.run(main())
"""


_PROVIDER_SET_LATER = """
import asyncio
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from eventstore import InMemoryEventStore, NewEvent

async def main():
    store = InMemoryEventStore()
    await store.append("s-1", [NewEvent("x", {})])  # no provider yet: chronik looks it up
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)  # after chronik's first span
    await store.append("s-1", [NewEvent("x", {})])
    first, second = [e async for e in store.read_stream("s-1")]
    [span] = exporter.get_finished_spans()
    print(sorted(first.metadata), span.name, span.attributes["chronik.events"],
          second.metadata["traceparent"].split("-")[2] == f"{span.context.span_id:016x}")

asyncio.run(main())
"""

_PROVIDER_FROM_THE_ENVIRONMENT = """
from eventstore import trace_span
with trace_span("chronik.append", {"chronik.stream_id": "s-1"}) as span:
    print(span is not None and span.is_recording())
"""


def _python(code: str, **environment: str) -> str:
    base = {k: v for k, v in os.environ.items() if k != "OTEL_PYTHON_TRACER_PROVIDER"}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60,
        check=False, env={**base, **environment},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_the_global_provider_is_used_when_the_app_sets_one() -> None:
    # In a process of its own: a global provider cannot be unset.
    assert _python(_GLOBAL_PROVIDER) == "chronik.append True"


def test_a_global_provider_set_after_chronik_first_looked_is_used() -> None:
    # chronik keeps OpenTelemetry's lookup out of the hot path once it found no
    # provider; a provider the app sets afterwards must still be picked up.
    assert _python(_PROVIDER_SET_LATER) == "[] chronik.append 1 True"


def test_a_provider_named_in_the_environment_is_used() -> None:
    found = _python(
        _PROVIDER_FROM_THE_ENVIRONMENT, OTEL_PYTHON_TRACER_PROVIDER="sdk_tracer_provider"
    )
    assert found == "True"
    assert _python(_PROVIDER_FROM_THE_ENVIRONMENT) == "False"


def test_without_opentelemetry_tracing_is_a_no_op() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _WITHOUT_OTEL],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False ['causation_id', 'correlation_id']"


async def test_installed_but_unconfigured_stamps_no_trace_context() -> None:
    assert tracing_available()
    store = InMemoryEventStore()
    with trace_span("outer") as span:
        assert span is None  # no provider: no span, not even a non-recording one
        await store.append("s-1", [NewEvent("x", {})])
    [event] = [e async for e in store.read_stream("s-1")]
    assert event.metadata == {}
