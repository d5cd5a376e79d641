"""A release that changes an event without a new version: the check refuses it."""

from __future__ import annotations

from decimal import Decimal
from typing import ClassVar

from bank.account import BANK_UPCASTERS, Closed, Deposited, Opened

from chronik import App
from eventstore import Event


# --8<-- [start:careless]
class Withdrawn(Event):
    event_type: ClassVar[str] = "bank.Withdrawn"  # still version 1...
    amount: Decimal
    atm: str  # ...with a new required field: last year's withdrawals have none


# --8<-- [end:careless]


app = App(name="bank", events=[Opened, Deposited, Withdrawn, Closed], upcasters=BANK_UPCASTERS)
