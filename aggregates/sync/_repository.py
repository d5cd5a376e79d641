"""Generated from aggregates/_repository.py by tools/async_to_sync.py: do not edit.

The synchronous twin of ``aggregates._repository``; read the source for the reasons
behind the code (comments do not survive the conversion)."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from aggregates._aggregate import Aggregate
from aggregates._codec import build_codec, check_aggregate_types
from aggregates._errors import (
    AggregateNotFoundError,
    RepositoryConfigError,
    TimeTravelError,
    UnhandledEventError,
    UnsavedEventsError,
)
from aggregates._repository import (
    _MAX_BACKOFF_SECONDS,
    DEFAULT_SNAPSHOT_INTERVAL,
    A,
    _checked_ids,
    _run_decision,
)
from aggregates.sync._snapshotting import SnapshotKeeper
from eventstore import (
    NO_STREAM,
    AppendResult,
    ConcurrencyError,
    Correlation,
    InvalidInputError,
    Position,
    current_correlation,
    stamp_correlation,
    trace_span,
)
from eventstore.sync import EventStore
from snapshots import EveryNEvents, Snapshot, SnapshotPolicy
from snapshots.sync import SnapshotStore


class Repository:
    """Loads and saves aggregates of the given types from one event store.

    ``snapshots`` (optional) is a ``snapshots.SnapshotStore``; ``snapshot_policy``
    decides when a save is followed by a snapshot (default with a snapshot store:
    ``EveryNEvents(100)``; ``snapshots.OnDemand()`` for only :meth:`snapshot`).
    The codec for all the types' events and upcasters is built here, so a gap in an
    upcaster chain fails at start-up.
    """

    def __init__(
        self,
        store: EventStore,
        aggregates: Iterable[type[Aggregate[Any]]],
        *,
        snapshots: SnapshotStore | None = None,
        snapshot_policy: SnapshotPolicy | None = None,
    ) -> None:
        if not isinstance(store, EventStore):
            raise RepositoryConfigError(f"store must be an eventstore.EventStore, got {store!r}")
        types = list(aggregates)
        self.store = store
        self.aggregate_types = check_aggregate_types(types)
        self.codec = build_codec(types)
        if snapshots is None and snapshot_policy is not None:
            raise RepositoryConfigError("a snapshot_policy needs a snapshot store (snapshots=...)")
        if snapshots is not None and snapshot_policy is None:
            snapshot_policy = EveryNEvents(DEFAULT_SNAPSHOT_INTERVAL)
        self.snapshot_policy = snapshot_policy
        self._snapshots = SnapshotKeeper(snapshots) if snapshots is not None else None
        self.retried_conflicts = 0

    def load(
        self,
        aggregate_type: type[A],
        aggregate_id: str,
        *,
        at_version: int | None = None,
        as_of: datetime | None = None,
        at_position: Position | None = None,
    ) -> A:
        """The aggregate as of now, or at one point of its history.

        ``at_version``: after its first N events.  ``as_of``: after the last event
        recorded at or before that (timezone-aware) time, by the database clock.
        ``at_position``: after its last event at or before that feed position; loads
        of several aggregates at one position are a consistent cut.  Raises
        ``AggregateNotFoundError`` when the stream has no events, and
        ``TimeTravelError`` when the stream does not reach the requested point.
        """
        self._check_type(aggregate_type)
        blank = aggregate_type(aggregate_id)
        stream_id = blank.stream_id
        with trace_span("chronik.load", {"chronik.stream_id": stream_id}) as span:
            target = self._target_version(
                aggregate_type, aggregate_id, stream_id, at_version, as_of, at_position
            )
            aggregate, stale = (blank, False)
            if self._snapshots is not None:
                found, stale = self._snapshots.load(aggregate_type, aggregate_id, target)
                if found is not None:
                    aggregate = found
            from_snapshot = aggregate.version
            self._replay(aggregate, stream_id, target)
            if span is not None and span.is_recording():
                span.set_attribute("chronik.snapshot_version", from_snapshot)
                span.set_attribute("chronik.replayed_events", aggregate.version - from_snapshot)
        if aggregate.version == 0:
            raise AggregateNotFoundError(stream_id, aggregate_type.type_name, aggregate_id)
        if target is not None and aggregate.version < target:
            raise TimeTravelError(
                stream_id, f"at version {target}", f"the stream is at version {aggregate.version}"
            )
        if stale and self._snapshots is not None:
            self._snapshots.write_quietly(aggregate, "replacing an unusable snapshot")
        return aggregate

    def _replay(self, aggregate: Aggregate[Any], stream_id: str, target: int | None) -> None:
        decode = self.codec.decode
        appliers = type(aggregate)._appliers
        version = aggregate.version
        for recorded in self.store.read_stream(stream_id, version + 1, target):
            event = decode(recorded)
            apply = appliers.get(type(event))
            if apply is None:
                raise UnhandledEventError(
                    aggregate.type_name, recorded.type, stream_id, recorded.version
                )
            apply(aggregate, event)
            version = recorded.version
        aggregate.version = version

    def _target_version(
        self,
        aggregate_type: type[Aggregate[Any]],
        aggregate_id: str,
        stream_id: str,
        at_version: int | None,
        as_of: datetime | None,
        at_position: Position | None,
    ) -> int | None:
        given = [
            name
            for name, value in (
                ("at_version", at_version),
                ("as_of", as_of),
                ("at_position", at_position),
            )
            if value is not None
        ]
        if len(given) > 1:
            raise InvalidInputError(
                stream_id, f"give at most one of at_version, as_of, at_position (got {given})"
            )
        if at_version is not None:
            if isinstance(at_version, bool) or not isinstance(at_version, int) or at_version < 1:
                raise InvalidInputError(
                    stream_id, f"at_version must be an int >= 1, got {at_version!r}"
                )
            return at_version
        if as_of is not None:
            version = self.store.stream_version(stream_id, as_of=as_of)
            requested = f"as of {as_of.isoformat()}"
        elif at_position is not None:
            version = self.store.stream_version(stream_id, at_position=at_position)
            requested = f"at position {at_position}"
        else:
            return None
        if version == 0:
            self._explain_before_start(aggregate_type, aggregate_id, stream_id, requested)
        return version

    def _explain_before_start(
        self,
        aggregate_type: type[Aggregate[Any]],
        aggregate_id: str,
        stream_id: str,
        requested: str,
    ) -> None:
        for first in self.store.read_stream(stream_id, 1, 1):
            raise TimeTravelError(
                stream_id,
                requested,
                f"the stream did not exist yet: its first event was recorded at {first.recorded_at.isoformat()} (position {first.position})",
            )
        raise AggregateNotFoundError(stream_id, aggregate_type.type_name, aggregate_id)

    def save(
        self,
        aggregate: Aggregate[Any],
        *,
        metadata: Mapping[str, Any] | None = None,
        event_ids: Sequence[UUID] | None = None,
        connection: Any = None,
    ) -> AppendResult:
        """Append the aggregate's pending events, expecting the version it was loaded at.

        Raises ``ConcurrencyError`` when another writer got there first; the pending
        events then stay on the aggregate (nothing is lost, and saving again with the
        same events is idempotent in the store).  After a successful save the snapshot
        policy may write a snapshot; that never fails the save.

        ``event_ids`` replaces the ids the pending events got when they were recorded,
        one per pending event: a caller that derives ids from what caused the command
        (a saga step) makes a repeated command a no-op in the store instead of a
        second effect.  ``connection`` appends in the caller's open transaction
        (``PostgresEventStore.connection()``), so the caller's own writes commit with
        the events; no snapshot is written then, since the transaction may still
        roll back (the next save outside a transaction catches up).
        """
        self._check_type(type(aggregate))
        if event_ids is not None:
            aggregate._replace_pending_ids(_checked_ids(aggregate, event_ids))
        pending = aggregate._pending_with_ids()
        if not pending:
            return AppendResult(aggregate.stream_id, aggregate.version, ())
        saved_version = aggregate.saved_version
        ids = current_correlation()
        if ids is None:
            root = str(pending[0][1])
            ids = Correlation(root, root)
        meta = stamp_correlation(metadata, ids)
        encode = self.codec.encode
        batch = [encode(event, event_id=event_id, metadata=meta) for event, event_id in pending]
        self.store.schemas.ensure((type(event) for event, _ in pending))
        result = self.store.append(
            aggregate.stream_id,
            batch,
            saved_version if saved_version else NO_STREAM,
            connection=connection,
        )
        aggregate._mark_saved(pending)
        if (
            connection is None
            and self._snapshots is not None
            and (self.snapshot_policy is not None)
        ):
            self._snapshots.after_save(
                aggregate, self.snapshot_policy, saved_version, result.version
            )
        return result

    def create(
        self,
        aggregate_type: type[A],
        aggregate_id: str,
        decide: Callable[[A], object],
        *,
        metadata: Mapping[str, Any] | None = None,
    ) -> A:
        """A new aggregate: ``decide`` runs its first command(s), then it is saved.

        The append expects no stream: if the id is taken, ``ConcurrencyError``.
        """
        self._check_type(aggregate_type)
        aggregate = aggregate_type(aggregate_id)
        _run_decision(decide, aggregate)
        if not aggregate.pending_events:
            raise InvalidInputError(
                aggregate.stream_id, "decide recorded no events: there is nothing to create"
            )
        self.save(aggregate, metadata=metadata)
        return aggregate

    def update(
        self,
        aggregate_type: type[A],
        aggregate_id: str,
        decide: Callable[[A], object],
        *,
        retries: int = 5,
        metadata: Mapping[str, Any] | None = None,
    ) -> A:
        """Load, ``decide`` (a sync function of the aggregate), save; retry on conflicts.

        A ``ConcurrencyError`` (including ``StreamOrderConflict``) means another writer
        changed the stream since the load: the whole load-decide-save runs again, up to
        ``retries`` more times, with a short random back-off so that writers that
        collided do not collide again in step.  The last conflict is re-raised.  A
        ``DomainError`` from ``decide`` is raised at once: nothing is saved.
        """
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise InvalidInputError(
                aggregate_type.stream_id_for(aggregate_id),
                f"retries must be an int >= 0, got {retries!r}",
            )
        attempt = 0
        while True:
            aggregate = self.load(aggregate_type, aggregate_id)
            _run_decision(decide, aggregate)
            try:
                self.save(aggregate, metadata=metadata)
            except ConcurrencyError as error:
                if attempt >= retries:
                    error.add_note(f"gave up after {attempt + 1} attempts (retries={retries})")
                    raise
                attempt += 1
                self.retried_conflicts += 1
                ceiling = min(_MAX_BACKOFF_SECONDS, 0.002 * 2**attempt)
                time.sleep(random.uniform(0, ceiling))
                continue
            return aggregate

    def snapshot(self, aggregate: Aggregate[Any]) -> Snapshot:
        """Write a snapshot of ``aggregate`` now (on demand); errors are raised."""
        self._check_type(type(aggregate))
        if self._snapshots is None:
            raise RepositoryConfigError("no snapshot store configured (snapshots=...)")
        if aggregate._pending:
            raise UnsavedEventsError(
                aggregate.stream_id, aggregate.version, len(aggregate._pending), "snapshot"
            )
        if aggregate.version < 1:
            raise InvalidInputError(aggregate.stream_id, "nothing to snapshot at version 0")
        return self._snapshots.write(aggregate)

    @property
    def snapshots(self) -> SnapshotStore | None:
        return self._snapshots.store if self._snapshots is not None else None

    @property
    def snapshot_failures(self) -> int:
        """Snapshot writes that failed (each logged as a warning); the saves succeeded."""
        return self._snapshots.write_failures if self._snapshots is not None else 0

    @property
    def snapshots_ignored(self) -> int:
        """Snapshots not used by a load: stale fingerprint, bad state, unreadable."""
        return self._snapshots.ignored if self._snapshots is not None else 0

    def _check_type(self, aggregate_type: type[Aggregate[Any]]) -> None:
        if aggregate_type not in self.aggregate_types:
            known = ", ".join(sorted(c.__qualname__ for c in self.aggregate_types))
            raise RepositoryConfigError(
                f"{getattr(aggregate_type, '__qualname__', aggregate_type)!r} is not one of this repository's aggregate types ({known})"
            )

    def __repr__(self) -> str:
        kinds = ", ".join(sorted(self.aggregate_types.values()))
        return f"<Repository [{kinds}] on {type(self.store).__name__}>"
