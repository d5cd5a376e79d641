"""chronik reads the usual ``traceparent`` by hand (a batch span reads dozens): for any
metadata it must find exactly the span context the W3C propagator extracts."""

from __future__ import annotations

from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st
from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from eventstore._tracing import _context_of, _span_context_of

_propagator = TraceContextTextMapPropagator()


def _usually(valid: list[str], invalid: list[str]) -> st.SearchStrategy[str]:
    # Mostly valid parts, so that most headers are near misses of the usual form.
    return st.sampled_from(valid * 3 * len(invalid) + invalid)


def _hex(digits: int) -> st.SearchStrategy[str]:
    # Zero ids (invalid) and upper case (refused) come up often enough to matter.
    text = st.text("0123456789abcdef", min_size=digits, max_size=digits)
    return st.builds(
        lambda found, case: found if case == "lower" else found.upper(),
        st.one_of(text, st.just("0" * digits)),
        _usually(["lower"], ["upper"]),
    )


_traceparents = st.one_of(
    st.builds(
        lambda version, trace_id, span_id, flags, tail: (
            f"{version}-{trace_id}-{span_id}-{flags}{tail}"
        ),
        _usually(["00"], ["01", "ff", "0g", "0", " 00"]),
        _hex(32),
        _hex(16),
        _usually(["00", "01", "ff"], ["1", "zz", "0A"]),
        _usually([""], ["-extra", " ", "\t", "-", "\n"]),
    ),
    st.text(max_size=80),
    st.integers(),
)
_tracestates = st.one_of(
    st.none(), st.just("vendor=value,other=1"), st.just("not a tracestate"), st.integers()
)


def _expected(metadata: dict[str, Any]) -> Any:
    carrier = {k: v for k, v in metadata.items() if isinstance(v, str)}
    found = trace.get_current_span(_propagator.extract(carrier)).get_span_context()
    return found if found.is_valid else None


def _fields(context: Any) -> Any:
    if context is None:
        return None
    return (
        context.trace_id,
        context.span_id,
        context.is_remote,
        context.trace_flags,
        tuple(context.trace_state.items()),
    )


@settings(max_examples=300)  # microseconds each
@given(_traceparents, _tracestates)
@example("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", None)
@example("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "vendor=value")
@example("00-00000000000000000000000000000000-00f067aa0ba902b7-01", None)
@example("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x", None)
@example("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", None)
@example("00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01", None)
@example("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0A", None)
@example("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", None)
@example("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", None)
@example("0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", None)
@example("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-later", None)
@example(" 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\t", None)
@example("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\n", None)
def test_the_span_context_is_the_propagators(traceparent: Any, tracestate: Any) -> None:
    metadata: dict[str, Any] = {"traceparent": traceparent}
    if tracestate is not None:
        metadata["tracestate"] = tracestate
    expected = _expected(metadata)
    assert _fields(_span_context_of(metadata)) == _fields(expected)
    context = _context_of(metadata)
    found = None if context is None else trace.get_current_span(context).get_span_context()
    assert _fields(found) == _fields(expected)
