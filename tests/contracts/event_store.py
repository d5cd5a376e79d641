"""The EventStore contract: one suite, run against every backend.

Subclasses in ``tests/backends/`` provide two fixtures:

- ``store``: a store that may already hold other tests' events (isolate with
  fresh stream ids);
- ``make_store``: an async factory ``make_store(**options)`` returning a new,
  empty store (its own schema in Postgres), closed by the fixture's teardown.

Tests that look at the whole feed use ``fresh_store``; the others use fresh
stream ids in ``store``.
"""

from __future__ import annotations

from contracts.event_store_input import BadInputContract
from contracts.event_store_reads import ReadsContract
from contracts.event_store_shapes import DataShapeContract
from contracts.event_store_support import (
    HANG_GUARD,
    ContractBase,
    MakeStore,
    collect,
    feed_after,
    new_events,
    new_stream,
)
from contracts.event_store_writes import WritesContract

__all__ = [
    "HANG_GUARD",
    "ContractBase",
    "EventStoreContract",
    "MakeStore",
    "collect",
    "feed_after",
    "new_events",
    "new_stream",
]


class EventStoreContract(WritesContract, BadInputContract, DataShapeContract, ReadsContract):
    """Behaviour every EventStore backend must show; subclass once per backend."""
