"""Which read model each projection lives in, and where its scratch copies go.

A projection's ``writes`` type says its backend: ``RedisWrites`` -> Redis,
``MongoWrites`` -> MongoDB.  Read models are named after the event store's schema
(Redis key prefix ``<schema>:``, MongoDB database ``<schema>``), so two event
stores sharing one Redis or MongoDB server never see each other's projections.
Scratch copies (``replay --into NAME``) live beside them under ``scratch``.
"""

from __future__ import annotations

import re
from typing import Any

from projections import (
    MongoReadModel,
    MongoWrites,
    Projection,
    ReadModel,
    RedisReadModel,
    RedisWrites,
)

from ._errors import UsageError
from ._services import Services

_SCRATCH_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,40}$")


class ReadModels:
    """Live and scratch read models for the app's projections, opened on first use."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.schema = services.config.schema
        self._models: dict[tuple[str, str], ReadModel[Any]] = {}

    async def live(self, projection: Projection[Any]) -> ReadModel[Any]:
        return await self._model(_kind(projection), scratch=None)

    async def scratch(self, projection: Projection[Any], name: str) -> ReadModel[Any]:
        if not _SCRATCH_NAME.match(name):
            raise UsageError(
                f"invalid scratch name {name!r}",
                "use up to 40 letters, digits, '-' and '_' (e.g. 'fix-1234')",
            )
        return await self._model(_kind(projection), scratch=name)

    async def scratch_names(self, projection: Projection[Any]) -> set[str]:
        """Scratch copies that exist in Redis (MongoDB's are named by the user)."""
        if _kind(projection) != "redis":
            return set()
        client = await self.services.redis()
        prefix = f"{self.schema}:scratch:"
        names = set()
        async for key in client.scan_iter(match=f"{_glob_escape(prefix)}*", count=1000):
            name = str(key)[len(prefix) :].split(":", 1)[0]
            if _SCRATCH_NAME.match(name):
                names.add(name)
        return names

    def describe(self, projection: Projection[Any], scratch: str | None = None) -> str:
        kind = _kind(projection)
        if kind == "redis":
            where = self.services.config.describe_redis()
            return f"Redis keys {self._redis_prefix(scratch)}* in {where}"
        where = self.services.config.describe_mongo()
        prefix = self._mongo_prefix(scratch)
        return f"MongoDB database {self.schema!r}{f' (prefix {prefix})' if prefix else ''}, {where}"

    def is_persistent(self, projection: Projection[Any]) -> bool:
        """False for the in-memory MongoDB stand-in: its data ends with the process."""
        return _kind(projection) == "redis" or self.services.config.mongo_url is not None

    async def _model(self, kind: str, *, scratch: str | None) -> ReadModel[Any]:
        key = (kind, scratch or "")
        model = self._models.get(key)
        if model is None:
            if kind == "redis":
                model = RedisReadModel(
                    await self.services.redis(), prefix=self._redis_prefix(scratch)
                )
            else:
                in_memory = self.services.config.mongo_url is None
                model = MongoReadModel(
                    await self.services.mongo_client(),
                    database=self.schema,
                    prefix=self._mongo_prefix(scratch),
                    # The in-memory stand-in has neither transactions nor bulk writes.
                    transactions=False if in_memory else None,
                    bulk_writes=not in_memory,
                )
            self._models[key] = model
        return model

    def _redis_prefix(self, scratch: str | None) -> str:
        return f"{self.schema}:" if scratch is None else f"{self.schema}:scratch:{scratch}:"

    @staticmethod
    def _mongo_prefix(scratch: str | None) -> str:
        return "" if scratch is None else f"scratch_{scratch}_"


def _glob_escape(text: str) -> str:
    return "".join(f"\\{char}" if char in "*?[]\\" else char for char in text)


def _kind(projection: Projection[Any]) -> str:
    writes = getattr(projection, "writes_type", None)
    if isinstance(writes, type) and issubclass(writes, RedisWrites):
        return "redis"
    if isinstance(writes, type) and issubclass(writes, MongoWrites):
        return "mongo"
    raise UsageError(
        f"projection {getattr(projection, 'name', projection)!r} writes "
        f"{getattr(writes, '__name__', writes)!r}, which chronik cannot place in a read model",
        "use RedisWrites or MongoWrites",
    )
