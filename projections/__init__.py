"""Projections: read models built from the event feed, exactly-once in effect.

A ``Projection`` (name, version, handlers per event type) is run by a
``ProjectionRunner`` from an ``EventSource`` (the store's feed now, a Kafka
consumer later) into a read model (``RedisReadModel``, ``MongoReadModel``).  Each
batch's writes commit atomically with the checkpoint; failing events are retried,
then parked as dead letters; a new version builds in a shadow slot and swaps in
when caught up.  The operations the CLI offers are the plain async functions
``status``, ``rebuild``, ``replay_into`` + ``diff``, ``list_dead_letters``,
``replay_dead_letters`` and ``run``.  Shipped projections: ``projections.shipped``.
"""

from ._dead_letter_ops import DeadLetterReplay, list_dead_letters, replay_dead_letters
from ._dead_letters import DeadLetter
from ._errors import (
    CheckpointConflictError,
    DeadLetterNotFoundError,
    PartialDeadLetterError,
    ProjectionDefinitionError,
    ProjectionError,
    ProjectionNotReadyError,
    ProjectionStoppedError,
    ProjectionSupersededError,
    ReadModelError,
    SlotNotActiveError,
    WriteRejectedError,
)
from ._keys import key, key_part, split_key
from ._locks import LeaderLock, LocalLocks, LockProvider, PostgresAdvisoryLocks
from ._maintenance import (
    ReadModelDiff,
    RebuildResult,
    diff,
    diff_snapshots,
    drop_inactive_slots,
    rebuild,
    replay_into,
)
from ._mongo import MongoReadModel
from ._mongo_reads import MongoReader, MongoView
from ._mongo_writes import MongoWrites
from ._projection import Handler, PoisonPolicy, Projection, RetryPolicy
from ._read_model import CommitBatch, FailedWrite, PendingFailures, ReadModel
from ._redis import RedisReadModel
from ._redis_embedded import embedded_redis_url
from ._redis_reads import RedisReader, RedisView
from ._redis_writes import RedisScript, RedisWrites
from ._runner import ProjectionRunner, run
from ._slots import ProjectionMeta, SlotInfo, SlotState
from ._source import EventFeed, EventSource, StoreFeedSource
from ._status import ProjectionStatus, statement_summary, status, status_all
from ._worker import Phase, RunnerOptions, WorkerState
from ._writes import Writes

__all__ = [
    "CheckpointConflictError",
    "CommitBatch",
    "DeadLetter",
    "DeadLetterNotFoundError",
    "DeadLetterReplay",
    "EventFeed",
    "EventSource",
    "FailedWrite",
    "Handler",
    "LeaderLock",
    "LocalLocks",
    "LockProvider",
    "MongoReadModel",
    "MongoReader",
    "MongoView",
    "MongoWrites",
    "PartialDeadLetterError",
    "PendingFailures",
    "Phase",
    "PoisonPolicy",
    "PostgresAdvisoryLocks",
    "Projection",
    "ProjectionDefinitionError",
    "ProjectionError",
    "ProjectionMeta",
    "ProjectionNotReadyError",
    "ProjectionRunner",
    "ProjectionStatus",
    "ProjectionStoppedError",
    "ProjectionSupersededError",
    "ReadModel",
    "ReadModelDiff",
    "ReadModelError",
    "RebuildResult",
    "RedisReadModel",
    "RedisReader",
    "RedisScript",
    "RedisView",
    "RedisWrites",
    "RetryPolicy",
    "RunnerOptions",
    "SlotInfo",
    "SlotNotActiveError",
    "SlotState",
    "StoreFeedSource",
    "WorkerState",
    "WriteRejectedError",
    "Writes",
    "diff",
    "diff_snapshots",
    "drop_inactive_slots",
    "embedded_redis_url",
    "key",
    "key_part",
    "list_dead_letters",
    "rebuild",
    "replay_dead_letters",
    "replay_into",
    "run",
    "split_key",
    "statement_summary",
    "status",
    "status_all",
]
