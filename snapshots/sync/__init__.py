"""Synchronous snapshot stores: ``snapshots`` without ``await``.

Generated from the async modules by ``tools/async_to_sync.py`` (see
``eventstore.sync`` for why); ``Snapshot``, the policies and the errors are
the async package's own and are imported from ``snapshots``.
"""

from ._memory import InMemorySnapshotStore
from ._postgres import PostgresSnapshotStore
from ._store import SnapshotStore

__all__ = ["InMemorySnapshotStore", "PostgresSnapshotStore", "SnapshotStore"]
