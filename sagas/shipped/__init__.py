"""The shipped sagas: ``TRANSFER`` between ledgers and ``CHECKOUT`` of an order
(orchestrated), and ``PAY_ON_PLACE`` (the checkout as choreography)."""

from ._checkout import CHECKOUT, PAY_ON_PLACE, checkout_data
from ._transfer import TRANSFER, transfer_data

__all__ = ["CHECKOUT", "PAY_ON_PLACE", "TRANSFER", "checkout_data", "transfer_data"]
