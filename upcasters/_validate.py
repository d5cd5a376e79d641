"""Static checks of a set of steps against the application's current schema versions.

Kept apart from the chain so it is a pure function of plain data: easy to test against a
model, and the chain module stays about the hot path.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

from upcasters._upcaster import Upcaster

__all__ = ["find_problems"]

Key = tuple[str, int]


def find_problems(steps: Mapping[Key, Upcaster], current_versions: Mapping[str, int]) -> list[str]:
    """Every reason the steps cannot bring all stored versions to the current ones.

    Three kinds, each reported once per step or type, in a stable order:

    * a step that reads a current (or later) version of a known type, which would move
      events that need no upcasting, or can never be reached;
    * a step whose output nothing reads and that is not a current ``(type, version)``:
      events through it would reach code at a version it does not know;
    * a known type whose versions ``1..N-1`` cannot reach its current version ``N``.

    The last check walks *backwards* from ``(type, N)``, because with renames the older
    versions of a type may be stored under another name: ``(type, 1)`` need not exist, but
    *some* name at version 1 must lead to ``(type, N)``. Every step adds exactly one to the
    version, so any path from version 1 passes every version in between; finding one path
    down to version 1 is the whole requirement.
    """
    problems: list[str] = []
    current: dict[str, int] = {}
    for event_type, version in sorted(current_versions.items()):
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            problems.append(f"current version of {event_type} must be an int >= 1, got {version!r}")
        else:
            current[event_type] = version

    ordered = sorted(steps.values(), key=lambda s: (s.event_type, s.from_version))
    for upcaster in ordered:
        problem = _step_problem(upcaster, steps, current)
        if problem is not None:
            problems.append(problem)

    producers: defaultdict[Key, list[Upcaster]] = defaultdict(list)
    for upcaster in ordered:
        producers[(upcaster.to_type, upcaster.to_version)].append(upcaster)
    for event_type, version in current.items():
        problem = _gap_problem(event_type, version, producers)
        if problem is not None:
            problems.append(problem)
    return problems


def _step_problem(
    upcaster: Upcaster, steps: Mapping[Key, Upcaster], current: Mapping[str, int]
) -> str | None:
    source = current.get(upcaster.event_type)
    if source is not None and upcaster.from_version >= source:
        if upcaster.from_version == source:
            return (
                f"step {upcaster.step} reads the current version of {upcaster.event_type} "
                f"(v{source}) and would move current events past it"
            )
        return (
            f"step {upcaster.step} is beyond the current version of "
            f"{upcaster.event_type} (v{source})"
        )

    target = (upcaster.to_type, upcaster.to_version)
    if target in steps:
        return None
    latest = current.get(upcaster.to_type)
    if latest == upcaster.to_version:
        return None
    end = f"{upcaster.to_type} v{upcaster.to_version}"
    if latest is None:
        return (
            f"step {upcaster.step} dead-ends at {end}: no step reads it and "
            f"{upcaster.to_type} is not a known event type"
        )
    if upcaster.to_version > latest:
        return (
            f"step {upcaster.step} leads beyond the current version of "
            f"{upcaster.to_type} (v{latest})"
        )
    return (
        f"step {upcaster.step} dead-ends at {end}: no step reads it and the current "
        f"version of {upcaster.to_type} is v{latest}"
    )


def _gap_problem(
    event_type: str, version: int, producers: Mapping[Key, list[Upcaster]]
) -> str | None:
    level: set[Key] = {(event_type, version)}
    level_version = version
    while level_version > 1:
        below = {
            (upcaster.event_type, upcaster.from_version)
            for key in level
            for upcaster in producers.get(key, ())
        }
        if not below:
            missing = " or ".join(
                f"{name} v{level_version - 1}->v{level_version}" for name, _ in sorted(level)
            )
            older = f"v{level_version - 1}" if level_version == 2 else f"v1..v{level_version - 1}"
            return (
                f"{event_type} {older} cannot be upcast to the current v{version}: "
                f"missing step {missing}"
            )
        level = below
        level_version -= 1
    return None
