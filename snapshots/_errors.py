"""The snapshot branch of the chronik error tree.

::

    ChronikError
     └── SnapshotError                    base of everything this package raises
          ├── InvalidSnapshotError        a snapshot (or argument) was rejected; nothing written
          ├── SnapshotCorruptError        a stored snapshot cannot be decoded
          ├── SnapshotStoreError          the backend failed (unreachable, timed out, refused)
          └── InvalidPolicyError          a snapshot policy was configured or called wrongly

Snapshots are an optimisation, never the truth: a caller that loads one can catch
``SnapshotError`` and rebuild from events, and a caller that saves one can catch it
and carry on.  Errors are picklable: each keeps its constructor arguments in ``args``.
"""

from __future__ import annotations

from eventstore import ChronikError


class SnapshotError(ChronikError):
    """Root of every error the snapshot stores and policies raise."""


class InvalidSnapshotError(SnapshotError, ValueError):
    """A snapshot or argument was rejected before anything was read or written.

    ``version`` is the snapshot's version when it is known, else ``None``.
    """

    def __init__(self, stream_id: str, version: object, reason: str) -> None:
        super().__init__(stream_id, version, reason)
        self.stream_id = stream_id
        self.version = version
        self.reason = reason

    def __str__(self) -> str:
        at = "" if self.version is None else f" version {self.version!r}"
        return f"snapshot of stream {self.stream_id!r}{at}: {self.reason}"


class SnapshotCorruptError(SnapshotError):
    """A stored snapshot could not be decoded; treat it as "no snapshot".

    The store has already removed the unreadable entry when it raises this, so
    the next save for the stream replaces it cleanly.
    """

    def __init__(self, stream_id: str, version: int | None, reason: str) -> None:
        super().__init__(stream_id, version, reason)
        self.stream_id = stream_id
        self.version = version
        self.reason = reason

    def __str__(self) -> str:
        at = "" if self.version is None else f" version {self.version}"
        return f"stored snapshot of stream {self.stream_id!r}{at} is corrupt: {self.reason}"


class SnapshotStoreError(SnapshotError):
    """The snapshot backend failed; ``target`` names it without any password.

    ``stream_id`` is the stream the failing call was about (``None`` for
    connecting and migrating).
    """

    def __init__(self, target: str, reason: str, stream_id: str | None = None) -> None:
        super().__init__(target, reason, stream_id)
        self.target = target
        self.reason = reason
        self.stream_id = stream_id

    def __str__(self) -> str:
        about = "" if self.stream_id is None else f" (stream {self.stream_id!r})"
        return f"snapshot store {self.target} failed{about}: {self.reason}"


class InvalidPolicyError(SnapshotError, ValueError):
    """A snapshot policy got a bad configuration or bad versions."""

    def __init__(self, aggregate_type: str | None, reason: str) -> None:
        super().__init__(aggregate_type, reason)
        self.aggregate_type = aggregate_type
        self.reason = reason

    def __str__(self) -> str:
        if self.aggregate_type is None:
            return f"snapshot policy: {self.reason}"
        return f"snapshot policy for aggregate type {self.aggregate_type!r}: {self.reason}"
