"""Ledger invariants under random command sequences, checked against a simple model.

- balance == deposits - withdrawals, and never below -overdraft_limit;
- every command succeeds exactly when the model says the rules allow it, and a
  refused command records nothing;
- replaying the recorded events gives the same state, and the state at version N
  equals replaying only the first N events (directly and through a Repository);
- loading with snapshots equals loading without, for random snapshot points.
"""

from __future__ import annotations

import asyncio
import contextlib
from decimal import Decimal
from typing import Any

from hypothesis import given, note
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from aggregates import DomainError, Repository
from aggregates.ledger import Ledger, LedgerStatus
from eventstore import InMemoryEventStore
from snapshots import InMemorySnapshotStore, OnDemand

D = Decimal
AMOUNTS = st.decimals(min_value=D("0.01"), max_value=D(500), places=2)
BAD_AMOUNTS = st.sampled_from([D(0), D("-0.01"), D(-5), "abc", 1.5])


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.ledger = Ledger("prop")
        self.deposits = D(0)
        self.withdrawals = D(0)
        self.limit = D(0)
        self.status = LedgerStatus.UNOPENED
        # state_dict after each version: states[n] is the state at version n.
        self.states: list[dict[str, Any]] = [self.ledger.state_dict()]

    def attempt(self, allowed: bool, command: Any) -> bool:
        before = (self.ledger.version, self.ledger.state_dict())
        try:
            command(self.ledger)
        except DomainError as error:
            note(f"refused: {error}")
            assert not allowed, f"refused although the rules allow it: {error}"
            assert (self.ledger.version, self.ledger.state_dict()) == before
            assert len(self.ledger.pending_events) == before[0]
            return False
        assert allowed, "accepted although the rules forbid it"
        assert self.ledger.version == before[0] + 1
        self.states.append(self.ledger.state_dict())
        return True

    @initialize(limit=st.decimals(min_value=D(0), max_value=D(300), places=2))
    def open(self, limit: Decimal) -> None:
        self.attempt(True, lambda led: led.open("ann", "EUR", overdraft_limit=limit))
        self.limit, self.status = limit, LedgerStatus.OPEN

    @rule(amount=AMOUNTS)
    def deposit(self, amount: Decimal) -> None:
        if self.attempt(self.status is LedgerStatus.OPEN, lambda led: led.deposit(amount)):
            self.deposits += amount

    @rule(amount=AMOUNTS)
    def withdraw(self, amount: Decimal) -> None:
        balance = self.deposits - self.withdrawals
        allowed = self.status is LedgerStatus.OPEN and balance - amount >= -self.limit
        if self.attempt(allowed, lambda led: led.withdraw(amount)):
            self.withdrawals += amount

    @rule(amount=BAD_AMOUNTS, withdraw=st.booleans())
    def bad_amount(self, amount: Any, withdraw: bool) -> None:
        self.attempt(False, lambda led: (led.withdraw if withdraw else led.deposit)(amount))

    @rule()
    def freeze(self) -> None:
        if self.attempt(self.status is LedgerStatus.OPEN, lambda led: led.freeze()):
            self.status = LedgerStatus.FROZEN

    @rule()
    def unfreeze(self) -> None:
        if self.attempt(self.status is LedgerStatus.FROZEN, lambda led: led.unfreeze()):
            self.status = LedgerStatus.OPEN

    @rule()
    def close(self) -> None:
        allowed = self.status is LedgerStatus.OPEN and self.deposits == self.withdrawals
        if self.attempt(allowed, lambda led: led.close()):
            self.status = LedgerStatus.CLOSED

    @rule()
    def withdraw_everything(self) -> None:
        # Makes close() reachable: random amounts rarely sum to exactly zero.
        balance = self.deposits - self.withdrawals
        if balance > 0 and self.attempt(
            self.status is LedgerStatus.OPEN, lambda led: led.withdraw(balance)
        ):
            self.withdrawals += balance

    @invariant()
    def balance_is_deposits_minus_withdrawals_within_the_limit(self) -> None:
        assert self.ledger.balance == self.deposits - self.withdrawals
        assert self.ledger.balance >= -self.ledger.overdraft_limit
        assert self.ledger.status is self.status

    @invariant()
    def replay_gives_the_same_state(self) -> None:
        replayed = Ledger.replay("prop", self.ledger.pending_events)
        assert replayed.state == self.ledger.state
        assert replayed.version == self.ledger.version

    def teardown(self) -> None:
        events = self.ledger.pending_events
        for n in range(len(events) + 1):
            assert Ledger.replay("prop", events[:n]).state_dict() == self.states[n]
        asyncio.run(self.check_repository_time_travel())

    async def check_repository_time_travel(self) -> None:
        if self.ledger.version == 0:
            return
        repo = Repository(InMemoryEventStore(), [Ledger])
        await repo.save(self.ledger)
        for n in range(1, self.ledger.version + 1):
            loaded = await repo.load(Ledger, "prop", at_version=n)
            assert loaded.state_dict() == self.states[n]


TestLedgerMachine = LedgerMachine.TestCase


COMMANDS = st.lists(
    st.one_of(
        st.tuples(st.just("deposit"), AMOUNTS),
        st.tuples(st.just("withdraw"), AMOUNTS),
        st.tuples(st.just("freeze"), st.none()),
        st.tuples(st.just("unfreeze"), st.none()),
    ),
    min_size=1,
    max_size=40,
)


def run_commands(ledger: Ledger, commands: list[tuple[str, Any]]) -> None:
    ledger.open("ann", "EUR", overdraft_limit=100)
    for name, argument in commands:
        with contextlib.suppress(DomainError):
            getattr(ledger, name)(*(() if argument is None else (argument,)))


@given(commands=COMMANDS, data=st.data())
def test_loading_with_snapshots_equals_loading_without(
    commands: list[tuple[str, Any]], data: st.DataObject
) -> None:
    ledger = Ledger("snap")
    run_commands(ledger, commands)
    versions = list(range(1, ledger.version + 1))
    points = data.draw(
        st.sets(st.sampled_from(versions), min_size=1, max_size=5), label="snapshot points"
    )
    targets = data.draw(st.lists(st.sampled_from(versions), max_size=6), label="targets")
    asyncio.run(compare_loads(ledger, sorted(points), targets))


async def compare_loads(ledger: Ledger, points: list[int], targets: list[int]) -> None:
    store = InMemoryEventStore()
    plain = Repository(store, [Ledger])
    snapshotting = Repository(
        store, [Ledger], snapshots=InMemorySnapshotStore(keep=10), snapshot_policy=OnDemand()
    )
    await plain.save(ledger)
    for point in points:
        await snapshotting.snapshot(await plain.load(Ledger, "snap", at_version=point))
    for target in [*targets, None]:
        with_snapshots = await snapshotting.load(Ledger, "snap", at_version=target)
        without = await plain.load(Ledger, "snap", at_version=target)
        assert with_snapshots.state == without.state
        assert with_snapshots.version == without.version
    assert snapshotting.snapshots_ignored == 0
