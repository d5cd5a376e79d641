"""The prebuilt encoder writes every event exactly as ``json.dumps`` would.

``to_json`` calls the C encoder that ``JSONEncoder.encode`` builds per call, built
once; what an append stores (and sizes against the limits) must not change.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from eventstore import InvalidAppendError, NewEvent
from eventstore._validation import prepare_batch, to_json

_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
_VALUES = st.recursive(
    _LEAVES,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
_DOCUMENTS = st.dictionaries(st.text(max_size=8), _VALUES, max_size=6)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


@given(_DOCUMENTS)
def test_to_json_writes_what_json_dumps_writes(document: dict[str, Any]) -> None:
    assert to_json(document) == _dumps(document)


@given(_DOCUMENTS, _DOCUMENTS)
def test_a_prepared_event_carries_the_standard_text(
    data: dict[str, Any], metadata: dict[str, Any]
) -> None:
    try:
        (prepared,) = prepare_batch("s-1", [NewEvent("T", data, metadata=metadata)], 2**30)
    except InvalidAppendError as error:
        # Only text PostgreSQL cannot store may be refused here.
        assert "lone surrogate" in str(error) or "NUL character" in str(error)
        return
    assert prepared.data_json == _dumps(data)
    assert prepared.metadata_json == (_dumps(metadata) if metadata else "{}")


def test_a_cycle_is_refused_by_the_shape_check_before_encoding() -> None:
    # The prebuilt encoder keeps no circular-reference markers: the nesting limit
    # is what must stop a cycle, as a clear error instead of a RecursionError.
    data: dict[str, Any] = {}
    data["self"] = data
    try:
        prepare_batch("s-1", [NewEvent("T", data)], 2**30)
    except InvalidAppendError as error:
        assert "nests deeper" in str(error)
    else:
        raise AssertionError("a circular event was accepted")
