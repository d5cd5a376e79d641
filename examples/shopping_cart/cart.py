"""The Cart aggregate: its events, its state and its commands."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel

from aggregates import Aggregate, DomainError, applies, command
from eventstore import Event


# --8<-- [start:events]
class ItemAdded(Event):
    event_type: ClassVar[str] = "cart.ItemAdded"  # stored with every event: never rename
    sku: str
    quantity: int
    unit_price_cents: int


class ItemRemoved(Event):
    event_type: ClassVar[str] = "cart.ItemRemoved"
    sku: str


class CheckedOut(Event):
    event_type: ClassVar[str] = "cart.CheckedOut"
    total_cents: int


# --8<-- [end:events]


# --8<-- [start:state]
class Line(BaseModel):
    quantity: int
    unit_price_cents: int


class CartState(BaseModel):
    """The state must be a pydantic model: snapshots store it as JSON, and its JSON
    schema is the fingerprint that retires old snapshots when it changes."""

    lines: dict[str, Line] = {}
    checked_out: bool = False

    @property
    def total_cents(self) -> int:
        return sum(line.quantity * line.unit_price_cents for line in self.lines.values())


# --8<-- [end:state]


# --8<-- [start:aggregate]
class CartClosed(DomainError):
    """A command on a cart that was checked out already."""


class EmptyCart(DomainError):
    """Checking out a cart with nothing in it."""


class Cart(Aggregate[CartState]):
    type_name = "cart"  # stream ids are "cart-<id>"

    @command
    def add(self, sku: str, quantity: int, unit_price_cents: int) -> None:
        if self.state.checked_out:
            raise self.refuse(CartClosed, "the cart was checked out")
        if quantity < 1:
            raise ValueError(f"quantity must be >= 1, got {quantity}")
        self.record(ItemAdded(sku=sku, quantity=quantity, unit_price_cents=unit_price_cents))

    @command
    def remove(self, sku: str) -> None:
        if self.state.checked_out:
            raise self.refuse(CartClosed, "the cart was checked out")
        if sku in self.state.lines:
            self.record(ItemRemoved(sku=sku))

    @command
    def check_out(self) -> None:
        if self.state.checked_out:
            raise self.refuse(CartClosed, "the cart was checked out")
        if not self.state.lines:
            raise self.refuse(EmptyCart, "nothing to check out")
        self.record(CheckedOut(total_cents=self.state.total_cents))

    # Apply methods only evolve the state; they never check rules (they also run
    # on every replay, long after the rules that allowed the event may have changed).
    @applies
    def _added(self, event: ItemAdded) -> None:
        line = self.state.lines.get(event.sku)
        quantity = event.quantity + (line.quantity if line else 0)
        self.state.lines[event.sku] = Line(
            quantity=quantity, unit_price_cents=event.unit_price_cents
        )

    @applies
    def _removed(self, event: ItemRemoved) -> None:
        self.state.lines.pop(event.sku, None)

    @applies
    def _checked_out(self, event: CheckedOut) -> None:
        self.state.checked_out = True


# --8<-- [end:aggregate]
