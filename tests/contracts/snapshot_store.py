"""The SnapshotStore contract: the same tests for every backend.

Subclass ``SnapshotStoreContract`` in ``tests/backends/`` and provide a
``make_store`` fixture: an async factory ``make_store(keep=5) -> SnapshotStore``
(the subclass closes what it made).
"""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from snapshots import InvalidSnapshotError, Snapshot, SnapshotStore

MakeStore = Callable[..., Awaitable[SnapshotStore]]


def new_stream(kind: str = "ledger") -> str:
    return f"{kind}-{uuid.uuid4().hex}"


_DEFAULT_STATE: Any = object()


def snap(
    stream_id: str,
    version: int,
    state: Any = _DEFAULT_STATE,
    *,
    fingerprint: str = "fp-1",
    aggregate_type: str = "ledger",
) -> Snapshot:
    return Snapshot(
        stream_id=stream_id,
        aggregate_type=aggregate_type,
        version=version,
        fingerprint=fingerprint,
        state={"version": version} if state is _DEFAULT_STATE else state,
    )


# JSON values without floats (jsonb normalises number text) and without the
# characters no backend can store (NUL, lone surrogates), which are rejected.
_text = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=12)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63) | _text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_text, children, max_size=4),
    max_leaves=20,
)
json_states = st.dictionaries(_text, json_values, max_size=6)


class SnapshotStoreContract:
    @pytest.fixture
    async def store(self, make_store: MakeStore) -> SnapshotStore:
        return await make_store()

    # -- round trips -------------------------------------------------------------

    async def test_save_then_load_round_trips_every_field(self, store: SnapshotStore) -> None:
        stream = new_stream()
        state = {"balance": "10.00", "owner": "Zoë", "entries": [1, 2, {"memo": None}]}
        await store.save(snap(stream, 7, state, fingerprint="sha256:abc", aggregate_type="ledger"))
        loaded = await store.load(stream)
        assert loaded is not None
        assert (loaded.stream_id, loaded.aggregate_type, loaded.version) == (stream, "ledger", 7)
        assert loaded.fingerprint == "sha256:abc"
        assert loaded.state == state
        assert isinstance(loaded.recorded_at, datetime)
        assert loaded.recorded_at.tzinfo is not None

    async def test_recorded_at_passed_in_is_replaced_by_the_store(
        self, store: SnapshotStore
    ) -> None:
        stream = new_stream()
        ancient = datetime(2001, 1, 1).astimezone()
        given_snapshot = snap(stream, 1)
        await store.save(
            Snapshot(
                given_snapshot.stream_id,
                given_snapshot.aggregate_type,
                1,
                given_snapshot.fingerprint,
                given_snapshot.state,
                recorded_at=ancient,
            )
        )
        loaded = await store.load(stream)
        assert loaded is not None and loaded.recorded_at is not None
        assert loaded.recorded_at > ancient

    async def test_load_of_an_unknown_stream_is_none(self, store: SnapshotStore) -> None:
        assert await store.load(new_stream()) is None
        assert await store.load(new_stream(), max_version=5) is None
        assert await store.load_all(new_stream()) == []

    async def test_decimal_amounts_stored_as_strings_keep_their_exact_text(
        self, store: SnapshotStore
    ) -> None:
        stream = new_stream()
        state = {
            "balance": str(Decimal("1234.5600")),
            "lines": [{"amount": "0.10"}, {"amount": "-0.000000001"}, {"amount": "1E+3"}],
        }
        await store.save(snap(stream, 3, state))
        loaded = await store.load(stream)
        assert loaded is not None
        assert loaded.state == state
        assert Decimal(loaded.state["balance"]) == Decimal("1234.5600")
        assert loaded.state["balance"] == "1234.5600"

    async def test_ordinary_floats_and_tuples_come_back_as_json_would(
        self, store: SnapshotStore
    ) -> None:
        stream = new_stream()
        await store.save(snap(stream, 1, {"rate": 0.1, "tiny": 1e-7, "pair": (1, "a")}))
        loaded = await store.load(stream)
        assert loaded is not None
        assert loaded.state == {"rate": 0.1, "tiny": 1e-7, "pair": [1, "a"]}

    async def test_mutating_a_loaded_state_does_not_change_the_stored_one(
        self, store: SnapshotStore
    ) -> None:
        stream = new_stream()
        await store.save(snap(stream, 1, {"items": [1]}))
        first = await store.load(stream)
        assert first is not None
        first.state["items"].append(2)
        again = await store.load(stream)
        assert again is not None and again.state == {"items": [1]}

    # Each backend's subclass runs this test: "different executors" is the point
    # of a contract here, and every example uses a fresh stream.
    @settings(
        suppress_health_check=[
            HealthCheck.differing_executors,
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
        ]
    )
    @given(state=json_states)
    async def test_any_json_state_round_trips(
        self, store: SnapshotStore, state: dict[str, Any]
    ) -> None:
        stream = new_stream()
        await store.save(snap(stream, 1, state))
        loaded = await store.load(stream)
        assert loaded is not None and loaded.state == state

    # -- several snapshots per stream ------------------------------------------------

    async def test_load_gives_the_newest_not_newer_than_max_version(
        self, store: SnapshotStore
    ) -> None:
        stream = new_stream()
        for version in (20, 10, 30):  # out of order on purpose
            await store.save(snap(stream, version))
        expectations = {None: 30, 35: 30, 30: 30, 29: 20, 20: 20, 15: 10, 10: 10}
        for bound, expected in expectations.items():
            loaded = await store.load(stream, max_version=bound)
            assert loaded is not None, bound
            assert (loaded.version, loaded.state) == (expected, {"version": expected}), bound
        assert await store.load(stream, max_version=9) is None
        assert await store.load(stream, max_version=1) is None

    async def test_keeps_only_the_newest_keep_snapshots(self, make_store: MakeStore) -> None:
        store = await make_store(keep=3)
        stream = new_stream()
        for version in range(1, 7):
            await store.save(snap(stream, version))
        assert [s.version for s in await store.load_all(stream)] == [4, 5, 6]
        assert await store.load(stream, max_version=3) is None
        loaded = await store.load(stream, max_version=4)
        assert loaded is not None and loaded.version == 4

    async def test_a_snapshot_older_than_the_kept_ones_is_trimmed_at_once(
        self, make_store: MakeStore
    ) -> None:
        store = await make_store(keep=2)
        stream = new_stream()
        for version in (10, 20, 5):
            await store.save(snap(stream, version))
        assert [s.version for s in await store.load_all(stream)] == [10, 20]

    async def test_saving_the_same_version_again_replaces_it(self, store: SnapshotStore) -> None:
        stream = new_stream()
        await store.save(snap(stream, 4, {"old": True}, fingerprint="v1"))
        await store.save(snap(stream, 8))
        await store.save(snap(stream, 4, {"new": True}, fingerprint="v2"))
        all_versions = await store.load_all(stream)
        assert [(s.version, s.fingerprint) for s in all_versions] == [(4, "v2"), (8, "fp-1")]
        loaded = await store.load(stream, max_version=7)
        assert loaded is not None and loaded.state == {"new": True}

    async def test_fingerprints_are_stored_as_given_not_checked(self, store: SnapshotStore) -> None:
        stream = new_stream()
        await store.save(snap(stream, 1, fingerprint="schema-a"))
        await store.save(snap(stream, 2, fingerprint=""))
        loaded = [(s.version, s.fingerprint) for s in await store.load_all(stream)]
        assert loaded == [(1, "schema-a"), (2, "")]

    async def test_streams_do_not_see_each_other(self, store: SnapshotStore) -> None:
        base = new_stream()
        # Ids that extend one another: key-building backends must keep them apart.
        ids = [base, base + ":1", base + ":1:v", base + "1"]
        for index, stream in enumerate(ids, start=1):
            await store.save(snap(stream, index, {"who": stream}))
        for index, stream in enumerate(ids, start=1):
            loaded = await store.load(stream)
            assert loaded is not None
            assert (loaded.version, loaded.state) == (index, {"who": stream})

    async def test_concurrent_saves_leave_exactly_the_newest_keep(
        self, make_store: MakeStore
    ) -> None:
        store = await make_store(keep=4)
        stream = new_stream()
        versions = list(range(1, 25))
        await asyncio.gather(*(store.save(snap(stream, v)) for v in versions))
        assert [s.version for s in await store.load_all(stream)] == versions[-4:]

    # -- delete ----------------------------------------------------------------------

    async def test_delete_removes_every_snapshot_of_the_stream_only(
        self, store: SnapshotStore
    ) -> None:
        stream, other = new_stream(), new_stream()
        for version in (1, 2, 3):
            await store.save(snap(stream, version))
        await store.save(snap(other, 1))
        assert await store.delete(stream) == 3
        assert await store.load(stream) is None
        assert await store.load_all(stream) == []
        assert await store.delete(stream) == 0
        assert await store.load(other) is not None

    async def test_delete_of_an_unknown_stream_removes_nothing(self, store: SnapshotStore) -> None:
        assert await store.delete(new_stream()) == 0

    # -- bad input -------------------------------------------------------------------

    @pytest.mark.parametrize(
        ("version", "state", "fragment"),
        [
            (0, {}, "version"),
            (-3, {}, "version"),
            (True, {}, "version"),
            ("2", {}, "version"),
            (1.0, {}, "version"),
            (2, {"amount": Decimal("1.5")}, "JSON-serializable"),
            (2, {"tags": {"a", "b"}}, "JSON-serializable"),
            (2, {"rate": math.nan}, "JSON-serializable"),
            (2, {"rate": math.inf}, "JSON-serializable"),
            (2, {"by_id": {1: "x"}}, "non-string key"),
            (2, {"deep": [{"ok": {None: 1}}]}, "non-string key"),
            (2, {"name": "a\x00b"}, "NUL"),
            (2, {"name": "\ud800"}, "Unicode"),
            (2, ["not", "a", "dict"], "must be a dict"),
            (2, None, "must be a dict"),
        ],
    )
    async def test_bad_snapshots_are_rejected_naming_stream_and_version(
        self, store: SnapshotStore, version: Any, state: Any, fragment: str
    ) -> None:
        stream = new_stream()
        await store.save(snap(stream, 1, {"kept": True}))
        with pytest.raises(InvalidSnapshotError) as caught:
            await store.save(snap(stream, version, state))
        message = str(caught.value)
        assert stream in message and fragment in message
        assert repr(version) in message or str(version) in message
        assert caught.value.stream_id == stream
        assert caught.value.version == version
        assert [(s.version, s.state) for s in await store.load_all(stream)] == [(1, {"kept": True})]

    @pytest.mark.parametrize("stream_id", ["", "   ", "x" * 256, "a\x00b", "lone\ud800", 42, None])
    async def test_bad_stream_ids_are_rejected(self, store: SnapshotStore, stream_id: Any) -> None:
        with pytest.raises(InvalidSnapshotError, match="stream id"):
            await store.save(snap(stream_id, 1))
        with pytest.raises(InvalidSnapshotError, match="stream id"):
            await store.load(stream_id)
        with pytest.raises(InvalidSnapshotError, match="stream id"):
            await store.delete(stream_id)

    @pytest.mark.parametrize(
        ("aggregate_type", "fingerprint"),
        [("", "fp"), (" ", "fp"), (None, "fp"), ("t", 1), ("lone\udfff", "fp"), ("t", "\ud800")],
    )
    async def test_bad_type_or_fingerprint_is_rejected(
        self, store: SnapshotStore, aggregate_type: Any, fingerprint: Any
    ) -> None:
        stream = new_stream()
        with pytest.raises(InvalidSnapshotError) as caught:
            await store.save(Snapshot(stream, aggregate_type, 3, fingerprint, {"a": 1}))
        assert stream in str(caught.value) and "3" in str(caught.value)
        assert await store.load_all(stream) == []

    async def test_something_that_is_not_a_snapshot_is_rejected(self, store: SnapshotStore) -> None:
        with pytest.raises(InvalidSnapshotError, match="Snapshot"):
            await store.save({"stream_id": "x", "version": 1})  # type: ignore[arg-type]

    @pytest.mark.parametrize("bound", [0, -1, True, "3", 2.5])
    async def test_bad_max_version_is_rejected(self, store: SnapshotStore, bound: Any) -> None:
        stream = new_stream()
        with pytest.raises(InvalidSnapshotError, match="max_version") as caught:
            await store.load(stream, max_version=bound)
        assert stream in str(caught.value)

    async def test_stream_id_at_the_length_limit_is_fine(self, store: SnapshotStore) -> None:
        stream = ("s-" + uuid.uuid4().hex + "x" * 255)[:255]
        await store.save(snap(stream, 1))
        loaded = await store.load(stream)
        assert loaded is not None and loaded.stream_id == stream

    async def test_usable_as_an_async_context_manager(self, make_store: MakeStore) -> None:
        store = await make_store()
        async with store as entered:
            assert entered is store
