"""Which stored events the pre-deploy history check reads: the rule, in Python.

``PostgresEventStore`` applies the same rule in SQL (``_pg_schemas``); this is
the version for stores that can only be read through the feed.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from ._model import RecordedEvent

DEFAULT_MAX_SHAPES = 1000


def data_shape(data: Any) -> str:
    """The top-level keys of an event's data with the JSON kind of each value."""
    if not isinstance(data, dict):
        return _kind(data)
    return ",".join(f"{key}:{_kind(data[key])}" for key in sorted(data))


def pick_sample(
    events: Iterable[RecordedEvent], per_version: int, max_shapes: int = DEFAULT_MAX_SHAPES
) -> list[RecordedEvent]:
    """Per (type, schema version): the first event of each distinct shape (up to
    ``max_shapes``) plus the ``per_version`` events whose id hashes lowest."""
    groups: defaultdict[tuple[str, int], list[RecordedEvent]] = defaultdict(list)
    for event in events:
        groups[(event.type, event.schema_version)].append(event)
    chosen: list[RecordedEvent] = []
    for key in sorted(groups):
        members = groups[key]
        firsts: dict[str, RecordedEvent] = {}
        for event in members:
            firsts.setdefault(data_shape(event.data), event)
        keep = {id(firsts[shape]) for shape in sorted(firsts)[:max_shapes]}
        spread = sorted(
            members,
            key=lambda e: hashlib.md5(str(e.event_id).encode(), usedforsecurity=False).digest(),
        )
        keep.update(id(event) for event in spread[:per_version])
        chosen.extend(event for event in members if id(event) in keep)
    return chosen


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"
