"""The Account aggregate, whose ``Deposited`` event changed shape in release 2."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, ClassVar

from pydantic import BaseModel

from aggregates import Aggregate, DomainError, applies, command
from eventstore import Event
from upcasters import UpcasterChain


class Opened(Event):
    event_type: ClassVar[str] = "bank.Opened"
    owner: str


# --8<-- [start:deposited]
class Deposited(Event):
    """Release 1 stored ``{"cents": 1050}``; release 2 stores ``{"amount": "10.50"}``."""

    event_type: ClassVar[str] = "bank.Deposited"
    event_version: ClassVar[int] = 2  # bumped together with an upcaster from v1
    amount: Decimal


BANK_UPCASTERS = UpcasterChain()


@BANK_UPCASTERS.upcaster("bank.Deposited", from_version=1)
def deposited_v1(data: dict[str, Any]) -> dict[str, Any]:
    """A pure ``dict -> dict`` step from the stored v1 data to v2 (it gets a copy)."""
    return {"amount": str(Decimal(data["cents"]) / 100)}


# --8<-- [end:deposited]


class Withdrawn(Event):
    event_type: ClassVar[str] = "bank.Withdrawn"
    amount: Decimal


class Closed(Event):
    event_type: ClassVar[str] = "bank.Closed"
    reason: str | None = None


class AccountState(BaseModel):
    owner: str = ""
    balance: Decimal = Decimal(0)
    closed: bool = False


class InsufficientFunds(DomainError):
    """A withdrawal larger than the balance."""


class AccountClosed(DomainError):
    """A command on a closed account."""


# --8<-- [start:aggregate]
class Account(Aggregate[AccountState]):
    type_name = "account"
    upcasters = BANK_UPCASTERS  # the repository runs them on every load
    # --8<-- [end:aggregate]

    @command
    def open(self, owner: str) -> None:
        self.record(Opened(owner=owner))

    @command
    def deposit(self, amount: str) -> None:
        self._check_open()
        self.record(Deposited(amount=Decimal(amount)))

    @command
    def withdraw(self, amount: str) -> None:
        self._check_open()
        if Decimal(amount) > self.state.balance:
            raise self.refuse(InsufficientFunds, f"{amount} exceeds {self.state.balance}")
        self.record(Withdrawn(amount=Decimal(amount)))

    @command
    def close(self, reason: str | None = None) -> None:
        self._check_open()
        self.record(Closed(reason=reason))

    def _check_open(self) -> None:
        if self.state.closed:
            raise self.refuse(AccountClosed, "the account is closed")

    @applies
    def _opened(self, event: Opened) -> None:
        self.state.owner = event.owner

    @applies
    def _deposited(self, event: Deposited) -> None:
        self.state.balance += event.amount

    @applies
    def _withdrawn(self, event: Withdrawn) -> None:
        self.state.balance -= event.amount

    @applies
    def _closed(self, event: Closed) -> None:
        self.state.closed = True
