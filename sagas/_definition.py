"""Declaring sagas: steps with compensations, commands on aggregates, awaited answers.

::

    transfer = Saga("transfer", steps=[
        Step("debit", lambda d: Command(Ledger, d["source"], lambda l: l.withdraw(d["amount"])),
             compensate=lambda d: Command(Ledger, d["source"], lambda l: l.deposit(d["amount"]))),
        Step("credit", lambda d: Command(Ledger, d["target"], lambda l: l.deposit(d["amount"]))),
    ])

A step's ``action`` and ``compensate`` are pure functions of the saga's data that
return the ``Command`` to issue (or None: nothing to do).  A command's ``decide``
runs on the freshly loaded aggregate, exactly as ``Repository.update`` runs it; a
``DomainError`` it raises is the step's answer "no".  A step may also ``await_`` an
event on some stream (the answer of another service) within ``timeout`` seconds.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from aggregates import Aggregate
from eventstore import Event, RecordedEvent

from ._errors import SagaDefinitionError

A = TypeVar("A", bound=Aggregate[Any])
Data = Mapping[str, Any]

_NAME = re.compile(r"^[a-z][a-z0-9_.-]{0,62}$")

#: The namespace of every id a saga derives (uuid5): instance ids and event ids.
SAGA_NAMESPACE = uuid.UUID("8f0c2d4e-7b1a-5c3e-9d6f-0a1b2c3d4e5f")


@dataclass(frozen=True, slots=True)
class Command(Generic[A]):
    """Load ``aggregate_type`` ``aggregate_id`` and run ``decide`` on it."""

    aggregate_type: type[A]
    aggregate_id: str
    decide: Callable[[A], object]


@dataclass(frozen=True, slots=True)
class Await:
    """Wait for an event of ``event_type`` on the stream ``stream_id(data)``."""

    event_type: type[Event]
    stream_id: Callable[[Data], str]


StepFunction = Callable[[Data], Command[Any] | None]
#: What a reaction's handler gets to issue commands: ``await issue(command)``.
Issue = Callable[[Command[Any]], Awaitable[Aggregate[Any]]]


@dataclass(frozen=True, slots=True)
class Step:
    """One step: its command, its compensation, optionally an awaited answer.

    ``timeout`` (seconds, with ``await_``): how long to wait for the answer; when it
    passes, the step fails and the completed steps are compensated.  The deadline
    is computed and checked on the database's clock and kept in the saga's stream.
    """

    name: str
    action: StepFunction | None = None
    compensate: StepFunction | None = None
    await_: Await | None = None
    timeout: float | None = None


@dataclass(frozen=True, slots=True, init=False)
class Saga:
    """A named workflow of steps.

    Started explicitly (``start_saga``) or by an event of a type in ``start_on``:
    ``data_from(event, envelope)`` gives the saga's data, and the instance id is
    derived from the triggering event's id, so a redelivered trigger finds the
    saga it already started.
    """

    name: str
    steps: tuple[Step, ...]
    start_on: tuple[type[Event], ...] = ()
    data_from: Callable[[Any, RecordedEvent], Data | None] | None = None
    description: str = ""

    def __init__(
        self,
        name: str,
        steps: Iterable[Step],
        *,
        start_on: Iterable[type[Event]] = (),
        data_from: Callable[[Any, RecordedEvent], Data | None] | None = None,
        description: str = "",
    ) -> None:
        object.__setattr__(self, "name", check_name(name))
        object.__setattr__(self, "steps", _items(name, "steps", steps))
        object.__setattr__(self, "start_on", check_event_classes(name, "start_on", start_on))
        object.__setattr__(self, "data_from", data_from)
        object.__setattr__(self, "description", description)
        if not self.steps:
            raise SagaDefinitionError(name, "a saga needs at least one step")
        for step in self.steps:
            check_step(name, step)
        names = [step.name for step in self.steps]
        if len(set(names)) != len(names):
            raise SagaDefinitionError(name, f"step names repeat: {names}")
        if self.start_on and data_from is None:
            raise SagaDefinitionError(name, "start_on needs data_from(event, envelope)")
        if data_from is not None and not callable(data_from):
            raise SagaDefinitionError(name, f"data_from must be a function, not {data_from!r}")

    def instance_id(self, trigger_event_id: uuid.UUID) -> str:
        """The id of the instance an event starts: the same for every redelivery."""
        return str(uuid.uuid5(SAGA_NAMESPACE, f"{self.name}:{trigger_event_id}"))


@dataclass(frozen=True, slots=True)
class Reaction:
    """Choreography: ``async handle(event, envelope, issue)`` reacts to events of ``on``.

    ``await issue(command)`` loads the aggregate and runs the decision at once (a
    ``DomainError`` is raised to the handler, which may answer it with another
    command); everything issued commits in one transaction when the handler
    returns, together with the mark that this event was handled.
    """

    name: str
    on: tuple[type[Event], ...]
    handle: Callable[[Any, RecordedEvent, Issue], Awaitable[None]]
    description: str = field(default="")

    def __post_init__(self) -> None:
        check_name(self.name)
        # A frozen dataclass: normalise a list to the tuple the type promises.
        object.__setattr__(self, "on", check_event_classes(self.name, "on", self.on))
        if not self.on:
            raise SagaDefinitionError(self.name, "a reaction needs at least one event class")
        if not callable(self.handle):
            raise SagaDefinitionError(
                self.name, f"handle must be an async function, not {self.handle!r}"
            )


def check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise SagaDefinitionError(
            str(name), "a saga name is lower-case letters, digits, '_', '.', '-' (max 63)"
        )
    return name


def check_step(saga: str, step: object) -> None:
    # Checked here, not when the step runs: a definition mistake found by the
    # first instance to reach it would leave that instance half done.
    if not isinstance(step, Step):
        raise SagaDefinitionError(saga, f"steps must be Step objects, not {step!r}")
    if not isinstance(step.name, str) or not _NAME.match(step.name):
        raise SagaDefinitionError(saga, f"bad step name {step.name!r}")
    if step.action is None and step.await_ is None and step.compensate is None:
        raise SagaDefinitionError(saga, f"step {step.name!r} does nothing")
    for role, function in (("action", step.action), ("compensate", step.compensate)):
        if function is not None and not callable(function):
            raise SagaDefinitionError(
                saga, f"step {step.name!r}: {role} must be a function of the data, not {function!r}"
            )
    if step.await_ is not None:
        awaited = step.await_
        if not isinstance(awaited, Await):
            raise SagaDefinitionError(
                saga, f"step {step.name!r}: await_ must be an Await, not {awaited!r}"
            )
        check_event_classes(saga, f"step {step.name!r}: Await event_type", (awaited.event_type,))
        if not callable(awaited.stream_id):
            raise SagaDefinitionError(
                saga, f"step {step.name!r}: Await stream_id must be a function of the data"
            )
    if step.timeout is not None:
        if step.await_ is None:
            raise SagaDefinitionError(saga, f"step {step.name!r}: a timeout needs await_")
        timeout = step.timeout
        if (
            isinstance(timeout, bool)
            or not isinstance(timeout, int | float)
            or not math.isfinite(timeout)
            or timeout <= 0
        ):
            raise SagaDefinitionError(
                saga, f"step {step.name!r}: timeout must be seconds > 0, not {timeout!r}"
            )


def check_event_classes(saga: str, role: str, classes: object) -> tuple[type[Event], ...]:
    """``classes`` as a tuple of Event subclasses: a name or an instance never matches a
    stored event, so the saga or reaction would silently never run."""
    found = _items(saga, role, classes)
    for item in found:
        if not (isinstance(item, type) and issubclass(item, Event)):
            raise SagaDefinitionError(saga, f"{role} takes Event classes, not {item!r}")
    return found


def _items(saga: str, role: str, value: object) -> tuple[Any, ...]:
    # A string is iterable too: "debit" would become five one-letter items.
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise SagaDefinitionError(saga, f"{role} must be a list or tuple, not {value!r}")
    return tuple(value)


def step_event_ids(instance_id: str, step: str, phase: str, count: int) -> list[uuid.UUID]:
    """The ids of the events a step's command appends: derived, so a repeat is a no-op."""
    base = uuid.uuid5(SAGA_NAMESPACE, f"saga:{instance_id}")
    return [uuid.uuid5(base, f"{step}:{phase}:{n}") for n in range(count)]
