"""An App prints what it holds (the README used to check this through its example)."""

from __future__ import annotations

from aggregates.ledger import Ledger
from aggregates.order import Order
from chronik import App
from projections.shipped import LEDGER_BALANCES


def test_an_app_prints_its_name_aggregates_and_projections() -> None:
    app = App(name="billing", aggregates=[Ledger, Order], projections=[LEDGER_BALANCES])
    expected = "App('billing', aggregates=['Ledger', 'Order'], projections=['ledger_balances'])"
    assert repr(app) == expected
