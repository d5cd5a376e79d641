"""When to write a snapshot: pure decisions the repository asks after each save."""

from __future__ import annotations

import abc
from collections.abc import Mapping

from ._errors import InvalidPolicyError


class SnapshotPolicy(abc.ABC):
    """Decides whether a save that moved a stream from ``old_version`` to
    ``new_version`` should be followed by a snapshot."""

    @abc.abstractmethod
    def should_snapshot(self, aggregate_type: str, old_version: int, new_version: int) -> bool:
        """True when a snapshot at ``new_version`` should be written."""


def _check_versions(aggregate_type: str, old_version: int, new_version: int) -> None:
    for name, value in (("old_version", old_version), ("new_version", new_version)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise InvalidPolicyError(aggregate_type, f"{name} must be an int >= 0, got {value!r}")
    if new_version < old_version:
        raise InvalidPolicyError(
            aggregate_type,
            f"new_version {new_version} is lower than old_version {old_version}",
        )


def _check_interval(aggregate_type: str | None, n: object) -> int:
    if isinstance(n, int) and not isinstance(n, bool) and n >= 1:
        return n
    raise InvalidPolicyError(aggregate_type, f"the interval must be an int >= 1, got {n!r}")


class EveryNEvents(SnapshotPolicy):
    """Snapshot whenever a save crosses a multiple of n.

    ``EveryNEvents(100)`` applies to every aggregate type;
    ``EveryNEvents({"ledger": 100, "order": 20}, default=None)`` sets n per type,
    and types not listed use ``default`` (``None``: never).  "Crossing" rather
    than "landing on" a multiple: a save of several events that jumps from 98 to
    103 still snapshots, at 103.
    """

    def __init__(self, n: int | Mapping[str, int], *, default: int | None = None) -> None:
        if isinstance(n, Mapping):
            self._per_type = {
                _type_name(kind): _check_interval(kind, interval) for kind, interval in n.items()
            }
            self._default = None if default is None else _check_interval(None, default)
        else:
            if default is not None:
                raise InvalidPolicyError(
                    None, "default only applies with a per-type mapping of intervals"
                )
            self._per_type = {}
            self._default = _check_interval(None, n)

    def interval(self, aggregate_type: str) -> int | None:
        """n for this aggregate type, or None when it is never snapshotted."""
        return self._per_type.get(aggregate_type, self._default)

    def should_snapshot(self, aggregate_type: str, old_version: int, new_version: int) -> bool:
        _check_versions(aggregate_type, old_version, new_version)
        n = self.interval(aggregate_type)
        return n is not None and old_version // n != new_version // n

    def __repr__(self) -> str:
        if not self._per_type:
            return f"EveryNEvents({self._default})"
        return f"EveryNEvents({self._per_type!r}, default={self._default})"


class OnDemand(SnapshotPolicy):
    """Never snapshot automatically; the repository's ``snapshot()`` writes one on request."""

    def should_snapshot(self, aggregate_type: str, old_version: int, new_version: int) -> bool:
        _check_versions(aggregate_type, old_version, new_version)
        return False

    def __repr__(self) -> str:
        return "OnDemand()"


def _type_name(kind: object) -> str:
    if not isinstance(kind, str) or not kind:
        raise InvalidPolicyError(None, f"aggregate types must be non-empty strings, got {kind!r}")
    return kind
