"""Generated from aggregates/_snapshotting.py by tools/async_to_sync.py: do not edit.

The synchronous twin of ``aggregates._snapshotting``; read the source for the reasons
behind the code (comments do not survive the conversion)."""

from __future__ import annotations

from typing import Any

from aggregates._aggregate import Aggregate
from aggregates._errors import InvalidStateError
from aggregates._snapshotting import A, logger
from snapshots import Snapshot, SnapshotError, SnapshotPolicy
from snapshots.sync import SnapshotStore


class SnapshotKeeper:
    """Reads and writes snapshots for a Repository and keeps its counters."""

    def __init__(self, store: SnapshotStore) -> None:
        self.store = store
        self.write_failures = 0
        self.ignored = 0

    def load(
        self, aggregate_type: type[A], aggregate_id: str, max_version: int | None
    ) -> tuple[A | None, bool]:
        """The aggregate from its newest usable snapshot (or None) and whether a
        fresh snapshot should replace what was found."""
        stream_id = aggregate_type.stream_id_for(aggregate_id)
        try:
            snapshot = self.store.load(stream_id, max_version=max_version)
        except SnapshotError as error:
            self._ignore(stream_id, None, f"the snapshot store failed: {error}")
            return (None, False)
        if snapshot is None:
            return (None, False)
        if snapshot.aggregate_type != aggregate_type.type_name:
            self._ignore(
                stream_id, snapshot.version, f"it is of aggregate type {snapshot.aggregate_type!r}"
            )
            return (None, True)
        if snapshot.fingerprint != aggregate_type.state_fingerprint():
            self.ignored += 1
            logger.info(
                "ignoring snapshot of %s at version %d: its state schema fingerprint differs from %s's; rebuilding from events",
                stream_id,
                snapshot.version,
                aggregate_type.__qualname__,
            )
            return (None, True)
        try:
            aggregate = aggregate_type.from_state(aggregate_id, snapshot.version, snapshot.state)
        except InvalidStateError as error:
            self._ignore(stream_id, snapshot.version, str(error))
            return (None, True)
        return (aggregate, False)

    def write(self, aggregate: Aggregate[Any]) -> Snapshot:
        snapshot = Snapshot(
            stream_id=aggregate.stream_id,
            aggregate_type=aggregate.type_name,
            version=aggregate.version,
            fingerprint=aggregate.state_fingerprint(),
            state=aggregate.state_dict(),
        )
        self.store.save(snapshot)
        return snapshot

    def after_save(
        self, aggregate: Aggregate[Any], policy: SnapshotPolicy, old_version: int, new_version: int
    ) -> None:
        """Ask the policy and maybe write a snapshot; nothing here can fail the save."""
        try:
            wanted = policy.should_snapshot(aggregate.type_name, old_version, new_version)
        except Exception as error:
            self._count_failure(aggregate, "asking the snapshot policy", error)
            return
        if wanted:
            self.write_quietly(aggregate, "after save")

    def write_quietly(self, aggregate: Aggregate[Any], why: str) -> None:
        """Write a snapshot; a failure is counted and logged, never raised.

        The events this snapshot summarises are already committed: failing the
        command now would report a failure for something that happened.
        """
        if aggregate._pending:
            return
        try:
            self.write(aggregate)
        except Exception as error:
            self._count_failure(aggregate, why, error)

    def _count_failure(self, aggregate: Aggregate[Any], why: str, error: Exception) -> None:
        self.write_failures += 1
        logger.warning(
            "snapshot of %s at version %d (%s) failed; the events are saved, loads replay more of them until a snapshot succeeds: %s",
            aggregate.stream_id,
            aggregate.version,
            why,
            error,
            exc_info=error,
        )

    def _ignore(self, stream_id: str, version: int | None, reason: str) -> None:
        self.ignored += 1
        at = "" if version is None else f" at version {version}"
        logger.warning(
            "ignoring snapshot of %s%s, rebuilding from events: %s", stream_id, at, reason
        )
