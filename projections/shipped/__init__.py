"""Projections of the shipped aggregates.

``LEDGER_BALANCES`` (Redis): each ledger's balance and status, and per-owner totals.
``ORDER_SUMMARIES`` (MongoDB): order summaries and per-customer order lists.
"""

from ._ledger_balances import (
    LEDGER_BALANCES,
    LedgerBalance,
    ledger_balance,
    owner_ledgers,
    owner_totals,
)
from ._order_summaries import (
    ORDER_SUMMARIES,
    OrderSummary,
    OrderSummaryLine,
    customer_orders,
    order_summary,
)

__all__ = [
    "LEDGER_BALANCES",
    "ORDER_SUMMARIES",
    "LedgerBalance",
    "OrderSummary",
    "OrderSummaryLine",
    "customer_orders",
    "ledger_balance",
    "order_summary",
    "owner_ledgers",
    "owner_totals",
]
