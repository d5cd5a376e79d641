"""The schema registry on real PostgreSQL: written once per class and process, never
downgraded, and the history sample matches the in-memory rule."""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Awaitable, Callable
from typing import ClassVar

import pytest

from aggregates import Repository
from aggregates.ledger import Ledger
from eventstore import (
    Event,
    InMemoryEventStore,
    NewEvent,
    PostgresEventStore,
    SchemaRecord,
    schema_fingerprint,
    schema_uri,
)

MakeStore = Callable[..., Awaitable[PostgresEventStore]]


class Parcel(Event):
    event_type: ClassVar[str] = "post.Parcel"
    weight: int


class ParcelWithNote(Event):
    """Same type and version, one optional field more: compatible."""

    event_type: ClassVar[str] = "post.Parcel"
    weight: int
    note: str = ""


class ParcelAsText(Event):
    """Same type and version, weight now a string: incompatible."""

    event_type: ClassVar[str] = "post.Parcel"
    weight: str


async def registered(store: PostgresEventStore) -> dict[tuple[str, int], SchemaRecord]:
    return {record.key: record for record in await store.schemas.list()}


async def test_a_typed_append_registers_its_schema_once_per_process(
    make_pg_store: MakeStore,
) -> None:
    store = await make_pg_store()
    await store.append("parcel-1", [Parcel(weight=3)])
    record = (await registered(store))[("post.Parcel", 1)]
    assert record.json_schema["properties"]["weight"]["type"] == "integer"
    assert record.fingerprint == schema_fingerprint(Parcel.model_json_schema(mode="serialization"))
    assert record.model.endswith("Parcel") and record.registered_at is not None

    # Seen by this store already: a second append does not touch the registry,
    # which the row deleted behind its back proves.
    async with store.connection() as connection:
        await connection.execute(f"DELETE FROM {store.schema}.event_schemas")
    await store.append("parcel-1", [Parcel(weight=4)])
    assert await registered(store) == {}

    # Another process (here: another store object) registers again.
    other = await make_pg_store(schema=store.schema)
    await other.append("parcel-2", [Parcel(weight=5)])
    assert set(await registered(other)) == {("post.Parcel", 1)}


async def test_untyped_appends_register_nothing(make_pg_store: MakeStore) -> None:
    store = await make_pg_store()
    await store.append("raw-1", [NewEvent("post.Parcel", {"weight": 1})])
    assert await registered(store) == {}


async def test_repository_saves_register_the_aggregates_events(make_pg_store: MakeStore) -> None:
    store = await make_pg_store()
    repository = Repository(store, [Ledger])
    await repository.create(Ledger, "ann", lambda ledger: ledger.open("Ann", "EUR"))
    await repository.update(Ledger, "ann", lambda ledger: ledger.deposit("5"))
    assert set(await registered(store)) == {("ledger.Opened", 2), ("ledger.Deposited", 2)}


async def test_compatible_changes_update_incompatible_ones_are_refused(
    make_pg_store: MakeStore, caplog: pytest.LogCaptureFixture
) -> None:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    old, store, wrong = [await make_pg_store(schema=schema) for _ in range(3)]
    await old.append("p-1", [Parcel(weight=1)])
    await store.append("p-2", [ParcelWithNote(weight=2)])
    record = (await registered(store))[("post.Parcel", 1)]
    assert "note" in record.json_schema["properties"]
    assert record.updated_at is not None and record.updated_at > record.registered_at  # type: ignore[operator]

    with caplog.at_level(logging.WARNING, logger="chronik.eventstore"):
        await wrong.append("p-3", [ParcelAsText(weight="3")])
    assert "post.Parcel v1" in caplog.text and "weight: type changed" in caplog.text
    assert (await registered(store))[("post.Parcel", 1)].fingerprint == record.fingerprint

    # The explicit path reports the same outcome without writing.
    [outcome] = await store.schemas.register([SchemaRecord.of(ParcelAsText)])
    assert outcome.status == "refused"
    # Against the updated schema: note is gone as well.
    assert [c.path for c in outcome.changes if not c.compatible] == ["note", "weight"]


def test_schema_uris_are_stable_and_escaped() -> None:
    assert schema_uri("bank.Credited", 2) == "urn:chronik:schema:bank.Credited:2"
    assert schema_uri("a b/c", 1) == "urn:chronik:schema:a%20b%2Fc:1"
    assert (
        schema_uri("bank.Credited", 2, base="https://schemas.example.com/billing/")
        == "https://schemas.example.com/billing/bank.Credited/v2.json"
    )


async def test_the_sql_sample_picks_what_the_python_rule_picks(make_pg_store: MakeStore) -> None:
    store = await make_pg_store()
    memory = InMemoryEventStore()
    rng = random.Random(7)
    shapes = [{"a": 1}, {"a": "x"}, {"a": 1, "b": None}, {"b": [1]}, {}, {"a": {"c": 1}}]
    for stream in range(40):
        batch = [
            NewEvent(
                rng.choice(["t.A", "t.B"]),
                dict(rng.choice(shapes)),
                schema_version=rng.choice([1, 2]),
                event_id=uuid.uuid4(),
            )
            for _ in range(rng.randint(1, 12))
        ]
        for target in (store, memory):
            await target.append(f"s-{stream}", batch)

    for per_version, max_shapes in ((0, 1000), (3, 1000), (5, 2)):
        sql = await store.sample_events(per_version, max_shapes=max_shapes)
        python = await memory.sample_events(per_version, max_shapes=max_shapes)
        assert [e.event_id for e in sql] == [e.event_id for e in python]
    assert await store.stored_schema_versions() == await memory.stored_schema_versions()
    every_shape = await store.sample_events(0)
    pairs = {(e.type, e.schema_version) for e in every_shape}
    assert pairs == set(await store.stored_schema_versions())


async def test_an_append_inside_a_callers_transaction_registers_on_its_own(
    make_pg_store: MakeStore,
) -> None:
    store = await make_pg_store()
    async with store.connection() as connection:
        try:
            async with connection.transaction():
                await store.append("p-9", [Parcel(weight=9)], connection=connection)
                raise RuntimeError("the caller rolls back")
        except RuntimeError:
            pass
    assert await store.stored_schema_versions() == {}
    # The registration was not part of the rolled-back transaction.
    assert set(await registered(store)) == {("post.Parcel", 1)}
