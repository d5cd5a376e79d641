"""The chronik event store: append-only streams with a gap-safe global feed.

Backends: ``PostgresEventStore`` (production; embedded PostgreSQL when no DSN
is given) and ``InMemoryEventStore`` (tests).  Typed events subclass ``Event``
and pass through one ``EventCodec``, which runs the upcasters on every read.
"""

from ._codec import EventCodec
from ._correlation import (
    CAUSATION_ID,
    CORRELATION_ID,
    Correlation,
    caused_by,
    correlation,
    correlation_of,
    current_correlation,
)
from ._correlation import stamped as stamp_correlation
from ._embedded import describe_dsn, embedded_dsn, mask_password
from ._errors import (
    ChronikError,
    ConcurrencyError,
    DeadlockError,
    DuplicateEventError,
    EventCodecError,
    EventStoreError,
    EventValidationError,
    InvalidAppendError,
    InvalidConfigurationError,
    InvalidInputError,
    StoreUnavailableError,
    StreamNotFoundError,
    StreamOrderConflict,
    UnknownEventTypeError,
    UnreadableEventError,
    UpcasterChainError,
    UpcastError,
)
from ._events import Event
from ._lifecycle import AsyncClosing
from ._memory import InMemoryEventStore
from ._model import (
    ANY,
    NO_STREAM,
    START,
    STREAM_EXISTS,
    AppendResult,
    ExpectedVersion,
    NewEvent,
    Position,
    RawEvent,
    RecordedEvent,
    StreamInfo,
    version_matches,
)
from ._pg_schema import apply_migrations
from ._pg_schemas import PostgresSchemaRegistry
from ._postgres import DEFAULT_SCHEMA, OpenTransaction, PostgresEventStore
from ._schema_diff import SchemaChange, compare_schemas, incompatible_changes
from ._schema_name import MAX_SCHEMA_NAME_LENGTH, SCHEMA_NAME_RULE, check_schema_name
from ._schemas import (
    JSON_SCHEMA_DIALECT,
    InMemorySchemaRegistry,
    Registration,
    RegistrationStatus,
    SchemaRecord,
    SchemaRegistry,
    event_json_schema,
    schema_file_name,
    schema_fingerprint,
    schema_uri,
)
from ._store import EventStore
from ._tracing import (
    TRACEPARENT,
    SpanObserver,
    add_span_observer,
    current_trace_context,
    instrumented,
    tracing_available,
    use_tracer_provider,
)
from ._tracing import span as trace_span
from ._validation import (
    DEFAULT_MAX_BATCH_BYTES,
    DEFAULT_MAX_EVENT_BYTES,
    MAX_NESTING_DEPTH,
    MAX_STREAM_ID_LENGTH,
    MAX_VERSION,
    check_stream_id,
)

__all__ = [
    "ANY",
    "CAUSATION_ID",
    "CORRELATION_ID",
    "DEFAULT_MAX_BATCH_BYTES",
    "DEFAULT_MAX_EVENT_BYTES",
    "DEFAULT_SCHEMA",
    "JSON_SCHEMA_DIALECT",
    "MAX_NESTING_DEPTH",
    "MAX_SCHEMA_NAME_LENGTH",
    "MAX_STREAM_ID_LENGTH",
    "MAX_VERSION",
    "NO_STREAM",
    "SCHEMA_NAME_RULE",
    "START",
    "STREAM_EXISTS",
    "TRACEPARENT",
    "AppendResult",
    "AsyncClosing",
    "ChronikError",
    "ConcurrencyError",
    "Correlation",
    "DeadlockError",
    "DuplicateEventError",
    "Event",
    "EventCodec",
    "EventCodecError",
    "EventStore",
    "EventStoreError",
    "EventValidationError",
    "ExpectedVersion",
    "InMemoryEventStore",
    "InMemorySchemaRegistry",
    "InvalidAppendError",
    "InvalidConfigurationError",
    "InvalidInputError",
    "NewEvent",
    "OpenTransaction",
    "Position",
    "PostgresEventStore",
    "PostgresSchemaRegistry",
    "RawEvent",
    "RecordedEvent",
    "Registration",
    "RegistrationStatus",
    "SchemaChange",
    "SchemaRecord",
    "SchemaRegistry",
    "SpanObserver",
    "StoreUnavailableError",
    "StreamInfo",
    "StreamNotFoundError",
    "StreamOrderConflict",
    "UnknownEventTypeError",
    "UnreadableEventError",
    "UpcastError",
    "UpcasterChainError",
    "add_span_observer",
    "apply_migrations",
    "caused_by",
    "check_schema_name",
    "check_stream_id",
    "compare_schemas",
    "correlation",
    "correlation_of",
    "current_correlation",
    "current_trace_context",
    "describe_dsn",
    "embedded_dsn",
    "event_json_schema",
    "incompatible_changes",
    "instrumented",
    "mask_password",
    "schema_file_name",
    "schema_fingerprint",
    "schema_uri",
    "stamp_correlation",
    "trace_span",
    "tracing_available",
    "use_tracer_provider",
    "version_matches",
]
