"""The ledger's business rules, one error class each.

::

    DomainError
     ├── InvalidAmount            (shared) a float, not a number, zero or negative
     └── LedgerError
          ├── LedgerNotOpen       a command before ``open``
          ├── LedgerAlreadyOpen   ``open`` twice
          ├── LedgerClosed        anything after ``close``
          ├── LedgerFrozen        deposit, withdraw, freeze or close while frozen
          ├── LedgerNotFrozen     ``unfreeze`` while not frozen
          ├── InvalidCurrency     not a three-letter upper-case code
          ├── CurrencyMismatch    a deposit or withdrawal in another currency
          ├── InvalidOwner        an empty owner
          ├── InsufficientFunds   a withdrawal past the overdraft limit
          └── NonZeroBalance      ``close`` with money left (or owed)
"""

from __future__ import annotations

from .._errors import DomainError


class LedgerError(DomainError):
    """A ledger command broke one of the ledger's rules."""

    rule = "ledger-rule"


class LedgerNotOpen(LedgerError):
    rule = "ledger-not-open"


class LedgerAlreadyOpen(LedgerError):
    rule = "ledger-already-open"


class LedgerClosed(LedgerError):
    rule = "ledger-closed"


class LedgerFrozen(LedgerError):
    rule = "ledger-frozen"


class LedgerNotFrozen(LedgerError):
    rule = "ledger-not-frozen"


class InvalidCurrency(LedgerError):
    rule = "invalid-currency"


class CurrencyMismatch(LedgerError):
    rule = "currency-mismatch"


class InvalidOwner(LedgerError):
    rule = "invalid-owner"


class InsufficientFunds(LedgerError):
    rule = "insufficient-funds"


class NonZeroBalance(LedgerError):
    rule = "nonzero-balance"
