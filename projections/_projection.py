"""The projection API: a name, a version, and a handler per event type.

A handler receives the typed event at its *current* schema version (the
projection's codec runs the upcasters first), the envelope it came in
(``RecordedEvent``, also upcast: current type, version and data; stream, version,
position and time as stored) and the read model's *writes* for the batch.  It
queues writes; it does not talk to the read model itself.  The runner commits
the queued writes of a whole batch together with the checkpoint, which is what
makes a crash unable to apply an event twice or lose it.

::

    balances = Projection("balances", writes=RedisWrites, version=1, codec=codec)

    @balances.on(Deposited)
    def deposited(event: Deposited, envelope: RecordedEvent, w: RedisWrites) -> None:
        w.hincrby("balance", envelope.stream_id, int(event.amount))

Bump ``version`` when the handlers change what they write: the runner of the new
version builds a fresh copy of the read model beside the old one and swaps it in
once it has caught up.
"""

from __future__ import annotations

import enum
import fnmatch
import inspect
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeAlias, TypeVar, overload

from eventstore import Event, EventCodec, RecordedEvent

from ._errors import ProjectionDefinitionError
from ._slots import check_name
from ._writes import Writes

W = TypeVar("W", bound=Writes)
E = TypeVar("E", bound=Event)
E2 = TypeVar("E2", bound=Event)
E3 = TypeVar("E3", bound=Event)

Handler: TypeAlias = Callable[[E, RecordedEvent, W], Awaitable[None] | None]


class PoisonPolicy(enum.StrEnum):
    """What a projection does with an event that still fails after its retries."""

    PARK = "park"  # park it as a dead letter and go on with the next event
    STOP = "stop"  # park it as a blocking dead letter and stop before it


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often a failing event is retried before it is parked, and how long apart."""

    attempts: int = 3
    initial_delay: float = 0.05
    max_delay: float = 2.0
    multiplier: float = 2.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"attempts must be >= 1, got {self.attempts}")
        if self.initial_delay < 0 or self.max_delay < 0 or self.multiplier < 1:
            raise ValueError("delays must be >= 0 and the multiplier >= 1")

    def delay(self, failures: int) -> float:
        """Seconds to wait after the ``failures``-th failed attempt."""
        return min(self.max_delay, self.initial_delay * self.multiplier ** (failures - 1))


@dataclass(frozen=True, slots=True)
class BoundHandler:
    """A registered handler and whether calling it gives an awaitable."""

    event_class: type[Event]
    function: Callable[..., Any]
    is_async: bool


class Projection(Generic[W]):
    """A named, versioned set of handlers that build one read model.

    ``writes`` is the writes type of the read model the projection targets
    (``RedisWrites`` or ``MongoWrites``).  ``codec`` decodes the feed; give the
    application's codec (with its upcasters) when there is one, else the
    projection builds its own from the handled classes.
    """

    def __init__(
        self,
        name: str,
        *,
        writes: type[W],
        version: int = 1,
        codec: EventCodec | None = None,
        on_poison: PoisonPolicy | str = PoisonPolicy.PARK,
        retry: RetryPolicy | None = None,
        description: str = "",
        must_handle: Iterable[str] = (),
    ) -> None:
        """``must_handle``: event type patterns (``fnmatch``, e.g. ``"ledger.*"``) this
        projection declares it handles completely; ``chronik schemas check`` fails when
        the app produces a matching type the projection has no handler for."""
        self.name = check_name(name)
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise ProjectionDefinitionError(name, f"version must be an int >= 1, got {version!r}")
        if not (isinstance(writes, type) and issubclass(writes, Writes)):
            raise ProjectionDefinitionError(name, f"writes must be a Writes subclass: {writes!r}")
        try:
            self.on_poison = PoisonPolicy(on_poison)
        except ValueError:
            raise ProjectionDefinitionError(
                name, f"on_poison must be 'park' or 'stop', got {on_poison!r}"
            ) from None
        self.version = version
        self.writes_type: type[W] = writes
        self.retry = retry if retry is not None else RetryPolicy()
        self.description = description
        self.must_handle: tuple[str, ...] = (
            (must_handle,) if isinstance(must_handle, str) else tuple(must_handle)
        )
        self._own_codec = codec is None
        self.codec = codec if codec is not None else EventCodec()
        self._handlers: dict[str, BoundHandler] = {}

    # Overloads so that one handler of several classes may take their union
    # (``event: Deposited | Withdrawn``): with one type variable for all of them a
    # type checker would infer their common base and refuse such a handler.
    @overload
    def on(self, first: type[E], /) -> Callable[[Handler[E, W]], Handler[E, W]]: ...
    @overload
    def on(
        self, first: type[E], second: type[E2], /
    ) -> Callable[[Handler[E | E2, W]], Handler[E | E2, W]]: ...
    @overload
    def on(
        self, first: type[E], second: type[E2], third: type[E3], /
    ) -> Callable[[Handler[E | E2 | E3, W]], Handler[E | E2 | E3, W]]: ...
    @overload
    def on(self, *event_classes: type[E]) -> Callable[[Handler[E, W]], Handler[E, W]]: ...
    def on(self, *event_classes: type[Any]) -> Callable[[Handler[Any, W]], Handler[Any, W]]:
        """Decorator: register the function as the handler of these event classes.

        One function may handle several classes; type its event parameter as their
        union (``event: Deposited | Withdrawn``).
        """
        if not event_classes:
            raise ProjectionDefinitionError(self.name, "on() needs at least one event class")

        def register(function: Handler[Any, W]) -> Handler[Any, W]:
            for cls in event_classes:
                self.add_handler(cls, function)
            return function

        return register

    def add_handler(self, event_class: type[E], function: Handler[E, W]) -> None:
        if not (isinstance(event_class, type) and issubclass(event_class, Event)):
            raise ProjectionDefinitionError(
                self.name, f"{event_class!r} is not an eventstore.Event subclass"
            )
        name = event_class.event_type
        if name in self._handlers:
            raise ProjectionDefinitionError(self.name, f"event type {name!r} has two handlers")
        if self._own_codec:
            self.codec.register(event_class)
        elif self.codec.event_classes.get(name) is not event_class:
            raise ProjectionDefinitionError(
                self.name,
                f"event class {event_class.__qualname__} ({name!r}) is not registered in the "
                "projection's codec",
            )
        self._handlers[name] = BoundHandler(
            event_class, function, inspect.iscoroutinefunction(function)
        )

    def handler(self, event_type: str) -> BoundHandler | None:
        """The handler of a current event type, or None: the projection ignores it."""
        return self._handlers.get(event_type)

    @property
    def handled_types(self) -> frozenset[str]:
        return frozenset(self._handlers)

    def missing_handlers(self, produced: Iterable[str]) -> list[str]:
        """The ``produced`` event types matching ``must_handle`` that have no handler."""
        return sorted(
            name
            for name in set(produced) - self._handlers.keys()
            if any(fnmatch.fnmatchcase(name, pattern) for pattern in self.must_handle)
        )

    def __repr__(self) -> str:
        return (
            f"Projection({self.name!r}, version={self.version}, "
            f"writes={self.writes_type.__name__}, handles={sorted(self._handlers)})"
        )
