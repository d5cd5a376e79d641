"""Deeply nested event data is refused with the store's error, naming the stream."""

from __future__ import annotations

from typing import Any

import pytest

from eventstore import MAX_NESTING_DEPTH, InMemoryEventStore, InvalidAppendError, NewEvent


def _nested(depth: int) -> dict[str, Any]:
    data: dict[str, Any] = {}
    level = data
    for _ in range(depth):
        level["a"] = {}
        level = level["a"]
    return data


async def test_nesting_up_to_the_limit_is_stored() -> None:
    store = InMemoryEventStore()
    deepest = _nested(MAX_NESTING_DEPTH - 1)  # the outer dict is a level too
    await store.append("deep-ok", [NewEvent("t", deepest)])
    assert [e.data for e in [e async for e in store.read_stream("deep-ok")]] == [deepest]


@pytest.mark.parametrize("where", ["data", "metadata"])
async def test_nesting_beyond_the_encoder_is_an_append_error(where: str) -> None:
    store = InMemoryEventStore()
    deep = _nested(5000)
    event = NewEvent("t", deep) if where == "data" else NewEvent("t", {}, metadata=deep)
    with pytest.raises(InvalidAppendError, match="nests deeper than") as raised:
        await store.append("deep-no", [event])
    assert "deep-no" in str(raised.value) and where in str(raised.value)
    assert await store.stream_version("deep-no") == 0
