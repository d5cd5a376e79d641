"""Snapshot policies: pure decisions, tested without any store."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from snapshots import EveryNEvents, InvalidPolicyError, OnDemand, SnapshotPolicy


@given(
    n=st.integers(1, 500),
    old=st.integers(0, 10_000),
    added=st.integers(0, 1_000),
)
def test_every_n_fires_exactly_when_a_multiple_of_n_is_crossed(
    n: int, old: int, added: int
) -> None:
    new = old + added
    expected = old // n != new // n
    assert EveryNEvents(n).should_snapshot("any", old, new) is expected
    # The same with n set for the type in a mapping.
    assert EveryNEvents({"any": n}).should_snapshot("any", old, new) is expected


@given(n=st.integers(1, 50), start=st.integers(0, 500), steps=st.lists(st.integers(1, 30)))
def test_every_n_fires_once_per_multiple_crossed_along_a_history(
    n: int, start: int, steps: list[int]
) -> None:
    # Saves of any sizes: one snapshot for each stretch that reaches a new multiple.
    policy, version, fired = EveryNEvents(n), start, 0
    for size in steps:
        fired += policy.should_snapshot("ledger", version, version + size)
        version += size
    crossed_any = [
        (start + sum(steps[:i])) // n != (start + sum(steps[: i + 1])) // n
        for i in range(len(steps))
    ]
    assert fired == sum(crossed_any)
    assert fired <= (version // n) - (start // n)


def test_every_n_examples() -> None:
    policy = EveryNEvents(100)
    assert policy.should_snapshot("ledger", 99, 100)
    assert policy.should_snapshot("ledger", 98, 103)  # a batch jumping over 100
    assert policy.should_snapshot("ledger", 0, 250)
    assert not policy.should_snapshot("ledger", 100, 199)
    assert not policy.should_snapshot("ledger", 0, 99)
    assert not policy.should_snapshot("ledger", 100, 100)  # nothing appended


def test_per_type_intervals_and_default() -> None:
    policy = EveryNEvents({"ledger": 100, "order": 20})
    assert policy.should_snapshot("order", 19, 20)
    assert not policy.should_snapshot("ledger", 19, 20)
    assert not policy.should_snapshot("invoice", 0, 10_000)  # unlisted, no default: never
    assert policy.interval("order") == 20 and policy.interval("invoice") is None
    with_default = EveryNEvents({"order": 20}, default=5)
    assert with_default.should_snapshot("invoice", 4, 5)
    assert with_default.interval("invoice") == 5


@given(old=st.integers(0, 10_000), added=st.integers(0, 10_000))
def test_on_demand_never_fires(old: int, added: int) -> None:
    assert OnDemand().should_snapshot("ledger", old, old + added) is False


@pytest.mark.parametrize(
    "make",
    [
        lambda: EveryNEvents(0),
        lambda: EveryNEvents(-5),
        lambda: EveryNEvents(True),
        lambda: EveryNEvents(2.5),  # type: ignore[arg-type]
        lambda: EveryNEvents({"ledger": 0}),
        lambda: EveryNEvents({"": 10}),
        lambda: EveryNEvents({"ledger": 10}, default=0),
        lambda: EveryNEvents(10, default=5),
    ],
)
def test_bad_configuration_is_rejected(make: Any) -> None:
    with pytest.raises(InvalidPolicyError):
        make()


def test_a_bad_interval_names_the_aggregate_type() -> None:
    with pytest.raises(InvalidPolicyError, match="'order'"):
        EveryNEvents({"ledger": 10, "order": -1})


@pytest.mark.parametrize("policy", [EveryNEvents(10), OnDemand()])
@pytest.mark.parametrize(("old", "new"), [(5, 4), (-1, 3), (0, True), ("1", 2)])
def test_bad_versions_are_rejected(policy: SnapshotPolicy, old: Any, new: Any) -> None:
    with pytest.raises(InvalidPolicyError, match="ledger"):
        policy.should_snapshot("ledger", old, new)


def test_policies_are_snapshot_policies() -> None:
    assert isinstance(EveryNEvents(3), SnapshotPolicy)
    assert isinstance(OnDemand(), SnapshotPolicy)
    assert repr(EveryNEvents(3)) == "EveryNEvents(3)"
