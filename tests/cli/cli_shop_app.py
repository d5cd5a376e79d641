"""An app for the CLI tests of parked reaction triggers: orders paid on placing.

``app`` runs the shipped ``PAY_ON_PLACE`` reaction; an order whose customer has no
ledger makes it raise (the ledger is not found), which parks the order's event.
"""

from __future__ import annotations

from aggregates.ledger import Ledger
from aggregates.order import Order
from chronik import App
from sagas.shipped import PAY_ON_PLACE

app = App(name="shop", aggregates=[Ledger, Order], sagas=[PAY_ON_PLACE])
