"""The Aggregate base: apply dispatch, recording, replay, rollback, fingerprints, errors."""

from __future__ import annotations

import dataclasses
import pickle
import subprocess
import sys
import types
from decimal import Decimal
from typing import ClassVar

import pytest
from pydantic import BaseModel, Field

import aggregates
import aggregates.ledger
import aggregates.order
from aggregates import (
    Aggregate,
    AggregateDefinitionError,
    AggregateNotFoundError,
    DomainError,
    InvalidStateError,
    RepositoryConfigError,
    ScenarioFailed,
    TimeTravelError,
    UnhandledEventError,
    UnsavedEventsError,
    applies,
    command,
    scenario,
)
from aggregates.ledger import InsufficientFunds, Ledger
from eventstore import ChronikError, Event, InvalidInputError, StreamNotFoundError


class Added(Event):
    event_type: ClassVar[str] = "test.Added"
    amount: int


class Reset(Event):
    event_type: ClassVar[str] = "test.Reset"


class Stray(Event):
    event_type: ClassVar[str] = "test.Stray"


class CounterState(BaseModel):
    total: int = 0
    resets: int = 0


class Counter(Aggregate[CounterState]):
    type_name = "counter"

    @command
    def add(self, amount: int) -> None:
        if amount <= 0:
            raise self.refuse(DomainError, f"amount must be positive, got {amount}")
        self.record(Added(amount=amount))

    @command
    def add_twice_then_fail(self) -> None:
        self.record(Added(amount=1))
        self.record(Added(amount=2))
        raise self.refuse(DomainError, "second thoughts")

    def add_unguarded_then_fail(self) -> None:
        self.record(Added(amount=1))
        raise self.refuse(DomainError, "no rollback without @command")

    @applies(Added)
    def _added(self, event: Added) -> None:
        self.state.total += event.amount

    @applies
    def _reset(self, event: Reset) -> None:  # bare: the class comes from the annotation
        self.state.total = 0
        self.state.resets += 1


# -- declaration ----------------------------------------------------------------


def test_events_are_derived_from_apply_methods_both_styles() -> None:
    assert set(Counter.events) == {Added, Reset}
    assert Counter.state_type is CounterState


def test_a_declared_event_without_apply_method_fails_at_class_creation() -> None:
    with pytest.raises(AggregateDefinitionError, match=r"test\.Stray.*no apply method"):

        class Broken(Aggregate[CounterState]):
            type_name = "broken"
            events = (Added, Stray)

            @applies(Added)
            def _added(self, event: Added) -> None: ...


def test_two_apply_methods_for_one_event_fail_at_class_creation() -> None:
    with pytest.raises(AggregateDefinitionError, match=r"two apply methods.*_one.*_two"):

        class Twice(Aggregate[CounterState]):
            type_name = "twice"

            @applies(Added)
            def _one(self, event: Added) -> None: ...

            @applies(Added)
            def _two(self, event: Added) -> None: ...


@pytest.mark.parametrize("name", ["has-dash", "1digit", "sp ace", "é"])
def test_a_type_name_that_would_break_stream_ids_is_refused(name: str) -> None:
    with pytest.raises(AggregateDefinitionError, match="type_name"):
        types.new_class(
            "Bad",
            (Aggregate[CounterState],),
            exec_body=lambda ns: ns.update(
                type_name=name, _added=applies(Added)(lambda self, event: None)
            ),
        )


def test_a_state_without_defaults_needs_initial_state() -> None:
    class Strict(BaseModel):
        owner: str

    with pytest.raises(AggregateDefinitionError, match="default"):

        class NoDefaults(Aggregate[Strict]):
            type_name = "nodefaults"

            @applies(Added)
            def _added(self, event: Added) -> None: ...

    class WithInitial(Aggregate[Strict]):
        type_name = "withinitial"

        @classmethod
        def initial_state(cls) -> Strict:
            return Strict(owner="nobody")

        @applies(Added)
        def _added(self, event: Added) -> None: ...

    assert WithInitial("x").state.owner == "nobody"


def test_an_abstract_base_can_be_shared_but_not_instantiated() -> None:
    class Base(Aggregate[CounterState], abstract=True):
        @applies(Added)
        def _added(self, event: Added) -> None:
            self.state.total += event.amount

    class Concrete(Base):
        type_name = "concrete"

    with pytest.raises(TypeError, match="abstract"):
        Base("x")
    with pytest.raises(TypeError, match="abstract"):
        Base.stream_id_for("x")
    assert Concrete.replay("x", [Added(amount=2)]).state.total == 2


def test_overriding_an_apply_method_in_a_subclass_replaces_it() -> None:
    class Doubling(Counter):
        type_name = "doubling"

        def _added(self, event: Added) -> None:
            self.state.total += 2 * event.amount

    assert Doubling.replay("x", [Added(amount=3)]).state.total == 6
    assert Counter.replay("x", [Added(amount=3)]).state.total == 3


@pytest.mark.parametrize("bad_id", ["", 7, None, "x" * 1000])
def test_bad_ids_are_refused(bad_id: object) -> None:
    with pytest.raises(InvalidInputError, match="aggregate id"):
        Counter(bad_id)  # type: ignore[arg-type]


# -- recording and replay -------------------------------------------------------


def test_record_applies_at_once_and_keeps_the_event_pending() -> None:
    counter = Counter("c1")
    counter.add(2)
    counter.add(5)
    assert counter.state.total == 7
    assert counter.version == 2
    assert counter.saved_version == 0
    assert counter.pending_events == (Added(amount=2), Added(amount=5))
    assert counter.stream_id == "counter-c1"


def test_replay_rebuilds_the_same_state_and_version() -> None:
    counter = Counter("c1")
    for amount in (1, 2, 3):
        counter.add(amount)
    replayed = Counter.replay("c1", counter.pending_events)
    assert replayed.state == counter.state
    assert replayed.version == 3
    assert replayed.pending_events == ()


def test_an_event_without_apply_method_names_aggregate_and_type() -> None:
    with pytest.raises(UnhandledEventError, match=r"'counter'.*'test\.Stray'"):
        Counter.replay("c1", [Added(amount=1), Stray()])
    counter = Counter("c1")
    with pytest.raises(UnhandledEventError):
        counter.record(Stray())
    assert counter.version == 0
    assert counter.pending_events == ()


def test_a_failing_command_leaves_state_and_pending_events_as_they_were() -> None:
    counter = Counter("c1")
    counter.add(10)
    with pytest.raises(DomainError, match="second thoughts"):
        counter.add_twice_then_fail()
    assert counter.state.total == 10
    assert counter.version == 1
    assert counter.pending_events == (Added(amount=10),)


def test_a_refused_command_names_aggregate_and_rule() -> None:
    with pytest.raises(DomainError) as caught:
        Counter("c9").add(0)
    assert caught.value.aggregate_id == "c9"
    assert caught.value.aggregate_type == "counter"
    assert "c9" in str(caught.value) and caught.value.rule in str(caught.value)


# -- state and fingerprints -----------------------------------------------------


def test_state_dict_and_from_state_round_trip() -> None:
    counter = Counter.replay("c1", [Added(amount=4), Reset(), Added(amount=1)])
    again = Counter.from_state("c1", counter.version, counter.state_dict())
    assert again.state == counter.state
    assert again.version == 3


def test_from_state_with_bad_state_raises_invalid_state() -> None:
    with pytest.raises(InvalidStateError, match=r"counter 'c1' at version 3"):
        Counter.from_state("c1", 3, {"total": "not a number"})


def test_fingerprint_is_stable_across_processes() -> None:
    code = (
        "from aggregates.ledger import Ledger; from aggregates.order import Order; "
        "print(Ledger.state_fingerprint(), Order.state_fingerprint())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == [
        aggregates.ledger.Ledger.state_fingerprint(),
        aggregates.order.Order.state_fingerprint(),
    ]


def _counter_like(state: type[BaseModel], *, type_name: str = "counter", version: int = 1) -> str:
    namespace = {
        "type_name": type_name,
        "state_version": version,
        "_added": applies(Added)(lambda self, event: None),
    }
    cls = types.new_class(
        "Counter",
        (Aggregate[state],),
        exec_body=lambda ns: ns.update(namespace),  # type: ignore[valid-type]
    )
    return cls.state_fingerprint()  # type: ignore[attr-defined,no-any-return]


def test_fingerprint_changes_with_the_state_schema_not_with_its_docs() -> None:
    class Same(BaseModel):
        """Another docstring and field descriptions: the same schema."""

        total: int = Field(0, description="the running total")
        resets: int = 0

    class Retyped(BaseModel):
        total: Decimal = Decimal(0)
        resets: int = 0

    class Extended(BaseModel):
        total: int = 0
        resets: int = 0
        label: str = ""

    base = Counter.state_fingerprint()
    assert _counter_like(CounterState) == base
    assert _counter_like(Same) == base
    assert _counter_like(Retyped) != base
    assert _counter_like(Extended) != base
    assert _counter_like(CounterState, type_name="counter2") != base
    assert _counter_like(CounterState, version=2) != base


# -- errors and public API ------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        DomainError("ledger", "a1", "detail", "some-rule"),
        InsufficientFunds("ledger", "a1", "too much"),
        AggregateDefinitionError("Ledger", "reason"),
        UnhandledEventError("ledger", "x.Y", "ledger-a1", 4),
        AggregateNotFoundError("ledger-a1", "ledger", "a1"),
        TimeTravelError("ledger-a1", "at version 9", "the stream is at version 3"),
        UnsavedEventsError("ledger-a1", 3, 1, "snapshot"),
        InvalidStateError("ledger", "a1", 3, "bad"),
        RepositoryConfigError("bad"),
    ],
)
def test_errors_are_chronik_errors_and_pickle(error: Exception) -> None:
    assert isinstance(error, ChronikError)
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is type(error)
    assert str(again) == str(error)


def test_not_found_is_also_a_stream_not_found_error() -> None:
    error = AggregateNotFoundError("ledger-a1", "ledger", "a1")
    assert isinstance(error, StreamNotFoundError)
    assert error.stream_id == "ledger-a1"
    assert "ledger 'a1'" in str(error)


@pytest.mark.parametrize("module", [aggregates, aggregates.ledger, aggregates.order])
def test_all_lists_exactly_the_public_names(module: types.ModuleType) -> None:
    public = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert sorted(module.__all__) == sorted(public)


# -- the scenario helper itself -------------------------------------------------


def test_scenario_then_fails_when_the_events_differ() -> None:
    with pytest.raises(ScenarioFailed, match="recorded events differ"):
        scenario(Counter).when(lambda c: c.add(1)).then(Added(amount=2))


def test_scenario_then_raises_fails_when_the_command_succeeds() -> None:
    with pytest.raises(ScenarioFailed, match="succeeded"):
        scenario(Counter).when(lambda c: c.add(1)).then_raises(DomainError)


def test_scenario_then_raises_fails_when_a_refused_command_recorded_something() -> None:
    with pytest.raises(ScenarioFailed, match="recorded anyway"):
        scenario(Counter).when(lambda c: c.add_unguarded_then_fail()).then_raises(DomainError)


def test_scenario_then_fails_when_an_event_does_not_survive_storage() -> None:
    class Labelled(Event):
        event_type: ClassVar[str] = "test.Labelled"
        label: str | Decimal

    class Tagger(Aggregate[CounterState]):
        type_name = "tagger"

        def tag(self) -> None:
            self.record(Labelled(label=Decimal("1.5")))

        @applies(Labelled)
        def _labelled(self, event: Labelled) -> None: ...

    # Stored as the JSON string "1.5", read back as the str: not the event recorded.
    with pytest.raises(ScenarioFailed, match="does not survive storage"):
        scenario(Tagger).when(lambda t: t.tag()).then(Labelled(label=Decimal("1.5")))


def test_scenario_given_replays_through_the_codec() -> None:
    counter = (
        scenario(Counter, "c7")
        .given(Added(amount=3), Reset(), Added(amount=4))
        .when(lambda c: c.add(1))
        .then(Added(amount=1))
    )
    assert counter.state.total == 5
    assert counter.version == 4
    assert counter.id == "c7"


def test_scenario_then_raises_returns_the_error_for_more_checks() -> None:
    error = (
        scenario(Ledger)
        .given(aggregates.ledger.Opened(owner="ann", currency="EUR"))
        .when(lambda ledger: ledger.withdraw(Decimal("0.01")))
        .then_raises(InsufficientFunds, match="overdraft")
    )
    assert error.rule == "insufficient-funds"


def test_a_missing_type_name_is_refused_at_class_definition() -> None:
    with pytest.raises(AggregateDefinitionError, match=r"Forgetful.*no type_name.*abstract=True"):

        class Forgetful(Aggregate[CounterState]):
            @applies(Added)
            def _added(self, event: Added) -> None: ...


def test_a_dataclass_state_is_refused_as_not_a_pydantic_model() -> None:
    @dataclasses.dataclass
    class PlainState:
        total: int = 0

    with pytest.raises(AggregateDefinitionError, match=r"PlainState is a dataclass.*pydantic"):

        class WithDataclass(Aggregate[PlainState]):  # type: ignore[type-var]
            type_name = "withdataclass"

            @applies(Added)
            def _added(self, event: Added) -> None: ...
