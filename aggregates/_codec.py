"""One EventCodec for a set of aggregate classes: their events and merged upcasters.

Built once per Repository, at start-up: ``EventCodec`` validates the merged chain
against the current event versions, so a gap fails the service's boot, not a replay.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from eventstore import Event, EventCodec
from upcasters import Upcaster, UpcasterChain

from ._aggregate import Aggregate
from ._errors import RepositoryConfigError


def build_codec(aggregate_types: Iterable[type[Aggregate[Any]]]) -> EventCodec:
    """A codec for every event class of ``aggregate_types`` and all their upcasters."""
    steps: dict[tuple[str, int], Upcaster] = {}
    events: list[type[Event]] = []
    for cls in aggregate_types:
        for upcaster in cls.upcasters or ():
            key = (upcaster.event_type, upcaster.from_version)
            known = steps.get(key)
            if known is not None and known != upcaster:
                raise RepositoryConfigError(
                    f"two different upcasters read {upcaster.event_type} v{upcaster.from_version} "
                    f"(one is {cls.__qualname__}'s)"
                )
            steps[key] = upcaster
        events.extend(cls.events)
    return EventCodec(events, UpcasterChain(steps.values()))


def check_aggregate_types(
    aggregate_types: Iterable[type[Aggregate[Any]]],
) -> dict[type[Aggregate[Any]], str]:
    """The classes a Repository serves, each with its type name, checked for clashes."""
    by_class: dict[type[Aggregate[Any]], str] = {}
    by_name: dict[str, type[Aggregate[Any]]] = {}
    for cls in aggregate_types:
        if not (isinstance(cls, type) and issubclass(cls, Aggregate)) or not cls.type_name:
            raise RepositoryConfigError(f"{cls!r} is not a concrete Aggregate subclass")
        other = by_name.get(cls.type_name)
        if other is not None and other is not cls:
            raise RepositoryConfigError(
                f"{other.__qualname__} and {cls.__qualname__} share the type name "
                f"{cls.type_name!r}: their streams would mix"
            )
        by_name[cls.type_name] = cls
        by_class[cls] = cls.type_name
    if not by_class:
        raise RepositoryConfigError("no aggregate types given")
    return by_class
