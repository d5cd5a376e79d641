"""Kafka: consuming (consumer groups, Kafka-fed projections, handlers, retries, lag)."""

from ._consume import consume
from ._consume_errors import (
    BadMessageError,
    ConsumerError,
    DeadLetterReplayError,
    OffsetConflictError,
)
from ._group import ConsumerOptions, ConsumerStats, GroupConsumer
from ._handlers import EventHandler, HandlerConsumer, HandlerContext
from ._idempotency import PostgresIdempotency, idempotent
from ._projection_consumer import KafkaProjection
from ._redis_offsets import partition_offsets
from ._routing import DeliveryPolicy, dlq_topic, retry_topic

__all__ = [
    "BadMessageError",
    "ConsumerError",
    "ConsumerOptions",
    "ConsumerStats",
    "DeadLetterReplayError",
    "DeliveryPolicy",
    "EventHandler",
    "GroupConsumer",
    "HandlerConsumer",
    "HandlerContext",
    "KafkaProjection",
    "OffsetConflictError",
    "PostgresIdempotency",
    "consume",
    "dlq_topic",
    "idempotent",
    "partition_offsets",
    "retry_topic",
]
