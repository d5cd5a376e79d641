"""Errors raised by the upcaster chain.

::

    Exception
     └── UpcasterError                 base of everything this package raises
          ├── UpcastStepError          a step raised, or returned something that is not a dict
          ├── MissingUpcasterError     validate() found gaps, dead ends or steps past current
          └── UpcasterConflictError    two steps registered for the same (type, version)

Every error carries the facts as attributes, not only in its message, because the event
store's codec catches :class:`UpcasterError` and re-raises it with the stream id and stream
version added; it needs the type and stored version as data to do that.

All errors survive ``pickle`` (process pools, multiprocessing-based test runners): each
defines ``__reduce__`` so unpickling rebuilds it from its attributes rather than from the
formatted message in ``args``.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterable
from typing import Any

__all__ = [
    "MissingUpcasterError",
    "UpcastStepError",
    "UpcasterConflictError",
    "UpcasterError",
]


class UpcasterError(Exception):
    """Base class of every error raised by :mod:`upcasters`."""


class UpcastStepError(UpcasterError):
    """A step failed while upcasting one stored event.

    ``event_type`` and ``stored_version`` describe the event as it was stored (the input of
    :meth:`UpcasterChain.upcast`), not the intermediate version the failing step read:
    that is what a reader of the stream can look up. ``step`` names the failing step, which
    pins down the intermediate version. ``cause`` is also chained as ``__cause__``.
    """

    event_type: str
    stored_version: int
    step: str
    cause: BaseException | None

    def __init__(
        self,
        event_type: str,
        stored_version: int,
        step: str,
        cause: BaseException | None = None,
    ) -> None:
        self.event_type = event_type
        self.stored_version = stored_version
        self.step = step
        self.cause = cause
        detail = f": {type(cause).__name__}: {cause}" if cause is not None else ""
        super().__init__(f"upcasting {event_type} v{stored_version} failed in step {step}{detail}")

    def __reduce__(self) -> tuple[Any, ...]:
        # The message goes along as state: it names the cause even when the cause itself
        # cannot make the trip (see _portable).
        return (
            type(self),
            (self.event_type, self.stored_version, self.step, _portable(self.cause)),
            {"args": self.args},
        )


class MissingUpcasterError(UpcasterError):
    """The registered steps cannot bring every stored version to the current one.

    ``problems`` lists every problem found, one sentence each, so that one failed start-up
    shows all of them instead of one per restart.
    """

    problems: list[str]

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = list(problems)
        lines = "".join(f"\n  - {problem}" for problem in self.problems)
        count = len(self.problems)
        super().__init__(f"upcaster chain has {count} problem{'s' * (count != 1)}:{lines}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.problems,))


class UpcasterConflictError(UpcasterError):
    """Two steps were registered for the same ``(event_type, from_version)``.

    The chain must be deterministic: a stored event has exactly one way forward.
    """

    event_type: str
    from_version: int
    existing_step: str
    new_step: str

    def __init__(
        self, event_type: str, from_version: int, existing_step: str, new_step: str
    ) -> None:
        self.event_type = event_type
        self.from_version = from_version
        self.existing_step = existing_step
        self.new_step = new_step
        super().__init__(
            f"an upcaster for {event_type} v{from_version} is already registered "
            f"({existing_step}); cannot also register {new_step}"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            type(self),
            (self.event_type, self.from_version, self.existing_step, self.new_step),
        )


def _portable(cause: BaseException | None) -> BaseException | None:
    """Return ``cause`` if it survives a pickle round trip, else ``None``.

    A step's exception is user code, and many user exceptions pickle fine but fail to
    unpickle (an ``__init__`` with more parameters than the ``args`` it passes to
    ``super().__init__``). Losing the whole UpcastStepError on the far side of a process
    pool for that would hide the event's type and version; the cause's type and text travel
    on in the message, so dropping only the object is the better trade.
    """
    if cause is None:
        return None
    try:
        # Loads only bytes produced on the line above, never outside input.
        pickle.loads(pickle.dumps(cause))  # noqa: S301
    except Exception:
        return None
    return cause
