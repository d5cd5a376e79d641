"""The Ledger aggregate: an account with a balance in one currency.

Rules (each refusal is a ``LedgerError`` subclass naming the ledger and the rule,
and records nothing):

- ``open`` once, with a non-empty owner, a three-letter currency code and an
  optional overdraft limit >= 0; the currency is fixed from then on.
- Amounts are positive Decimals (ints and decimal strings are accepted; floats are
  refused, never rounded).
- ``withdraw`` may take the balance down to ``-overdraft_limit``, not further.
- A frozen ledger takes no deposits and no withdrawals (a freeze is a hold on the
  account, e.g. during an investigation: money in is blocked as well as money out,
  so the frozen balance stays what was examined) and cannot be closed.
- ``close`` only at a zero balance; nothing at all is accepted after ``close``.
"""

from __future__ import annotations

import re
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel

from .._aggregate import Aggregate, applies, command
from .._errors import InvalidAmount
from .._money import Money, MoneyFormatError, MoneyInput, parse_money
from ._errors import (
    CurrencyMismatch,
    InsufficientFunds,
    InvalidCurrency,
    InvalidOwner,
    LedgerAlreadyOpen,
    LedgerClosed,
    LedgerFrozen,
    LedgerNotFrozen,
    LedgerNotOpen,
    NonZeroBalance,
)
from ._events import Closed, Deposited, Frozen, Opened, Unfrozen, Withdrawn
from ._upcasters import LEDGER_UPCASTERS

_CURRENCY = re.compile(r"^[A-Z]{3}$")


class LedgerStatus(StrEnum):
    UNOPENED = "unopened"
    OPEN = "open"
    FROZEN = "frozen"
    CLOSED = "closed"


class LedgerState(BaseModel):
    status: LedgerStatus = LedgerStatus.UNOPENED
    owner: str = ""
    currency: str = ""
    overdraft_limit: Money = Decimal(0)
    balance: Money = Decimal(0)


class Ledger(Aggregate[LedgerState]):
    """An account: open, deposit, withdraw, freeze, unfreeze, close."""

    type_name = "ledger"
    upcasters = LEDGER_UPCASTERS

    # -- reading -------------------------------------------------------------

    @property
    def balance(self) -> Decimal:
        return self.state.balance

    @property
    def currency(self) -> str:
        return self.state.currency

    @property
    def owner(self) -> str:
        return self.state.owner

    @property
    def status(self) -> LedgerStatus:
        return self.state.status

    @property
    def overdraft_limit(self) -> Decimal:
        return self.state.overdraft_limit

    # -- commands ------------------------------------------------------------

    @command
    def open(self, owner: str, currency: str, *, overdraft_limit: MoneyInput = 0) -> None:
        if self.state.status is not LedgerStatus.UNOPENED:
            raise self.refuse(LedgerAlreadyOpen, f"the ledger is already {self.state.status}")
        if not isinstance(owner, str) or not owner.strip():
            raise self.refuse(InvalidOwner, f"owner must be a non-empty string, got {owner!r}")
        if not isinstance(currency, str) or not _CURRENCY.match(currency):
            raise self.refuse(
                InvalidCurrency, f"currency must be a code like 'EUR', got {currency!r}"
            )
        limit = self._money(overdraft_limit, "overdraft limit")
        if limit < 0:
            raise self.refuse(InvalidAmount, f"overdraft limit must be >= 0, got {limit}")
        self.record(Opened(owner=owner, currency=currency, overdraft_limit=limit))

    @command
    def deposit(self, amount: MoneyInput, *, currency: str | None = None) -> None:
        value = self._movement(amount, currency, "deposit", "deposit")
        self.record(Deposited(amount=value, currency=self.state.currency))

    @command
    def withdraw(
        self, amount: MoneyInput, *, currency: str | None = None, description: str = ""
    ) -> None:
        value = self._movement(amount, currency, "withdraw", "withdrawal")
        after = self.state.balance - value
        if after < -self.state.overdraft_limit:
            raise self.refuse(
                InsufficientFunds,
                f"withdrawing {value} {self.state.currency} from a balance of "
                f"{self.state.balance} would go below the overdraft limit of "
                f"{self.state.overdraft_limit}",
            )
        self.record(Withdrawn(amount=value, currency=self.state.currency, description=description))

    @command
    def freeze(self, reason: str = "") -> None:
        self._require_active("freeze")
        self.record(Frozen(reason=reason))

    @command
    def unfreeze(self, reason: str = "") -> None:
        self._require_opened("unfreeze")
        if self.state.status is not LedgerStatus.FROZEN:
            raise self.refuse(LedgerNotFrozen, "the ledger is not frozen")
        self.record(Unfrozen(reason=reason))

    @command
    def close(self) -> None:
        self._require_active("close")
        if self.state.balance != 0:
            raise self.refuse(
                NonZeroBalance,
                f"the balance is {self.state.balance} {self.state.currency}; it must be 0",
            )
        self.record(Closed())

    # -- rules ---------------------------------------------------------------

    def _require_opened(self, action: str) -> None:
        if self.state.status is LedgerStatus.UNOPENED:
            raise self.refuse(LedgerNotOpen, f"cannot {action} before the ledger is opened")
        if self.state.status is LedgerStatus.CLOSED:
            raise self.refuse(LedgerClosed, f"cannot {action}: the ledger is closed")

    def _require_active(self, action: str) -> None:
        self._require_opened(action)
        if self.state.status is LedgerStatus.FROZEN:
            raise self.refuse(LedgerFrozen, f"cannot {action}: the ledger is frozen")

    def _movement(
        self, amount: MoneyInput, currency: str | None, verb: str, action: str
    ) -> Decimal:
        # ``verb`` for "cannot withdraw: ...", ``action`` (a noun) for the rest.
        self._require_active(verb)
        value = self._money(amount, f"{action} amount")
        if value <= 0:
            raise self.refuse(InvalidAmount, f"{action} amount must be positive, got {value}")
        if currency is not None and currency != self.state.currency:
            raise self.refuse(
                CurrencyMismatch,
                f"{action} in {currency!r}, but the ledger is in {self.state.currency!r}",
            )
        return value

    def _money(self, value: MoneyInput, what: str) -> Decimal:
        try:
            return parse_money(value, what)
        except MoneyFormatError as error:
            raise self.refuse(InvalidAmount, str(error)) from error

    # -- evolving the state --------------------------------------------------

    @applies(Opened)
    def _opened(self, event: Opened) -> None:
        state = self.state
        state.status = LedgerStatus.OPEN
        state.owner = event.owner
        state.currency = event.currency
        state.overdraft_limit = event.overdraft_limit

    @applies(Deposited)
    def _deposited(self, event: Deposited) -> None:
        # currency is None on events migrated from v1: the ledger's own currency.
        self.state.balance += event.amount

    @applies(Withdrawn)
    def _withdrawn(self, event: Withdrawn) -> None:
        self.state.balance -= event.amount

    @applies(Frozen)
    def _frozen(self, event: Frozen) -> None:
        self.state.status = LedgerStatus.FROZEN

    @applies(Unfrozen)
    def _unfrozen(self, event: Unfrozen) -> None:
        self.state.status = LedgerStatus.OPEN

    @applies(Closed)
    def _closed(self, event: Closed) -> None:
        self.state.status = LedgerStatus.CLOSED
