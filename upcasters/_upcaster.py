"""One migration step and the result of running a chain."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

__all__ = ["Migration", "UpcastPath", "UpcastResult", "Upcaster"]

Migration = Callable[[dict[str, Any]], dict[str, Any]]
"""A pure function from the data of version N to the data of version N + 1."""


@dataclass(frozen=True, slots=True)
class Upcaster:
    """Migrates stored data of ``(event_type, from_version)`` to ``from_version + 1``.

    A step may rename the type: its output is ``(new_type or event_type, from_version + 1)``.

    ``migrate`` may mutate its argument and return it: the chain hands it a private copy.
    It must not return objects it keeps between calls (a module-level default list, say):
    the next step or the caller may mutate what it gets, and would corrupt that object for
    every later event.
    """

    event_type: str
    from_version: int
    migrate: Migration
    new_type: str | None = None

    def __post_init__(self) -> None:
        # Checked here rather than at validate() time so a typo fails at the line that
        # made it, with a plain traceback.
        if not isinstance(self.event_type, str) or not self.event_type:
            raise ValueError(f"event_type must be a non-empty str, got {self.event_type!r}")
        if (
            not isinstance(self.from_version, int)
            or isinstance(self.from_version, bool)
            or self.from_version < 1
        ):
            raise ValueError(
                f"from_version of {self.event_type} must be an int >= 1, got {self.from_version!r}"
            )
        if self.new_type is not None and (not isinstance(self.new_type, str) or not self.new_type):
            raise ValueError(
                f"new_type of {self.event_type} v{self.from_version} must be None or a "
                f"non-empty str, got {self.new_type!r}"
            )
        if not callable(self.migrate):
            raise TypeError(
                f"migrate of {self.event_type} v{self.from_version} must be callable, "
                f"got {self.migrate!r}"
            )

    @property
    def to_type(self) -> str:
        """The type name this step produces."""
        return self.new_type or self.event_type

    @property
    def to_version(self) -> int:
        """The schema version this step produces."""
        return self.from_version + 1

    @property
    def renames(self) -> bool:
        return self.to_type != self.event_type

    @property
    def step(self) -> str:
        """Human-readable description, e.g. ``ledger.Deposited v1->v2``."""
        if self.renames:
            return f"{self.event_type} v{self.from_version} -> {self.to_type} v{self.to_version}"
        return f"{self.event_type} v{self.from_version}->v{self.to_version}"


class UpcastResult(NamedTuple):
    """The type name, schema version and data of an event after upcasting.

    A named tuple: one is built per old event read, at a third of a frozen
    dataclass's cost.
    """

    event_type: str
    schema_version: int
    data: dict[str, Any]


class UpcastPath(NamedTuple):
    """Where the steps from one stored ``(event_type, schema_version)`` lead, and how.

    ``run(data)`` returns a private, upcast copy of ``data`` (the caller's is never
    mutated) or raises :class:`~upcasters.UpcastStepError`.  A chain works each path out
    once and hands out the same object for every event stored at that version, so a
    replay pays for the steps and one copy, nothing per event besides.
    """

    event_type: str
    schema_version: int
    run: Callable[[Mapping[str, Any]], dict[str, Any]]
