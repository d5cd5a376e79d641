"""The shipped Ledger aggregate: an account with deposits, withdrawals, freezes and close.

Stream ids are ``ledger-<id>``.  Events are ``ledger.*``; events written by release 1
are migrated on read by ``LEDGER_UPCASTERS`` (see ``_events`` for their history).
"""

from .._errors import InvalidAmount
from ._errors import (
    CurrencyMismatch,
    InsufficientFunds,
    InvalidCurrency,
    InvalidOwner,
    LedgerAlreadyOpen,
    LedgerClosed,
    LedgerError,
    LedgerFrozen,
    LedgerNotFrozen,
    LedgerNotOpen,
    NonZeroBalance,
)
from ._events import LEDGER_EVENTS, Closed, Deposited, Frozen, Opened, Unfrozen, Withdrawn
from ._ledger import Ledger, LedgerState, LedgerStatus
from ._upcasters import LEDGER_UPCASTERS

__all__ = [
    "LEDGER_EVENTS",
    "LEDGER_UPCASTERS",
    "Closed",
    "CurrencyMismatch",
    "Deposited",
    "Frozen",
    "InsufficientFunds",
    "InvalidAmount",
    "InvalidCurrency",
    "InvalidOwner",
    "Ledger",
    "LedgerAlreadyOpen",
    "LedgerClosed",
    "LedgerError",
    "LedgerFrozen",
    "LedgerNotFrozen",
    "LedgerNotOpen",
    "LedgerState",
    "LedgerStatus",
    "NonZeroBalance",
    "Opened",
    "Unfrozen",
    "Withdrawn",
]
