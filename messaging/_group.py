"""The consumer-group loop every chronik consumer shares.

One loop: fetch a batch, hand it to a *processor* (a projection or a handler),
commit the offsets the processor finished, fetch again.  Why this makes
rebalances safe: librdkafka runs the assign/revoke callbacks only inside
``consume()`` (and ``close()``), and the loop never calls them while a batch is
being processed.  So a revocation always finds the batch at hand finished and its
offsets committed: in-flight work is finished before partitions go, never lost
and never handed to the next owner half-done.  With the cooperative-sticky
assignor only the partitions that move are revoked; the others keep flowing.

A processor may choose where a partition starts (a read model that keeps its own
offsets, written atomically with the view, starts there instead of at the
group's committed offset), and messages of retry topics wait, paused, until the
time their header names.

Where a partition starts, and why never silently past history: a partition the
group has no offset for starts at the oldest retained message (``start=
"earliest"``, the default; "latest" for a handler that only wants new events).
An offset to resume from that the broker no longer has (retention deleted it
while the group was away or behind) is a *gap*: librdkafka's own reset would jump
past it without a word, so the consumers run with ``auto.offset.reset=error`` and
the loop reports each gap (an ERROR log, ``ConsumerStats.gaps``, the
``on_offset_gap`` hook for metrics), then stops that partition (``offset_gap=
"stop"``, the default: its lag and the lost count show in ``consumers status``
until someone decides) or resumes at the oldest retained message (``"resume"``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import confluent_kafka
from confluent_kafka import TopicPartition

from ._consumer_checks import check_group, check_processor, check_topics
from ._errors import MessagingConfigError
from ._inbound import NOT_BEFORE, header_map
from ._numbers import check_count, check_seconds

log = logging.getLogger("chronik.messaging")

Partition = tuple[str, int]


class Processor(Protocol):
    """What the loop drives: a projection or a handler consumer."""

    name: str

    async def starting_offsets(self, partitions: Sequence[Partition]) -> dict[Partition, int]:
        """Offsets to start newly assigned partitions at (absent: the group's commit)."""
        ...

    async def revoked(self, partitions: Sequence[Partition]) -> None:
        """Partitions this member no longer owns (forget their state)."""
        ...

    async def process(self, messages: Sequence[confluent_kafka.Message]) -> None:
        """Handle a batch (messages in partition order); return once it is committed."""
        ...


def keeps_offsets(processor: Processor) -> bool:
    """Whether ``processor`` keeps its own offsets, committed with its work (a read
    model's per-partition offsets): then the group's commit is only for lag reports."""
    return bool(getattr(processor, "keeps_offsets", False))


@dataclass(frozen=True, slots=True)
class OffsetGap:
    """A partition whose offset to resume from is gone from the broker (retention)."""

    group: str
    topic: str
    partition: int
    #: The offset the group (or the read model) would have resumed from.
    offset: int
    low_watermark: int
    high_watermark: int

    @property
    def lost(self) -> int:
        """Messages deleted before the group processed them (0 if the offset is past the end)."""
        return max(0, self.low_watermark - self.offset)

    def __str__(self) -> str:
        return (
            f"consumer group {self.group}: {self.topic}[{self.partition}] offset {self.offset} "
            f"is no longer on the broker (it holds {self.low_watermark} to "
            f"{self.high_watermark}); {self.lost} message(s) were deleted unprocessed"
        )


# librdkafka settings the consumers rely on, refused in ``ConsumerOptions.config``
# (which merges over them): each would break a guarantee without a word.
_OWNED_SETTINGS = {
    "bootstrap.servers": "the consumer's bootstrap argument",
    "group.id": "the consumer's group argument",
    "enable.auto.commit": "offsets are committed after the effect, or a crash loses messages",
    "enable.auto.offset.store": "offsets are stored after the effect",
    "auto.offset.reset": "use start= and offset_gap=; librdkafka's reset skips lost "
    "messages silently",
    "isolation.level": "read_committed, or an exactly-once relay's aborted messages are read",
    "partition.assignment.strategy": "the consumers assign partitions incrementally "
    "(cooperative-sticky)",
    "session.timeout.ms": "use session_timeout_ms=",
    "heartbeat.interval.ms": "use heartbeat_interval_ms=",
}


@dataclass(frozen=True, slots=True)
class ConsumerOptions:
    """Tuning of a consumer; the defaults suit a service."""

    batch_size: int = 500
    poll_timeout: float = 0.5
    session_timeout_ms: int = 10_000
    heartbeat_interval_ms: int = 1_000
    #: Extra librdkafka settings (security, client id, ...), also given to the side
    #: producer and admin client.  The settings the consumers rely on (group, offset
    #: commits and resets, isolation, assignment, timeouts) are refused here.
    config: dict[str, Any] = field(default_factory=dict)
    #: Where a partition without a committed offset starts.
    start: Literal["earliest", "latest"] = "earliest"
    #: A gap (the offset to resume from was deleted): stop the partition or resume
    #: at the oldest retained message; reported either way.
    offset_gap: Literal["stop", "resume"] = "stop"
    #: Called with each gap (metrics, alerts); in the consumer's loop, keep it quick.
    on_offset_gap: Callable[[OffsetGap], None] | None = None

    def __post_init__(self) -> None:
        subject = "consumer options"
        check_count(self.batch_size, "batch_size", subject)
        check_seconds(self.poll_timeout, "poll_timeout", subject)
        check_count(self.session_timeout_ms, "session_timeout_ms", subject)
        check_count(self.heartbeat_interval_ms, "heartbeat_interval_ms", subject)
        if self.heartbeat_interval_ms >= self.session_timeout_ms:
            # A member that heartbeats less often than its session lasts is evicted
            # between two heartbeats: the group would rebalance forever.
            raise MessagingConfigError(
                subject,
                f"heartbeat_interval_ms must be below session_timeout_ms "
                f"({self.session_timeout_ms}), not {self.heartbeat_interval_ms!r}",
            )
        if not isinstance(self.config, Mapping) or not all(isinstance(k, str) for k in self.config):
            raise MessagingConfigError(
                subject, f"config must map librdkafka setting names to values, not {self.config!r}"
            )
        owned = sorted(set(self.config) & _OWNED_SETTINGS.keys())
        if owned:
            raise MessagingConfigError(
                subject,
                "config must not set "
                + "; ".join(f"{name!r} ({_OWNED_SETTINGS[name]})" for name in owned),
            )
        if self.start not in ("earliest", "latest"):
            raise MessagingConfigError(
                subject, f"start must be 'earliest' or 'latest', not {self.start!r}"
            )
        if self.offset_gap not in ("stop", "resume"):
            raise MessagingConfigError(
                subject, f"offset_gap must be 'stop' or 'resume', not {self.offset_gap!r}"
            )
        if self.on_offset_gap is not None and not callable(self.on_offset_gap):
            raise MessagingConfigError(
                subject, f"on_offset_gap must be callable or None, not {self.on_offset_gap!r}"
            )


@dataclass(slots=True)
class ConsumerStats:
    """What one member did, for in-process status and tests."""

    batches: int = 0
    messages: int = 0
    assigned: set[Partition] = field(default_factory=set)
    rebalances: int = 0
    #: The gaps met, the latest per partition.
    gaps: dict[Partition, OffsetGap] = field(default_factory=dict)


def consumer_config(bootstrap: str, group: str, options: ConsumerOptions) -> dict[str, Any]:
    return {
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        # Not a policy: the loop applies ``options.start`` and reports gaps itself.
        "auto.offset.reset": "error",
        "partition.assignment.strategy": "cooperative-sticky",
        "session.timeout.ms": options.session_timeout_ms,
        "heartbeat.interval.ms": options.heartbeat_interval_ms,
        "topic.metadata.refresh.interval.ms": 1000,
        **options.config,
    }


class GroupConsumer:
    """A member of consumer group ``group`` reading ``topics`` into ``processor``."""

    def __init__(
        self,
        bootstrap: str,
        group: str,
        topics: Sequence[str],
        processor: Processor,
        options: ConsumerOptions | None = None,
    ) -> None:
        self.group = check_group(group)
        # Retry topics are read here (``consume`` adds them); replays read DLQs.
        self.topics = check_topics(topics, f"consumer group {group!r}", side_topics=True)
        check_processor(processor, f"consumer group {group!r}")
        if options is not None and not isinstance(options, ConsumerOptions):
            raise MessagingConfigError(
                f"consumer group {group!r}", f"options must be ConsumerOptions, not {options!r}"
            )
        self.processor = processor
        self.options = options or ConsumerOptions()
        self.stats = ConsumerStats()
        self._config = consumer_config(bootstrap, group, self.options)
        self._paused: dict[Partition, float] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._consumer: confluent_kafka.Consumer | None = None
        # A processor that keeps its own offsets resumes from them, never from the
        # group's commit, so that commit need not hold up the next batch: it is sent
        # without waiting (a broker round trip per batch, a tenth of a projection's
        # time), and the latest offsets are committed and waited for on leaving.
        self._commit_async = keeps_offsets(processor)
        self._unconfirmed: dict[Partition, int] = {}

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set, then leave the group cleanly."""
        self._loop = asyncio.get_running_loop()
        consumer = confluent_kafka.Consumer(self._config)
        self._consumer = consumer
        consumer.subscribe(
            self.topics, on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost
        )
        try:
            while not stop.is_set():
                self._resume_due(consumer)
                messages = await asyncio.to_thread(
                    consumer.consume, self.options.batch_size, self.options.poll_timeout
                )
                resets: list[confluent_kafka.Message] = []
                batch = self._usable(consumer, messages, resets)
                if resets:
                    await asyncio.to_thread(self._offset_resets, consumer, resets)
                if batch:
                    await self.processor.process(batch)
                    self._commit(consumer, batch)
        finally:
            if self._unconfirmed:
                await asyncio.to_thread(self._confirm, consumer)
            # close() revokes the assignment (no batch is in flight here) and leaves
            # the group, so the others take over without waiting for a session timeout.
            await asyncio.to_thread(consumer.close)
            self._consumer = None

    # -- rebalance callbacks (run inside consume()/close(), in its thread) -------

    def _on_assign(self, consumer: confluent_kafka.Consumer, parts: list[TopicPartition]) -> None:
        keys = [(p.topic, p.partition) for p in parts]
        assert self._loop is not None
        starts = asyncio.run_coroutine_threadsafe(
            self.processor.starting_offsets(keys), self._loop
        ).result()
        chosen = [
            TopicPartition(p.topic, p.partition, starts[(p.topic, p.partition)])
            if (p.topic, p.partition) in starts
            else p
            for p in parts
        ]
        consumer.incremental_assign(chosen)
        self.stats.assigned.update(keys)
        self.stats.rebalances += 1
        log.info("consumer %s: assigned %s", self.group, _names(keys))

    def _on_revoke(self, consumer: confluent_kafka.Consumer, parts: list[TopicPartition]) -> None:
        keys = [(p.topic, p.partition) for p in parts]
        assert self._loop is not None
        asyncio.run_coroutine_threadsafe(self.processor.revoked(keys), self._loop).result()
        for key in keys:
            self.stats.assigned.discard(key)
            self._paused.pop(key, None)
        self.stats.rebalances += 1
        log.info("consumer %s: revoked %s", self.group, _names(keys))

    def _on_lost(self, consumer: confluent_kafka.Consumer, parts: list[TopicPartition]) -> None:
        # Lost (session expired) is a revocation without the chance to commit; the
        # read model's fence keeps a late writer from applying anything twice.
        self._on_revoke(consumer, parts)

    # -- batches -----------------------------------------------------------------

    def _usable(
        self,
        consumer: confluent_kafka.Consumer,
        messages: list[confluent_kafka.Message],
        resets: list[confluent_kafka.Message],
    ) -> list[confluent_kafka.Message]:
        """Messages of partitions still assigned and due; errors raised or logged, and
        offset resets (no committed offset, or a gap) put in ``resets``."""
        now = time.time()
        batch: list[confluent_kafka.Message] = []
        held: set[Partition] = set()
        for message in messages:
            error = message.error()
            if error is not None:
                if error.code() == confluent_kafka.KafkaError._PARTITION_EOF:
                    continue
                if error.code() == confluent_kafka.KafkaError._AUTO_OFFSET_RESET:
                    resets.append(message)
                    continue
                if error.fatal():
                    raise confluent_kafka.KafkaException(error)
                log.warning("consumer %s: %s", self.group, error)
                continue
            key = (message.topic() or "", message.partition() or 0)
            if key not in self.stats.assigned or key in held:
                continue
            # Only copies on retry topics wait (the header check is per message).
            due = header_map(message.headers()).get(NOT_BEFORE) if ".retry." in key[0] else None
            if due is not None and float(due) > now:
                # Wait without blocking the others: go back to this message, pause
                # its partition and resume when it is due.
                held.add(key)
                part = TopicPartition(key[0], key[1], message.offset() or 0)
                consumer.pause([part])
                consumer.seek(part)
                self._paused[key] = float(due)
                continue
            batch.append(message)
        return batch

    def _offset_resets(
        self, consumer: confluent_kafka.Consumer, resets: list[confluent_kafka.Message]
    ) -> None:
        """Start partitions without an offset per ``options.start``; report gaps."""
        for message in resets:
            topic, partition = message.topic() or "", message.partition() or 0
            offset = message.offset()
            if offset is None or offset < 0:
                # The group never committed here: the documented start, not a gap.
                start = (
                    confluent_kafka.OFFSET_BEGINNING
                    if self.options.start == "earliest"
                    else confluent_kafka.OFFSET_END
                )
                _restart(consumer, topic, partition, start)
                continue
            part = TopicPartition(topic, partition)
            low, high = consumer.get_watermark_offsets(part, timeout=10, cached=False)
            gap = OffsetGap(self.group, topic, partition, offset, low, high)
            self.stats.gaps[(topic, partition)] = gap
            resume = self.options.offset_gap == "resume"
            log.error(
                "%s; %s", gap, "resuming at the oldest retained message" if resume else
                "the partition is stopped (offset_gap='resume' resumes past the gap; "
                "a rebuild restores what was lost)",
            )  # fmt: skip
            if self.options.on_offset_gap is not None:
                try:
                    self.options.on_offset_gap(gap)
                except Exception:
                    log.exception("the on_offset_gap hook failed for %s[%s]", topic, partition)
            if resume:
                _restart(consumer, topic, partition, low)

    def _resume_due(self, consumer: confluent_kafka.Consumer) -> None:
        now = time.time()
        due = [key for key, until in self._paused.items() if until <= now]
        if due:
            consumer.resume([TopicPartition(t, p) for t, p in due])
            for key in due:
                del self._paused[key]

    def _commit(
        self, consumer: confluent_kafka.Consumer, batch: list[confluent_kafka.Message]
    ) -> None:
        last: dict[Partition, int] = {}
        for message in batch:
            key = (message.topic() or "", message.partition() or 0)
            last[key] = max(last.get(key, -1), message.offset() or 0)
        offsets = [TopicPartition(t, p, o + 1) for (t, p), o in last.items()]
        try:
            if self._commit_async:
                consumer.commit(offsets=offsets, asynchronous=True)
                self._unconfirmed.update(last)
            else:
                consumer.commit(offsets=offsets, asynchronous=False)
        except confluent_kafka.KafkaException as error:
            # The processor committed already (a read model holds its offsets, a
            # handler's effects are done): a failed group commit means redelivery,
            # which the processors treat as a no-op.
            log.warning("consumer %s: offset commit failed: %s", self.group, error)
        self.stats.batches += 1
        self.stats.messages += len(batch)

    def _confirm(self, consumer: confluent_kafka.Consumer) -> None:
        """Commit, and wait for, the latest offsets of the partitions still owned."""
        owned = [
            TopicPartition(t, p, o + 1)
            for (t, p), o in self._unconfirmed.items()
            if (t, p) in self.stats.assigned
        ]
        self._unconfirmed.clear()
        if not owned:
            return
        try:
            consumer.commit(offsets=owned, asynchronous=False)
        except confluent_kafka.KafkaException as error:
            log.warning("consumer %s: final offset commit failed: %s", self.group, error)


def _restart(consumer: confluent_kafka.Consumer, topic: str, partition: int, offset: int) -> None:
    # A partition whose reset failed is in an error state that seek() refuses;
    # assigning it afresh at the offset starts its fetcher again.
    consumer.incremental_unassign([TopicPartition(topic, partition)])
    consumer.incremental_assign([TopicPartition(topic, partition, offset)])


def _names(keys: Sequence[Partition]) -> str:
    return ", ".join(f"{t}[{p}]" for t, p in sorted(keys)) or "(none)"
