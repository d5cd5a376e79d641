"""Bad input to the sagas' public entry points: a typed error naming what was wrong,
raised before anything is written (a definition mistake when it is declared, not
when the first instance reaches it)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
from support.saga_runs import new_id, runner

from aggregates import Repository
from aggregates.ledger import Deposited, Ledger
from eventstore import PostgresEventStore, RecordedEvent
from sagas import (
    Await,
    Command,
    Issue,
    Reaction,
    ReactionRetry,
    Saga,
    SagaConfigError,
    SagaDefinitionError,
    SagaInputError,
    SagaProcess,
    SagaRunnerOptions,
    Step,
    list_sagas,
    start_saga,
)
from sagas.shipped import TRANSFER


def _debit(data: Any) -> Command[Ledger]:
    return Command(Ledger, data["source"], lambda ledger: ledger.withdraw(1))


def _waits(timeout: object) -> Step:
    return Step(
        "answer",
        await_=Await(Deposited, lambda data: f"ledger-{data['id']}"),
        timeout=timeout,  # type: ignore[arg-type]
    )


async def _nothing(event: Any, envelope: RecordedEvent, issue: Issue) -> None:
    return None


DEFINITIONS: list[tuple[str, Callable[[], object], str]] = [
    ("steps a string", lambda: Saga("s", "debit"), "steps must be a list or tuple"),  # type: ignore[arg-type]
    ("steps None", lambda: Saga("s", None), "steps must be a list or tuple"),  # type: ignore[arg-type]
    ("a step not a Step", lambda: Saga("s", [Step("a", _debit), "b"]), "Step objects, not 'b'"),  # type: ignore[list-item]
    ("action not a function", lambda: Saga("s", [Step("a", "debit")]), "action must be"),  # type: ignore[arg-type]
    (
        "compensate not a function",
        lambda: Saga("s", [Step("a", _debit, compensate=5)]),  # type: ignore[arg-type]
        "compensate must be",
    ),
    ("negative timeout", lambda: Saga("s", [_waits(-1)]), "timeout must be seconds > 0"),
    ("zero timeout", lambda: Saga("s", [_waits(0)]), "timeout must be seconds > 0"),
    ("NaN timeout", lambda: Saga("s", [_waits(math.nan)]), "not nan"),
    ("infinite timeout", lambda: Saga("s", [_waits(math.inf)]), "not inf"),
    ("await_ not an Await", lambda: Saga("s", [Step("a", await_="x")]), "must be an Await"),  # type: ignore[arg-type]
    (
        "awaiting an aggregate",
        lambda: Saga("s", [Step("a", await_=Await(Ledger, lambda d: "x"))]),  # type: ignore[arg-type]
        "takes Event classes",
    ),
    (
        "start_on by name",
        lambda: Saga("s", [Step("a", _debit)], start_on=["Deposited"], data_from=lambda e, n: {}),  # type: ignore[list-item]
        "start_on takes Event classes, not 'Deposited'",
    ),
    (
        "data_from not a function",
        lambda: Saga("s", [Step("a", _debit)], start_on=[Deposited], data_from="x"),  # type: ignore[arg-type]
        "data_from must be a function",
    ),
    (
        "reaction on an aggregate",
        lambda: Reaction("r", (Ledger,), _nothing),  # type: ignore[arg-type]
        "on takes Event classes",
    ),
    ("reaction without handler", lambda: Reaction("r", (Deposited,), None), "handle must be"),  # type: ignore[arg-type]
    ("negative retry attempts", lambda: ReactionRetry(attempts=0), "attempts must be >= 1"),
    ("runner batch of 0", lambda: SagaRunnerOptions(batch_size=0), "batch_size must be >= 1"),
]


@pytest.mark.parametrize(
    ("build", "says"), [(b, s) for _, b, s in DEFINITIONS], ids=[n for n, _, _ in DEFINITIONS]
)
def test_a_wrong_definition_is_refused_when_declared(
    build: Callable[[], object], says: str
) -> None:
    with pytest.raises((SagaDefinitionError, SagaConfigError)) as raised:
        build()
    assert says in str(raised.value)
    assert isinstance(raised.value, ValueError)


def test_a_reaction_given_as_a_list_of_classes_is_kept_as_a_tuple() -> None:
    reaction = Reaction("r", [Deposited], _nothing)  # type: ignore[arg-type]
    assert reaction.on == (Deposited,)


async def test_two_reactions_of_one_name_are_refused(repo: Repository) -> None:
    # Their "handled" marks share the name: the second would never run, silently.
    first = Reaction("notify", (Deposited,), _nothing)
    second = Reaction("notify", (Deposited,), _nothing, description="another")
    with pytest.raises(SagaConfigError, match="'notify': two reactions"):
        runner(repo, reactions=[first, second])
    with pytest.raises(SagaConfigError, match="Reaction objects"):
        runner(repo, reactions=[_nothing])


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (None, "mapping with str keys, not NoneType"),
        ([("source", "a")], "mapping with str keys, not list"),
        ({1: "a"}, "mapping with str keys"),
        ({"source": object()}, "cannot be stored as JSON"),
    ],
    ids=["none", "list", "int key", "not json"],
)
async def test_start_saga_refuses_bad_data_and_writes_nothing(
    store: PostgresEventStore, repo: Repository, data: Any, says: str
) -> None:
    saga_id = new_id()
    with pytest.raises(SagaInputError, match=says) as raised:
        await start_saga(repo, TRANSFER, saga_id, data)
    assert raised.value.saga == saga_id
    assert await store.stream_version(SagaProcess.stream_id_for(saga_id)) == 0
    assert saga_id not in [s.saga_id for s in await list_sagas(store)]


async def test_list_sagas_refuses_a_negative_limit(store: PostgresEventStore) -> None:
    with pytest.raises(SagaInputError, match="limit must be a whole number >= 0, not -1"):
        await list_sagas(store, limit=-1)
