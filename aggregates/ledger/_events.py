"""The ledger's events, at their current schema versions.

History (what older releases stored; ``_upcasters`` migrates it on every read):

- ``ledger.AccountOpened`` v1 ``{holder, currency}`` became ``ledger.Opened`` v2
  ``{owner, currency, overdraft_limit}``: type renamed, ``holder`` renamed to
  ``owner``, overdraft limits introduced (old accounts had none: ``"0"``).
- ``ledger.Deposited`` v1 ``{amount}`` became v2 ``{amount, currency}``.  Release 1
  stored amounts as JSON numbers; v2 stores decimal strings.  ``currency`` is
  ``None`` on migrated events and means "the ledger's currency": an upcaster sees
  one event, not the ledger, and a v1 ledger only ever held one currency.
- ``ledger.Withdrawn`` v1 ``{amount, memo}`` became v2 ``{amount, currency,
  description}``: as for deposits, plus ``memo`` renamed to ``description``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import ClassVar

from eventstore import Event

from .._money import Money


class Opened(Event):
    """The ledger was opened for ``owner`` in ``currency`` (ISO 4217 code)."""

    event_type: ClassVar[str] = "ledger.Opened"
    event_version: ClassVar[int] = 2

    owner: str
    currency: str
    overdraft_limit: Money = Decimal(0)


class Deposited(Event):
    """Money came in.  ``currency`` is None only on events migrated from v1."""

    event_type: ClassVar[str] = "ledger.Deposited"
    event_version: ClassVar[int] = 2

    amount: Money
    currency: str | None


class Withdrawn(Event):
    """Money went out.  ``currency`` is None only on events migrated from v1."""

    event_type: ClassVar[str] = "ledger.Withdrawn"
    event_version: ClassVar[int] = 2

    amount: Money
    currency: str | None
    description: str = ""


class Frozen(Event):
    """Deposits, withdrawals and closing are blocked until the ledger is unfrozen."""

    event_type: ClassVar[str] = "ledger.Frozen"

    reason: str = ""


class Unfrozen(Event):
    event_type: ClassVar[str] = "ledger.Unfrozen"

    reason: str = ""


class Closed(Event):
    """The ledger is closed for good; nothing can happen after this."""

    event_type: ClassVar[str] = "ledger.Closed"


LEDGER_EVENTS: tuple[type[Event], ...] = (Opened, Deposited, Withdrawn, Frozen, Unfrozen, Closed)
