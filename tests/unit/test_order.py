"""The Order's rules, as given/when/then specifications."""

from __future__ import annotations

from decimal import Decimal

import pytest

from aggregates import scenario
from aggregates.order import (
    AlreadyCancelled,
    AlreadyShipped,
    EmptyOrder,
    InvalidAmount,
    InvalidCustomer,
    InvalidItem,
    ItemAdded,
    ItemNotInOrder,
    ItemRemoved,
    Order,
    OrderAlreadyPlaced,
    OrderCancelled,
    OrderLine,
    OrderNotOpen,
    OrderNotPaid,
    OrderNotPlaced,
    OrderPaid,
    OrderPlaced,
    OrderShipped,
    OrderStatus,
    PaymentMismatch,
    PriceMismatch,
)

D = Decimal


def line(sku: str, quantity: int, price: str) -> OrderLine:
    return OrderLine(sku=sku, quantity=quantity, unit_price=D(price))


PLACED = OrderPlaced(customer="c1", lines=(line("apple", 3, "0.50"), line("pear", 1, "2.25")))
PAID = OrderPaid(amount=D("3.75"))


def test_place_records_customer_and_lines_and_derives_the_total() -> None:
    order = (
        scenario(Order)
        .when(
            lambda order: order.place(
                "c1",
                [("apple", 3, "0.50"), {"sku": "pear", "quantity": 1, "unit_price": D("2.25")}],
            )
        )
        .then(PLACED)
    )
    assert order.total == D("3.75")
    assert order.status is OrderStatus.PLACED


def test_place_twice_is_refused() -> None:
    scenario(Order).given(PLACED).when(lambda o: o.place("c1", [("x", 1, 1)])).then_raises(
        OrderAlreadyPlaced
    )


@pytest.mark.parametrize(
    ("customer", "items", "error"),
    [
        ("", [("x", 1, 1)], InvalidCustomer),
        ("c1", [], EmptyOrder),
        ("c1", [("x", 0, 1)], InvalidItem),
        ("c1", [("x", True, 1)], InvalidItem),
        ("c1", [("", 1, 1)], InvalidItem),
        ("c1", [("x", 1, -1)], InvalidItem),
        ("c1", [("x", 1, 1.5)], InvalidAmount),
        ("c1", [("x", 1, 1), ("x", 2, 1)], InvalidItem),
        ("c1", ["x"], InvalidItem),
    ],
)
def test_place_checks_its_input(customer: str, items: list[object], error: type[Exception]) -> None:
    scenario(Order).when(lambda o: o.place(customer, items)).then_raises(error)  # type: ignore[arg-type]


def test_add_a_new_item_and_more_of_an_existing_one() -> None:
    order = (
        scenario(Order)
        .given(PLACED, ItemAdded(line=line("plum", 2, "1.00")))
        .when(lambda o: o.add_item("apple", 2, "0.50"))
        .then(ItemAdded(line=line("apple", 2, "0.50")))
    )
    assert {led.sku: led.quantity for led in order.lines} == {"apple": 5, "pear": 1, "plum": 2}
    assert order.total == D("6.75")


def test_adding_a_sku_again_at_another_price_is_refused() -> None:
    scenario(Order).given(PLACED).when(lambda o: o.add_item("apple", 1, "0.60")).then_raises(
        PriceMismatch
    )


def test_remove_some_or_all_units() -> None:
    order = (
        scenario(Order)
        .given(PLACED)
        .when(lambda o: o.remove_item("apple", 2))
        .then(ItemRemoved(sku="apple", quantity=2))
    )
    assert order.total == D("2.75")
    order = (
        scenario(Order)
        .given(PLACED)
        .when(lambda o: o.remove_item("pear"))
        .then(ItemRemoved(sku="pear", quantity=1))
    )
    assert [led.sku for led in order.lines] == ["apple"]


@pytest.mark.parametrize(("sku", "quantity"), [("kiwi", None), ("apple", 4), ("apple", 0)])
def test_removing_what_is_not_there_is_refused(sku: str, quantity: int | None) -> None:
    scenario(Order).given(PLACED).when(lambda o: o.remove_item(sku, quantity)).then_raises(
        ItemNotInOrder if quantity != 0 else InvalidItem
    )


def test_pay_exactly_the_total() -> None:
    order = (
        scenario(Order)
        .given(PLACED)
        .when(lambda o: o.pay("3.750"))
        .then(OrderPaid(amount=D("3.750")))
    )
    assert order.status is OrderStatus.PAID


@pytest.mark.parametrize("amount", ["3.74", "3.76", "0"])
def test_pay_another_amount_is_refused(amount: str) -> None:
    scenario(Order).given(PLACED).when(lambda o: o.pay(amount)).then_raises(
        PaymentMismatch, match="total 3.75"
    )


def test_pay_a_float_is_refused() -> None:
    scenario(Order).given(PLACED).when(lambda o: o.pay(3.75)).then_raises(InvalidAmount)  # type: ignore[arg-type]


def test_pay_an_emptied_order_is_refused() -> None:
    scenario(Order).given(
        PLACED, ItemRemoved(sku="apple", quantity=3), ItemRemoved(sku="pear", quantity=1)
    ).when(lambda o: o.pay(0)).then_raises(EmptyOrder)


@pytest.mark.parametrize(
    "command",
    [lambda o: o.add_item("x", 1, 1), lambda o: o.remove_item("apple"), lambda o: o.pay("3.75")],
)
def test_items_and_payment_only_while_open(command: object) -> None:
    scenario(Order).given(PLACED, PAID).when(command).then_raises(OrderNotOpen)  # type: ignore[arg-type]
    scenario(Order).when(command).then_raises(OrderNotPlaced)  # type: ignore[arg-type]


def test_ship_after_pay() -> None:
    order = (
        scenario(Order)
        .given(PLACED, PAID)
        .when(lambda o: o.ship("dhl"))
        .then(OrderShipped(carrier="dhl"))
    )
    assert order.status is OrderStatus.SHIPPED
    scenario(Order).given(PLACED).when(lambda o: o.ship()).then_raises(OrderNotPaid)
    scenario(Order).given(PLACED, PAID, OrderShipped()).when(lambda o: o.ship()).then_raises(
        AlreadyShipped
    )


@pytest.mark.parametrize("history", [[PLACED], [PLACED, PAID]])
def test_cancel_before_shipping(history: list[object]) -> None:
    order = (
        scenario(Order)
        .given(*history)  # type: ignore[arg-type]
        .when(lambda o: o.cancel("changed mind"))
        .then(OrderCancelled(reason="changed mind"))
    )
    assert order.status is OrderStatus.CANCELLED


def test_cancel_after_shipping_is_refused() -> None:
    scenario(Order).given(PLACED, PAID, OrderShipped()).when(lambda o: o.cancel()).then_raises(
        AlreadyShipped
    )


@pytest.mark.parametrize(
    "command",
    [
        lambda o: o.cancel(),
        lambda o: o.ship(),
        lambda o: o.pay("3.75"),
        lambda o: o.add_item("x", 1, 1),
    ],
)
def test_nothing_after_cancel(command: object) -> None:
    scenario(Order).given(PLACED, OrderCancelled()).when(command).then_raises(AlreadyCancelled)  # type: ignore[arg-type]
