"""The EventStore contract, the shape of event data: what is refused, what changes.

Data must read back as it was written, or be refused at append: nesting past
``MAX_NESTING_DEPTH`` (it used to be accepted and then break every read of its
page) and non-string keys (``{1: "a", "1": "b"}`` read back as one key).  Floats
go through jsonb's ``numeric``: the few that change are pinned here, alike on
every backend.
"""

from __future__ import annotations

from typing import Any

import pytest
from contracts.event_store_support import ContractBase, collect, new_events, new_stream

from eventstore import MAX_NESTING_DEPTH, EventStore, InvalidAppendError, NewEvent


def nested(depth: int, leaf: Any = 1, *, lists: bool = False) -> dict[str, Any]:
    """A dict nesting ``depth`` levels deep, counting itself (built without recursion)."""
    value: Any = leaf
    for _ in range(depth - 1):
        value = [value] if lists else {"d": value}
    return {"d": value}


class DataShapeContract(ContractBase):
    async def test_data_at_the_nesting_limit_reads_back(self, store: EventStore) -> None:
        stream = new_stream()
        data, metadata = nested(MAX_NESTING_DEPTH), nested(MAX_NESTING_DEPTH, lists=True)
        await store.append(stream, [NewEvent("contract.Deep", data, metadata=metadata)])
        [recorded] = await collect(store.read_stream(stream))
        assert (recorded.data, recorded.metadata) == (data, metadata)

    @pytest.mark.parametrize("depth", [MAX_NESTING_DEPTH + 1, 1_000, 5_000, 100_000])
    @pytest.mark.parametrize("lists", [False, True])
    @pytest.mark.parametrize("where", ["data", "metadata"])
    async def test_deeper_data_is_refused_with_a_typed_error(
        self, store: EventStore, depth: int, lists: bool, where: str
    ) -> None:
        # 5,000 and more levels used to escape as a bare RecursionError; ~980 were
        # stored and then broke every read of their page.
        stream = new_stream()
        await store.append(stream, new_events(1))
        head = await store.head()
        deep = nested(depth, lists=lists)
        event = (
            NewEvent("contract.Deep", deep)
            if where == "data"
            else NewEvent("contract.Deep", {}, metadata=deep)
        )
        with pytest.raises(InvalidAppendError, match=f"{where} nests deeper than 64") as caught:
            await store.append(stream, [*new_events(1), event])
        assert caught.value.stream_id == stream
        assert "event 1 ('contract.Deep')" in str(caught.value)
        await self.assert_nothing_written(store, stream, 1, head)

    @pytest.mark.parametrize(
        ("data", "problem"),
        [
            ({1: "a", "1": "b"}, r"non-string key 1 \(int\) at data"),
            ({True: "x"}, r"non-string key True \(bool\) at data"),
            ({None: "x"}, "non-string key None"),
            ({1.5: "x"}, r"non-string key 1.5 \(float\)"),
            ({"a": [{"b": {2: "x"}}]}, r"non-string key 2 \(int\) at data\['a'\]\[0\]\['b'\]"),
        ],
    )
    async def test_non_string_keys_are_refused_naming_the_path(
        self, store: EventStore, data: dict[Any, Any], problem: str
    ) -> None:
        stream = new_stream()
        head = await store.head()
        with pytest.raises(InvalidAppendError, match=problem) as caught:
            await store.append(stream, [NewEvent("contract.Keys", data)])
        assert "event 0 ('contract.Keys')" in str(caught.value)
        await self.assert_nothing_written(store, stream, 0, head)

    async def test_non_string_metadata_keys_are_refused(self, store: EventStore) -> None:
        stream = new_stream()
        with pytest.raises(InvalidAppendError, match="metadata has a non-string key 7"):
            await store.append(stream, [NewEvent("contract.Keys", {}, metadata={7: "x"})])
        assert await store.stream_version(stream) == 0

    async def test_how_floats_read_back(self, store: EventStore) -> None:
        # jsonb keeps numbers as numeric: exact digits, but no exponent and no -0.
        stream = new_stream()
        written = {
            "small": 0.1,
            "third": 1 / 3,
            "tiny": 1.5e-7,
            "whole": 2.0,
            "below": 9999999999999998.0,
            "at": 1e16,
            "huge": 1.2345e300,
            "negative_huge": -3e20,
            "negative_zero": -0.0,
            "int": 10**30,
        }
        await store.append(stream, [NewEvent("contract.Floats", written)])
        [recorded] = await collect(store.read_stream(stream))
        read = recorded.data
        # Every number reads back as the one written, or as the int its decimal
        # digits spell (equal to the float for 1e16, not for 1.2345e300).
        assert {name: float(value) for name, value in read.items()} == {
            name: float(value) for name, value in written.items()
        }
        assert read["int"] == 10**30
        kinds = {name: type(value) for name, value in read.items()}
        assert kinds == {
            "small": float,
            "third": float,
            "tiny": float,
            "whole": float,
            "below": float,
            "at": int,
            "huge": int,
            "negative_huge": int,
            "negative_zero": float,
            "int": int,
        }
        assert str(read["negative_zero"]) == "0.0"
        assert read["at"] == 10**16
        assert read["huge"] == 12345 * 10**296 != 1.2345e300
        assert read["negative_huge"] == -3 * 10**20
