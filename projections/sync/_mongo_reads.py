"""Generated from projections/_mongo_reads.py by tools/async_to_sync.py: do not edit.

The synchronous twin of ``projections._mongo_reads``; read the source for the reasons
behind the code (comments do not survive the conversion)."""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterator
from typing import Any

from pymongo import MongoClient
from pymongo.errors import PyMongoError

from eventstore import Position
from eventstore.sync import Closing
from projections._errors import ProjectionNotReadyError, ReadModelError
from projections._mongo_reads import DEFAULT_DATABASE, MongoView, slot_info
from projections._mongo_writes import LAST_POSITION, REPLAYED
from projections._slots import ProjectionMeta, check_name


class MongoReads:
    """Reading projections back: active slot, views, metadata, checkpoints, slots."""

    database: Any
    prefix: str
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

    def view(self, name: str) -> MongoView:
        """The active slot of ``name`` for reading; ``ProjectionNotReadyError`` if none."""
        check_name(name)
        with self._translate(name):
            doc = self._meta.find_one({"_id": name}, {"active": 1})
        slot = doc.get("active") if doc else None
        if slot is None:
            raise ProjectionNotReadyError(name, "no version of this projection is active yet")
        return MongoView(self.database, name, slot, self.namespace(name, slot))

    def meta(self, name: str) -> ProjectionMeta:
        check_name(name)
        with self._translate(name):
            doc = self._meta.find_one({"_id": name})
        if doc is None:
            return ProjectionMeta(name)
        slots = {sid: slot_info(sid, record) for sid, record in (doc.get("slots") or {}).items()}
        return ProjectionMeta(name, doc.get("active"), slots)

    def projection_names(self) -> list[str]:
        with self._translate("(all)"):
            return sorted([doc["_id"] for doc in self._meta.find({}, {"_id": 1})])

    def checkpoint(self, name: str, slot: str | None = None) -> Position | None:
        """The checkpoint of a slot (default: the active one); None when there is none."""
        meta = self.meta(name)
        info = meta.slots.get(slot) if slot is not None else meta.active_slot
        return info.position if info is not None else None

    def snapshot(self, name: str, slot: str | None = None) -> dict[str, Any]:
        """All data of a slot (default: the active one) by ``collection/_id``, without
        the guard fields."""
        if slot is None:
            slot = self.view(name).slot
        namespace = self.namespace(name, slot)
        result: dict[str, Any] = {}
        with self._translate(name):
            for collection in self._slot_collections(name, slot):
                relative = collection[len(namespace) :]
                for doc in self.database[collection].find({}):
                    doc_id = doc.pop("_id")
                    doc.pop(LAST_POSITION, None)
                    doc.pop(REPLAYED, None)
                    result[f"{relative}/{doc_id}"] = doc
        return dict(sorted(result.items()))

    def _slot_collections(self, name: str, slot: str) -> list[str]:
        namespace = self.namespace(name, slot)
        names = self.database.list_collection_names()
        return sorted(n for n in names if n.startswith(namespace))


class MongoReader(MongoReads, Closing):
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
    def connect(
        cls, url: str, *, database: str = DEFAULT_DATABASE, prefix: str = ""
    ) -> MongoReader:
        """A reader on a new client for ``url`` (closed with the reader)."""
        client = connect_client(url)
        return cls(client, database=database, prefix=prefix, close_client=True)

    def close(self) -> None:
        if self._close_client:
            close_client(self.client)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(database={self.database.name!r}, prefix={self.prefix!r})"


def connect_client(url: str) -> Any:
    """A client for ``url``, checked with a ping; ``ReadModelError`` if unreachable."""
    client: Any = MongoClient(url)
    try:
        client.admin.command("ping")
    except PyMongoError as error:
        close_client(client)
        raise ReadModelError("(connect)", f"cannot reach MongoDB: {error}") from error
    return client


def close_client(client: Any) -> None:
    """Close ``client``, whether its ``close()`` returns a coroutine (PyMongo's async
    client) or not (Motor's, and PyMongo's synchronous one)."""
    if inspect.iscoroutinefunction(client.close):
        client.close()
    else:
        client.close()
