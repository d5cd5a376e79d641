"""Correlation and causation ids that follow the work without being passed by hand.

Every event carries two ids in its metadata:

- ``correlation_id``: the same for everything one piece of outside work (an HTTP
  request, a CLI command) led to, across streams, sagas and consumers;
- ``causation_id``: what directly caused this event: the edge's request id for a
  command's events, the cause's event id for events written in reaction to another.

The ids live in a ``ContextVar``, so they follow ``await`` and tasks created
inside the context, and never leak between concurrent requests.  The edge sets
them with :func:`correlation`; code handling an event (a saga, a reaction, a
consumer) wraps the handling in :func:`caused_by`; appends stamp what is current.
Explicit metadata always wins: a key the caller set is never overwritten.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from ._model import RecordedEvent

CORRELATION_ID = "correlation_id"
CAUSATION_ID = "causation_id"


@dataclass(frozen=True, slots=True)
class Correlation:
    """The ids an append stamps on its events now."""

    correlation_id: str
    causation_id: str


_current: ContextVar[Correlation | None] = ContextVar("chronik_correlation", default=None)


def current_correlation() -> Correlation | None:
    """The correlation in effect here, or ``None`` outside any."""
    return _current.get()


@contextmanager
def correlation(
    correlation_id: str | None = None, causation_id: str | None = None
) -> Iterator[Correlation]:
    """Set the ids for the appends inside the block (the edge: a request id, say).

    ``correlation_id`` defaults to a new UUID; ``causation_id`` to the correlation
    id (the request caused the command's events).
    """
    for name, value in (("correlation_id", correlation_id), ("causation_id", causation_id)):
        if value is not None and (not isinstance(value, str) or not value):
            raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    chosen = correlation_id or str(uuid.uuid4())
    current = Correlation(chosen, causation_id or chosen)
    token = _current.set(current)
    try:
        yield current
    finally:
        _current.reset(token)


def correlation_of(event: RecordedEvent) -> Correlation:
    """The ids for events that ``event`` causes: its correlation, itself as the cause.

    An event stored before correlation ids existed starts a correlation of its own
    (its event id), so what it causes can still be traced back to it.
    """
    found = event.metadata.get(CORRELATION_ID) if event.metadata else None
    event_id = str(event.event_id)
    return Correlation(found if isinstance(found, str) and found else event_id, event_id)


@contextmanager
def caused_by(event: RecordedEvent) -> Iterator[Correlation]:
    """Appends inside the block are caused by ``event`` and keep its correlation id."""
    current = correlation_of(event)
    token = _current.set(current)
    try:
        yield current
    finally:
        _current.reset(token)


def stamped(metadata: Mapping[str, Any] | None, ids: Correlation) -> dict[str, Any]:
    """``metadata`` plus the ids, keeping what the caller set itself."""
    merged = dict(metadata) if metadata else {}
    merged.setdefault(CORRELATION_ID, ids.correlation_id)
    merged.setdefault(CAUSATION_ID, ids.causation_id)
    return merged
