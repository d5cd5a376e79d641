"""Shared pieces of the EventStore contract: helpers, typed events, the base class."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from decimal import Decimal
from typing import Any, ClassVar

import pytest

from eventstore import (
    Event,
    EventStore,
    NewEvent,
    Position,
    RecordedEvent,
)
from upcasters import UpcasterChain

MakeStore = Callable[..., Awaitable[EventStore]]

# Long enough that a lost event or a hung subscription fails the test instead of
# hanging the suite; never an assertion about speed.
HANG_GUARD = 20.0


class Deposited(Event):
    event_type: ClassVar[str] = "contract.Deposited"
    event_version: ClassVar[int] = 2
    account: str
    amount: Decimal


UPCASTERS = UpcasterChain()


@UPCASTERS.upcaster("contract.Deposited", from_version=1)
def _deposited_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "account": "legacy"}


class Withdrawn(Event):
    event_type: ClassVar[str] = "contract.Withdrawn"
    amount: Decimal


# -- helpers -----------------------------------------------------------------


def new_stream(prefix: str = "contract") -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def new_events(count: int, kind: str = "contract.Happened", start: int = 0) -> list[NewEvent]:
    return [NewEvent(kind, {"n": start + i}, event_id=uuid.uuid4()) for i in range(count)]


async def collect(events: AsyncIterator[Any]) -> list[Any]:
    return [event async for event in events]


async def feed_after(store: EventStore, after: Position | None) -> list[RecordedEvent]:
    return await collect(store.read_all(after))


def ids(events: Sequence[RecordedEvent | NewEvent]) -> list[Any]:
    return [event.event_id for event in events]


class Unserializable:
    pass


class ContractBase:
    """Fixtures and checks every part of the contract uses.

    Subclasses provide ``store`` and ``make_store`` (see ``contracts.event_store``).
    """

    @pytest.fixture
    async def fresh_store(self, make_store: MakeStore) -> EventStore:
        return await make_store()

    async def until_subscriber_waits(self, store: EventStore) -> None:
        """Let a just-started subscription reach its wait for new events.

        Not needed for correctness (an append that lands first is found by the
        catch-up read); it makes the wake-up path the one usually tested.  An
        in-process store gets there within a few turns of the event loop;
        backends with an observable listener override this with a real condition.
        """
        for _ in range(20):
            await asyncio.sleep(0)

    async def assert_nothing_written(
        self,
        store: EventStore,
        stream_id: str,
        version_before: int,
        head_before: Position | None,
    ) -> None:
        assert await store.stream_version(stream_id) == version_before
        assert len(await collect(store.read_stream(stream_id))) == version_before
        assert await feed_after(store, head_before) == []
        assert await store.head() == head_before
