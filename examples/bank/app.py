"""The bank's ``App`` as it is now (release 2, with the fixes)."""

from __future__ import annotations

from chronik import App

from .account import Account
from .views import BALANCES, CLOSURES

app = App(name="bank", aggregates=[Account], projections=[BALANCES, CLOSURES])
