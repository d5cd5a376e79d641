"""Order checkout: pay from the customer's ledger, then mark the order paid.

As an orchestrated saga (``CHECKOUT``): if the payment is refused the order is
cancelled with the reason; if the order cannot take the payment (cancelled
meanwhile, items changed) the customer is refunded and the order cancelled.
As choreography (``PAY_ON_PLACE``): the same decisions as one reaction to
``order.Placed``, for a customer whose ledger id is the order's customer.
"""

from __future__ import annotations

from typing import Any

from aggregates import DomainError, MoneyInput
from aggregates.ledger import Ledger
from aggregates.order import Order, OrderPlaced, OrderStatus
from eventstore import RecordedEvent

from .._definition import Command, Data, Issue, Reaction, Saga, Step


def checkout_data(
    order_id: str, ledger_id: str, amount: MoneyInput, currency: str
) -> dict[str, Any]:
    """The data of a checkout instance: which order, paid from which ledger."""
    return {
        "order_id": order_id,
        "ledger_id": ledger_id,
        "amount": str(amount),
        "currency": currency,
    }


def _cancel_order(data: Data) -> Command[Order]:
    def cancel(order: Order) -> None:
        # Already cancelled (by the customer, say): nothing left to undo.
        if order.status is not OrderStatus.CANCELLED:
            order.cancel(f"checkout failed: {data.get('failure') or 'compensated'}")

    return Command(Order, data["order_id"], cancel)


def _pay(data: Data) -> Command[Ledger]:
    return Command(
        Ledger,
        data["ledger_id"],
        lambda ledger: ledger.withdraw(
            data["amount"], currency=data["currency"], description=f"order {data['order_id']}"
        ),
    )


def _refund(data: Data) -> Command[Ledger]:
    return Command(
        Ledger,
        data["ledger_id"],
        lambda ledger: ledger.deposit(data["amount"], currency=data["currency"]),
    )


def _confirm(data: Data) -> Command[Order]:
    return Command(Order, data["order_id"], lambda order: order.pay(data["amount"]))


CHECKOUT = Saga(
    "checkout",
    [
        # Nothing to do to accept a placed order, but undoing the checkout cancels it.
        Step("accept", compensate=_cancel_order),
        Step("pay", _pay, compensate=_refund),
        Step("confirm", _confirm),
    ],
    description="pay an order from the customer's ledger and mark it paid; "
    "refund and cancel on failure",
)


async def _pay_on_place(event: OrderPlaced, envelope: RecordedEvent, issue: Issue) -> None:
    order_id = envelope.stream_id.removeprefix(Order.stream_id_for(""))
    total = sum((line.quantity * line.unit_price for line in event.lines), start=0)
    try:
        await issue(
            Command(
                Ledger,
                event.customer,
                lambda ledger: ledger.withdraw(total, description=f"order {order_id}"),
            )
        )
    except DomainError as refusal:
        reason = refusal.detail
    else:
        await issue(Command(Order, order_id, lambda order: order.pay(total)))
        return
    await issue(Command(Order, order_id, lambda order: order.cancel(reason)))


PAY_ON_PLACE = Reaction(
    "pay-on-place",
    on=(OrderPlaced,),
    handle=_pay_on_place,
    description="choreography: a placed order is paid from the ledger named by its customer, "
    "or cancelled with the reason the ledger refused",
)
