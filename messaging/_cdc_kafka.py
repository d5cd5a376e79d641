"""CDC to Kafka: change events produced as Debezium messages, the slot moved after delivery.

One loop: read whole transactions from the slot, hand every message to the
relay's ``TrackedProducer``, wait until every delivery report is in, and only
then confirm the slot at the end of the last transaction.  A failed or missing
report raises (``PublishError``) before the confirm, so the slot keeps those
changes and the next run produces them again: at-least-once, duplicates
possible after a crash, nothing lost.  A delete's tombstone is produced as a
message with a ``None`` value.

Messages are JSON without schemas (``key.converter`` / ``value.converter``
``JsonConverter`` with ``schemas.enable=false`` in Debezium's terms).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ._cdc_capture import ChangeCapture
from ._cdc_envelope import ChangeEvent
from ._cdc_pgoutput import format_lsn
from ._cloudevents import KafkaRecord
from ._producer import TrackedProducer, producer_config

log = logging.getLogger("chronik.cdc")


def change_record(event: ChangeEvent) -> KafkaRecord:
    """The Kafka message of a change event (a tombstone has no value)."""
    key = None if event.key is None else _json(event.key)
    value = None if event.value is None else _json(event.value)
    return KafkaRecord(event.topic, key, value, [])  # type: ignore[arg-type]


def _json(document: Any) -> bytes:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def _describe(token: int, record: KafkaRecord) -> str:
    return f"the change at LSN {format_lsn(token)}"


def change_producer(
    bootstrap_servers: str, *, max_in_flight: int = 10_000, extra: dict[str, Any] | None = None
) -> TrackedProducer[int]:
    """An idempotent producer whose tokens are the LSNs the slot may move to."""
    config = producer_config(bootstrap_servers, max_in_flight=max_in_flight, extra=extra)
    return TrackedProducer(config, _describe, max_in_flight=max_in_flight, name="cdc")


@dataclass
class CdcProgress:
    """What a run has done so far (for the CLI and the benchmark)."""

    snapshot_rows: int = 0
    changes: int = 0
    confirmed_lsn: int | None = None
    batches: int = 0
    listeners: list[Callable[[CdcProgress], None]] = field(default_factory=list)


async def publish_changes(
    capture: ChangeCapture,
    producer: TrackedProducer[int],
    *,
    poll_interval: float = 0.2,
    stop: asyncio.Event | None = None,
    progress: CdcProgress | None = None,
    until_idle: bool = False,
) -> CdcProgress:
    """Snapshot (when due), then stream to Kafka until ``stop`` is set.

    ``until_idle``: return once a read finds nothing new (a catch-up run).
    """
    progress = progress or CdcProgress()
    stop = stop or asyncio.Event()
    async for page in capture.snapshot():
        for event in page:
            await producer.send(change_record(event), event.commit_lsn)
        progress.snapshot_rows += len(page)
    if capture.snapshot_due:
        await producer.drain()
        await capture.snapshot_delivered()
        log.info("CDC snapshot delivered: %d rows", progress.snapshot_rows)
    while not stop.is_set():
        batch = await capture.read()
        for event in batch.events:
            await producer.send(change_record(event), event.commit_lsn)
        if batch.events:
            # Every report in (or an error raised) before the slot moves.
            await producer.drain()
            progress.changes += len(batch.events)
        if batch.confirm_lsn is not None:
            await capture.confirm(batch.confirm_lsn)
            progress.confirmed_lsn = batch.confirm_lsn
        progress.batches += 1
        for listener in progress.listeners:
            listener(progress)
        if not batch.messages and until_idle:
            break
        if not batch.messages:
            # The SQL slot functions cannot wait for WAL: poll, but wake on stop.
            try:
                async with asyncio.timeout(poll_interval):
                    await stop.wait()
            except TimeoutError:
                pass
    return progress
