"""Running several projections in one process, each under its own leader lock."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from typing import Any

from eventstore import PostgresEventStore

from ._errors import ProjectionDefinitionError
from ._locks import LocalLocks, LockProvider, PostgresAdvisoryLocks
from ._projection import Projection
from ._read_model import ReadModel
from ._source import EventSource, StoreFeedSource
from ._worker import Mode, ProjectionWorker, RunnerOptions, WorkerState

log = logging.getLogger("chronik.projections")

Target = tuple[Projection[Any], ReadModel[Any]]

# Shared by every runner of this process that has no database to lock in.
_LOCAL_LOCKS = LocalLocks()


def default_locks(source: EventSource) -> LockProvider:
    """Advisory locks in the event store's database, or in-process locks without one."""
    if isinstance(source, StoreFeedSource) and isinstance(source.store, PostgresEventStore):
        return PostgresAdvisoryLocks.for_store(source.store)
    return _LOCAL_LOCKS


def lock_name(projection: Projection[Any], read_model: ReadModel[Any], role: str = "run") -> str:
    """One lock per projection version and read model (and role: run or rebuild)."""
    return f"chronik.projection:{read_model.scope}:{projection.name}:v{projection.version}:{role}"


class ProjectionRunner:
    """Runs projections from one event source until asked to stop.

    Each projection gets its own task and leader lock: in a fleet of processes
    running the same projections, one leads each projection and the others wait as
    standbys, taking over when the leader dies.  One projection stopping (a poison
    event with the "stop" policy, or a newer version taking over) leaves the others
    running; an unexpected crash of one (anything not an ``Exception``) stops all.
    """

    def __init__(
        self,
        source: EventSource,
        targets: Iterable[Target],
        *,
        locks: LockProvider | None = None,
        options: RunnerOptions | None = None,
    ) -> None:
        self.source = source
        self.options = options or RunnerOptions()
        self.locks = locks if locks is not None else default_locks(source)
        self.workers: list[ProjectionWorker[Any]] = []
        seen: set[tuple[str, str]] = set()
        for projection, read_model in targets:
            key = (read_model.scope, projection.name)
            if key in seen:
                raise ProjectionDefinitionError(
                    projection.name, "is given twice for the same read model"
                )
            seen.add(key)
            self.workers.append(
                ProjectionWorker(
                    projection,
                    read_model,
                    source,
                    lock=self.locks.lock(lock_name(projection, read_model)),
                    options=self.options,
                    mode=Mode.RUN,
                )
            )
        if not self.workers:
            raise ValueError("a runner needs at least one projection")

    @property
    def states(self) -> dict[str, WorkerState]:
        """What each projection is doing in this process, by name."""
        return {worker.name: worker.state for worker in self.workers}

    async def run(self, stop: asyncio.Event) -> None:
        """Run every projection until ``stop`` is set (then finish the batch at hand)."""
        tasks = [
            asyncio.create_task(worker.run(stop), name=f"chronik-projection-{worker.name}")
            for worker in self.workers
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                error = None if task.cancelled() else task.exception()
                if error is not None:
                    raise error
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks)


async def run(
    targets: Sequence[Target],
    stop_event: asyncio.Event,
    *,
    source: EventSource,
    locks: LockProvider | None = None,
    options: RunnerOptions | None = None,
) -> dict[str, WorkerState]:
    """Run ``targets`` (projection, read model pairs) until ``stop_event``; their final states."""
    runner = ProjectionRunner(source, targets, locks=locks, options=options)
    await runner.run(stop_event)
    return runner.states
