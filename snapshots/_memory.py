"""An in-process snapshot store for tests and examples.

It keeps what a real backend would: the state is stored as JSON text and decoded
on every load, so a caller mutating a loaded state cannot change the stored one,
and a tuple comes back as a list, as it does from Postgres and Redis.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

from ._model import DEFAULT_KEEP, Snapshot, check_keep, check_stream_id, prepare_snapshot
from ._store import SnapshotStore, check_load_arguments


class InMemorySnapshotStore(SnapshotStore):
    """Snapshots in a dict; safe for many tasks on one event loop (no awaits inside)."""

    def __init__(
        self, *, keep: int = DEFAULT_KEEP, clock: Callable[[], datetime] | None = None
    ) -> None:
        self.keep = check_keep(keep)
        self._clock = clock or (lambda: datetime.now(UTC))
        # stream id -> version -> (snapshot without state, state as JSON text)
        self._streams: dict[str, dict[int, tuple[Snapshot, str]]] = {}

    async def save(self, snapshot: Snapshot) -> None:
        prepared = prepare_snapshot(snapshot)
        stored = replace(prepared.snapshot, state={}, recorded_at=self._clock())
        versions = self._streams.setdefault(stored.stream_id, {})
        versions[stored.version] = (stored, prepared.state_json)
        for old in sorted(versions)[: -self.keep]:
            del versions[old]

    async def load(self, stream_id: str, *, max_version: int | None = None) -> Snapshot | None:
        stream_id, bound = check_load_arguments(stream_id, max_version)
        versions = self._streams.get(stream_id, {})
        eligible = [v for v in versions if bound is None or v <= bound]
        if not eligible:
            return None
        return self._decode(*versions[max(eligible)])

    async def load_all(self, stream_id: str) -> list[Snapshot]:
        versions = self._streams.get(check_stream_id(stream_id), {})
        return [self._decode(*versions[v]) for v in sorted(versions)]

    async def delete(self, stream_id: str) -> int:
        return len(self._streams.pop(check_stream_id(stream_id), {}))

    async def fingerprint_counts(self) -> dict[tuple[str, str], int]:
        """How many snapshots each ``(aggregate_type, fingerprint)`` has (schema checks)."""
        counts: dict[tuple[str, str], int] = {}
        for versions in self._streams.values():
            for snapshot, _ in versions.values():
                key = (snapshot.aggregate_type, snapshot.fingerprint)
                counts[key] = counts.get(key, 0) + 1
        return dict(sorted(counts.items()))

    async def close(self) -> None:
        """Nothing to release; kept for the shared lifecycle."""

    @staticmethod
    def _decode(stored: Snapshot, state_json: str) -> Snapshot:
        return replace(stored, state=json.loads(state_json))

    def __repr__(self) -> str:
        return f"InMemorySnapshotStore(keep={self.keep}, streams={len(self._streams)})"
