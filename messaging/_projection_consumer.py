"""A projection fed by a Kafka consumer group, into a Redis or MongoDB read model.

The same ``Projection`` (handlers, version, codec with the app's upcasters) that
the runner feeds from the event store, fed instead from topics by a group of
processes.  Why a processor of its own rather than an ``EventSource`` for the
runner: the runner fences each batch on *one* checkpoint per slot, but in a
group several members write one slot at once, each for its own partitions, so
the checkpoint must be one offset per (topic, partition) (``RedisOffsets``,
``MongoOffsets``).  Everything else is the runner's: the slot layout (readers use
the read model's ``view`` and the shipped query functions unchanged), the
handlers' writes, the
atomic commit with the checkpoint, and nothing dropped: a failing message goes on
to a retry topic or the dead-letter topic before its partition moves past it.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Sequence
from typing import Any

import confluent_kafka

from eventstore import EventCodec, RecordedEvent, UnknownEventTypeError, trace_span
from projections import (
    MongoReadModel,
    Projection,
    ProjectionSupersededError,
    RedisReadModel,
)

from ._apply import Failure, decode_message, origin_of_message, with_retries
from ._consume_errors import BadMessageError, ConsumerError, OffsetConflictError
from ._consumer_checks import check_codec, check_instance
from ._errors import MessagingConfigError
from ._inbound import Inbound, trace_headers
from ._mongo_offsets import MongoOffsets, mongo_setup_lock
from ._redis_offsets import PartitionMove, RedisOffsets, offset_field
from ._routing import DeliveryPolicy, Router

log = logging.getLogger("chronik.messaging")

Partition = tuple[str, int]

#: Conflicts in a row before a batch is given up (the loop then restarts).
_MAX_CONFLICTS = 5


class KafkaProjection:
    """A consumer-group processor that keeps ``projection`` up to date in ``read_model``."""

    #: Its offsets live in the read model, committed with the view: the group's
    #: offset commit is only for lag reports (see ``GroupConsumer``).
    keeps_offsets = True

    def __init__(
        self,
        projection: Projection[Any],
        read_model: RedisReadModel | MongoReadModel,
        *,
        policy: DeliveryPolicy | None = None,
        router: Router | None = None,
        known: EventCodec | None = None,
    ) -> None:
        """``known``: the app's codec; a type it has no class for goes to the DLQ (without
        it, types the projection does not handle are skipped, known or not)."""
        if not isinstance(projection, Projection):
            raise MessagingConfigError(
                "Kafka projection", f"projection must be a Projection, not {projection!r}"
            )
        subject = f"Kafka projection {projection.name!r}"
        if policy is not None:
            check_instance(policy, DeliveryPolicy, "policy", subject)
        if known is not None:
            check_codec(known, "known", subject)
            # A handler of a type the app does not know would never run: each such
            # message is parked as unknown (see ``_check_known``) instead.
            unknown = sorted(projection.handled_types - set(known.event_classes))
            if unknown:
                raise MessagingConfigError(
                    subject,
                    f"it handles event type(s) {', '.join(map(repr, unknown))} that the "
                    "app's codec (known=) has no class for",
                )
        if not isinstance(read_model, RedisReadModel | MongoReadModel):
            raise ConsumerError(
                projection.name,
                f"a Kafka-fed projection writes to Redis or MongoDB, not {read_model!r}",
            )
        if projection.writes_type is not read_model.writes_type:
            raise ConsumerError(
                projection.name,
                f"its handlers write {projection.writes_type.__name__}, but the read model "
                f"takes {read_model.writes_type.__name__}",
            )
        self.projection = projection
        self.read_model = read_model
        self.policy = policy or DeliveryPolicy(attempts=projection.retry.attempts)
        self.router = router
        self.name = projection.name
        self.slot: str | None = None
        #: Whether ``slot`` is a shadow build of a new version, not yet live.
        self.building = False
        self.applied = 0
        self._offsets: RedisOffsets | MongoOffsets | None = None
        self._next: dict[str, int] = {}
        self._known = known
        self._known_types = frozenset(known.event_classes) if known is not None else frozenset()

    # -- setup ---------------------------------------------------------------

    async def setup(self) -> str:
        """Find (or create, once for the whole group) the slot to write.

        The first version of a projection goes live at once (there is nothing to
        replace).  A newer version than the active one is built beside it, in a
        shadow slot with offsets of its own, from the topics' first offsets, and
        swapped in when it has caught up (``_after_commit``): readers keep the old
        version, complete, until then.  An older version than the active one must
        not write (``ProjectionSupersededError``).
        """
        version = self.projection.version
        while True:
            meta = await self.read_model.meta(self.name)
            active = meta.active_slot
            if active is not None and active.version > version:
                raise ProjectionSupersededError(self.name, version, active.version)
            found = meta.current_slot(version)  # the live slot, or a build of this version
            if found is not None:
                self.building = found.slot != meta.active
                return self._use(found.slot)
            async with self._setup_lock() as held:
                if not held:
                    await asyncio.sleep(0.05)
                    continue
                info = await self.read_model.create_slot(self.name, version)
                if meta.active_slot is None:
                    await self.read_model.activate(self.name, info.slot)
                else:
                    log.info(
                        "projection %s: building version %d beside the active version %d; "
                        "it goes live once it has caught up",
                        self.name,
                        version,
                        meta.active_slot.version,
                    )

    @contextlib.asynccontextmanager
    async def _setup_lock(self) -> AsyncIterator[bool]:
        """Whether this member may create the slot (one member of the group does)."""
        if isinstance(self.read_model, MongoReadModel):
            async with mongo_setup_lock(self.read_model, self.name) as held:
                yield held
            return
        client = self.read_model.client
        lock = f"{self.read_model.prefix}_proj:{self.name}:kafka-setup"
        if not await client.set(lock, secrets.token_hex(8), nx=True, ex=30):
            yield False
            return
        try:
            yield True
        finally:
            await client.delete(lock)

    def _offsets_of(self, slot: str) -> RedisOffsets | MongoOffsets:
        if isinstance(self.read_model, MongoReadModel):
            return MongoOffsets(self.read_model, self.name, slot)
        return RedisOffsets(self.read_model, self.name, slot)

    def _use(self, slot: str) -> str:
        self.slot = slot
        self._offsets = self._offsets_of(slot)
        return slot

    @property
    def offsets(self) -> RedisOffsets | MongoOffsets:
        if self._offsets is None:
            raise ConsumerError(self.name, "setup() has not run")
        return self._offsets

    # -- the Processor protocol ----------------------------------------------

    async def starting_offsets(self, partitions: Sequence[Partition]) -> dict[Partition, int]:
        stored = await self.offsets.load(partitions)
        starts: dict[Partition, int] = {}
        for topic, partition in partitions:
            field = offset_field(topic, partition)
            if field in stored:
                self._next[field] = stored[field]
                starts[(topic, partition)] = stored[field]
            else:
                # Nothing of this partition is in the read model yet: all of it is
                # due, from offset 0.  Not "the oldest retained": if retention
                # already deleted the start, the group loop reports that gap instead
                # of building a read model that silently lacks it.  (Retry topics
                # hold copies only; what retention took there was handled before.)
                self._next.pop(field, None)
                starts[(topic, partition)] = (
                    confluent_kafka.OFFSET_BEGINNING if ".retry." in topic else 0
                )
        return starts

    async def revoked(self, partitions: Sequence[Partition]) -> None:
        for topic, partition in partitions:
            self._next.pop(offset_field(topic, partition), None)

    async def process(self, messages: Sequence[confluent_kafka.Message]) -> None:
        # One span per batch: a child of the first message's trace, the others linked.
        with trace_span(
            "chronik.consume.batch",
            {"chronik.consumer": self.name, "chronik.messages": len(messages)},
            parents=trace_headers(messages),
        ):
            await self._process(messages)

    async def _process(self, messages: Sequence[confluent_kafka.Message]) -> None:
        for _ in range(_MAX_CONFLICTS):
            try:
                await self._process_once(messages)
                return
            except OffsetConflictError as conflict:
                # Another member moved this partition (we lost it, or it lost it to
                # us): start from what the read model holds; the rest is a no-op.
                log.info("%s; re-reading the offset", conflict)
                field = offset_field(conflict.topic, conflict.partition)
                stored = await self.offsets.load([(conflict.topic, conflict.partition)])
                if field in stored:
                    self._next[field] = stored[field]
                else:
                    self._next.pop(field, None)
        raise ConsumerError(self.name, f"offsets kept moving under {_MAX_CONFLICTS} attempts")

    # -- one batch -----------------------------------------------------------

    async def _process_once(self, messages: Sequence[confluent_kafka.Message]) -> None:
        assert self.slot is not None
        due, ends = self._due(messages)
        if not due:
            return
        # Redis or Mongo writes, matching the offsets kind (checked in __init__).
        writes: Any = self.read_model.new_writes(self.name, self.slot)
        failures: list[Failure] = []
        guarded: list[tuple[int, str]] = []
        handle = self._handle
        for index, message in enumerate(due):
            try:
                inbound = decode_message(message)
            except BadMessageError as bad:
                # No retry makes it an event: to the dead-letter topic at once.
                failures.append(Failure(message, origin_of_message(message), bad, 1, dead=True))
                continue
            mark = writes.begin_event(index, inbound.event.position)
            # The first attempt runs inline, without a coroutine or the closures of
            # the retry loop: almost every message succeeds at once, and this is
            # the per-message path of every Kafka-fed projection.
            try:
                pending = handle(inbound.event, writes)
                if pending is not None:
                    await pending
            except Exception as error:
                failure = await self._retry(message, inbound, writes, mark, error)
                if failure is not None:
                    failures.append(failure)
                    continue
            if inbound.is_copy:
                # A copy (retry topic, replayed dead letter): at most once by event id.
                guarded.append((index, str(inbound.event.event_id)))
        for failure in failures:
            await self._send(failure)
        next_of = self._next
        moves = [
            PartitionMove(topic, partition, next_of.get(offset_field(topic, partition)), last + 1)
            for (topic, partition), last in ends.items()
        ]
        offsets = self.offsets
        if isinstance(offsets, MongoOffsets):
            # Each document's guard marks name the partition and offset of its event.
            sources = {
                i: (m.topic() or "", m.partition() or 0, m.offset() or 0) for i, m in enumerate(due)
            }
            refused = await offsets.commit(moves, writes, guarded, sources)
        else:
            refused = await offsets.commit(moves, writes, guarded)
        for move in moves:
            next_of[move.field] = move.next
        self.applied += len(due)
        await self._after_commit()
        for index, reason in refused:
            message = due[index]
            await self._send(
                Failure(
                    message,
                    origin_of_message(message),
                    ConsumerError(self.name, f"the read model refused a write: {reason}"),
                    1,
                    dead=True,
                )
            )

    def _due(
        self, messages: Sequence[confluent_kafka.Message]
    ) -> tuple[list[confluent_kafka.Message], dict[Partition, int]]:
        """The messages not applied yet, and the last offset of each partition among them.

        A message below its partition's offset was applied already (a redelivery):
        a no-op.  Batches come in runs of one partition, so the partition's floor is
        looked up once per run, not per message.
        """
        next_of = self._next
        due: list[confluent_kafka.Message] = []
        ends: dict[Partition, int] = {}
        current: Partition | None = None
        floor = 0
        accepted: int | None = None  # the last due offset in the current run
        for m in messages:
            key = (m.topic() or "", m.partition() or 0)
            if key != current:
                if current is not None and accepted is not None:
                    ends[current] = accepted
                current, accepted = key, None
                last = ends.get(key)
                floor = next_of.get(offset_field(*key), -1) if last is None else last + 1
            offset = m.offset() or 0
            if offset >= floor:
                due.append(m)
                floor = offset + 1
                accepted = offset
        if current is not None and accepted is not None:
            ends[current] = accepted
        return due, ends

    async def _after_commit(self) -> None:
        """Swap a shadow build in once it caught up; stop writing once superseded."""
        active = self.offsets.active
        if active == self.slot:
            if self.building:
                self.building = False
                log.info("projection %s: version %d is live", self.name, self.projection.version)
            return
        if not self.building:
            # Another slot went live under this one: a newer version took over.
            # Leaving the group hands the partitions to its members.
            meta = await self.read_model.meta(self.name)
            newest = meta.active_slot.version if meta.active_slot else self.projection.version
            raise ProjectionSupersededError(self.name, self.projection.version, newest)
        if await self._caught_up(active) and await self.read_model.activate(
            self.name, self.offsets.slot
        ):
            self.building = False
            log.info(
                "projection %s: version %d caught up with the live version and replaced it",
                self.name,
                self.projection.version,
            )

    async def _caught_up(self, active: str) -> bool:
        """Whether this build has applied every partition at least as far as the live slot."""
        if not active:
            return True
        live = await self._offsets_of(active).load()
        mine = await self.offsets.load()
        # Retry topics hold copies whose originals the main topics carry, and
        # retention may have emptied them: only the main topics' offsets decide.
        return all(
            mine.get(field, -1) >= offset
            for field, offset in live.items()
            if ".retry." not in field
        )

    async def _retry(
        self,
        message: confluent_kafka.Message,
        inbound: Inbound,
        writes: Any,
        mark: int,
        error: Exception,
    ) -> Failure | None:
        """The retries in place after a failed first attempt; the failure if all fail."""

        async def work(attempt: int) -> None:
            again = self._handle(inbound.event, writes)
            if again is not None:
                await again

        return await with_retries(
            work,
            message,
            inbound.origin,
            self.policy,
            on_failure=lambda: writes.rollback(mark),
            first_error=error,
        )

    def _handle(self, event: RecordedEvent, writes: Any) -> Awaitable[Any] | None:
        """Run the handler of the event's current type; what to await if it is async."""
        codec = self.projection.codec
        if self._known is not None:
            self._check_known(event)
        envelope = codec.upcast(event)
        bound = self.projection.handler(envelope.type)
        # Types the projection does not handle are skipped, as from the store's
        # feed (a topic carries every event of its aggregate type).
        if bound is None:
            return None
        result = bound.function(codec.decode(envelope), envelope, writes)
        if result is not None and (bound.is_async or inspect.isawaitable(result)):
            return result  # type: ignore[no-any-return]
        return None

    def _check_known(self, event: RecordedEvent) -> None:
        assert self._known is not None
        current = self._known.upcast(event)
        if current.type not in self._known_types:
            raise UnknownEventTypeError(
                event.stream_id,
                event.version,
                event.type,
                event.schema_version,
                f"no event class of the app is registered for type {current.type!r}",
            )

    async def _send(self, failure: Failure) -> None:
        if self.router is None:
            raise ConsumerError(
                self.name,
                f"message {_field(failure.message)}@{failure.message.offset()} "
                f"failed and there is no producer to send it on: {failure.error}",
            )
        target = await self.router.send(
            failure.message, failure.origin, failure.error, failure.attempts, dead=failure.dead
        )
        log.error(
            "projection %s: message %s@%s sent to %s: %s",
            self.name,
            _field(failure.message),
            failure.message.offset(),
            target,
            failure.error,
        )


def _field(message: confluent_kafka.Message) -> str:
    return offset_field(message.topic() or "", message.partition() or 0)
