"""The snapshot store contract on the in-memory store, and the package's public API."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from contracts.snapshot_store import MakeStore, SnapshotStoreContract, new_stream, snap

import snapshots
from eventstore import ChronikError
from snapshots import InMemorySnapshotStore, SnapshotStore


class TestInMemorySnapshotStore(SnapshotStoreContract):
    @pytest.fixture
    def make_store(self) -> MakeStore:
        async def make(keep: int = 5) -> SnapshotStore:
            return InMemorySnapshotStore(keep=keep)

        return make


async def test_recorded_at_comes_from_the_clock() -> None:
    moment = datetime(2030, 5, 6, 7, 8, 9, tzinfo=UTC)
    store = InMemorySnapshotStore(clock=lambda: moment)
    stream = new_stream()
    await store.save(snap(stream, 2))
    loaded = await store.load(stream)
    assert loaded is not None and loaded.recorded_at == moment


@pytest.mark.parametrize("keep", [0, -1, True, 2.0, None])
def test_keep_must_be_a_positive_int(keep: Any) -> None:
    with pytest.raises(ValueError, match="keep"):
        InMemorySnapshotStore(keep=keep)


async def test_the_generic_load_all_walks_back_through_load() -> None:
    # A store written by someone else gets load_all from the base class.
    inner = InMemorySnapshotStore(keep=10)

    class OnlyTheAbstractMethods(SnapshotStore):
        save = inner.save
        load = inner.load
        delete = inner.delete

        async def close(self) -> None:
            return None

    store = OnlyTheAbstractMethods()
    stream = new_stream()
    for version in (1, 4, 9):
        await store.save(snap(stream, version))
    assert [s.version for s in await store.load_all(stream)] == [1, 4, 9]
    assert await store.load_all(new_stream()) == []


def test_public_api_is_pinned() -> None:
    assert sorted(snapshots.__all__) == [
        "DEFAULT_KEEP",
        "DEFAULT_PREFIX",
        "EveryNEvents",
        "InMemorySnapshotStore",
        "InvalidPolicyError",
        "InvalidSnapshotError",
        "OnDemand",
        "PostgresSnapshotStore",
        "RedisSnapshotCache",
        "Snapshot",
        "SnapshotCorruptError",
        "SnapshotError",
        "SnapshotPolicy",
        "SnapshotStore",
        "SnapshotStoreError",
        "embedded_redis_url",
    ]
    for name in snapshots.__all__:
        assert hasattr(snapshots, name), name


def test_every_error_is_a_chronik_error_and_survives_pickle() -> None:
    import pickle

    errors: list[Exception] = [
        snapshots.InvalidSnapshotError("s-1", 3, "bad"),
        snapshots.SnapshotCorruptError("s-1", 4, "undecodable JSON"),
        snapshots.SnapshotStoreError("redis at unix socket /x", "down", "s-1"),
        snapshots.InvalidPolicyError("ledger", "bad interval"),
    ]
    for error in errors:
        assert isinstance(error, snapshots.SnapshotError)
        assert isinstance(error, ChronikError)
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error) and str(copy) == str(error)
    assert "s-1" in str(errors[1]) and "version 4" in str(errors[1])
    assert isinstance(errors[0], ValueError)
