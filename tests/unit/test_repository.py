"""The Repository on the in-memory store: load, save, conflicts, retries, time travel."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import uuid4

import pytest

from aggregates import (
    AggregateNotFoundError,
    Repository,
    RepositoryConfigError,
    TimeTravelError,
    UnhandledEventError,
)
from aggregates.ledger import Deposited, InsufficientFunds, Ledger, Opened
from aggregates.order import Order, OrderPlaced
from eventstore import (
    AppendResult,
    ConcurrencyError,
    ExpectedVersion,
    InMemoryEventStore,
    InvalidInputError,
    NewEvent,
    StoreUnavailableError,
    StreamNotFoundError,
    StreamOrderConflict,
    UpcasterChainError,
)
from upcasters import UpcasterChain

D = Decimal


class FaultyStore(InMemoryEventStore):
    """An in-memory store that runs a hook before (or after) the next appends."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.before_append: list[Callable[[str], Awaitable[None]]] = []
        self.lose_next_reply = False
        self.appends = 0
        self._in_hook = False

    async def _append(
        self, stream_id: str, batch: Sequence[Any], expected: ExpectedVersion | int, connection: Any
    ) -> AppendResult:
        if self.before_append and not self._in_hook:
            self._in_hook = True  # a hook's own appends run no hooks
            try:
                await self.before_append.pop(0)(stream_id)
            finally:
                self._in_hook = False
        self.appends += 1
        result = await super()._append(stream_id, batch, expected, connection)
        if self.lose_next_reply:
            self.lose_next_reply = False
            raise StoreUnavailableError("memory", "connection lost after commit")
        return result


def new_id() -> str:
    return uuid4().hex[:12]


@pytest.fixture
def store() -> FaultyStore:
    return FaultyStore()


@pytest.fixture
def repo(store: FaultyStore) -> Repository:
    return Repository(store, [Ledger, Order])


async def open_ledger(repo: Repository, ledger_id: str, *deposits: int) -> Ledger:
    ledger = await repo.create(
        Ledger, ledger_id, lambda led: led.open("ann", "EUR", overdraft_limit=5)
    )
    for amount in deposits:
        await repo.update(Ledger, ledger_id, lambda led, a=amount: led.deposit(a))  # type: ignore[misc]
    return ledger


async def events_of(store: InMemoryEventStore, stream_id: str) -> list[Any]:
    return [event async for event in store.read_stream(stream_id)]


# -- load and save --------------------------------------------------------------


async def test_save_then_load_gives_the_same_state(repo: Repository) -> None:
    ledger = Ledger(new_id())
    ledger.open("ann", "EUR")
    ledger.deposit(D("12.34"))
    result = await repo.save(ledger)
    assert (result.stream_id, result.version, len(result.positions)) == (ledger.stream_id, 2, 2)
    assert ledger.pending_events == () and ledger.saved_version == 2
    loaded = await repo.load(Ledger, ledger.id)
    assert loaded.state == ledger.state
    assert loaded.version == 2


async def test_stored_money_is_a_string(repo: Repository, store: FaultyStore) -> None:
    ledger = await open_ledger(repo, new_id(), 7)
    stored = await events_of(store, ledger.stream_id)
    assert stored[1].data == {"amount": "7", "currency": "EUR"}
    assert (stored[1].type, stored[1].schema_version) == ("ledger.Deposited", 2)


async def test_saving_nothing_appends_nothing(repo: Repository, store: FaultyStore) -> None:
    ledger = await open_ledger(repo, new_id())
    before = store.appends
    result = await repo.save(ledger)
    assert (result.version, result.positions) == (1, ())
    assert store.appends == before


async def test_load_unknown_raises_not_found(repo: Repository) -> None:
    with pytest.raises(AggregateNotFoundError, match="ledger 'nope'") as caught:
        await repo.load(Ledger, "nope")
    assert isinstance(caught.value, StreamNotFoundError)
    assert caught.value.stream_id == "ledger-nope"


async def test_metadata_is_stored_with_every_event(repo: Repository, store: FaultyStore) -> None:
    ledger = Ledger(new_id())
    ledger.open("ann", "EUR")
    ledger.deposit(1)
    await repo.save(ledger, metadata={"correlation_id": "abc", "user": "ann"})
    # The caller's keys win; the causation id is stamped (the batch's first event).
    stored = await events_of(store, ledger.stream_id)
    first = str(stored[0].event_id)
    assert [e.metadata for e in stored] == [
        {"correlation_id": "abc", "user": "ann", "causation_id": first}
    ] * 2


# -- conflicts --------------------------------------------------------------------


async def test_two_writers_on_one_version_conflict_and_nothing_is_lost(
    repo: Repository, store: FaultyStore
) -> None:
    ledger_id = new_id()
    await open_ledger(repo, ledger_id, 10)
    first, second = await repo.load(Ledger, ledger_id), await repo.load(Ledger, ledger_id)
    first.deposit(1)
    second.deposit(2)
    await repo.save(first)
    with pytest.raises(ConcurrencyError) as caught:
        await repo.save(second)
    assert (caught.value.expected, caught.value.actual) == (2, 3)
    assert second.pending_events == (Deposited(amount=D(2), currency="EUR"),)
    assert (await repo.load(Ledger, ledger_id)).balance == 11


async def test_saving_again_after_a_lost_reply_is_idempotent(
    repo: Repository, store: FaultyStore
) -> None:
    ledger = await open_ledger(repo, new_id())
    ledger.deposit(5)
    store.lose_next_reply = True
    with pytest.raises(StoreUnavailableError):
        await repo.save(ledger)
    assert len(ledger.pending_events) == 1  # the caller cannot know it committed
    result = await repo.save(ledger)
    assert result.version == 2
    assert len(await events_of(store, ledger.stream_id)) == 2  # not 3


async def test_create_refuses_an_existing_id(repo: Repository) -> None:
    ledger_id = new_id()
    await open_ledger(repo, ledger_id)
    with pytest.raises(ConcurrencyError):
        await repo.create(Ledger, ledger_id, lambda led: led.open("bob", "USD"))


async def test_create_that_records_nothing_is_refused(repo: Repository) -> None:
    with pytest.raises(InvalidInputError, match="recorded no events"):
        await repo.create(Ledger, new_id(), lambda led: None)


# -- update with retries --------------------------------------------------------


def interfere(repo: Repository, ledger_id: str, amount: int) -> Callable[[str], Awaitable[None]]:
    """A hook that deposits through the store itself, as another process would."""

    async def hook(stream_id: str) -> None:
        rival = await repo.load(Ledger, ledger_id)
        rival.deposit(amount)
        await repo.save(rival)

    return hook


async def test_update_retries_a_conflict_and_loses_no_deposit(
    repo: Repository, store: FaultyStore
) -> None:
    ledger_id = new_id()
    await open_ledger(repo, ledger_id)
    store.before_append.append(interfere(repo, ledger_id, 100))
    ledger = await repo.update(Ledger, ledger_id, lambda led: led.deposit(1))
    assert repo.retried_conflicts == 1
    assert ledger.balance == 101
    assert (await repo.load(Ledger, ledger_id)).balance == 101


async def test_update_retries_a_stream_order_conflict(repo: Repository, store: FaultyStore) -> None:
    ledger_id = new_id()
    await open_ledger(repo, ledger_id)

    async def order_conflict(stream_id: str) -> None:
        raise StreamOrderConflict(stream_id, 1, 1)

    store.before_append.append(order_conflict)
    await repo.update(Ledger, ledger_id, lambda led: led.deposit(3))
    assert repo.retried_conflicts == 1
    assert (await repo.load(Ledger, ledger_id)).balance == 3


async def test_update_gives_up_after_the_retries(repo: Repository, store: FaultyStore) -> None:
    ledger_id = new_id()
    await open_ledger(repo, ledger_id)
    store.before_append.extend(interfere(repo, ledger_id, 1) for _ in range(3))
    with pytest.raises(ConcurrencyError) as caught:
        await repo.update(Ledger, ledger_id, lambda led: led.deposit(50), retries=2)
    assert "gave up after 3 attempts" in "".join(caught.value.__notes__)
    assert (await repo.load(Ledger, ledger_id)).balance == 3  # the rivals' deposits only


async def test_update_raises_a_domain_error_at_once(repo: Repository, store: FaultyStore) -> None:
    ledger_id = new_id()
    await open_ledger(repo, ledger_id)
    before = store.appends
    with pytest.raises(InsufficientFunds):
        await repo.update(Ledger, ledger_id, lambda led: led.withdraw(6))
    assert store.appends == before


async def test_update_refuses_an_async_decide(repo: Repository) -> None:
    ledger_id = new_id()
    await open_ledger(repo, ledger_id)

    async def decide(ledger: Ledger) -> None:
        ledger.deposit(1)

    with pytest.raises(InvalidInputError, match="sync"):
        await repo.update(Ledger, ledger_id, decide)


@pytest.mark.parametrize("retries", [-1, True, 1.5])
async def test_update_checks_retries(repo: Repository, retries: Any) -> None:
    with pytest.raises(InvalidInputError, match="retries"):
        await repo.update(Ledger, "x", lambda led: None, retries=retries)


# -- time travel ----------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2024, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(minutes=1)
        return self.now


async def test_load_at_version(repo: Repository) -> None:
    ledger_id = new_id()
    await open_ledger(repo, ledger_id, 1, 2, 4)
    balances = [(await repo.load(Ledger, ledger_id, at_version=v)).balance for v in (1, 2, 3, 4)]
    assert balances == [0, 1, 3, 7]


async def test_load_beyond_the_stream_names_stream_requested_and_actual(repo: Repository) -> None:
    ledger_id = new_id()
    await open_ledger(repo, ledger_id, 1)
    with pytest.raises(TimeTravelError) as caught:
        await repo.load(Ledger, ledger_id, at_version=3)
    message = str(caught.value)
    assert f"ledger-{ledger_id}" in message and "version 3" in message and "version 2" in message


async def test_load_as_of_a_time() -> None:
    clock = Clock()
    repo = Repository(InMemoryEventStore(clock=clock), [Ledger])
    ledger_id = new_id()
    await open_ledger(repo, ledger_id, 10, 20)  # recorded at 00:01, 00:02, 00:03
    start = datetime(2024, 1, 1, tzinfo=UTC)
    at = [start + timedelta(minutes=m, seconds=s) for m, s in ((1, 0), (2, 30), (3, 0), (9, 0))]
    assert [(await repo.load(Ledger, ledger_id, as_of=t)).balance for t in at] == [0, 10, 30, 30]
    with pytest.raises(TimeTravelError, match=r"did not exist yet.*first event was recorded at"):
        await repo.load(Ledger, ledger_id, as_of=start)
    with pytest.raises(AggregateNotFoundError):
        await repo.load(Ledger, "missing", as_of=start)


async def test_load_at_a_position_is_a_consistent_cut(repo: Repository, store: FaultyStore) -> None:
    a, b = new_id(), new_id()
    await open_ledger(repo, a)
    await open_ledger(repo, b)
    cut = None
    for step in range(3):
        await repo.update(Ledger, a, lambda led: led.deposit(1))
        ledger = await repo.load(Ledger, b)
        ledger.deposit(10)
        result = await repo.save(ledger)
        if step == 1:
            cut = result.positions[-1]
    assert cut is not None
    left, right = (
        await repo.load(Ledger, a, at_position=cut),
        await repo.load(Ledger, b, at_position=cut),
    )
    assert (left.balance, right.balance) == (2, 20)


@pytest.mark.parametrize(
    "options",
    [
        {"at_version": 0},
        {"at_version": True},
        {"as_of": datetime(2024, 1, 1)},
        {"at_position": "1:2"},
        {"at_version": 1, "as_of": datetime(2024, 1, 1, tzinfo=UTC)},
    ],
)
async def test_bad_time_travel_arguments(repo: Repository, options: dict[str, Any]) -> None:
    with pytest.raises(InvalidInputError):
        await repo.load(Ledger, "x", **options)


# -- configuration -------------------------------------------------------------


async def test_unknown_aggregate_type_is_refused(store: FaultyStore) -> None:
    repo = Repository(store, [Ledger])
    with pytest.raises(RepositoryConfigError, match="Order"):
        await repo.load(Order, "x")


def test_an_upcaster_gap_fails_at_construction(store: FaultyStore) -> None:
    chain = UpcasterChain()

    class Gappy(Ledger):
        type_name = "gappy"
        upcasters = chain  # Opened is v2, but nothing migrates v1

    with pytest.raises(UpcasterChainError, match=r"ledger\.Opened"):
        Repository(store, [Gappy])


def test_two_types_with_one_name_are_refused(store: FaultyStore) -> None:
    class Impostor(Ledger):
        pass

    with pytest.raises(RepositoryConfigError, match="share the type name"):
        Repository(store, [Ledger, Impostor])


async def test_a_foreign_event_in_a_stream_names_stream_and_version(
    repo: Repository, store: FaultyStore
) -> None:
    ledger_id = new_id()
    await open_ledger(repo, ledger_id)
    await store.append(
        f"ledger-{ledger_id}", [OrderPlaced(customer="c", lines=())], expected_version=1
    )
    with pytest.raises(UnhandledEventError, match=rf"order\.Placed.*ledger-{ledger_id}.*version 2"):
        await repo.load(Ledger, ledger_id)


async def test_release_1_events_load_through_the_repository(
    repo: Repository, store: FaultyStore
) -> None:
    ledger_id = new_id()
    await store.append(
        f"ledger-{ledger_id}",
        [
            NewEvent("ledger.AccountOpened", {"holder": "ann", "currency": "EUR"}),
            NewEvent("ledger.Deposited", {"amount": 0.1}),
        ],
    )
    ledger = await repo.load(Ledger, ledger_id)
    assert (ledger.owner, ledger.balance, ledger.version) == ("ann", D("0.1"), 2)
    ledger.deposit(D("0.2"))
    await repo.save(ledger)
    assert (await repo.load(Ledger, ledger_id)).balance == D("0.3")
    assert isinstance(Opened, type)


async def test_events_recorded_while_a_save_is_in_flight_stay_pending(
    repo: Repository, store: FaultyStore
) -> None:
    ledger = await open_ledger(repo, new_id())
    ledger.deposit(1)

    async def record_meanwhile(stream_id: str) -> None:
        ledger.deposit(2)  # another task, same object, during the append's await

    store.before_append.append(record_meanwhile)
    result = await repo.save(ledger)
    assert result.version == 2
    assert ledger.pending_events == (Deposited(amount=D(2), currency="EUR"),)
    assert ledger.saved_version == 2
    await repo.save(ledger)
    assert (await repo.load(Ledger, ledger.id)).balance == 3
