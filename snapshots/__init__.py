"""chronik snapshots: aggregate state saved every so often, so loads replay only the tail.

Snapshots are an optimisation, never the truth.  Stores keep the newest ``keep``
snapshots of each stream, so time travel starts from the newest snapshot not
newer than its target.  Backends: ``PostgresSnapshotStore`` (beside the events),
``RedisSnapshotCache`` (a read-through cache over a backing store, or standalone)
and ``InMemorySnapshotStore`` (tests).  Policies decide when to write one.
"""

from ._errors import (
    InvalidPolicyError,
    InvalidSnapshotError,
    SnapshotCorruptError,
    SnapshotError,
    SnapshotStoreError,
)
from ._memory import InMemorySnapshotStore
from ._model import DEFAULT_KEEP, Snapshot
from ._policy import EveryNEvents, OnDemand, SnapshotPolicy
from ._postgres import PostgresSnapshotStore
from ._redis import DEFAULT_PREFIX, RedisSnapshotCache
from ._redis_embedded import embedded_redis_url
from ._store import SnapshotStore

__all__ = [
    "DEFAULT_KEEP",
    "DEFAULT_PREFIX",
    "EveryNEvents",
    "InMemorySnapshotStore",
    "InvalidPolicyError",
    "InvalidSnapshotError",
    "OnDemand",
    "PostgresSnapshotStore",
    "RedisSnapshotCache",
    "Snapshot",
    "SnapshotCorruptError",
    "SnapshotError",
    "SnapshotPolicy",
    "SnapshotStore",
    "SnapshotStoreError",
    "embedded_redis_url",
]
