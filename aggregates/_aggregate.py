"""The Aggregate base: state, commands that record events, apply methods that replay them.

An aggregate is pure and synchronous.  Its state is a pydantic model (typed fields,
JSON for snapshots, a JSON schema for the snapshot fingerprint); commands check rules
and ``record`` events; one apply method per event class evolves the state.  Recording
applies the event at once, so a command sees its own effects, and replaying the same
events rebuilds the same state.  The Repository does all the I/O.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar, Generic, Self, TypeVar, overload
from uuid import UUID, uuid4

from pydantic import BaseModel, ValidationError

from eventstore import MAX_STREAM_ID_LENGTH, MAX_VERSION, Event, InvalidInputError
from upcasters import UpcasterChain

from ._errors import (
    AggregateDefinitionError,
    DomainError,
    InvalidStateError,
    UnhandledEventError,
)
from ._fingerprint import schema_fingerprint

S = TypeVar("S", bound=BaseModel)
A = TypeVar("A", bound="Aggregate[Any]")
F = TypeVar("F", bound=Callable[..., Any])
E = TypeVar("E", bound=DomainError)

ApplyMethod = Callable[[Any, Any], None]

_APPLIES_ATTRIBUTE = "__chronik_applies__"
_TYPE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.]*$")


@overload
def applies(first: type[Event], /, *more: type[Event]) -> Callable[[F], F]: ...
@overload
def applies(first: F, /) -> F: ...
def applies(first: Any, /, *more: type[Event]) -> Any:
    """Mark a method as the apply method of one or more event classes.

    ``@applies(Deposited)`` names the classes; bare ``@applies`` takes the class from
    the annotation of the method's event parameter.  Apply methods must not raise for
    events a command could record: they run on every replay, long after the rules
    that allowed the event may have changed.
    """
    if isinstance(first, type) and issubclass(first, Event):
        classes = (first, *more)

        def mark(method: F) -> F:
            setattr(method, _APPLIES_ATTRIBUTE, classes)
            return method

        return mark
    if more or not callable(first):
        raise TypeError("use @applies(EventClass, ...) or bare @applies on an annotated method")
    setattr(first, _APPLIES_ATTRIBUTE, None)  # resolved from annotations by the class
    return first


def command(method: F) -> F:
    """Make a command all-or-nothing: if it raises, state and pending events are restored.

    Rules should be checked before anything is recorded; this guards the commands that
    record several events and fail half-way, so a refused command never leaves a
    half-applied aggregate behind.
    """

    @functools.wraps(method)
    def run(self: Aggregate[Any], *args: Any, **kwargs: Any) -> Any:
        state, version, pending = self.state.model_copy(deep=True), self.version, len(self._pending)
        try:
            return method(self, *args, **kwargs)
        except BaseException:
            self.state, self.version = state, version
            del self._pending[pending:]
            raise

    return typing.cast(F, run)


class Aggregate(Generic[S]):
    """Base class of event-sourced aggregates.

    Subclasses declare::

        class Ledger(Aggregate[LedgerState]):
            type_name = "ledger"              # stream ids are "ledger-<id>"
            upcasters = LEDGER_UPCASTERS      # optional UpcasterChain for old events

            @command
            def deposit(self, amount: Decimal) -> None:
                ...                           # check rules, then:
                self.record(Deposited(amount=amount))

            @applies(Deposited)
            def _deposited(self, event: Deposited) -> None:
                self.state.balance += event.amount

    ``events`` (the event classes) is derived from the apply methods unless declared;
    every declared class needs an apply method.  A class without ``type_name`` is
    refused at definition unless it says it is a shared base:
    ``class Base(Aggregate[State], abstract=True)`` (such a class cannot be loaded,
    saved or instantiated; its concrete subclasses declare the ``type_name``).
    ``state_type`` is taken from the generic argument.  Bump ``state_version`` when
    apply logic changes the meaning of the state without changing its schema: it
    invalidates existing snapshots.
    """

    type_name: ClassVar[str] = ""
    events: ClassVar[tuple[type[Event], ...]] = ()
    upcasters: ClassVar[UpcasterChain | None] = None
    state_type: ClassVar[type[BaseModel]]
    state_version: ClassVar[int] = 1
    _appliers: ClassVar[dict[type[Event], ApplyMethod]] = {}
    _fingerprint: ClassVar[str | None] = None

    __slots__ = ("_pending", "id", "state", "version")

    id: str
    version: int
    state: S
    _pending: list[tuple[Event, UUID]]

    def __init__(self, id: str, *, state: S | None = None, version: int = 0) -> None:
        cls = type(self)
        if not cls.type_name:
            raise TypeError(f"{cls.__qualname__} is abstract: it declares no type_name")
        if (
            not isinstance(id, str)
            or not id
            or len(id) + len(cls.type_name) + 1 > MAX_STREAM_ID_LENGTH
        ):
            raise InvalidInputError(
                f"{cls.type_name}-{id}",
                f"aggregate id must be a non-empty str that keeps the stream id within "
                f"{MAX_STREAM_ID_LENGTH} characters, got {id!r}",
            )
        if (
            isinstance(version, bool)
            or not isinstance(version, int)
            or not 0 <= version <= MAX_VERSION
        ):
            raise InvalidInputError(f"{cls.type_name}-{id}", f"invalid version {version!r}")
        self.id = id
        self.version = version
        self.state = state if state is not None else self.initial_state()
        self._pending = []

    # -- class-level declarations -------------------------------------------------

    def __init_subclass__(cls, abstract: bool = False, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        name = cls.__qualname__
        if "state_type" not in cls.__dict__:
            found = _state_type_from_bases(cls)
            if found is not None:
                cls.state_type = found
        state_type = getattr(cls, "state_type", None)
        if state_type is not None and not (
            isinstance(state_type, type) and issubclass(state_type, BaseModel)
        ):
            raise AggregateDefinitionError(name, _not_a_model(state_type))
        if not cls.type_name and not abstract:
            # Without this a forgotten type_name passed silently and stream ids
            # came out as "-<id>".
            raise AggregateDefinitionError(
                name,
                "no type_name: declare type_name = '...' (it prefixes stream ids as "
                "'<type_name>-<id>'), or pass abstract=True for a shared base class",
            )
        cls._appliers = _collect_appliers(cls)
        cls._fingerprint = None
        if "events" in cls.__dict__:
            for event_class in cls.events:
                if event_class not in cls._appliers:
                    raise AggregateDefinitionError(
                        name,
                        f"event {event_class.event_type!r} is declared but has no apply method",
                    )
        else:
            cls.events = tuple(cls._appliers)
        if cls.type_name:
            _check_concrete(cls)

    @classmethod
    def initial_state(cls) -> S:
        """The state before the first event; override when fields have no defaults."""
        return typing.cast(S, cls.state_type())

    @classmethod
    def stream_id_for(cls, aggregate_id: str) -> str:
        if not cls.type_name:
            raise TypeError(f"{cls.__qualname__} is abstract: it declares no type_name")
        return f"{cls.type_name}-{aggregate_id}"

    @classmethod
    def state_fingerprint(cls) -> str:
        """A stable hash of the state schema, type name and ``state_version``.

        Snapshots carry it; a snapshot with another fingerprint is ignored.
        """
        fingerprint = cls.__dict__.get("_fingerprint")
        if fingerprint is None:
            fingerprint = schema_fingerprint(
                cls.type_name, cls.state_version, cls.state_type.model_json_schema()
            )
            cls._fingerprint = fingerprint
        return typing.cast(str, fingerprint)

    # -- replay --------------------------------------------------------------

    @classmethod
    def replay(cls, aggregate_id: str, events: Iterable[Event]) -> Self:
        """A fresh aggregate with ``events`` applied; its version is their count."""
        aggregate = cls(aggregate_id)
        appliers = cls._appliers
        count = 0
        for event in events:
            apply = appliers.get(type(event))
            if apply is None:
                raise UnhandledEventError(cls.type_name, event.event_type)
            apply(aggregate, event)
            count += 1
        aggregate.version = count
        return aggregate

    @classmethod
    def from_state(cls, aggregate_id: str, version: int, state: Mapping[str, Any]) -> Self:
        """An aggregate rebuilt from :meth:`state_dict` output (a snapshot)."""
        try:
            model = cls.state_type.model_validate(state)
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "(root)"
            raise InvalidStateError(
                cls.type_name,
                aggregate_id,
                version,
                f"{error.error_count()} validation error(s), first {where}: {first['msg']}",
            ) from error
        return cls(aggregate_id, state=typing.cast(S, model), version=version)

    def state_dict(self) -> dict[str, Any]:
        """The state as JSON-ready data (Decimal as strings), for snapshots."""
        return self.state.model_dump(mode="json")

    # -- commands ------------------------------------------------------------

    def record(self, event: Event) -> None:
        """Apply ``event`` now and keep it as pending until the Repository saves it."""
        apply = self._appliers.get(type(event))
        if apply is None:
            raise UnhandledEventError(self.type_name, getattr(event, "event_type", repr(event)))
        apply(self, event)
        self.version += 1
        # The id is fixed at record time so that saving the same batch twice (a retry
        # after a lost reply) is an idempotent no-op in the store, not a duplicate.
        self._pending.append((event, uuid4()))

    def refuse(self, error: type[E], detail: str) -> E:
        """The domain error ``error`` about this aggregate, ready to ``raise``."""
        return error(self.type_name, self.id, detail)

    @property
    def stream_id(self) -> str:
        return f"{self.type_name}-{self.id}"

    @property
    def pending_events(self) -> tuple[Event, ...]:
        """Recorded events not saved yet, oldest first."""
        return tuple(event for event, _ in self._pending)

    @property
    def saved_version(self) -> int:
        """The stream version this aggregate was loaded at (the expected version on save)."""
        return self.version - len(self._pending)

    def _pending_with_ids(self) -> list[tuple[Event, UUID]]:
        return list(self._pending)

    def _replace_pending_ids(self, event_ids: list[UUID]) -> None:
        self._pending = [
            (event, event_id) for (event, _), event_id in zip(self._pending, event_ids, strict=True)
        ]

    def _mark_saved(self, saved: list[tuple[Event, UUID]]) -> None:
        # Only if they are still the oldest pending events: two tasks saving one
        # aggregate object at once must not drop events the other one recorded.
        if self._pending[: len(saved)] == saved:
            del self._pending[: len(saved)]

    def __repr__(self) -> str:
        pending = f", {len(self._pending)} pending" if self._pending else ""
        return f"<{type(self).__qualname__} {self.id!r} v{self.version}{pending}: {self.state!r}>"


def _state_type_from_bases(cls: type) -> type[BaseModel] | None:
    for base in getattr(cls, "__orig_bases__", ()):
        origin = typing.get_origin(base)
        if isinstance(origin, type) and issubclass(origin, Aggregate):
            args = typing.get_args(base)
            if args and isinstance(args[0], type) and issubclass(args[0], BaseModel):
                return args[0]
            if args and isinstance(args[0], type):
                # Aggregate[SomeDataclass]: the user did name a state, just not a model.
                raise AggregateDefinitionError(cls.__qualname__, _not_a_model(args[0]))
    return None


def _not_a_model(state_type: object) -> str:
    what = (
        "a dataclass"
        if dataclasses.is_dataclass(state_type)
        else f"a {type(state_type).__name__}"
        if not isinstance(state_type, type)
        else "not a pydantic model"
    )
    shown = getattr(state_type, "__qualname__", repr(state_type))
    return (
        f"the state {shown} is {what}: the state must be a pydantic model "
        "(subclass pydantic.BaseModel), used as Aggregate[YourState]"
    )


def _collect_appliers(cls: type) -> dict[type[Event], ApplyMethod]:
    names: dict[type[Event], str] = {}
    # Base classes first, so a subclass's marked method wins for the same event class.
    # Dispatch goes through the attribute name: overriding an apply method in a
    # subclass replaces it, as overriding any method does.
    for klass in reversed(cls.__mro__):
        declared: dict[type[Event], str] = {}
        for attribute, method in vars(klass).items():
            if not callable(method) or not hasattr(method, _APPLIES_ATTRIBUTE):
                continue
            for event_class in _applied_classes(cls, attribute, method):
                other = declared.get(event_class)
                if other is not None:
                    raise AggregateDefinitionError(
                        cls.__qualname__,
                        f"event {event_class.event_type!r} has two apply methods in "
                        f"{klass.__qualname__}: {other} and {attribute}",
                    )
                declared[event_class] = attribute
        names.update(declared)
    return {event_class: getattr(cls, attribute) for event_class, attribute in names.items()}


def _applied_classes(cls: type, attribute: str, method: Any) -> tuple[type[Event], ...]:
    declared = getattr(method, _APPLIES_ATTRIBUTE)
    if declared is not None:
        return typing.cast(tuple[type[Event], ...], declared)
    try:
        hints = typing.get_type_hints(method)
    except Exception as error:
        raise AggregateDefinitionError(
            cls.__qualname__, f"cannot resolve the annotations of {attribute}: {error}"
        ) from error
    hints.pop("return", None)
    event_class = next(iter(hints.values()), None)
    if not (isinstance(event_class, type) and issubclass(event_class, Event)):
        raise AggregateDefinitionError(
            cls.__qualname__,
            f"bare @applies on {attribute} needs its event parameter annotated with an Event class",
        )
    return (event_class,)


def _check_concrete(cls: type[Aggregate[Any]]) -> None:
    name = cls.__qualname__
    if not _TYPE_NAME.match(cls.type_name):
        raise AggregateDefinitionError(
            name,
            f"type_name {cls.type_name!r} must start with a letter and hold only letters, "
            "digits, '_' and '.' (it prefixes stream ids as '<type_name>-<id>')",
        )
    if getattr(cls, "state_type", None) is None:
        raise AggregateDefinitionError(
            name, "no state model: subclass Aggregate[YourState] or set state_type"
        )
    if not cls.events:
        raise AggregateDefinitionError(name, "no apply methods: mark them with @applies")
    if cls.upcasters is not None and not isinstance(cls.upcasters, UpcasterChain):
        raise AggregateDefinitionError(name, "upcasters must be an upcasters.UpcasterChain")
    if not isinstance(cls.state_version, int) or cls.state_version < 1:
        raise AggregateDefinitionError(name, "state_version must be an int >= 1")
    if "initial_state" not in vars(cls) and not any(
        "initial_state" in vars(base) for base in cls.__mro__[1:] if base is not Aggregate
    ):
        try:
            cls.state_type()
        except ValidationError as error:
            raise AggregateDefinitionError(
                name,
                f"{cls.state_type.__qualname__}() fails ({error.error_count()} error(s)): give "
                "every state field a default or override initial_state",
            ) from error
