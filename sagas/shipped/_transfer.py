"""Money transfer between two ledgers: debit the source, credit the target.

If the target cannot be credited (frozen, closed, another currency, missing), the
source is refunded: the money is never lost nor created, whatever fails when.
"""

from __future__ import annotations

from typing import Any

from aggregates import MoneyInput
from aggregates.ledger import Ledger

from .._definition import Command, Data, Saga, Step


def transfer_data(source: str, target: str, amount: MoneyInput, currency: str) -> dict[str, Any]:
    """The data of a transfer instance (JSON: the amount as a decimal string)."""
    return {"source": source, "target": target, "amount": str(amount), "currency": currency}


def _debit(data: Data) -> Command[Ledger]:
    return Command(
        Ledger,
        data["source"],
        lambda ledger: ledger.withdraw(
            data["amount"], currency=data["currency"], description=f"transfer to {data['target']}"
        ),
    )


def _refund(data: Data) -> Command[Ledger]:
    return Command(
        Ledger,
        data["source"],
        lambda ledger: ledger.deposit(data["amount"], currency=data["currency"]),
    )


def _credit(data: Data) -> Command[Ledger]:
    return Command(
        Ledger,
        data["target"],
        lambda ledger: ledger.deposit(data["amount"], currency=data["currency"]),
    )


TRANSFER = Saga(
    "transfer",
    [
        Step("debit", _debit, compensate=_refund),
        Step("credit", _credit),
    ],
    description="debit the source ledger, credit the target; refund the source on failure",
)
