"""Realistic demo histories for the shipped aggregates, decided in memory.

Pure and deterministic (a seeded random generator): the same demo every time, so
the "try next" hints can name real ids.  The demo command saves these through the
repository in rounds, which interleaves streams in the feed like real traffic.
Old-release events are written raw by the demo itself (see ``LEGACY_LEDGER``).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from aggregates.ledger import Ledger
from aggregates.order import Order
from eventstore import NewEvent

OWNERS = [
    ("alice", "Alice Martin", "EUR"),
    ("bob", "Bob Okafor", "USD"),
    ("chen", "Chen Wei", "EUR"),
    ("dana", "Dana Kowalski", "GBP"),
    ("emil", "Emil Larsen", "EUR"),
    ("farah", "Farah Haddad", "USD"),
    ("gus", "Gus Moreau", "EUR"),
    ("hana", "Hana Sato", "USD"),
    ("ivan", "Ivan Petrov", "EUR"),
    ("june", "June Park", "GBP"),
]
#: The long-lived business account: enough events for snapshots to matter.
BUSY = ("acme-ops", "ACME Operations", "EUR")
CATALOGUE = [
    ("kb-mech-87", Decimal("89.00")),
    ("mouse-ergo", Decimal("49.90")),
    ("usb-c-hub", Decimal("34.50")),
    ("monitor-27", Decimal("279.00")),
    ("desk-lamp", Decimal("24.99")),
    ("cable-2m", Decimal("7.95")),
    ("webcam-hd", Decimal("64.00")),
    ("headset-bt", Decimal("119.00")),
]
CARRIERS = ["DHL", "UPS", "PostNL", "La Poste"]
MEMOS = ["rent", "groceries", "ATM", "utilities", "card payment", "transfer out"]

#: A ledger as release 1 wrote it, before the current event classes existed:
#: ``AccountOpened{holder}`` (renamed since), amounts as JSON numbers, ``memo``.
LEGACY_LEDGER_ID = "legacy-0001"
LEGACY_LEDGER: list[NewEvent] = [
    NewEvent("ledger.AccountOpened", {"holder": "Olga Lindqvist", "currency": "EUR"}, 1),
    NewEvent("ledger.Deposited", {"amount": 1200}, 1),
    NewEvent("ledger.Withdrawn", {"amount": 80.25, "memo": "ATM"}, 1),
    NewEvent("ledger.Deposited", {"amount": 45.5}, 1),
]

Step = Callable[[Any], None]


def call(method: str, *args: Any, **kwargs: Any) -> Step:
    """A step that runs one command on the aggregate."""

    def step(aggregate: Any) -> None:
        getattr(aggregate, method)(*args, **kwargs)

    step.__qualname__ = f"{method}{args}"
    return step


def pay_total(order: Any) -> None:
    order.pay(order.total)


def empty_and_close(ledger: Any) -> None:
    if ledger.balance:
        ledger.withdraw(ledger.balance, description="final transfer")
    ledger.close()


@dataclass(frozen=True, slots=True)
class Plan:
    """What to do to one aggregate in one round: a list of commands."""

    kind: type[Any]
    aggregate_id: str
    steps: tuple[Step, ...]


def _money(rng: random.Random, low: int, high: int) -> Decimal:
    return Decimal(rng.randint(low * 100, high * 100)) / 100


def ledger_rounds(rng: random.Random, rounds: int) -> Iterator[list[Plan]]:
    """Per round, the commands for each ledger; balances stay non-negative."""
    balances: dict[str, Decimal] = {}
    for number in range(rounds):
        plans: list[Plan] = []
        for ledger_id, owner, currency in [*OWNERS, BUSY]:
            steps: list[Step] = []
            if number == 0:
                steps.append(call("open", owner, currency))
                opening = _money(rng, 500, 3000)
                steps.append(call("deposit", opening))
                balances[ledger_id] = opening
            busy = ledger_id == BUSY[0]
            frozen = ledger_id == "dana" and rounds // 2 < number <= rounds // 2 + 2
            moves = rng.randint(4, 6) if busy else rng.randint(0, 2)
            for _ in range(0 if frozen else moves):
                if rng.random() < 0.55:
                    amount = _money(rng, 20, 400)
                    steps.append(call("deposit", amount))
                    balances[ledger_id] += amount
                else:
                    amount = min(_money(rng, 5, 250), balances[ledger_id])
                    if amount > 0:
                        memo = rng.choice(MEMOS)
                        steps.append(call("withdraw", amount, description=memo))
                        balances[ledger_id] -= amount
            if ledger_id == "dana" and number == rounds // 2:
                steps.append(call("freeze", "suspicious card activity"))
            if ledger_id == "dana" and number == rounds // 2 + 2:
                steps.insert(0, call("unfreeze", "customer confirmed"))
            if steps:
                plans.append(Plan(Ledger, ledger_id, tuple(steps)))
        if number == rounds - 1:
            # June moves abroad: empty the account and close it.
            plans.append(Plan(Ledger, "june", (empty_and_close,)))
        yield plans


def order_plans(rng: random.Random, count: int) -> list[list[Plan]]:
    """Orders in three rounds: placed (and edited), then paid, then shipped or cancelled."""
    placed: list[Plan] = []
    paid: list[Plan] = []
    finished: list[Plan] = []
    customers = [owner_id for owner_id, _, _ in OWNERS]
    for number in range(1, count + 1):
        order_id = f"2024-{number:04d}"
        customer = rng.choice(customers)
        items = rng.sample(CATALOGUE, rng.randint(1, 3))
        lines = [(sku, rng.randint(1, 3), price) for sku, price in items]
        steps: list[Step] = [call("place", customer, lines)]
        if rng.random() < 0.4:
            sku, price = rng.choice(CATALOGUE)
            steps.append(call("add_item", sku, 1, price))
        if rng.random() < 0.2 and len(lines) > 1:
            steps.append(call("remove_item", lines[0][0]))
        placed.append(Plan(Order, order_id, tuple(steps)))
        fate = rng.random()
        if fate < 0.75:
            paid.append(Plan(Order, order_id, (pay_total,)))
            if fate < 0.6:
                carrier = rng.choice(CARRIERS)
                finished.append(Plan(Order, order_id, (call("ship", carrier),)))
            elif fate < 0.68:
                finished.append(Plan(Order, order_id, (call("cancel", "out of stock"),)))
        elif fate < 0.88:
            finished.append(Plan(Order, order_id, (call("cancel", "customer changed mind"),)))
    return [placed, paid, finished]
