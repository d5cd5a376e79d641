"""The read-model contract on MongoDB: mongomock always, a real server when MONGO_URL is set.

Plus what only the Mongo read model does: the per-document position guards that
keep a batch replayed after a crash (writes applied, checkpoint not) exactly-once.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from contracts.read_model import ReadModelContract, pos
from hypothesis import given, settings
from hypothesis import strategies as st
from mongomock_motor import AsyncMongoMockClient

from eventstore import START
from projections import (
    CommitBatch,
    MongoReadModel,
    MongoWrites,
    ProjectionNotReadyError,
    WriteRejectedError,
)
from projections._mongo_guards import apply_ops

MONGO_URL = os.environ.get("MONGO_URL")
BACKENDS = ["mongomock"] + (["mongodb"] if MONGO_URL else [])


@pytest.fixture(params=BACKENDS)
async def read_model(request: pytest.FixtureRequest) -> AsyncIterator[MongoReadModel]:
    database = f"t{uuid.uuid4().hex[:10]}"
    if request.param == "mongomock":
        # mongomock cannot take PyMongo >= 4.9's bulk operations: one request per write.
        yield MongoReadModel(AsyncMongoMockClient(), database=database, bulk_writes=False)
        return
    assert MONGO_URL is not None
    model = await MongoReadModel.connect(MONGO_URL, database=database)
    yield model
    await model.client.drop_database(database)
    await model.close()


class TestMongoReadModel(ReadModelContract[MongoWrites]):
    def put(self, writes: MongoWrites, key: str, value: str) -> None:
        writes.upsert("kv", key, {"$set": {"v": value}})

    def add(self, writes: MongoWrites, key: str, amount: int) -> None:
        writes.upsert("kv", key, {"$inc": {"n": amount}})

    def value(self, snapshot: dict[str, Any], key: str) -> tuple[str | None, int]:
        doc = snapshot.get(f"kv/{key}") or {}
        return doc.get("v"), int(doc.get("n", 0))


async def _active(read_model: MongoReadModel, name: str = "things") -> str:
    info = await read_model.create_slot(name, 1)
    assert await read_model.activate(name, info.slot)
    return info.slot


async def test_readers_resolve_the_active_slot(read_model: MongoReadModel) -> None:
    with pytest.raises(ProjectionNotReadyError):
        await read_model.view("things")
    slot = await _active(read_model)
    view = await read_model.view("things")
    assert view.slot == slot
    assert view.collection("kv").name == f"things.{slot}.kv"


async def test_snapshots_hide_the_guard_fields(read_model: MongoReadModel) -> None:
    slot = await _active(read_model)
    writes = read_model.new_writes("things", slot)
    writes.begin_event(0, pos(1))
    writes.upsert("kv", "a", {"$set": {"v": "x"}})
    await read_model.commit(
        "things", slot, CommitBatch(START, pos(1), writes, 1), require_active=True
    )
    assert await read_model.snapshot("things") == {"kv/a": {"v": "x"}}
    raw = await (await read_model.view("things")).collection("kv").find_one({"_id": "a"})
    assert raw["_last_position"] > "0"


async def test_two_updates_of_one_document_in_one_event_merge(read_model: MongoReadModel) -> None:
    slot = await _active(read_model)
    writes = read_model.new_writes("things", slot)
    writes.begin_event(0, pos(1))
    writes.upsert("kv", "a", {"$inc": {"n": 1}})
    writes.upsert("kv", "a", {"$set": {"v": "y"}, "$inc": {"m": 2}})
    with pytest.raises(ValueError, match="twice"):
        writes.upsert("kv", "a", {"$inc": {"n": 5}})
    with pytest.raises(ValueError, match="written twice"):
        writes.delete("kv", "a")
    await read_model.commit(
        "things", slot, CommitBatch(START, pos(1), writes, 1), require_active=True
    )
    assert await read_model.snapshot("things") == {"kv/a": {"n": 1, "v": "y", "m": 2}}


ops = st.lists(
    st.tuples(st.sampled_from(["a", "b", "c"]), st.sampled_from(["inc", "set", "delete"])),
    min_size=1,
    max_size=12,
)


@settings(max_examples=30)
@given(events=ops, crash_after=st.integers(0, 12))
async def test_a_batch_replayed_after_a_crash_before_its_checkpoint_applies_once(
    events: list[tuple[str, str]], crash_after: int
) -> None:
    # Without transactions a crash can leave some of a batch's guarded writes
    # applied and the checkpoint not moved; the rerun must not apply them twice.
    model = MongoReadModel(AsyncMongoMockClient(), database="crash", bulk_writes=False)
    slot = await _active(model)

    def writes_for(upto: int) -> MongoWrites:
        writes = model.new_writes("things", slot)
        for index, (doc, op) in enumerate(events[:upto]):
            writes.begin_event(index, pos(index + 1))
            if op == "inc":
                writes.upsert("kv", doc, {"$inc": {"n": 1}, "$push": {"log": index}})
            elif op == "set":
                writes.upsert("kv", doc, {"$set": {"v": index}})
            else:
                writes.delete("kv", doc)
        return writes

    # The crash: the first writes of the batch reached MongoDB, the checkpoint did not.
    partial = writes_for(len(events))
    partial.ops["kv"] = partial.ops["kv"][:crash_after]
    target = model.database[partial.namespace + "kv"]
    await apply_ops("things", target, partial.ops["kv"], guarded=True, session=None, bulk=False)

    full = writes_for(len(events))
    batch = CommitBatch(START, pos(len(events)), full, len(events))
    await model.commit("things", slot, batch, require_active=True)

    expected: dict[str, dict[str, Any]] = {}
    for index, (doc, op) in enumerate(events):
        if op == "delete":
            expected.pop(doc, None)
        elif op == "inc":
            state = expected.setdefault(doc, {})
            state["n"] = state.get("n", 0) + 1
            state["log"] = [*state.get("log", []), index]
        else:
            expected.setdefault(doc, {})["v"] = index
    assert await model.snapshot("things") == {f"kv/{k}": v for k, v in sorted(expected.items())}


@pytest.mark.parametrize("others", [0, 1])
async def test_a_refused_write_without_transactions_says_whether_others_landed(
    others: int,
) -> None:
    model = MongoReadModel(AsyncMongoMockClient(), database="refused", bulk_writes=False)
    slot = await _active(model)
    prepare = model.new_writes("things", slot)
    prepare.begin_event(0, pos(1))
    prepare.upsert("kv", "text", {"$set": {"n": "not a number"}})
    await model.commit("things", slot, CommitBatch(START, pos(1), prepare, 1), require_active=True)
    writes = model.new_writes("things", slot)
    writes.begin_event(0, pos(2))
    if others:
        writes.upsert("kv", "counted", {"$inc": {"n": 1}})
    writes.upsert("kv", "text", {"$inc": {"n": 1}})  # refused: not a number
    with pytest.raises(WriteRejectedError) as raised:
        await model.commit(
            "things", slot, CommitBatch(pos(1), pos(2), writes, 1), require_active=True
        )
    assert raised.value.partial is bool(others)
    assert raised.value.event_index == 0
    assert ("kv/counted" in await model.snapshot("things")) is bool(others)
