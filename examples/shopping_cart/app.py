"""The shop's ``App``: what the ``chronik`` command knows about this service."""

from __future__ import annotations

# --8<-- [start:app]
from chronik import App

from .cart import Cart
from .read_model import CART_CONTENTS

app = App(name="shop", aggregates=[Cart], projections=[CART_CONTENTS])
# --8<-- [end:app]
