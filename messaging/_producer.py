"""A Kafka producer that knows which messages are safe: delivery-report tracking.

``TrackedProducer`` wraps confluent-kafka's producer for anything that must
advance a checkpoint only over delivered messages (the relay; CDC reuses it):

- every ``send`` carries a *token* (a feed position, a WAL LSN...);
  ``send_batch`` carries one token for a whole batch.  ``delivered()`` returns
  the last token whose messages **and every message sent before them** have a
  successful delivery report.  A failed report blocks the watermark there and
  ``delivered()`` raises a ``PublishError`` naming the message, so nothing after
  a lost message is ever reported safe;
- the number of messages in flight is bounded (``max_in_flight``): sending
  waits for delivery reports instead of letting librdkafka's queue grow, so a
  slow or absent broker costs waiting, never memory;
- the producer is idempotent (``enable.idempotence``, ``acks=all``) and, given a
  ``transactional_id``, transactional (``begin``/``commit``/``abort``).

Why batches: the relay publishes thousands of events per second and checkpoints
once per page.  One token per message cost a closure, a slot and a deque entry
per message, and a watermark walk over all of them: a fifth of the relay's
time.  A batch is one ``_Batch`` whose bound ``report`` method is the delivery
callback of all its messages and only counts; the watermark moves a batch at a
time, which is all a checkpoint per page needs.

Threads: librdkafka calls the delivery callback inside ``poll``/``flush``.
Those run either on the event loop's thread or in a worker thread while the
loop awaits it; a callback only bumps its batch's counter or stores the first
failure (the GIL makes each of those atomic), and the watermark is computed on
the loop's thread.  So no lock is needed.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Generic, TypeVar

from ._cloudevents import KafkaRecord
from ._errors import (
    BrokerUnavailableError,
    MessagingConfigError,
    PublishError,
    RelayFencedError,
)

T = TypeVar("T")

#: librdkafka's own log (connection failures, retries) goes here instead of
#: stderr; it is served by ``poll``, which the producer calls all the time.
kafka_log = logging.getLogger("chronik.messaging.kafka")

_UNAVAILABLE_CODES = frozenset(
    {"_MSG_TIMED_OUT", "_TRANSPORT", "_ALL_BROKERS_DOWN", "_TIMED_OUT", "_RESOLVE"}
)


def producer_config(
    bootstrap_servers: str,
    *,
    transactional_id: str | None = None,
    delivery_timeout: float = 30.0,
    max_in_flight: int = 10_000,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The configuration every chronik producer starts from (``extra`` wins)."""
    if (
        isinstance(delivery_timeout, bool)
        or not isinstance(delivery_timeout, int | float)
        or not delivery_timeout > 0  # also refuses NaN
    ):
        # librdkafka reads message.timeout.ms=0 as "never": an unreachable broker
        # would then never produce the failed report that tells us about it.
        raise MessagingConfigError(
            "producer", f"delivery_timeout must be seconds > 0, not {delivery_timeout!r}"
        )
    config: dict[str, Any] = {
        "bootstrap.servers": bootstrap_servers,
        # No duplicates from the producer's own retries, no reordering within a
        # partition, and a message counts only once all in-sync replicas have it.
        "enable.idempotence": True,
        "acks": "all",
        # A delivery report (success or _MSG_TIMED_OUT) always arrives within
        # this: it is how an unreachable broker becomes an error we can report.
        "message.timeout.ms": int(delivery_timeout * 1000),
        # librdkafka's queue holds at most what we allow in flight (plus slack
        # for the checkpoint record of a transaction).
        "queue.buffering.max.messages": max_in_flight + 16,
        "linger.ms": 5,
        "logger": kafka_log,
    }
    if transactional_id is not None:
        config["transactional.id"] = transactional_id
        # The broker aborts a transaction left open this long (a killed relay's,
        # unless its successor fences it first).  librdkafka wants it to cover
        # message.timeout.ms.
        config["transaction.timeout.ms"] = int(delivery_timeout * 1000) + 5000
    config.update(extra or {})
    return config


def is_unavailable(error: Any) -> bool:
    """Whether a ``KafkaError`` means the broker is unreachable or too slow."""
    name = error.name() if hasattr(error, "name") else ""
    return name in _UNAVAILABLE_CODES or bool(getattr(error, "retriable", lambda: False)())


class _Batch:
    """Messages sent under one token: counts their delivery reports."""

    __slots__ = ("delivered", "failed", "failure", "first", "refused", "sealed", "sent", "token")

    def __init__(self, token: Any) -> None:
        self.token = token
        #: The first message, to name the batch when no report comes at all.
        self.first: KafkaRecord | None = None
        self.sent = 0
        self.delivered = 0
        self.failed = 0
        #: No more messages will join (until then, "all delivered" means nothing).
        self.sealed = False
        #: The first failed report: (KafkaError, the message as a KafkaRecord).
        self.failure: tuple[Any, KafkaRecord] | None = None
        #: Why sending the batch stopped half way (raised then; raised again after).
        self.refused: BaseException | None = None

    def report(self, error: Any, message: Any) -> None:
        # librdkafka's delivery callback, once per message: keep it this small.
        if error is None:
            self.delivered += 1
            return
        self.failed += 1
        if self.failure is None:
            self.failure = (error, _as_record(message))


def _as_record(message: Any) -> KafkaRecord:
    return KafkaRecord(message.topic(), message.key(), message.value(), message.headers() or [])


class TrackedProducer(Generic[T]):
    """``send`` with a token; ``delivered()`` is the last token safe to checkpoint.

    ``describe(token, record)`` names a message in errors (the event and topic).
    """

    def __init__(
        self,
        config: Mapping[str, Any],
        describe: Callable[[T, KafkaRecord], str],
        *,
        max_in_flight: int = 10_000,
        name: str = "producer",
    ) -> None:
        from confluent_kafka import Producer

        if (
            isinstance(max_in_flight, bool)
            or not isinstance(max_in_flight, int)
            or max_in_flight < 1
        ):
            raise MessagingConfigError(name, f"max_in_flight must be >= 1, not {max_in_flight!r}")
        self.name = name
        self.max_in_flight = max_in_flight
        self.delivery_timeout = float(config.get("message.timeout.ms", 300_000)) / 1000
        self._describe = describe
        try:
            self._producer: Any = Producer(dict(config))
        except Exception as error:
            # librdkafka refuses an unknown or malformed property here; its text names
            # the property, never a value (so no password).  Raised as a configuration
            # error: the relay must not retry it as an outage.
            if type(error).__name__ != "KafkaException":
                raise
            raise MessagingConfigError(
                name, f"the Kafka producer refused its configuration: {error.args[0].str()}"
            ) from None
        # Sent, not yet passed by the watermark, in send order.
        self._pending: collections.deque[_Batch] = collections.deque()
        self._delivered: T | None = None
        self.sent = 0
        self.acknowledged = 0

    # -- sending --------------------------------------------------------------

    async def send(self, record: KafkaRecord, token: T, *, partition: int | None = None) -> None:
        """Hand one message to librdkafka; waits while ``max_in_flight`` are unreported.

        A message refused before queueing (too large, a bad topic) raises
        ``PublishError`` and is not tracked: the watermark can still reach the
        message before it.
        """
        batch = _Batch(token)
        await self._produce(batch, record, partition)
        batch.sealed = True
        self._pending.append(batch)
        self.sent += 1

    async def send_batch(self, records: Iterable[KafkaRecord], token: T) -> None:
        """Hand ``records`` to librdkafka under one token, valid once all are delivered.

        If one is refused before queueing, ``PublishError`` names it and the batch
        blocks the watermark for good (the ones before it may be on their way):
        this producer can then no longer report anything past it.
        """
        batch = _Batch(token)
        self._pending.append(batch)
        producer = self._producer
        produce, report, limit = producer.produce, batch.report, self.max_in_flight
        try:
            for record in records:
                # The common case inline (no coroutine per message); _produce
                # waits for room and turns refusals into errors.
                if len(producer) < limit:
                    try:
                        produce(
                            record.topic,
                            record.value,
                            record.key,
                            headers=record.headers,
                            on_delivery=report,
                        )
                    except Exception:
                        await self._produce(batch, record, None)
                    else:
                        if batch.first is None:
                            batch.first = record
                        batch.sent += 1
                else:
                    await self._produce(batch, record, None)
        except BaseException as error:
            batch.refused = error
            raise
        finally:
            batch.sealed = True
            self.sent += batch.sent
            if not batch.sent and batch.refused is None:
                self._pending.remove(batch)  # nothing to wait for

    async def _produce(self, batch: _Batch, record: KafkaRecord, partition: int | None) -> None:
        producer = self._producer
        if self._full():
            await self._make_room()
        while True:
            try:
                if partition is None:
                    producer.produce(
                        record.topic,
                        record.value,
                        record.key,
                        headers=record.headers,
                        on_delivery=batch.report,
                    )
                else:
                    producer.produce(
                        record.topic,
                        record.value,
                        record.key,
                        partition=partition,
                        headers=record.headers,
                        on_delivery=batch.report,
                    )
                break
            except BufferError:
                # librdkafka's own queue is full (its limit sits above ours only
                # by the slack): wait for reports, as for max_in_flight.
                await asyncio.to_thread(producer.poll, 0.1)
            except Exception as error:
                # Refused before queueing (too large, bad topic name): nothing sent.
                reason = _reason(error)
                raise PublishError(
                    self._describe(batch.token, record), record.topic, reason
                ) from error
        if batch.first is None:
            batch.first = record
        batch.sent += 1

    def poll(self) -> None:
        """Serve delivery reports that have arrived (never blocks)."""
        self._producer.poll(0)

    def _full(self) -> bool:
        # len(producer): messages librdkafka holds, reports not yet served
        # included.  Batches not passed yet count too: a message whose failure was
        # reported holds its batch (and the watermark) here, and one-message sends
        # must meet it rather than pile up behind it.
        limit = self.max_in_flight
        waiting = len(self._pending)
        if waiting and not self._pending[-1].sealed:
            waiting -= 1  # the batch being sent: its messages are in len(producer)
        return len(self._producer) >= limit or waiting >= limit

    async def _make_room(self) -> None:
        deadline = time.monotonic() + self.delivery_timeout + 5
        while self._full():
            await asyncio.to_thread(self._producer.poll, 0.05)
            self._advance()
            if time.monotonic() > deadline:
                self._raise_unavailable("no delivery report in time")

    # -- the watermark --------------------------------------------------------

    @property
    def in_flight(self) -> int:
        """Messages sent and not reported yet."""
        return sum(batch.sent - batch.delivered - batch.failed for batch in self._pending)

    def delivered(self) -> T | None:
        """The last token with it and all earlier messages delivered (None: none yet).

        Raises ``PublishError`` (``BrokerUnavailableError`` for timeouts and lost
        brokers) when the oldest unpassed batch has a failed message: it blocks
        the watermark.
        """
        self._producer.poll(0)
        self._advance()
        return self._delivered

    def _advance(self) -> None:
        pending = self._pending
        while pending:
            batch = pending[0]
            if batch.refused is not None:
                raise batch.refused
            if batch.failure is not None:
                error, record = batch.failure
                error_type = BrokerUnavailableError if is_unavailable(error) else PublishError
                raise error_type(self._describe(batch.token, record), record.topic, _reason(error))
            if not batch.sealed or batch.delivered < batch.sent:
                return
            self._delivered = batch.token
            self.acknowledged += batch.sent
            pending.popleft()

    async def drain(self, seconds: float | None = None) -> T | None:
        """Wait until every sent message has a report; return ``delivered()``."""
        limit = self.delivery_timeout + 5 if seconds is None else seconds
        deadline = time.monotonic() + limit
        while self._pending:
            self._advance()
            if not self._pending:
                break
            if time.monotonic() > deadline:
                self._raise_unavailable(f"no delivery report within {limit:g} s")
            await asyncio.to_thread(self._producer.flush, 0.1)
        return self.delivered()

    def _raise_unavailable(self, reason: str) -> None:
        batch = self._pending[0]
        record = batch.first or KafkaRecord("?", None, b"", [])
        raise BrokerUnavailableError(self._describe(batch.token, record), record.topic, reason)

    # -- transactions ---------------------------------------------------------

    async def init_transactions(self, seconds: float) -> None:
        """Register the transactional id; fences (and aborts) any older instance's open
        transaction."""
        await self._transactional("init_transactions", seconds)

    def begin(self) -> None:
        self._producer.begin_transaction()

    async def commit(self, seconds: float) -> None:
        await self._transactional("commit_transaction", seconds)

    async def abort(self, seconds: float) -> None:
        """Abort the open transaction and forget its messages."""
        try:
            await self._transactional("abort_transaction", seconds)
        finally:
            self._pending.clear()

    async def _transactional(self, call: str, seconds: float) -> None:
        from confluent_kafka import KafkaException

        method = getattr(self._producer, call)
        try:
            await asyncio.to_thread(method, seconds)
        except KafkaException as failure:
            error = failure.args[0]
            if error.fatal() or error.name() in ("_FENCED", "PRODUCER_FENCED"):
                raise RelayFencedError(self.name, _reason(error)) from failure
            raise
        if call == "commit_transaction":
            self._advance()

    # -- lifecycle ------------------------------------------------------------

    def metadata_topics(self, timeout: float) -> set[str]:
        return set(self._producer.list_topics(timeout=timeout).topics)

    def close(self) -> None:
        """Drop the client without waiting (unreported messages stay unreported)."""
        producer, self._producer = self._producer, None
        self._pending.clear()
        del producer


def _reason(error: Any) -> str:
    if hasattr(error, "args") and error.args and hasattr(error.args[0], "str"):
        error = error.args[0]
    if hasattr(error, "str") and callable(error.str):
        name = error.name() if hasattr(error, "name") else ""
        return f"{error.str()} ({name})" if name else str(error.str())
    return str(error) or type(error).__name__
