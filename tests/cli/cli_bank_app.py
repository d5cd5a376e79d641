"""A small app for the CLI tests: a 'bank' domain with an upcaster.

``app`` is the app the tests point ``--app`` at.  Release 1 wrote ``bank.Credited``
with ``{"cents": int}``; the current class (v2) holds ``amount`` as a Decimal string.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, ClassVar

from chronik import App
from eventstore import Event
from upcasters import UpcasterChain


class Credited(Event):
    event_type: ClassVar[str] = "bank.Credited"
    event_version: ClassVar[int] = 2
    amount: Decimal


class Debited(Event):
    event_type: ClassVar[str] = "bank.Debited"
    amount: Decimal


UPCASTERS = UpcasterChain()


@UPCASTERS.upcaster("bank.Credited", from_version=1)
def _credited_v1(data: dict[str, Any]) -> dict[str, Any]:
    return {"amount": str(Decimal(data.pop("cents")) / 100)}


app = App(name="bank", events=[Credited, Debited], upcasters=UPCASTERS)
