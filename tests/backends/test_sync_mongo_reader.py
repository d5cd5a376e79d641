"""projections.sync.MongoReader: a synchronous view reads what an async projection wrote.

The slot is written by the async ``MongoReadModel`` (as a runner would), then read
back from plain sync code through PyMongo's synchronous API; every answer must
equal the async read model's own.  mongomock always (the async mock client wraps
the sync one, so both see the same documents), a real server when MONGO_URL is set.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import mongomock
import pymongo
import pytest
from contracts.read_model import pos
from mongomock_motor import AsyncMongoMockClient

from eventstore import START
from projections import CommitBatch, MongoReadModel, ProjectionNotReadyError, ReadModelError
from projections.sync import MongoReader, MongoView

MONGO_URL = os.environ.get("MONGO_URL")
BACKENDS = ["mongomock"] + (["mongodb"] if MONGO_URL else [])


@dataclass
class Written:
    model: MongoReadModel
    sync_client: Any
    database: str
    prefix: str


@pytest.fixture(params=BACKENDS)
async def written(request: pytest.FixtureRequest) -> AsyncIterator[Written]:
    """A projection "orders" with an active slot holding two documents."""
    database, prefix = f"t{uuid.uuid4().hex[:10]}", "app_"
    sync_client: Any
    if request.param == "mongomock":
        sync_client = mongomock.MongoClient()
        model = MongoReadModel(
            AsyncMongoMockClient(mock_mongo_client=sync_client),
            database=database,
            prefix=prefix,
            bulk_writes=False,
        )
    else:
        assert MONGO_URL is not None
        sync_client = pymongo.MongoClient(MONGO_URL)
        model = await MongoReadModel.connect(MONGO_URL, database=database, prefix=prefix)
    info = await model.create_slot("orders", 1)
    assert await model.activate("orders", info.slot)
    writes = model.new_writes("orders", info.slot)
    writes.begin_event(0, pos(1))
    writes.upsert("summaries", "o-1", {"$set": {"total": 30, "items": ["mug", "tea"]}})
    writes.upsert("summaries", "o-2", {"$set": {"total": 12, "items": ["pen"]}})
    batch = CommitBatch(
        previous=START, position=pos(1), writes=writes, events=1, event_time=datetime.now(UTC)
    )
    assert await model.commit("orders", info.slot, batch, require_active=True) == []
    yield Written(model, sync_client, database, prefix)
    if request.param == "mongodb":
        await model.client.drop_database(database)
    await model.close()
    sync_client.close()


async def test_a_sync_view_reads_the_active_slot_like_the_async_one(written: Written) -> None:
    model = written.model
    with MongoReader(
        written.sync_client, database=written.database, prefix=written.prefix
    ) as reader:
        view = reader.view("orders")
        assert isinstance(view, MongoView)
        expected = await model.view("orders")
        assert (view.name, view.slot, view.namespace) == (
            expected.name,
            expected.slot,
            expected.namespace,
        )
        # The view's collections are the sync client's: plain calls, no await.
        document = view.collection("summaries").find_one({"_id": "o-1"})
        assert document is not None
        assert (document["total"], document["items"]) == (30, ["mug", "tea"])
        assert [d["_id"] for d in view.collection("summaries").find({"total": {"$gt": 20}})] == [
            "o-1"
        ]
        assert reader.snapshot("orders") == await model.snapshot("orders")
        assert reader.snapshot("orders")["summaries/o-2"] == {"total": 12, "items": ["pen"]}
        assert reader.checkpoint("orders") == await model.checkpoint("orders") == pos(1)
        assert reader.meta("orders") == await model.meta("orders")
        assert reader.projection_names() == await model.projection_names() == ["orders"]


async def test_same_errors_as_the_async_read_model(written: Written) -> None:
    reader = MongoReader(written.sync_client, database=written.database, prefix=written.prefix)
    with pytest.raises(ProjectionNotReadyError) as raised:
        reader.view("invoices")
    assert "invoices" in str(raised.value)
    with pytest.raises(ProjectionNotReadyError):
        await written.model.view("invoices")
    assert reader.checkpoint("invoices") is None
    assert await written.model.checkpoint("invoices") is None
    # Another prefix is another set of projections: nothing is active there.
    elsewhere = MongoReader(written.sync_client, database=written.database, prefix="other_")
    with pytest.raises(ProjectionNotReadyError):
        elsewhere.view("orders")


def test_an_unreachable_server_is_a_read_model_error() -> None:
    # Port 1 refuses at once; a short server selection keeps the test quick.
    url = "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=200&connectTimeoutMS=200"
    with pytest.raises(ReadModelError, match="cannot reach MongoDB"):
        MongoReader.connect(url)


def test_a_reader_closes_only_a_client_it_owns() -> None:
    client = mongomock.MongoClient()
    closed: list[bool] = []
    client.close = lambda: closed.append(True)  # type: ignore[method-assign]
    with MongoReader(client):
        pass
    assert closed == []
    with MongoReader(client, close_client=True):
        pass
    assert closed == [True]
