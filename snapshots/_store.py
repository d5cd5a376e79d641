"""The SnapshotStore contract every backend fulfils.

The behaviour is pinned by ``tests/contracts/snapshot_store.py``, which runs
against every backend.  A store keeps the newest ``keep`` snapshots of each
stream (by version), so time travel to an older version can still start from
a snapshot; trimming is part of ``save``.
"""

from __future__ import annotations

import abc

from eventstore import AsyncClosing

from ._model import DEFAULT_KEEP, Snapshot, check_max_version, check_stream_id


class SnapshotStore(AsyncClosing):
    """Snapshots of aggregate state, several per stream, newest ``keep`` kept."""

    keep: int = DEFAULT_KEEP

    @abc.abstractmethod
    async def save(self, snapshot: Snapshot) -> None:
        """Store ``snapshot``, replacing one of the same stream and version, then trim.

        Bad input (stream id, version < 1, a state that is not a JSON object of
        JSON values) raises ``InvalidSnapshotError`` naming stream and version;
        nothing is written.  The store sets ``recorded_at``.
        """

    @abc.abstractmethod
    async def load(self, stream_id: str, *, max_version: int | None = None) -> Snapshot | None:
        """The newest snapshot of the stream with ``version <= max_version`` (or any), or None."""

    async def load_all(self, stream_id: str) -> list[Snapshot]:
        """Every snapshot kept for the stream, oldest first."""
        check_stream_id(stream_id)
        found: list[Snapshot] = []
        bound: int | None = None
        while bound is None or bound >= 1:
            snapshot = await self.load(stream_id, max_version=bound)
            if snapshot is None:
                break
            found.append(snapshot)
            bound = snapshot.version - 1
        found.reverse()
        return found

    @abc.abstractmethod
    async def delete(self, stream_id: str) -> int:
        """Remove every snapshot of the stream; return how many were removed."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release what the store owns (never a pool it borrowed)."""


def check_load_arguments(stream_id: object, max_version: object) -> tuple[str, int | None]:
    """Shared argument checks of ``load``; raise ``InvalidSnapshotError``."""
    checked = check_stream_id(stream_id)
    return checked, check_max_version(checked, max_version)
