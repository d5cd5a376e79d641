"""The registry of steps and the loop that runs them on every read."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, TypeVar

from upcasters._errors import MissingUpcasterError, UpcasterConflictError, UpcastStepError
from upcasters._upcaster import Migration, Upcaster, UpcastPath, UpcastResult
from upcasters._validate import find_problems

__all__ = ["UpcasterChain"]

M = TypeVar("M", bound=Migration)

# The named tuples' own __new__ is a Python wrapper around this (one per old event).
_new_result = _new_path = tuple.__new__


class UpcasterChain:
    """Steps keyed by the ``(event_type, from_version)`` they read.

    Register everything at start-up, call :meth:`validate` once, then :meth:`upcast` on
    every read. Upcasting never mutates the caller's data.
    """

    __slots__ = ("_paths", "_steps")

    def __init__(self, upcasters: Iterable[Upcaster] = ()) -> None:
        self._steps: dict[tuple[str, int], Upcaster] = {}
        # Start key -> (the steps in order, the key they end at): worked out once per
        # stored (type, version), not per event.
        self._paths: dict[tuple[str, int], UpcastPath] = {}
        for upcaster in upcasters:
            self.register(upcaster)

    def register(self, upcaster: Upcaster) -> None:
        key = (upcaster.event_type, upcaster.from_version)
        existing = self._steps.get(key)
        if existing is not None:
            raise UpcasterConflictError(
                upcaster.event_type, upcaster.from_version, existing.step, upcaster.step
            )
        self._steps[key] = upcaster
        self._paths.clear()

    def upcaster(
        self, event_type: str, *, from_version: int, new_type: str | None = None
    ) -> Callable[[M], M]:
        """Decorator form of :meth:`register`; returns the function unchanged."""

        def decorate(migrate: M) -> M:
            self.register(Upcaster(event_type, from_version, migrate, new_type))
            return migrate

        return decorate

    def has_steps(self, event_type: str, schema_version: int) -> bool:
        """Whether :meth:`upcast` would change anything for this stored pair."""
        return (event_type, schema_version) in self._steps

    def path(self, event_type: str, schema_version: int) -> UpcastPath | None:
        """The steps from this stored pair as one callable; None when no step reads it.

        Worked out on the first call per pair and kept until a step is registered, so
        readers may call this per event: it is one dictionary lookup.
        """
        start = (event_type, schema_version)
        path = self._paths.get(start)
        if path is None and start in self._steps:
            path = self._paths[start] = self._path_from(start)
        return path

    def upcast(self, event_type: str, schema_version: int, data: Mapping[str, Any]) -> UpcastResult:
        """Bring stored data to the newest version the steps reach.

        When no step reads ``(event_type, schema_version)`` the result holds ``data``
        itself (or a shallow ``dict`` of a non-dict mapping), not a copy: this is the path
        of nearly every event read. The caller must then treat the result's data as its
        own input.
        """
        path = self.path(event_type, schema_version)
        if path is None:
            return UpcastResult(
                event_type, schema_version, data if isinstance(data, dict) else dict(data)
            )
        return _new_result(UpcastResult, (path.event_type, path.schema_version, path.run(data)))

    def _path_from(self, start: tuple[str, int]) -> UpcastPath:
        steps: list[Upcaster] = []
        key = start
        # Terminates: every step adds one to the version, so no key is visited twice.
        while (upcaster := self._steps.get(key)) is not None:
            steps.append(upcaster)
            key = (upcaster.to_type, upcaster.to_version)
        return _new_path(UpcastPath, (*key, _runner(*start, tuple(steps))))

    def validate(self, current_versions: Mapping[str, int]) -> None:
        """Raise :class:`MissingUpcasterError` listing every gap, dead end and stray step.

        ``current_versions`` maps each event type the application knows to its current
        schema version. See :func:`upcasters._validate.find_problems` for the rules.
        """
        problems = find_problems(self._steps, current_versions)
        if problems:
            raise MissingUpcasterError(problems)

    def __len__(self) -> int:
        return len(self._steps)

    def __iter__(self) -> Iterator[Upcaster]:
        """Registered steps ordered by ``(event_type, from_version)``, for listings."""
        return iter(sorted(self._steps.values(), key=lambda s: (s.event_type, s.from_version)))

    def __repr__(self) -> str:
        return f"<UpcasterChain with {len(self._steps)} steps>"


def _runner(
    event_type: str, schema_version: int, steps: tuple[Upcaster, ...]
) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    """One stored version's steps as a function of its data (see ``UpcastPath.run``)."""

    def run(data: Mapping[str, Any]) -> dict[str, Any]:
        # One deep copy, here, is enough to keep the caller's data untouched. After it,
        # nothing a step can reach through its argument is shared with the caller: step 1
        # owns the copy, and each step's return value becomes the next step's to mutate.
        # The only other objects a step could hand on are its own (module-level
        # constants, closures), and the Upcaster contract forbids returning those.
        # Copying before every step instead would cost one deep copy per version on each
        # old event during a replay and protect nothing more of the caller's.
        # A flat dict (most stored events) is copied inline: a call costs as much.
        if type(data) is dict and _SCALARS.issuperset(map(type, data.values())):
            current: Any = data.copy()
        else:
            current = _copy_json(data if isinstance(data, dict) else dict(data))
        upcaster = None
        try:
            for upcaster in steps:
                current = upcaster.migrate(current)
                if type(current) is not dict and not isinstance(current, dict):
                    raise TypeError(f"migrate returned {type(current).__name__}, expected dict")
        except Exception as exc:
            # ``upcaster`` is the step that raised or returned a non-dict.
            step = upcaster.step if upcaster is not None else "(none)"
            raise UpcastStepError(event_type, schema_version, step, exc) from exc
        result: dict[str, Any] = current
        return result

    return run


_IMMUTABLE = (str, int, float, bool, type(None))
_SCALARS = frozenset(_IMMUTABLE)


def _copy_json(value: Any) -> Any:
    """A deep copy specialised for JSON-shaped data (dicts, lists, scalars).

    Stored event data is JSON, so this covers every replay; it is about three
    times faster than ``copy.deepcopy``, which pays for memo bookkeeping and
    dispatch that JSON never needs.  Anything else falls back to deepcopy.
    """
    # Scalars are tested inline: most stored events are flat, and a call per
    # value would cost more than the copy itself.  A flat dict (the common
    # event) is recognised and copied without a Python-level step per value.
    if isinstance(value, dict):
        if _SCALARS.issuperset(map(type, value.values())):
            return dict(value)
        return {
            key: item if type(item) in _SCALARS else _copy_json(item) for key, item in value.items()
        }
    if isinstance(value, list):
        return [item if type(item) in _SCALARS else _copy_json(item) for item in value]
    if isinstance(value, _IMMUTABLE):
        return value
    return copy.deepcopy(value)
