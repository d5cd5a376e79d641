"""Given/when/then for aggregates, for your own tests (no test framework needed).

::

    from aggregates.testing import scenario

    def test_no_overdraft() -> None:
        (
            scenario(Ledger)
            .given(Opened(owner="ann", currency="EUR"),
                   Deposited(amount=Decimal(5), currency="EUR"))
            .when(lambda ledger: ledger.withdraw(Decimal(6)))
            .then_raises(InsufficientFunds)
        )

Every given event goes through the aggregate's codec and JSON, as it would through
a store: ``given_stored`` takes raw envelopes of older releases and upcasts them.
``then`` also round-trips each recorded event, so an event that does not survive
storage (a float, an unserializable field) fails the test that recorded it.
Failures raise ``ScenarioFailed`` (an ``AssertionError``) with both sides listed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar
from uuid import uuid4

from eventstore import Event, EventCodec, NewEvent, Position, RecordedEvent

from ._aggregate import Aggregate
from ._codec import build_codec
from ._errors import UnhandledEventError

A = TypeVar("A", bound=Aggregate[Any])
E = TypeVar("E", bound=BaseException)

__all__ = ["Scenario", "ScenarioFailed", "scenario"]

_codecs: dict[type[Aggregate[Any]], EventCodec] = {}


class ScenarioFailed(AssertionError):
    """A then-step did not hold."""


def scenario(aggregate_type: type[A], aggregate_id: str = "test") -> Scenario[A]:
    """Start a scenario for a fresh ``aggregate_type`` with id ``aggregate_id``."""
    return Scenario(aggregate_type, aggregate_id)


class Scenario(Generic[A]):
    """given(events...) -> when(command) -> then(events...) / then_raises(error)."""

    def __init__(self, aggregate_type: type[A], aggregate_id: str) -> None:
        self.aggregate_type = aggregate_type
        codec = _codecs.get(aggregate_type)
        if codec is None:
            codec = _codecs[aggregate_type] = build_codec([aggregate_type])
        self.codec = codec
        self.aggregate: A = aggregate_type(aggregate_id)
        self._ran = False
        self._error: BaseException | None = None
        self._before: tuple[int, dict[str, Any]] | None = None

    # -- given -----------------------------------------------------------------

    def given(self, *events: Event) -> Scenario[A]:
        """History as current typed events (stored and decoded through the codec)."""
        return self.given_stored(*(self.codec.encode(event) for event in events))

    def given_stored(self, *events: NewEvent) -> Scenario[A]:
        """History as raw envelopes, e.g. the old shapes an earlier release wrote."""
        if self._ran:
            raise ScenarioFailed("given() after when(): history must come first")
        aggregate = self.aggregate
        appliers = type(aggregate)._appliers
        for new in events:
            recorded = _as_stored(aggregate.stream_id, aggregate.version + 1, new)
            event = self.codec.decode(recorded)
            apply = appliers.get(type(event))
            if apply is None:
                raise UnhandledEventError(
                    aggregate.type_name, recorded.type, recorded.stream_id, recorded.version
                )
            apply(aggregate, event)
            aggregate.version += 1
        return self

    # -- when ------------------------------------------------------------------

    def when(self, command: Callable[[A], object]) -> Scenario[A]:
        """Run ``command`` on the aggregate now; an exception is kept for then_raises."""
        if self._ran:
            raise ScenarioFailed("when() called twice; chain a second scenario instead")
        self._ran = True
        self._before = (self.aggregate.version, self.aggregate.state_dict())
        try:
            command(self.aggregate)
        except Exception as error:
            self._error = error
        return self

    # -- then ------------------------------------------------------------------

    def then(self, *expected: Event) -> A:
        """The command succeeded and recorded exactly ``expected`` (none: recorded nothing)."""
        self._require_ran("then")
        if self._error is not None:
            raise ScenarioFailed(
                f"expected events {_listing(expected)}, but the command raised "
                f"{type(self._error).__name__}: {self._error}"
            ) from self._error
        recorded = self.aggregate.pending_events
        if list(recorded) != list(expected):
            raise ScenarioFailed(
                f"recorded events differ\n  expected: {_listing(expected)}\n"
                f"  recorded: {_listing(recorded)}"
            )
        for event in recorded:
            back = self.codec.decode(
                _as_stored(self.aggregate.stream_id, 1, self.codec.encode(event))
            )
            if back != event:
                raise ScenarioFailed(
                    f"{type(event).__name__} does not survive storage:\n  recorded: {event!r}\n"
                    f"  read back: {back!r}"
                )
        return self.aggregate

    def then_raises(self, error: type[E], *, match: str | None = None) -> E:
        """The command raised ``error`` (message matching ``match``) and changed nothing."""
        self._require_ran("then_raises")
        raised = self._error
        if raised is None:
            raise ScenarioFailed(
                f"expected {error.__name__}, but the command succeeded and recorded "
                f"{_listing(self.aggregate.pending_events)}"
            )
        if not isinstance(raised, error):
            raise ScenarioFailed(
                f"expected {error.__name__}, got {type(raised).__name__}: {raised}"
            ) from raised
        if match is not None and not re.search(match, str(raised)):
            raise ScenarioFailed(f"{type(raised).__name__} message {str(raised)!r} !~ {match!r}")
        if self.aggregate.pending_events:
            raise ScenarioFailed(
                f"{type(raised).__name__} was raised, but events were recorded anyway: "
                f"{_listing(self.aggregate.pending_events)}"
            )
        if self._before != (self.aggregate.version, self.aggregate.state_dict()):
            raise ScenarioFailed(
                f"{type(raised).__name__} was raised, but the state changed:\n"
                f"  before: {self._before}\n"
                f"  after:  {(self.aggregate.version, self.aggregate.state_dict())}"
            )
        return raised

    def then_state(self, check: Callable[[A], object] | None = None, **fields: Any) -> A:
        """The command succeeded; each ``fields`` item equals the state's field, and
        ``check(aggregate)`` (if given) does not return False or raise."""
        self._require_ran("then_state")
        if self._error is not None:
            raise ScenarioFailed(
                f"the command raised {type(self._error).__name__}: {self._error}"
            ) from self._error
        state = self.aggregate.state
        for name, wanted in fields.items():
            actual = getattr(state, name)
            if actual != wanted:
                raise ScenarioFailed(f"state.{name} is {actual!r}, expected {wanted!r}")
        if check is not None and check(self.aggregate) is False:
            raise ScenarioFailed(f"state check failed on {self.aggregate!r}")
        return self.aggregate

    def _require_ran(self, step: str) -> None:
        if not self._ran:
            raise ScenarioFailed(f"{step}() needs a when() first")


def _as_stored(stream_id: str, version: int, new: NewEvent) -> RecordedEvent:
    # The JSON round trip is what a store does to the data: a Decimal becomes a
    # string, a tuple a list, and anything JSON cannot hold fails here.
    return RecordedEvent(
        stream_id=stream_id,
        version=version,
        position=Position(0, version),
        event_id=new.event_id or uuid4(),
        type=new.type,
        schema_version=new.schema_version,
        data=json.loads(json.dumps(new.data)),
        metadata=dict(new.metadata or {}),
        recorded_at=datetime.now(UTC),
    )


def _listing(events: Sequence[Event]) -> str:
    if not events:
        return "(none)"
    return "[" + ", ".join(repr(event) for event in events) + "]"
