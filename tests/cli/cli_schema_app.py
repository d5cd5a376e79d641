"""Releases of one small app, for the schema check tests.

``release1`` wrote ``post.Shipped`` v1 with ``grams``.  ``unbumped`` changed the
model to ``weight_kg`` but kept v1 (the mistake the check exists for);
``bumped`` made it v2 with an upcaster; ``bumped_without_upcaster`` forgot it.
"""

from __future__ import annotations

from typing import Any, ClassVar

from chronik import App
from eventstore import Event, EventCodec
from projections import Projection, RedisWrites
from upcasters import UpcasterChain


class ShippedV1(Event):
    event_type: ClassVar[str] = "post.Shipped"
    parcel: str
    grams: int


class ShippedUnbumped(Event):
    event_type: ClassVar[str] = "post.Shipped"
    parcel: str
    weight_kg: float


class ShippedV2(Event):
    event_type: ClassVar[str] = "post.Shipped"
    event_version: ClassVar[int] = 2
    parcel: str
    weight_kg: float
    note: str = ""


class Returned(Event):
    event_type: ClassVar[str] = "post.Returned"
    parcel: str


UPCASTERS = UpcasterChain()


@UPCASTERS.upcaster("post.Shipped", from_version=1)
def _grams_to_kg(data: dict[str, Any]) -> dict[str, Any]:
    # Raises KeyError on a v1 event without "grams": the history check must find it.
    return {"parcel": data["parcel"], "weight_kg": data["grams"] / 1000}


def _parcels(*handled: type[Event]) -> Projection[RedisWrites]:
    projection: Projection[RedisWrites] = Projection(
        "parcels",
        writes=RedisWrites,
        codec=EventCodec([ShippedV2, Returned], UPCASTERS),
        must_handle=("post.*",),
    )
    for cls in handled:
        projection.add_handler(cls, lambda event, envelope, writes: None)
    return projection


release1 = App(name="post", events=[ShippedV1])
unbumped = App(name="post", events=[ShippedUnbumped])
bumped = App(name="post", events=[ShippedV2], upcasters=UPCASTERS)
bumped_without_upcaster = App(name="post", events=[ShippedV2])
# A new event type the projection declared it must handle, but has no handler for.
returns_unhandled = App(
    name="post",
    events=[ShippedV2, Returned],
    upcasters=UPCASTERS,
    projections=[_parcels(ShippedV2)],
)
