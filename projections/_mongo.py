"""The MongoDB read model (PyMongo's ``AsyncMongoClient``; Motor clients work too).

Layout in one database, with an optional collection prefix::

    _projections                 one document per projection: active slot, slots and
                                 their checkpoints (one document, so a swap and a
                                 checkpoint move are single-document atomic updates)
    _projection_dead_letters     parked events, ``_id`` "<name>/<slot>/<position>"
    <name>.<slot>.<collection>   a slot's data

Why a batch commit is exactly-once in effect:

* With transactions (replica sets, sharded clusters): the checkpoint check, the
  writes, the dead letters and the checkpoint move are one transaction.  Two
  writers racing on one slot both update the projection document, so one of them
  aborts with a write conflict and finds the checkpoint moved on retry.
* Without (a standalone server, mongomock): every write is guarded by the
  document's ``_last_position``: it applies only if the document has not yet seen
  an event at or after this one, and records the event's position.  Upserts that
  fail the guard hit the ``_id`` unique index instead of inserting a twin, and are
  skipped as "already applied".  So replaying a batch after a crash between its
  writes and its checkpoint re-applies nothing twice, and the checkpoint itself
  moves with a compare-and-set.  Readers may see a batch's writes a moment before
  its checkpoint; they never see an event counted twice.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from bson.errors import BSONError
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError, OperationFailure, PyMongoError

from eventstore import START, Position

from ._dead_letters import DeadLetter
from ._errors import (
    CheckpointConflictError,
    DeadLetterNotFoundError,
    ProjectionError,
    SlotNotActiveError,
    WriteRejectedError,
)
from ._mongo_guards import apply_ops, replay_request
from ._mongo_reads import (
    DEFAULT_DATABASE,
    MongoReads,
    close_client,
    connect_client,
)
from ._mongo_writes import MongoWrites
from ._read_model import CommitBatch, FailedWrite, ReadModel
from ._slots import (
    SlotInfo,
    SlotState,
    check_name,
    parse_position_key,
    parse_slot_id,
    position_key,
)

_DUPLICATE_KEY = 11000
_TRANSACTION_RETRIES = 5


class MongoReadModel(MongoReads, ReadModel[MongoWrites]):
    """Projections' slots, checkpoints, data and dead letters in one MongoDB database.

    ``transactions``: None detects them (replica set or mongos); False uses the
    per-document guards only.  ``bulk_writes=False`` sends one request per write, for
    test doubles without ``bulk_write`` (mongomock with PyMongo >= 4.9).
    """

    writes_type = MongoWrites

    def __init__(
        self,
        client: Any,
        *,
        database: str = DEFAULT_DATABASE,
        prefix: str = "",
        transactions: bool | None = None,
        bulk_writes: bool = True,
        close_client: bool = False,
    ) -> None:
        self.client = client
        self.database = client[database]
        self.prefix = prefix
        self.scope = f"mongo:{database}:{prefix}"
        self._meta = self.database[f"{prefix}_projections"]
        self._dead = self.database[f"{prefix}_projection_dead_letters"]
        self._transactions = transactions
        self._bulk = bulk_writes
        self._close_client = close_client

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        database: str = DEFAULT_DATABASE,
        prefix: str = "",
        transactions: bool | None = None,
    ) -> MongoReadModel:
        """A read model on a new ``AsyncMongoClient`` for ``url`` (closed with the model)."""
        client = await connect_client(url)
        return cls(
            client, database=database, prefix=prefix, transactions=transactions, close_client=True
        )

    async def close(self) -> None:
        if self._close_client:
            await close_client(self.client)

    async def uses_transactions(self) -> bool:
        if self._transactions is None:
            try:
                hello = await self.database.command("hello")
            except NotImplementedError:  # mongomock: no server, no transactions
                hello = {}
            except OperationFailure:
                hello = {}
            self._transactions = bool(hello.get("setName")) or hello.get("msg") == "isdbgrid"
        return self._transactions

    # -- slots ---------------------------------------------------------------

    async def create_slot(
        self, name: str, version: int, from_position: Position = START
    ) -> SlotInfo:
        check_name(name)
        with self._translate(name):
            # A counter, not "highest slot + 1": a dropped slot's id is never handed
            # out again, so a new build can never meet data a failed drop left over.
            counted = await self._meta.find_one_and_update(
                {"_id": name},
                {"$inc": {f"generations.v{version}": 1}},
                upsert=True,
                return_document=ReturnDocument.AFTER,
            )
            generation = int(counted["generations"][f"v{version}"])
            info = SlotInfo.new_build(version, generation, from_position)
            record = info.registry_record() | {
                "position": position_key(from_position),
                "updated_at": info.registry_record()["created_at"],
                "events": 0,
            }
            await self._meta.update_one({"_id": name}, {"$set": {f"slots.{info.slot}": record}})
        return info

    async def set_slot_state(self, name: str, slot: str, state: SlotState) -> None:
        if state is SlotState.ACTIVE:
            raise ValueError("slots become active through activate(), which checks they caught up")
        with self._translate(name):
            result = await self._meta.update_one(
                {"_id": name, f"slots.{slot}": {"$exists": True}, "active": {"$ne": slot}},
                {"$set": {f"slots.{slot}.state": str(state)}},
            )
        if result.matched_count == 0:
            raise ProjectionError(name, f"slot {slot} does not exist or is active")

    async def activate(self, name: str, slot: str) -> bool:
        with self._translate(name):
            doc = await self._meta.find_one({"_id": name})
            slots = (doc or {}).get("slots") or {}
            if slot not in slots:
                raise ProjectionError(name, f"there is no slot {slot}")
            if slots[slot]["state"] == SlotState.ABANDONED:
                return False  # a newer build of its version replaced it
            current = doc.get("active") if doc else None
            if current == slot:
                return True
            mine = slots[slot]["position"]
            match: dict[str, Any] = {"_id": name, "active": current, f"slots.{slot}.position": mine}
            change: dict[str, Any] = {"active": slot, f"slots.{slot}.state": str(SlotState.ACTIVE)}
            match[f"slots.{slot}.state"] = {"$ne": str(SlotState.ABANDONED)}
            if current is not None and current in slots:
                theirs = slots[current]["position"]
                if mine < theirs:
                    return False
                match[f"slots.{current}.position"] = theirs
                change[f"slots.{current}.state"] = str(SlotState.RETIRED)
            result = await self._meta.update_one(match, {"$set": change})
        return bool(result.matched_count)

    async def drop_slot(self, name: str, slot: str) -> None:
        parse_slot_id(name, slot)
        with self._translate(name):
            doc = await self._meta.find_one({"_id": name}, {"active": 1})
            if doc and doc.get("active") == slot:
                raise ProjectionError(name, f"slot {slot} is active and cannot be dropped")
            await self._drop_collections(name, slot)
            await self._dead.delete_many({"projection": name, "slot": slot})
            await self._meta.update_one({"_id": name}, {"$unset": {f"slots.{slot}": ""}})

    async def drop_projection(self, name: str) -> None:
        check_name(name)
        with self._translate(name):
            # Names cannot contain ".", so "<name>." starts no other projection's collections.
            namespace = f"{self.prefix}{name}."
            for collection in await self.database.list_collection_names():
                if collection.startswith(namespace):
                    await self.database.drop_collection(collection)
            await self._dead.delete_many({"projection": name})
            await self._meta.delete_one({"_id": name})

    async def _drop_collections(self, name: str, slot: str) -> None:
        for collection in await self._slot_collections(name, slot):
            await self.database.drop_collection(collection)

    # -- writing -------------------------------------------------------------

    def new_writes(self, name: str, slot: str) -> MongoWrites:
        return MongoWrites(self.namespace(name, slot))

    async def commit(
        self, name: str, slot: str, batch: CommitBatch[MongoWrites], *, require_active: bool
    ) -> list[FailedWrite]:
        with self._translate(name):
            if await self.uses_transactions():
                for attempt in range(_TRANSACTION_RETRIES):
                    try:
                        async with self.transaction() as session:
                            await self._commit(name, slot, batch, require_active, session)
                        return []
                    except PyMongoError as error:
                        transient = getattr(error, "has_error_label", None)
                        if transient is None or not transient("TransientTransactionError"):
                            raise
                        if attempt == _TRANSACTION_RETRIES - 1:
                            raise
                return []
            await self._commit(name, slot, batch, require_active, None)
            return []

    async def _commit(
        self,
        name: str,
        slot: str,
        batch: CommitBatch[MongoWrites],
        require_active: bool,
        session: Any,
    ) -> None:
        previous, new = position_key(batch.previous), position_key(batch.position)
        doc = await self._meta.find_one(
            {"_id": name}, {"active": 1, f"slots.{slot}.position": 1}, session=session
        )
        active = doc.get("active") if doc else None
        if require_active and active != slot:
            raise SlotNotActiveError(name, slot, active)
        found = ((doc or {}).get("slots") or {}).get(slot, {}).get("position")
        if found != previous:
            if found == new:
                return  # this very batch was committed before
            raise CheckpointConflictError(
                name, slot, batch.previous, parse_position_key(found) if found else None
            )
        guarded = session is None
        for collection, ops in batch.writes.ops.items():
            target = self.database[batch.writes.namespace + collection]
            try:
                await apply_ops(
                    name, target, ops, guarded=guarded, session=session, bulk=self._bulk
                )
            except WriteRejectedError as error:
                if not guarded:
                    raise  # a transaction applies none of it
                # Without a transaction the event's other writes may have landed.
                index = error.event_index
                owners = [op.event_index for ops in batch.writes.ops.values() for op in ops]
                if index is None and len(set(owners)) == 1:
                    index = owners[0]  # a batch of one event: the culprit is known
                mine = sum(owner == index for owner in owners)
                raise WriteRejectedError(
                    name, str(error.args[1]), error.event_index, partial=mine > 1
                ) from error
        for letter in batch.dead_letters:
            await self._dead.replace_one(
                {"_id": _dead_id(name, slot, letter.position)},
                _dead_record(letter),
                upsert=True,
                session=session,
            )
        if batch.resolved:
            await self._dead.delete_many(
                {"_id": {"$in": [_dead_id(name, slot, p) for p in batch.resolved]}},
                session=session,
            )
        match: dict[str, Any] = {"_id": name, f"slots.{slot}.position": previous}
        if require_active:
            match["active"] = slot
        change: dict[str, Any] = {
            f"slots.{slot}.position": new,
            f"slots.{slot}.updated_at": datetime.now(UTC).isoformat(),
        }
        if batch.event_time is not None:
            change[f"slots.{slot}.event_time"] = batch.event_time.isoformat()
        result = await self._meta.update_one(
            match, {"$set": change, "$inc": {f"slots.{slot}.events": batch.events}}, session=session
        )
        if result.matched_count == 0:
            # Without a transaction the guarded writes above stay, harmlessly: each
            # document refuses them again when the rightful writer gets there.
            latest = await self.meta(name)
            info = latest.slots.get(slot)
            if session is None and info is not None and info.position == batch.position:
                return
            raise CheckpointConflictError(
                name, slot, batch.previous, info.position if info else None
            )

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Any]:
        """A session in a transaction on this read model's client, for the block.

        PyMongo's async API returns the session and an awaitable transaction
        context; Motor the reverse.  Both are accepted.
        """
        session = self.client.start_session()
        if inspect.isawaitable(session):
            session = await session
        async with session:
            context = session.start_transaction()
            if inspect.isawaitable(context):
                context = await context
            async with context:
                yield session

    # -- dead letters --------------------------------------------------------

    async def park(self, name: str, slot: str, dead_letters: list[DeadLetter]) -> None:
        with self._translate(name):
            for letter in dead_letters:
                await self._dead.replace_one(
                    {"_id": _dead_id(name, slot, letter.position)},
                    _dead_record(letter),
                    upsert=True,
                )

    async def dead_letters(self, name: str, slot: str) -> list[DeadLetter]:
        with self._translate(name):
            docs = [d async for d in self._dead.find({"projection": name, "slot": slot})]
        letters = [DeadLetter.from_json(d["record"]) for d in docs]
        return sorted(letters, key=lambda d: d.position)

    async def commit_replay(
        self, name: str, slot: str, dead_letter: DeadLetter, writes: MongoWrites
    ) -> None:
        dead_id = _dead_id(name, slot, dead_letter.position)
        key = position_key(dead_letter.position)
        with self._translate(name):
            if await self._dead.find_one({"_id": dead_id}, {"_id": 1}) is None:
                raise DeadLetterNotFoundError(name, dead_letter.position)
            if dead_letter.blocking:
                info = (await self.meta(name)).slots.get(slot)
                before = dead_letter.checkpoint_before or START
                if info is None or info.position != before:
                    raise CheckpointConflictError(
                        name, slot, before, info.position if info else None
                    )
            for collection, ops in writes.ops.items():
                target = self.database[writes.namespace + collection]
                for op in ops:
                    try:
                        await replay_request(op, key).send(target, None)
                    except DuplicateKeyError:
                        pass  # this replay already reached that document
                    except (BSONError, TypeError, ValueError, OperationFailure) as error:
                        raise WriteRejectedError(name, str(error), 0) from error
            if dead_letter.blocking:
                await self._meta.update_one(
                    {"_id": name, f"slots.{slot}.position": position_key(before)},
                    {
                        "$set": {
                            f"slots.{slot}.position": key,
                            f"slots.{slot}.event_time": dead_letter.event.recorded_at.isoformat(),
                            f"slots.{slot}.updated_at": datetime.now(UTC).isoformat(),
                        },
                        "$inc": {f"slots.{slot}.events": 1},
                    },
                )
            await self._dead.delete_one({"_id": dead_id})

    def __repr__(self) -> str:
        return f"MongoReadModel(database={self.database.name!r}, prefix={self.prefix!r})"


def _dead_id(name: str, slot: str, position: Position) -> str:
    return f"{name}/{slot}/{position}"


def _dead_record(letter: DeadLetter) -> dict[str, Any]:
    return {
        "projection": letter.projection,
        "slot": letter.slot,
        "position": position_key(letter.position),
        # JSON text: event data may hold keys MongoDB will not store as field names.
        "record": letter.to_json(),
    }
