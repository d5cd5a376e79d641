"""Generated from snapshots/_memory.py by tools/async_to_sync.py: do not edit.

The synchronous twin of ``snapshots._memory``; read the source for the reasons
behind the code (comments do not survive the conversion)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

from snapshots._model import DEFAULT_KEEP, Snapshot, check_keep, check_stream_id, prepare_snapshot
from snapshots._store import check_load_arguments
from snapshots.sync._store import SnapshotStore


class InMemorySnapshotStore(SnapshotStore):
    """Snapshots in a dict; safe for many tasks on one event loop (no awaits inside)."""

    def __init__(
        self, *, keep: int = DEFAULT_KEEP, clock: Callable[[], datetime] | None = None
    ) -> None:
        self.keep = check_keep(keep)
        self._clock = clock or (lambda: datetime.now(UTC))
        self._streams: dict[str, dict[int, tuple[Snapshot, str]]] = {}

    def save(self, snapshot: Snapshot) -> None:
        prepared = prepare_snapshot(snapshot)
        stored = replace(prepared.snapshot, state={}, recorded_at=self._clock())
        versions = self._streams.setdefault(stored.stream_id, {})
        versions[stored.version] = (stored, prepared.state_json)
        for old in sorted(versions)[: -self.keep]:
            del versions[old]

    def load(self, stream_id: str, *, max_version: int | None = None) -> Snapshot | None:
        stream_id, bound = check_load_arguments(stream_id, max_version)
        versions = self._streams.get(stream_id, {})
        eligible = [v for v in versions if bound is None or v <= bound]
        if not eligible:
            return None
        return self._decode(*versions[max(eligible)])

    def load_all(self, stream_id: str) -> list[Snapshot]:
        versions = self._streams.get(check_stream_id(stream_id), {})
        return [self._decode(*versions[v]) for v in sorted(versions)]

    def delete(self, stream_id: str) -> int:
        return len(self._streams.pop(check_stream_id(stream_id), {}))

    def fingerprint_counts(self) -> dict[tuple[str, str], int]:
        """How many snapshots each ``(aggregate_type, fingerprint)`` has (schema checks)."""
        counts: dict[tuple[str, str], int] = {}
        for versions in self._streams.values():
            for snapshot, _ in versions.values():
                key = (snapshot.aggregate_type, snapshot.fingerprint)
                counts[key] = counts.get(key, 0) + 1
        return dict(sorted(counts.items()))

    def close(self) -> None:
        """Nothing to release; kept for the shared lifecycle."""

    @staticmethod
    def _decode(stored: Snapshot, state_json: str) -> Snapshot:
        return replace(stored, state=json.loads(state_json))

    def __repr__(self) -> str:
        return f"InMemorySnapshotStore(keep={self.keep}, streams={len(self._streams)})"
