"""Order invariants under random command sequences, checked against a simple model.

- the total always equals the sum of quantity x unit price over the lines, and the
  lines equal the model's;
- each command succeeds exactly when the model's rules allow it; a refused command
  records nothing;
- replaying the recorded events gives the same state; the state at version N equals
  replaying only the first N events.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import note
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from aggregates import DomainError
from aggregates.order import Order, OrderStatus

D = Decimal
SKUS = st.sampled_from(["apple", "pear", "plum", "kiwi", "fig"])
PRICES = st.sampled_from([D("0.50"), D("1.25"), D("3"), D("0"), D("19.99")])
QUANTITIES = st.integers(min_value=1, max_value=20)


class OrderMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.order = Order("prop")
        self.lines: dict[str, tuple[int, Decimal]] = {}
        self.status = OrderStatus.NEW
        self.states: list[dict[str, Any]] = [self.order.state_dict()]

    @property
    def model_total(self) -> Decimal:
        return sum((q * p for q, p in self.lines.values()), D(0))

    def attempt(self, allowed: bool, command: Any) -> bool:
        before = (self.order.version, self.order.state_dict())
        try:
            command(self.order)
        except DomainError as error:
            note(f"refused: {error}")
            assert not allowed, f"refused although the rules allow it: {error}"
            assert (self.order.version, self.order.state_dict()) == before
            assert len(self.order.pending_events) == before[0]
            return False
        assert allowed, "accepted although the rules forbid it"
        self.states.append(self.order.state_dict())
        return True

    @initialize(items=st.dictionaries(SKUS, st.tuples(QUANTITIES, PRICES), min_size=1, max_size=3))
    def place(self, items: dict[str, tuple[int, Decimal]]) -> None:
        given = [(sku, q, p) for sku, (q, p) in items.items()]
        self.attempt(True, lambda o: o.place("c1", given))
        self.lines, self.status = dict(items), OrderStatus.PLACED

    @rule(sku=SKUS, quantity=QUANTITIES, price=PRICES)
    def add_item(self, sku: str, quantity: int, price: Decimal) -> None:
        existing = self.lines.get(sku)
        allowed = self.status is OrderStatus.PLACED and (existing is None or existing[1] == price)
        if self.attempt(allowed, lambda o: o.add_item(sku, quantity, price)):
            self.lines[sku] = ((existing[0] if existing else 0) + quantity, price)

    @rule(sku=SKUS, quantity=st.none() | QUANTITIES)
    def remove_item(self, sku: str, quantity: int | None) -> None:
        existing = self.lines.get(sku)
        allowed = (
            self.status is OrderStatus.PLACED
            and existing is not None
            and (quantity is None or quantity <= existing[0])
        )
        if self.attempt(allowed, lambda o: o.remove_item(sku, quantity)):
            assert existing is not None
            left = existing[0] - (existing[0] if quantity is None else quantity)
            if left:
                self.lines[sku] = (left, existing[1])
            else:
                del self.lines[sku]

    @rule(off_by=st.sampled_from([D(0), D(0), D("0.01"), D("-0.01")]))
    def pay(self, off_by: Decimal) -> None:
        amount = self.model_total + off_by
        allowed = self.status is OrderStatus.PLACED and bool(self.lines) and off_by == 0
        if self.attempt(allowed, lambda o: o.pay(amount)):
            self.status = OrderStatus.PAID

    @rule()
    def ship(self) -> None:
        if self.attempt(self.status is OrderStatus.PAID, lambda o: o.ship()):
            self.status = OrderStatus.SHIPPED

    @rule()
    def cancel(self) -> None:
        allowed = self.status in (OrderStatus.PLACED, OrderStatus.PAID)
        if self.attempt(allowed, lambda o: o.cancel()):
            self.status = OrderStatus.CANCELLED

    @invariant()
    def total_is_the_sum_of_the_lines(self) -> None:
        assert self.order.total == sum(
            (line.quantity * line.unit_price for line in self.order.lines), D(0)
        )
        assert self.order.total == self.model_total
        assert {led.sku: (led.quantity, led.unit_price) for led in self.order.lines} == self.lines
        assert self.order.status is self.status

    @invariant()
    def replay_gives_the_same_state(self) -> None:
        replayed = Order.replay("prop", self.order.pending_events)
        assert replayed.state == self.order.state
        assert replayed.total == self.order.total

    def teardown(self) -> None:
        events = self.order.pending_events
        for n in range(len(events) + 1):
            assert Order.replay("prop", events[:n]).state_dict() == self.states[n]


TestOrderMachine = OrderMachine.TestCase
