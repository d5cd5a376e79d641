"""The read side of the MongoDB read model: what a web view or a query needs.

``MongoReads`` (resolving a projection's active slot, its metadata and
checkpoint, reading a slot back) is the base of ``MongoReadModel`` and of
``MongoReader``, a read-only handle for query services.  It is kept apart from
the writing side so that ``tools/async_to_sync.py`` can derive
``projections.sync`` from it: a Django or Flask view reads the same documents
with PyMongo's synchronous ``MongoClient``, with the same errors, without
``await``.  The layout is documented in ``_mongo``.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.errors import PyMongoError

from eventstore import START, AsyncClosing, Position

from ._errors import ProjectionNotReadyError, ReadModelError
from ._mongo_writes import LAST_POSITION, REPLAYED, check_collection
from ._slots import (
    ProjectionMeta,
    SlotInfo,
    SlotState,
    check_name,
    parse_position_key,
)

DEFAULT_DATABASE = "chronik"


class MongoView:
    """A reader's handle on one projection's active slot, resolved once.

    Read with the driver's own queries on :meth:`collection` (the relative names the
    handlers gave ``MongoWrites``)::

        view = await read_model.view("statements")
        document = await view.collection("statements").find_one({"_id": stream_id})

    Documents carry the guard field ``_last_position`` besides the handlers' fields.
    Keep using one view for a group of reads: a rebuild that swaps slots meanwhile
    does not change what this view reads.
    """

    def __init__(self, database: Any, name: str, slot: str, namespace: str) -> None:
        #: The database of the client the reader or read model was given.
        self.database = database
        #: The projection's name.
        self.name = name
        #: The slot this view reads (``v<version>g<generation>``).
        self.slot = slot
        #: The prefix of the slot's collection names; :meth:`collection` prepends it.
        self.namespace = namespace

    def collection(self, name: str) -> Any:
        """The active slot's collection ``name`` (a collection of that client)."""
        return self.database[self.namespace + check_collection(name)]


class MongoReads:
    """Reading projections back: active slot, views, metadata, checkpoints, slots."""

    database: Any
    prefix: str
    #: The ``_projections`` collection: one document per projection.
    _meta: Any

    def namespace(self, name: str, slot: str) -> str:
        """The collection-name prefix of a slot's data."""
        return f"{self.prefix}{name}.{slot}."

    @contextlib.contextmanager
    def _translate(self, name: str) -> Iterator[None]:
        try:
            yield
        except PyMongoError as error:
            raise ReadModelError(name, f"MongoDB failed: {error}") from error

    async def view(self, name: str) -> MongoView:
        """The active slot of ``name`` for reading; ``ProjectionNotReadyError`` if none."""
        check_name(name)
        with self._translate(name):
            doc = await self._meta.find_one({"_id": name}, {"active": 1})
        slot = doc.get("active") if doc else None
        if slot is None:
            raise ProjectionNotReadyError(name, "no version of this projection is active yet")
        return MongoView(self.database, name, slot, self.namespace(name, slot))

    async def meta(self, name: str) -> ProjectionMeta:
        check_name(name)
        with self._translate(name):
            doc = await self._meta.find_one({"_id": name})
        if doc is None:
            return ProjectionMeta(name)
        slots = {sid: slot_info(sid, record) for sid, record in (doc.get("slots") or {}).items()}
        return ProjectionMeta(name, doc.get("active"), slots)

    async def projection_names(self) -> list[str]:
        with self._translate("(all)"):
            return sorted([doc["_id"] async for doc in self._meta.find({}, {"_id": 1})])

    async def checkpoint(self, name: str, slot: str | None = None) -> Position | None:
        """The checkpoint of a slot (default: the active one); None when there is none."""
        meta = await self.meta(name)
        info = meta.slots.get(slot) if slot is not None else meta.active_slot
        return info.position if info is not None else None

    async def snapshot(self, name: str, slot: str | None = None) -> dict[str, Any]:
        """All data of a slot (default: the active one) by ``collection/_id``, without
        the guard fields."""
        if slot is None:
            slot = (await self.view(name)).slot
        namespace = self.namespace(name, slot)
        result: dict[str, Any] = {}
        with self._translate(name):
            for collection in await self._slot_collections(name, slot):
                relative = collection[len(namespace) :]
                async for doc in self.database[collection].find({}):
                    doc_id = doc.pop("_id")
                    doc.pop(LAST_POSITION, None)
                    doc.pop(REPLAYED, None)
                    result[f"{relative}/{doc_id}"] = doc
        return dict(sorted(result.items()))

    async def _slot_collections(self, name: str, slot: str) -> list[str]:
        namespace = self.namespace(name, slot)
        names = await self.database.list_collection_names()
        return sorted(n for n in names if n.startswith(namespace))


class MongoReader(MongoReads, AsyncClosing):
    """A read-only handle on the projections in one MongoDB database, for queries.

    What a web view needs, and nothing that writes: ``view``, ``meta``,
    ``checkpoint``, ``projection_names`` and ``snapshot`` behave as on
    ``MongoReadModel``.  ``client``: a PyMongo client of this API's kind
    (``AsyncMongoClient``, or Motor's; ``MongoClient`` for ``projections.sync``);
    ``database`` and ``prefix`` as the read model's.
    """

    def __init__(
        self,
        client: Any,
        *,
        database: str = DEFAULT_DATABASE,
        prefix: str = "",
        close_client: bool = False,
    ) -> None:
        self.client = client
        self.database = client[database]
        self.prefix = prefix
        self._meta = self.database[f"{prefix}_projections"]
        self._close_client = close_client

    @classmethod
    async def connect(
        cls, url: str, *, database: str = DEFAULT_DATABASE, prefix: str = ""
    ) -> MongoReader:
        """A reader on a new client for ``url`` (closed with the reader)."""
        client = await connect_client(url)
        return cls(client, database=database, prefix=prefix, close_client=True)

    async def close(self) -> None:
        if self._close_client:
            await close_client(self.client)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(database={self.database.name!r}, prefix={self.prefix!r})"


async def connect_client(url: str) -> Any:
    """A client for ``url``, checked with a ping; ``ReadModelError`` if unreachable."""
    client: Any = AsyncMongoClient(url)
    try:
        await client.admin.command("ping")
    except PyMongoError as error:
        await close_client(client)
        raise ReadModelError("(connect)", f"cannot reach MongoDB: {error}") from error
    return client


async def close_client(client: Any) -> None:
    """Close ``client``, whether its ``close()`` returns a coroutine (PyMongo's async
    client) or not (Motor's, and PyMongo's synchronous one)."""
    if inspect.iscoroutinefunction(client.close):
        await client.close()
    else:
        client.close()


def slot_info(slot: str, record: dict[str, Any]) -> SlotInfo:
    def when(field: str) -> datetime | None:
        value = record.get(field)
        return datetime.fromisoformat(value) if value else None

    return SlotInfo(
        slot=slot,
        version=int(record["version"]),
        generation=int(record["generation"]),
        state=SlotState(record["state"]),
        position=parse_position_key(record["position"]) if record.get("position") else START,
        from_position=Position.parse(record.get("from_position") or str(START)),
        created_at=when("created_at"),
        updated_at=when("updated_at"),
        event_time=when("event_time"),
        events=int(record.get("events") or 0),
    )
