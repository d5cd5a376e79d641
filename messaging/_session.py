"""One leadership term of a relay: a producer, a checkpoint, and the publish loop.

A session ends on ``stop``, when the leader lock is lost, or with an error; the
relay then starts a new one from the saved checkpoint (a fresh producer, so
nothing queued by the failed one is mistaken for delivered).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from eventstore import (
    TRACEPARENT,
    Position,
    RawEvent,
    current_trace_context,
    instrumented,
    trace_span,
)

from ._checkpoints import OutboxRow, RelayCheckpoint
from ._cloudevents import KafkaRecord
from ._encoding import Token
from ._producer import TrackedProducer

if TYPE_CHECKING:
    from ._relay import Relay

log = logging.getLogger("chronik.messaging")

#: How often a leader checks it still holds its lock (a query: at hundreds of
#: wake-ups a second, checking on each one slowed the writers it relays).
_LOCK_CHECK_SECONDS = 5.0


class Session:
    def __init__(
        self,
        relay: Relay,
        producer: TrackedProducer[Token],
        checkpoint: RelayCheckpoint,
        instance: str,
    ) -> None:
        self.relay = relay
        self.options = relay.options
        self.producer = producer
        self.saved = checkpoint
        self.instance = instance
        self.transactions = 0
        # What has been handed to the producer (ahead of ``saved``).
        self.sent_events = checkpoint.events
        self.sent_outbox = checkpoint.outbox
        self.count_events = checkpoint.published_events
        self.count_outbox = checkpoint.published_outbox

    async def run(self, stop: asyncio.Event, lock: Any, *, until_caught_up: bool) -> None:
        store = self.relay.store
        checked = time.monotonic()
        ahead: asyncio.Task[tuple[list[RawEvent], list[OutboxRow]]] | None = None
        async with store.listen_for_appends() as wait_for_append:
            try:
                while not stop.is_set():
                    if ahead is None:
                        events, rows = await self._read(self.sent_events, self.sent_outbox)
                    else:
                        events, rows = await ahead
                        ahead = None
                    full = max(len(events), len(rows)) >= self.options.batch_size
                    if full:
                        # Read the next page while this one is encoded and sent: the
                        # database works while we do (about a fifth faster).
                        after_events = events[-1].position if events else self.sent_events
                        after_outbox = rows[-1].position if rows else self.sent_outbox
                        ahead = asyncio.create_task(self._read(after_events, after_outbox))
                    if events or rows:
                        if self.options.exactly_once:
                            await self._transaction(events, rows)
                        else:
                            await self._send(events, rows)
                            await self._save(self.producer.delivered())
                    if full:
                        if lock is not None and time.monotonic() - checked > _LOCK_CHECK_SECONDS:
                            checked = time.monotonic()
                            if not await lock.held():
                                return
                        continue
                    # Caught up: everything sent must be delivered before we say so.
                    if not self.options.exactly_once:
                        await self._save(await self.producer.drain())
                    if until_caught_up:
                        return
                    if lock is not None and time.monotonic() - checked > _LOCK_CHECK_SECONDS:
                        checked = time.monotonic()
                        if not await lock.held():
                            return
                    await wait_for_append(self.options.poll_interval)
            finally:
                if ahead is not None:
                    await _cancel(ahead)

    async def _read(
        self, after_events: Position, after_outbox: Position
    ) -> tuple[list[RawEvent], list[OutboxRow]]:
        limit = self.options.batch_size
        rows: list[OutboxRow] = []
        events = await self.relay.store.read_raw_page(after_events, limit)
        if self.options.outbox:
            async with self.relay.store.connection() as connection:
                rows = await self.relay.checkpoints.outbox_page(connection, after_outbox, limit)
        return events, rows

    async def _send(
        self,
        events: list[RawEvent],
        rows: list[OutboxRow],
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        """Send the page as one batch per feed, under the checkpoint it completes.

        Each message is encoded just before it is produced and dropped right
        after (librdkafka keeps its own copy): a page of records kept alive
        through garbage collections made Python's collector walk the whole heap
        every few pages, which cost more than the encoding itself.
        """
        producer, encoder = self.producer, self.relay.encoder
        if events and encoder.wire is not None:
            await encoder.wire.prepare(events, encoder.topic_of)
        if events:
            encode = encoder.row if not instrumented() else functools.partial(_traced_row, encoder)
            self.sent_events = events[-1].position
            self.count_events += len(events)
            await producer.send_batch(
                _with_headers(map(encode, events), headers), ("event", *self._counters())
            )
        if rows:
            self.sent_outbox = rows[-1].position
            self.count_outbox += len(rows)
            await producer.send_batch(
                _with_headers(map(encoder.outbox, rows), headers), ("outbox", *self._counters())
            )
        producer.poll()

    def _counters(self) -> tuple[Position, Position, int, int]:
        return self.sent_events, self.sent_outbox, self.count_events, self.count_outbox

    def _checkpoint_of(self, token: Token | None) -> RelayCheckpoint | None:
        if token is None:
            return None
        return RelayCheckpoint(token[1], token[2], token[3], token[4])

    async def _save(self, token: Token | None) -> None:
        checkpoint = self._checkpoint_of(token)
        if checkpoint is None or (
            checkpoint.events == self.saved.events and checkpoint.outbox == self.saved.outbox
        ):
            return
        async with self.relay.store.connection() as connection:
            await self.relay.checkpoints.save(
                connection, self.options.name, self.options.mode_name, checkpoint
            )
        self._saved(checkpoint)

    def _saved(self, checkpoint: RelayCheckpoint) -> None:
        self.saved = checkpoint
        self.relay.state.checkpoint = checkpoint
        self.relay.state.last_error = None
        if self.options.on_checkpoint is not None:
            self.options.on_checkpoint(checkpoint)

    async def _transaction(self, events: list[RawEvent], rows: list[OutboxRow]) -> None:
        producer = self.producer
        self.transactions += 1
        name = f"{self.instance}:{self.transactions}"
        producer.begin()
        try:
            await self._send(events, rows, [("chronik_txn", name.encode())])
            # Every message of the batch is in the log before the checkpoint record
            # is produced (see the module docstring of _relay).
            await producer.drain()
            checkpoint = RelayCheckpoint(
                self.sent_events, self.sent_outbox, self.count_events, self.count_outbox, name
            )
            record = self.relay.checkpoint_record(checkpoint)
            token = ("checkpoint", *checkpoint_fields(checkpoint))
            await producer.send(record, token, partition=0)
            await producer.commit(self.options.delivery_timeout)
        except BaseException:
            self._rewind()
            await _abort_quietly(producer, self.options.delivery_timeout)
            raise
        self._saved(checkpoint)
        # A mirror for status and outbox clean-up; resuming reads Kafka, not this.
        async with self.relay.store.connection() as connection:
            await self.relay.checkpoints.save(
                connection, self.options.name, self.options.mode_name, checkpoint
            )

    def _rewind(self) -> None:
        saved = self.saved
        self.sent_events, self.sent_outbox = saved.events, saved.outbox
        self.count_events, self.count_outbox = saved.published_events, saved.published_outbox


def _with_headers(
    records: Iterator[KafkaRecord], headers: list[tuple[str, bytes]] | None
) -> Iterator[KafkaRecord]:
    if not headers:
        return records
    return (_extended(record, headers) for record in records)


def _extended(record: KafkaRecord, headers: list[tuple[str, bytes]]) -> KafkaRecord:
    record.headers.extend(headers)
    return record


async def _cancel(task: asyncio.Task[Any]) -> None:
    # The session is ending (stop, lost lock, or an error that the caller reports):
    # the read ahead's result or failure no longer matters.
    task.cancel()
    await asyncio.wait([task])
    if not task.cancelled():
        task.exception()


async def _abort_quietly(producer: TrackedProducer[Token], seconds: float) -> None:
    # The original error is what the caller needs; an abort that fails too (the
    # broker is gone) leaves the transaction to time out or be fenced on restart.
    try:
        await producer.abort(seconds)
    except Exception as error:
        log.debug("abort failed after an error: %s", error)


def checkpoint_fields(checkpoint: RelayCheckpoint) -> tuple[Position, Position, int, int]:
    return (
        checkpoint.events,
        checkpoint.outbox,
        checkpoint.published_events,
        checkpoint.published_outbox,
    )


def _carry_trace(headers: list[tuple[str, bytes]]) -> None:
    """Replace the message's trace context (copied from the event) with the current span's."""
    context = current_trace_context()
    if TRACEPARENT not in context:
        return
    # Both the plain W3C header and the CloudEvents extension (ce_traceparent): a
    # consumer reading either continues from this span.
    names = {*context, *(f"ce_{k}" for k in context)}
    headers[:] = [(k, v) for k, v in headers if k not in names]
    for key, value in context.items():
        headers.append((key, value.encode()))
        headers.append((f"ce_{key}", value.encode()))


def _traced_row(encoder: Any, row: RawEvent) -> KafkaRecord:
    """Encode ``row`` in a span that is a child of the append's; the message carries
    this span on, so a consumer continues the trace from here."""
    with trace_span(
        "chronik.relay.publish",
        {"chronik.stream_id": row.stream_id, "chronik.position": str(row.position)},
        parents=_metadata(row),
    ) as span:
        record: KafkaRecord = encoder.row(row)
        if span is not None:
            _carry_trace(record.headers)
    return record


def _metadata(row: RawEvent) -> Iterator[dict[str, Any]]:
    # Lazy: parsed only when a tracer wants the parent (the relay keeps JSON as bytes).
    yield json.loads(row.metadata)
