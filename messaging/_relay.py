"""The relay: publish the event feed and the outbox to Kafka, never losing a message.

At-least-once (default).  The relay reads the gap-safe feed (and the outbox
feed) after its checkpoint, a page at a time (``PostgresEventStore.read_raw_page``:
the data stays the JSON text PostgreSQL sent), and hands each page to a
``TrackedProducer`` as one batch.  The checkpoint it saves is the one carried by
the last page whose messages, and every message before them, have successful
delivery reports: a message whose report never comes (broker down) or fails
holds it where it is.  After a crash the relay starts again at the saved
checkpoint and re-sends what came after: redelivery, never loss.  Consumers
de-duplicate by ``ce_id``.

Exactly-once (``exactly_once=True``).  One Kafka transaction per batch holds
the batch's messages *and* the relay's checkpoint record (a compacted topic),
so a ``read_committed`` consumer sees each event once however the relay dies.
A restarted relay first registers its transactional id, which aborts whatever
the dead one left open, then reads the last committed checkpoint.  Within a
transaction the relay waits for the batch's delivery reports before producing
the checkpoint record: then a checkpoint record in the log implies every
message of its transaction is there too, which is what makes the mock
cluster's weaker isolation (it shows aborted records) checkable in tests.

One relay per (schema, name) is active: the others stand by on a PostgreSQL
advisory lock (``projections``' leader lock) and take over when it is released,
i.e. when the leader's database session ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import math
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import psycopg

from eventstore import PostgresEventStore
from projections import LockProvider, PostgresAdvisoryLocks

from ._checkpoints import PostgresCheckpoints, RelayCheckpoint, read_kafka_checkpoint
from ._cloudevents import CloudEventMode, KafkaRecord
from ._confluent import SchemaRegistryOptions
from ._encoding import Encoder, Token, describe
from ._errors import (
    MessagingConfigError,
    MessagingError,
    PublishError,
    RelayFencedError,
    TopicMappingError,
)
from ._outbox import DEFAULT_MAX_MESSAGE_BYTES, check_max_message_bytes
from ._producer import TrackedProducer, producer_config
from ._schema import migrate
from ._schema_wire import schema_wire
from ._session import Session
from ._topics import TopicMapping, check_topic

log = logging.getLogger("chronik.messaging")

DEFAULT_CHECKPOINT_TOPIC = "chronik.relay.checkpoints"


class RelayPhase(enum.Enum):
    STARTING = "starting"
    STANDBY = "standby"
    LEADING = "leading"
    STUCK = "stuck"
    STOPPED = "stopped"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class RelayOptions:
    """How a relay publishes.  ``source`` defaults to ``chronik/<schema>``."""

    name: str = "default"
    topics: TopicMapping = field(default_factory=TopicMapping)
    source: str | None = None
    mode: CloudEventMode = CloudEventMode.BINARY
    exactly_once: bool = False
    outbox: bool = True
    #: Events (and outbox rows) per read; per transaction in exactly-once mode.
    batch_size: int = 1000
    #: Messages handed to Kafka without a delivery report yet, at most.
    max_in_flight: int = 10_000
    #: How long a message may wait for its delivery report before it counts as failed.
    delivery_timeout: float = 30.0
    poll_interval: float = 1.0
    lock_poll_interval: float = 1.0
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    checkpoint_topic: str = DEFAULT_CHECKPOINT_TOPIC
    #: Try to create the (compacted) checkpoint topic (the mock cluster cannot).
    create_checkpoint_topic: bool = True
    producer_config: Mapping[str, Any] = field(default_factory=dict)
    #: The producer's ``message.max.bytes``: ``publish`` must be given the same
    #: number, so that it refuses what this relay could not send.  Raising it needs
    #: the broker's (and the topics') ``max.message.bytes`` raised as well.
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    #: Called after each committed checkpoint (tests, metrics).
    on_checkpoint: Callable[[RelayCheckpoint], None] | None = None
    #: Set CloudEvents ``dataschema`` for events whose schema is registered.
    dataschema: bool = True
    #: Where ``chronik schemas export`` output is served (``dataschema`` becomes
    #: ``<base>/<type>/v<version>.json``); None: ``urn:chronik:schema:<type>:<version>``.
    schema_base_url: str | None = None
    #: Register schemas with a Confluent Schema Registry and frame values (binary mode).
    schema_registry: SchemaRegistryOptions | None = None

    def __post_init__(self) -> None:
        check_relay_options(self)

    @property
    def mode_name(self) -> str:
        return "exactly-once" if self.exactly_once else "at-least-once"


def check_relay_options(options: RelayOptions) -> None:
    """Refuse, before anything is read or sent, what the relay cannot run with.

    Each of these would otherwise surface late and misleadingly: a zero delivery
    timeout is librdkafka's "never time out" (an outage would never be reported),
    a bad checkpoint topic or a mode given as text fail inside the broker session,
    where the relay takes them for an outage and retries forever as "stuck".
    """
    name = options.name
    subject = f"relay {name!r}"
    if not isinstance(name, str) or not name.strip() or not name.isprintable():
        raise MessagingConfigError(
            subject, "a relay name is a non-empty string of printable characters"
        )
    if not isinstance(options.topics, TopicMapping):
        raise MessagingConfigError(
            subject, f"topics must be a TopicMapping, not {options.topics!r}"
        )
    if not isinstance(options.mode, CloudEventMode):
        raise MessagingConfigError(subject, f"mode must be a CloudEventMode, not {options.mode!r}")
    for field_name in ("batch_size", "max_in_flight"):
        value = getattr(options, field_name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise MessagingConfigError(subject, f"{field_name} must be >= 1, not {value!r}")
    for field_name in (
        "delivery_timeout",
        "poll_interval",
        "lock_poll_interval",
        "backoff_initial",
    ):
        value = getattr(options, field_name)
        if not _positive_seconds(value):
            raise MessagingConfigError(subject, f"{field_name} must be seconds > 0, not {value!r}")
    if not _positive_seconds(options.backoff_max) or options.backoff_max < options.backoff_initial:
        raise MessagingConfigError(
            subject, f"backoff_max must be >= backoff_initial, not {options.backoff_max!r}"
        )
    check_max_message_bytes(options.max_message_bytes, subject)
    if "message.max.bytes" in options.producer_config:
        # One number for the relay and for publish(): a second one here could let
        # the outbox accept what this producer refuses.
        raise MessagingConfigError(
            subject, "set max_message_bytes rather than producer_config['message.max.bytes']"
        )
    registry = options.schema_registry
    if registry is not None and not isinstance(registry, SchemaRegistryOptions):
        raise MessagingConfigError(
            subject, f"schema_registry must be SchemaRegistryOptions, not {registry!r}"
        )
    try:
        check_topic(options.checkpoint_topic, "the relay's checkpoint_topic")
    except TopicMappingError as error:
        raise MessagingConfigError(subject, str(error)) from None


def _positive_seconds(value: object) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


@dataclass
class RelayState:
    """What a running relay is doing, for logs and ``status``."""

    phase: RelayPhase = RelayPhase.STARTING
    checkpoint: RelayCheckpoint = field(default_factory=RelayCheckpoint)
    last_error: str | None = None
    restarts: int = 0


class Relay:
    """``await Relay(store, "host:9092").run(stop)``: publish until ``stop`` is set."""

    def __init__(
        self,
        store: PostgresEventStore,
        bootstrap_servers: str,
        options: RelayOptions | None = None,
        *,
        locks: LockProvider | None = None,
    ) -> None:
        self.store = store
        self.bootstrap_servers = bootstrap_servers
        self.options = options or RelayOptions()
        self.locks = locks or PostgresAdvisoryLocks.for_store(store)
        self.checkpoints = PostgresCheckpoints(store.schema)
        source = self.options.source or f"chronik/{store.schema}"
        self.encoder = Encoder(
            self.options.topics, source, self.options.mode, schema_wire(store, self.options)
        )
        self.state = RelayState()

    @property
    def relay_id(self) -> str:
        """Unique per database schema and relay name: the lock and transactional id."""
        return f"chronik-relay.{self.store.schema}.{self.options.name}"

    async def migrate(self) -> None:
        async with self.store.connection() as connection:
            await migrate(connection, self.store.schema)

    async def run(self, stop: asyncio.Event) -> None:
        """Lead (or stand by) until ``stop``; retry what the broker or database refuse
        for now; raise what retrying cannot fix (a message too large, a bad topic)."""
        await self.migrate()
        lock = self.locks.lock(self.relay_id)
        try:
            while not stop.is_set():
                self.state.phase = RelayPhase.STANDBY
                if not await lock.acquire(stop, self.options.lock_poll_interval):
                    break
                log.info("relay %s: leading", self.relay_id)
                await self._lead(stop, lock)
        finally:
            self.state.phase = RelayPhase.STOPPED
            await lock.release()

    async def publish_pending(self) -> RelayCheckpoint:
        """Publish everything available now, then return (no lock, no retries)."""
        await self.migrate()
        self.state.phase = RelayPhase.LEADING
        try:
            async with self._session() as session:
                await session.run(asyncio.Event(), None, until_caught_up=True)
        except MessagingError as error:
            await self._record(" ".join(str(error).split()))
            raise
        return self.state.checkpoint

    async def _lead(self, stop: asyncio.Event, lock: Any) -> None:
        backoff = self.options.backoff_initial
        while not stop.is_set():
            try:
                self.state.phase = RelayPhase.LEADING
                async with self._session() as session:
                    await session.run(stop, lock, until_caught_up=False)
                return  # stopped, or the lock was lost
            except RelayFencedError as error:
                log.warning("relay %s: %s; standing by", self.relay_id, error)
                return
            except MessagingConfigError as error:
                # Retrying cannot fix a configuration (librdkafka refusing an option).
                await self._record(str(error))
                raise
            except (PublishError, MessagingError) as error:
                if isinstance(error, PublishError) and not error.retriable:
                    await self._record(str(error))
                    raise
                await self._stuck(error)
            except (psycopg.OperationalError, OSError) as error:
                await self._stuck(error)
            except Exception as error:
                if type(error).__name__ != "KafkaException":
                    raise
                await self._stuck(error)
            if not await lock.held():
                return
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(backoff):
                    await stop.wait()
            backoff = min(backoff * 2, self.options.backoff_max)

    async def _stuck(self, error: BaseException) -> None:
        text = " ".join(str(error).split()) or type(error).__name__
        self.state.phase = RelayPhase.STUCK
        self.state.restarts += 1
        log.warning("relay %s stuck, retrying: %s", self.relay_id, text)
        with contextlib.suppress(psycopg.Error, OSError):
            await self._record(text)

    async def _record(self, text: str) -> None:
        self.state.last_error = text
        async with self.store.connection() as connection:
            await self.checkpoints.record_error(
                connection, self.options.name, self.options.mode_name, text
            )

    @contextlib.asynccontextmanager
    async def _session(self) -> Any:
        options = self.options
        transactional_id = self.relay_id if options.exactly_once else None
        config = producer_config(
            self.bootstrap_servers,
            transactional_id=transactional_id,
            delivery_timeout=options.delivery_timeout,
            max_in_flight=options.max_in_flight,
            extra={"message.max.bytes": options.max_message_bytes, **options.producer_config},
        )
        producer: TrackedProducer[Token] = TrackedProducer(
            config, describe, max_in_flight=options.max_in_flight, name=self.relay_id
        )
        try:
            if options.exactly_once:
                await producer.init_transactions(options.delivery_timeout)
                if options.create_checkpoint_topic:
                    await asyncio.to_thread(self._create_checkpoint_topic)
                found = await read_kafka_checkpoint(
                    self.bootstrap_servers,
                    options.checkpoint_topic,
                    self.relay_id,
                    options.delivery_timeout,
                )
                checkpoint = found or RelayCheckpoint()
                # The last relay may have died between its Kafka commit and the
                # mirror: bring status (and the outbox clean-up) up to date now.
                async with self.store.connection() as connection:
                    await self.checkpoints.save(
                        connection, options.name, options.mode_name, checkpoint
                    )
            else:
                async with self.store.connection() as connection:
                    await self.checkpoints.register(connection, options.name, options.mode_name)
                    checkpoint = await self.checkpoints.load(connection, options.name)
            self.state.checkpoint = checkpoint
            yield Session(self, producer, checkpoint, uuid.uuid4().hex[:12])
        finally:
            producer.close()

    def _create_checkpoint_topic(self) -> None:
        from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

        admin = AdminClient({"bootstrap.servers": self.bootstrap_servers})
        topic = NewTopic(self.options.checkpoint_topic, 1, -1, config={"cleanup.policy": "compact"})
        future = admin.create_topics([topic], request_timeout=10)[self.options.checkpoint_topic]
        try:
            future.result(timeout=15)
        except Exception as error:
            # Already there (the usual case), or auto-created on first produce.
            if "TOPIC_ALREADY_EXISTS" not in str(error):
                log.info("checkpoint topic not created (%s); relying on auto-create", error)

    def checkpoint_record(self, checkpoint: RelayCheckpoint) -> KafkaRecord:
        return KafkaRecord(
            self.options.checkpoint_topic, self.relay_id.encode(), checkpoint.to_json(), []
        )

    def __repr__(self) -> str:
        return f"Relay({self.relay_id!r}, {self.options.mode_name})"
