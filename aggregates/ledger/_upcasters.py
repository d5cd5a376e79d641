"""Migrations of the ledger's stored events from release 1 to the current classes.

Each step is a pure ``dict -> dict`` function of one stored event (the chain hands
it a private copy, so mutating its argument is fine).  See ``_events`` for the
history these steps undo.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from upcasters import UpcasterChain

LEDGER_UPCASTERS = UpcasterChain()


def _amount_text(value: Any) -> Any:
    # Release 1 wrote amounts as JSON numbers, which come back as int or float.
    # repr() of a float is the shortest text that reads back as the same float,
    # which is the decimal the old release printed; Decimal(float) would instead
    # expand the binary value (0.1 -> 0.1000000000000000055...).
    if isinstance(value, bool):
        return value  # not money: let validation name it
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(Decimal(repr(value)))
    return value


@LEDGER_UPCASTERS.upcaster("ledger.AccountOpened", from_version=1, new_type="ledger.Opened")
def account_opened_v1(data: dict[str, Any]) -> dict[str, Any]:
    """``AccountOpened{holder, currency}`` -> ``Opened{owner, currency, overdraft_limit}``."""
    data["owner"] = data.pop("holder")
    data["overdraft_limit"] = "0"
    return data


@LEDGER_UPCASTERS.upcaster("ledger.Deposited", from_version=1)
def deposited_v1(data: dict[str, Any]) -> dict[str, Any]:
    """``{amount: number}`` -> ``{amount: string, currency: None}`` (the ledger's currency)."""
    data["amount"] = _amount_text(data["amount"])
    data["currency"] = None
    return data


@LEDGER_UPCASTERS.upcaster("ledger.Withdrawn", from_version=1)
def withdrawn_v1(data: dict[str, Any]) -> dict[str, Any]:
    """``{amount: number, memo}`` -> ``{amount: string, currency: None, description}``."""
    data["amount"] = _amount_text(data["amount"])
    data["currency"] = None
    data["description"] = data.pop("memo", None) or ""
    return data
