"""A Kafka-fed MongoDB read model: per-(topic, partition) offsets moved with the view.

The same job as ``RedisOffsets`` on a ``MongoReadModel``.  A slot's offsets (the
next offset to apply, per topic and partition) live in one document of
``<prefix>_projection_kafka``, ``_id`` ``"<name>/<slot>"``, so a batch moves all
of its partitions with one compare-and-set: it matches only while every partition
is still where this member last saw it (the fence of a rebalance).

Why a redelivered message is a no-op:

* With transactions (replica sets, sharded clusters): the fence, the writes and
  the offsets move are one transaction; a stale member's transaction finds the
  offsets moved and applies nothing.
* Without (a standalone server, mongomock): every document write is guarded by
  the document's own mark of the partition, ``_kafka.<topic~partition>``: it
  applies only while the document has not seen that offset or a later one of
  that partition, and records the offset.  An upsert that fails the guard hits the
  ``_id`` index instead of inserting a twin and is skipped.  So a batch replayed
  after a crash between its writes and its offsets move re-applies nothing, also
  for documents fed by several partitions (each partition has its own mark).
  A ``replace`` keeps only the mark of its own partition: a replaced document fed
  by several partitions is safe with transactions only.

Copies (retry topics, replayed dead letters) are applied at most once by event
id, recorded in the same collection (``"<name>/<slot>/id/<event id>"``); without
transactions the id is recorded after the writes, so a crash between the two can
apply a copy twice, never lose it.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from bson.errors import BSONError
from pymongo.errors import DuplicateKeyError, OperationFailure, PyMongoError

from projections import MongoReadModel, MongoWrites

from ._consume_errors import ConsumerError, OffsetConflictError
from ._redis_offsets import PartitionMove, offset_field

#: Where an event came from: topic, partition, offset.
Source = tuple[str, int, int]
#: The document field of a partition's guard marks.
MARKS = "_kafka"
_TRANSACTION_RETRIES = 5
#: A setup lock older than this was left by a process that died holding it.
_LOCK_TTL = timedelta(seconds=30)


def mark_key(topic: str, partition: int) -> str:
    # MongoDB field names cannot hold "."; Kafka topic names cannot hold "~".
    return f"{topic.replace('.', '~')}~{partition}"


class MongoOffsets:
    """The per-partition offsets of one projection slot in a ``MongoReadModel``."""

    def __init__(self, read_model: MongoReadModel, name: str, slot: str) -> None:
        self.read_model = read_model
        self.name = name
        self.slot = slot
        self.collection = read_model.database[f"{read_model.prefix}_projection_kafka"]
        self.doc_id = f"{name}/{slot}"
        #: The projection's active slot as of the last commit ("" when none).
        self.active: str = ""

    async def load(self, partitions: Sequence[tuple[str, int]] | None = None) -> dict[str, int]:
        """Stored next offsets by ``topic:partition`` (all of them when ``partitions`` is None)."""
        try:
            doc = await self.collection.find_one({"_id": self.doc_id})
        except PyMongoError as error:
            raise ConsumerError(self.name, f"MongoDB failed reading offsets: {error}") from error
        stored = {str(k): int(v) for k, v in ((doc or {}).get("offsets") or {}).items()}
        found = {entry["field"]: entry["next"] for entry in stored_entries(stored)}
        if partitions is None:
            return found
        wanted = {offset_field(t, p) for t, p in partitions}
        return {k: v for k, v in found.items() if k in wanted}

    async def commit(
        self,
        moves: Sequence[PartitionMove],
        writes: MongoWrites,
        guarded: Sequence[tuple[int, str]],
        sources: Mapping[int, Source] | None = None,
    ) -> list[tuple[int, str]]:
        """Apply ``writes`` and the offset ``moves``; the refused writes by event.

        ``sources``: the (topic, partition, offset) of each event index, for the
        documents' guard marks.  ``OffsetConflictError`` when a partition is not at
        its expected offset.
        """
        marks = {index: (mark_key(t, p), o) for index, (t, p, o) in (sources or {}).items()}
        unknown = {op.event_index for ops in writes.ops.values() for op in ops} - marks.keys()
        if unknown:
            raise ConsumerError(self.name, f"writes of events {sorted(unknown)} name no message")
        try:
            if await self.read_model.uses_transactions():
                return await self._in_transaction(moves, writes, guarded, marks)
            return await self._commit(moves, writes, guarded, marks, None, set())
        except (BSONError, TypeError, ValueError) as error:
            raise ConsumerError(
                self.name, f"a queued write cannot go to MongoDB: {error}"
            ) from None
        except PyMongoError as error:
            raise ConsumerError(self.name, f"MongoDB failed: {error}") from error

    async def _in_transaction(
        self,
        moves: Sequence[PartitionMove],
        writes: MongoWrites,
        guarded: Sequence[tuple[int, str]],
        marks: dict[int, tuple[str, int]],
    ) -> list[tuple[int, str]]:
        # A write MongoDB refuses aborts the transaction: run it again without that
        # event's writes, which go to the dead-letter topic like the Redis path's.
        refused: list[tuple[int, str]] = []
        attempt = 0
        while True:
            try:
                async with self.read_model.transaction() as session:
                    excluded = {index for index, _ in refused}
                    await self._commit(moves, writes, guarded, marks, session, excluded)
                return refused
            except _Refused as refusal:
                refused.append((refusal.index, refusal.reason))
            except PyMongoError as error:
                attempt += 1
                labelled = getattr(error, "has_error_label", None)
                transient = labelled is not None and labelled("TransientTransactionError")
                if not transient or attempt >= _TRANSACTION_RETRIES:
                    raise

    async def _commit(
        self,
        moves: Sequence[PartitionMove],
        writes: MongoWrites,
        guarded: Sequence[tuple[int, str]],
        marks: dict[int, tuple[str, int]],
        session: Any,
        excluded: set[int],
    ) -> list[tuple[int, str]]:
        doc = await self.collection.find_one({"_id": self.doc_id}, session=session)
        stored = ((doc or {}).get("offsets")) or {}
        for move in moves:
            found = stored.get(_key(move))
            if found != move.expected:
                raise OffsetConflictError(
                    self.name,
                    move.topic,
                    move.partition,
                    -1 if move.expected is None else move.expected,
                    -1 if found is None else int(found),
                )
        skip = {index for index, event_id in guarded if await self._seen(event_id, session)}
        skip |= excluded
        refused: list[tuple[int, str]] = []
        for collection, ops in writes.ops.items():
            target = self.read_model.database[writes.namespace + collection]
            for op in ops:
                if op.event_index in skip:
                    continue
                try:
                    await _send(target, op, marks[op.event_index], session)
                except DuplicateKeyError:
                    if session is not None:
                        raise
                    # The guard refused it: this partition's offset reached it already.
                except OperationFailure as error:
                    if session is not None:
                        raise _Refused(op.event_index, str(error)) from error
                    refused.append((op.event_index, str(error)))
        for index, event_id in guarded:
            if index not in skip:
                await self._record(event_id, session)
        match: dict[str, Any] = {"_id": self.doc_id}
        for move in moves:
            match[f"offsets.{_key(move)}"] = (
                move.expected if move.expected is not None else {"$exists": False}
            )
        change = {f"offsets.{_key(move)}": move.next for move in moves}
        try:
            result = await self.collection.update_one(
                match, {"$set": change}, upsert=doc is None, session=session
            )
            moved = result.matched_count + (1 if result.upserted_id is not None else 0)
        except DuplicateKeyError:
            moved = 0  # another member created the document first
        if not moved:
            # Someone moved the offsets meanwhile (no transaction); the guarded writes
            # above stay, harmlessly: each document refuses them again.
            latest = await self.load([(m.topic, m.partition) for m in moves])
            move = next(m for m in moves if latest.get(m.field) != m.expected)
            found_next = latest.get(move.field)
            raise OffsetConflictError(
                self.name,
                move.topic,
                move.partition,
                -1 if move.expected is None else move.expected,
                -1 if found_next is None else found_next,
            )
        self.active = (await self.read_model.meta(self.name)).active or ""
        return refused

    async def _seen(self, event_id: str, session: Any) -> bool:
        found = await self.collection.find_one({"_id": self._id_doc(event_id)}, session=session)
        return found is not None

    async def _record(self, event_id: str, session: Any) -> None:
        with contextlib.suppress(DuplicateKeyError):
            await self.collection.insert_one({"_id": self._id_doc(event_id)}, session=session)

    def _id_doc(self, event_id: str) -> str:
        return f"{self.doc_id}/id/{event_id}"


def stored_entries(stored: dict[str, int]) -> list[dict[str, Any]]:
    """Stored offsets (keyed by ``mark_key``) back as ``topic:partition`` fields."""
    entries = []
    for key, value in stored.items():
        topic, _, partition = key.rpartition("~")
        entries.append(
            {"field": offset_field(topic.replace("~", "."), int(partition)), "next": value}
        )
    return entries


def _key(move: PartitionMove) -> str:
    return mark_key(move.topic, move.partition)


class _Refused(Exception):
    def __init__(self, index: int, reason: str) -> None:
        super().__init__(index, reason)
        self.index = index
        self.reason = reason


async def _send(target: Any, op: Any, mark: tuple[str, int], session: Any) -> None:
    """One queued ``MongoWrites`` operation, guarded by its partition's mark."""
    field, offset = f"{MARKS}.{mark[0]}", mark[1]
    match: dict[str, Any] = {
        "_id": op.doc_id,
        "$or": [{field: {"$exists": False}}, {field: {"$lt": offset}}],
    }
    kind = op.kind.value  # "upsert", "update", "replace" or "delete"
    if kind == "delete":
        await target.delete_one(match, session=session)
    elif kind == "replace":
        body = {**op.body, MARKS: {mark[0]: offset}}
        await target.replace_one(match, body, upsert=True, session=session)
    else:
        update = {operator: dict(fields) for operator, fields in op.body.items()}
        update.setdefault("$set", {})[field] = offset
        await target.update_one(match, update, upsert=kind == "upsert", session=session)


@contextlib.asynccontextmanager
async def mongo_setup_lock(read_model: MongoReadModel, name: str) -> AsyncIterator[bool]:
    """Whether this process holds the projection's Kafka setup lock (for the block)."""
    collection = read_model.database[f"{read_model.prefix}_projection_kafka"]
    lock = f"{name}/setup-lock"
    now = datetime.now(UTC)
    # A lock left by a process that died holding it.
    await collection.delete_one({"_id": lock, "at": {"$lt": (now - _LOCK_TTL).isoformat()}})
    try:
        await collection.insert_one({"_id": lock, "at": now.isoformat()})
    except DuplicateKeyError:
        yield False
        return
    try:
        yield True
    finally:
        await collection.delete_one({"_id": lock})


async def mongo_partition_offsets(read_model: MongoReadModel, name: str) -> dict[str, int]:
    """The active slot's next offset per ``topic:partition`` ({} when none is active)."""
    meta = await read_model.meta(name)
    if meta.active is None:
        return {}
    return await MongoOffsets(read_model, name, meta.active).load()
