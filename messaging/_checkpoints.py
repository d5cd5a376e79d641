"""Where a relay has got to: in PostgreSQL, or (exactly-once) in a Kafka topic.

At-least-once: ``PostgresCheckpoints`` keeps one row per relay name in
``<schema>.relay_checkpoints``.  Saving a checkpoint deletes the outbox rows it
passed, in the same transaction, so the outbox never loses an unpublished row
and never keeps a published one for long.

Exactly-once: the checkpoint is a record (key = the relay's transactional id)
in a compacted topic, produced inside the same Kafka transaction as the
messages it covers; ``read_kafka_checkpoint`` finds the last one.  The relay
also mirrors each committed checkpoint into ``relay_checkpoints`` for
``status``; that copy is never used to resume.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, NamedTuple

from psycopg import AsyncConnection, sql

from eventstore import START, Position

_UPSERT = """
    INSERT INTO {table} AS c (relay, mode, events_txid, events_position, outbox_txid,
                              outbox_position, published_events, published_outbox)
    VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
    ON CONFLICT (relay) DO UPDATE SET
        mode = excluded.mode,
        events_txid = excluded.events_txid, events_position = excluded.events_position,
        outbox_txid = excluded.outbox_txid, outbox_position = excluded.outbox_position,
        published_events = excluded.published_events,
        published_outbox = excluded.published_outbox,
        last_error = NULL, last_error_at = NULL, updated_at = clock_timestamp()
"""
_LOAD = """
    SELECT events_txid, events_position, outbox_txid, outbox_position,
           published_events, published_outbox
      FROM {table} WHERE relay = %s
"""
_REGISTER = """
    INSERT INTO {table} (relay, mode) VALUES (%s, %s) ON CONFLICT (relay) DO NOTHING
"""
_ERROR = """
    INSERT INTO {table} (relay, mode, last_error, last_error_at)
    VALUES (%s, %s, %s, clock_timestamp())
    ON CONFLICT (relay) DO UPDATE SET last_error = excluded.last_error,
        last_error_at = excluded.last_error_at
"""
_DELETE_PUBLISHED = """
    DELETE FROM {outbox} WHERE (transaction_id, position) <= (%s::text::xid8, %s)
"""
_OUTBOX_PAGE = """
    SELECT transaction_id::text::bigint, position, id, aggregatetype, aggregateid, type,
           payload, topic, headers, created_at
      FROM {outbox} AS o
     WHERE (o.transaction_id, o.position) > (%s::text::xid8, %s)
       AND o.transaction_id < pg_snapshot_xmin(pg_current_snapshot())
     ORDER BY o.transaction_id, o.position
     LIMIT %s
"""


@dataclass(frozen=True, slots=True)
class RelayCheckpoint:
    """How far a relay has published: the event feed and the outbox feed."""

    events: Position = START
    outbox: Position = START
    published_events: int = 0
    published_outbox: int = 0
    #: The Kafka transaction that wrote it (exactly-once mode).
    transaction: str | None = None

    def advanced(
        self, events: Position | None, outbox: Position | None, n_events: int, n_outbox: int
    ) -> RelayCheckpoint:
        return replace(
            self,
            events=events if events is not None else self.events,
            outbox=outbox if outbox is not None else self.outbox,
            published_events=self.published_events + n_events,
            published_outbox=self.published_outbox + n_outbox,
        )

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "events": str(self.events),
                "outbox": str(self.outbox),
                "published_events": self.published_events,
                "published_outbox": self.published_outbox,
                "transaction": self.transaction,
            }
        ).encode()

    @classmethod
    def from_json(cls, value: bytes) -> RelayCheckpoint:
        found = json.loads(value)
        return cls(
            events=Position.parse(found["events"]),
            outbox=Position.parse(found["outbox"]),
            published_events=int(found["published_events"]),
            published_outbox=int(found["published_outbox"]),
            transaction=found.get("transaction"),
        )


class OutboxRow(NamedTuple):
    position: Position
    id: uuid.UUID
    aggregatetype: str
    aggregateid: str
    type: str
    payload: Any
    topic: str | None
    headers: dict[str, str]
    created_at: datetime


class PostgresCheckpoints:
    """The relay's rows in ``<schema>.relay_checkpoints`` and its outbox reads."""

    def __init__(self, schema: str) -> None:
        self.schema = schema
        table = sql.Identifier(schema, "relay_checkpoints")
        outbox = sql.Identifier(schema, "outbox")
        self._upsert = sql.SQL(_UPSERT).format(table=table)
        self._load = sql.SQL(_LOAD).format(table=table)
        self._error = sql.SQL(_ERROR).format(table=table)
        self._register = sql.SQL(_REGISTER).format(table=table)
        self._delete = sql.SQL(_DELETE_PUBLISHED).format(outbox=outbox)
        self._outbox_page = sql.SQL(_OUTBOX_PAGE).format(outbox=outbox)

    async def register(self, connection: AsyncConnection[Any], relay: str, mode: str) -> None:
        """A row for a relay that has published nothing yet, so that status lists it."""
        await connection.execute(self._register, (relay, mode))

    async def load(self, connection: AsyncConnection[Any], relay: str) -> RelayCheckpoint:
        cursor = await connection.execute(self._load, (relay,))
        row = await cursor.fetchone()
        if row is None:
            return RelayCheckpoint()
        return RelayCheckpoint(Position(row[0], row[1]), Position(row[2], row[3]), row[4], row[5])

    async def save(
        self, connection: AsyncConnection[Any], relay: str, mode: str, checkpoint: RelayCheckpoint
    ) -> None:
        """Store ``checkpoint`` and delete the outbox rows it passed, atomically."""
        events, outbox = checkpoint.events, checkpoint.outbox
        async with connection.transaction():
            await connection.execute(
                self._upsert,
                (
                    relay,
                    mode,
                    events[0],
                    events[1],
                    outbox[0],
                    outbox[1],
                    checkpoint.published_events,
                    checkpoint.published_outbox,
                ),
            )
            if outbox > START:
                await connection.execute(self._delete, (str(outbox[0]), outbox[1]))

    async def record_error(
        self, connection: AsyncConnection[Any], relay: str, mode: str, error: str
    ) -> None:
        """Say why the relay is stuck (cleared by the next saved checkpoint)."""
        await connection.execute(self._error, (relay, mode, error[:2000]))

    async def outbox_page(
        self, connection: AsyncConnection[Any], after: Position, limit: int
    ) -> list[OutboxRow]:
        cursor = await connection.execute(
            self._outbox_page, (str(after[0]), after[1], limit), prepare=False
        )
        return [
            OutboxRow(Position(r[0], r[1]), r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9])
            for r in await cursor.fetchall()
        ]


async def read_kafka_checkpoint(
    bootstrap_servers: str, topic: str, key: str, seconds: float = 30.0
) -> RelayCheckpoint | None:
    """The last checkpoint record for ``key`` in partition 0 of ``topic`` (read_committed)."""
    return await asyncio.to_thread(_read_last, bootstrap_servers, topic, key.encode(), seconds)


def _read_last(bootstrap: str, topic: str, key: bytes, timeout: float) -> RelayCheckpoint | None:
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"chronik-checkpoint-reader-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "enable.partition.eof": True,
        }
    )
    try:
        metadata = consumer.list_topics(timeout=timeout)
        if topic not in metadata.topics or not metadata.topics[topic].partitions:
            return None
        # read_committed: the high watermark here is the last stable offset.
        _low, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=timeout)
        if high <= 0:
            return None
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        found: bytes | None = None
        while True:
            message = consumer.poll(timeout)
            if message is None:
                raise KafkaException(f"no answer reading checkpoint topic {topic!r}")
            error = message.error()
            if error is not None:
                if error.code() == error._PARTITION_EOF:
                    break
                raise KafkaException(error)
            if message.key() == key and message.value() is not None:
                found = message.value()
            offset = message.offset()
            if offset is not None and offset >= high - 1:
                break
        return RelayCheckpoint.from_json(found) if found is not None else None
    finally:
        consumer.close()
