"""Kafka: publishing (the relay, the outbox, CloudEvents on the wire) and consuming.

- ``Relay`` publishes the event store's gap-safe feed and the ``outbox`` table
  to Kafka (key = stream id, CloudEvents binary or structured), at-least-once
  with a PostgreSQL checkpoint or exactly-once with Kafka transactions, one
  active instance per (schema, name).  ``relay_status`` reports on it.
- ``publish`` writes an outbox message in the caller's own transaction
  (Debezium outbox-router compatible table).
- ``encode_event``/``encode``/``decode``: the CloudEvents Kafka binding, both ways.
- Schemas on the wire: the relay sets CloudEvents ``dataschema`` to the event
  store's registered schema URI, and with ``SchemaRegistryOptions`` registers the
  JSON Schemas with a Confluent Schema Registry and frames values in Confluent's
  wire format (which ``decode`` and the consumers read too).
- ``TrackedProducer``: delivery-report tracking with bounded in-flight messages,
  the piece anything checkpointed on delivery reuses (CDC).
- ``MockCluster``/``MockClusterProcess``: librdkafka's embedded mock cluster.
- Change data capture (CDC): ``ChangeCapture`` sets up a publication and a
  ``pgoutput`` slot for some tables, takes a snapshot consistent with the slot
  and streams row changes as Debezium change events (``ChangeEvent``);
  ``publish_changes`` sends them to Kafka and moves the slot only over delivered
  messages; ``ChangeEventSource`` feeds them to a projection without Kafka.
- ``consume`` runs a member of a consumer group (cooperative-sticky, offsets
  committed only after processing) for a ``KafkaProjection`` (a projection into
  Redis whose per-partition offsets commit atomically with the view) or a
  ``HandlerConsumer`` (``async def handle(event, context)``; ``idempotent`` with
  ``PostgresIdempotency`` acts once per event id).  Failures are retried in
  place, then through ``<topic>.retry.<n>``, then parked in ``<topic>.dlq``
  (``list_dead_letters``/``replay_dead_letters``); ``consumer_lag`` reports lag.
"""

from ._cdc_capture import CdcOptions, ChangeCapture
from ._cdc_envelope import ChangeEvent
from ._cdc_errors import CdcDecodeError, CdcError, CdcSetupError, WalLevelError
from ._cdc_kafka import CdcProgress, change_producer, change_record, publish_changes
from ._cdc_setup import DroppedConnector, cdc_connector_name, drop_cdc_connector
from ._cdc_slot import SlotBatch, SlotLag, slot_lag
from ._cdc_source import ChangeEventSource, RowChange
from ._checkpoints import OutboxRow, RelayCheckpoint, read_kafka_checkpoint
from ._cloudevents import (
    CloudEvent,
    CloudEventMode,
    KafkaRecord,
    decode,
    encode,
    encode_event,
    event_attributes,
)
from ._confluent import SchemaRegistryOptions, SubjectStrategy
from ._consume import consume
from ._consume_errors import (
    BadMessageError,
    ConsumerError,
    DeadLetterReplayError,
    OffsetConflictError,
)
from ._consumer_checks import check_consumer
from ._dead_letter_topics import (
    KafkaDeadLetter,
    list_dead_letters,
    replay_dead_letters,
)
from ._errors import (
    BrokerUnavailableError,
    CloudEventFormatError,
    ConfluentRegistryError,
    MessageTooLargeError,
    MessagingConfigError,
    MessagingError,
    MockClusterError,
    OutboxError,
    PublishError,
    RelayFencedError,
    SchemaWireError,
    TopicMappingError,
)
from ._group import ConsumerOptions, ConsumerStats, GroupConsumer, OffsetGap
from ._handlers import EventHandler, HandlerConsumer, HandlerContext
from ._idempotency import PostgresIdempotency, idempotent
from ._lag import PartitionLag, consumer_lag, projection_lag
from ._mock_cluster import MockCluster, MockClusterProcess
from ._outbox import DEFAULT_MAX_MESSAGE_BYTES, publish
from ._producer import TrackedProducer, producer_config
from ._projection_consumer import KafkaProjection
from ._redis_offsets import partition_offsets
from ._relay import DEFAULT_CHECKPOINT_TOPIC, Relay, RelayOptions, RelayPhase, RelayState
from ._routing import DeliveryPolicy, dlq_topic, retry_topic
from ._schema import migrate
from ._schema_wire import schema_document
from ._status import RelayStatus, relay_status
from ._topics import TopicMapping, aggregate_type, check_topic

__all__ = [
    "DEFAULT_CHECKPOINT_TOPIC",
    "DEFAULT_MAX_MESSAGE_BYTES",
    "BadMessageError",
    "BrokerUnavailableError",
    "CdcDecodeError",
    "CdcError",
    "CdcOptions",
    "CdcProgress",
    "CdcSetupError",
    "ChangeCapture",
    "ChangeEvent",
    "ChangeEventSource",
    "CloudEvent",
    "CloudEventFormatError",
    "CloudEventMode",
    "ConfluentRegistryError",
    "ConsumerError",
    "ConsumerOptions",
    "ConsumerStats",
    "DeadLetterReplayError",
    "DeliveryPolicy",
    "DroppedConnector",
    "EventHandler",
    "GroupConsumer",
    "HandlerConsumer",
    "HandlerContext",
    "KafkaDeadLetter",
    "KafkaProjection",
    "KafkaRecord",
    "MessageTooLargeError",
    "MessagingConfigError",
    "MessagingError",
    "MockCluster",
    "MockClusterError",
    "MockClusterProcess",
    "OffsetConflictError",
    "OffsetGap",
    "OutboxError",
    "OutboxRow",
    "PartitionLag",
    "PostgresIdempotency",
    "PublishError",
    "Relay",
    "RelayCheckpoint",
    "RelayFencedError",
    "RelayOptions",
    "RelayPhase",
    "RelayState",
    "RelayStatus",
    "RowChange",
    "SchemaRegistryOptions",
    "SchemaWireError",
    "SlotBatch",
    "SlotLag",
    "SubjectStrategy",
    "TopicMapping",
    "TopicMappingError",
    "TrackedProducer",
    "WalLevelError",
    "aggregate_type",
    "cdc_connector_name",
    "change_producer",
    "change_record",
    "check_consumer",
    "check_topic",
    "consume",
    "consumer_lag",
    "decode",
    "dlq_topic",
    "drop_cdc_connector",
    "encode",
    "encode_event",
    "event_attributes",
    "idempotent",
    "list_dead_letters",
    "migrate",
    "partition_offsets",
    "producer_config",
    "projection_lag",
    "publish",
    "publish_changes",
    "read_kafka_checkpoint",
    "relay_status",
    "replay_dead_letters",
    "retry_topic",
    "schema_document",
    "slot_lag",
]
