"""Generated from snapshots/_store.py by tools/async_to_sync.py: do not edit.

The synchronous twin of ``snapshots._store``; read the source for the reasons
behind the code (comments do not survive the conversion)."""

from __future__ import annotations

import abc

from eventstore.sync import Closing
from snapshots._model import DEFAULT_KEEP, Snapshot, check_stream_id


class SnapshotStore(Closing):
    """Snapshots of aggregate state, several per stream, newest ``keep`` kept."""

    keep: int = DEFAULT_KEEP

    @abc.abstractmethod
    def save(self, snapshot: Snapshot) -> None:
        """Store ``snapshot``, replacing one of the same stream and version, then trim.

        Bad input (stream id, version < 1, a state that is not a JSON object of
        JSON values) raises ``InvalidSnapshotError`` naming stream and version;
        nothing is written.  The store sets ``recorded_at``.
        """

    @abc.abstractmethod
    def load(self, stream_id: str, *, max_version: int | None = None) -> Snapshot | None:
        """The newest snapshot of the stream with ``version <= max_version`` (or any), or None."""

    def load_all(self, stream_id: str) -> list[Snapshot]:
        """Every snapshot kept for the stream, oldest first."""
        check_stream_id(stream_id)
        found: list[Snapshot] = []
        bound: int | None = None
        while bound is None or bound >= 1:
            snapshot = self.load(stream_id, max_version=bound)
            if snapshot is None:
                break
            found.append(snapshot)
            bound = snapshot.version - 1
        found.reverse()
        return found

    @abc.abstractmethod
    def delete(self, stream_id: str) -> int:
        """Remove every snapshot of the stream; return how many were removed."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release what the store owns (never a pool it borrowed)."""
