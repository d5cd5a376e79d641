"""The shipped app: the ledger and order aggregates with their projections and sagas.

``chronik`` uses it when no other app is configured; ``chronik demo`` seeds it.
"""

from __future__ import annotations

from aggregates.ledger import Ledger
from aggregates.order import Order
from projections.shipped import LEDGER_BALANCES, ORDER_SUMMARIES
from sagas.shipped import CHECKOUT, TRANSFER
from snapshots import EveryNEvents

from ._app import App
from ._demo import seed_ledgers_and_orders

app = App(
    name="chronik demo (ledger + orders)",
    aggregates=[Ledger, Order],
    projections=[LEDGER_BALANCES, ORDER_SUMMARIES],
    # Started explicitly (sagas.start_saga); 'chronik run' drives them.
    sagas=[TRANSFER, CHECKOUT],
    # Ledgers live long (a business account has thousands of movements); orders don't.
    snapshot_policy=EveryNEvents({"ledger": 25}, default=None),
    seed=seed_ledgers_and_orders,
)
