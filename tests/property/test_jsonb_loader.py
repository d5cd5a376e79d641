"""The fast jsonb loader reads every document exactly as the standard library does.

orjson rounds integers beyond 64 bits to floats without a word; the loader must
send those documents (and any orjson refuses) to ``json.loads``, so what a
reader gets never depends on which parser ran.  The documents are printed the
way jsonb prints them: numbers in plain notation, never with an exponent.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventstore._pg_jsonb import OrjsonbBinaryLoader


class _Plain(Decimal):
    """A number json.dumps writes as jsonb's numeric output does (no exponent)."""


def _plain(value: Any) -> str:
    if isinstance(value, _Plain):
        return format(value, "f")
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)}: {_plain(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_plain(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


numbers = st.one_of(
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1, 10**30]),
    st.floats(allow_nan=False, allow_infinity=False).map(lambda f: _Plain(repr(f))),
    st.decimals(allow_nan=False, allow_infinity=False).map(lambda d: _Plain(d)),
)
leaves = st.one_of(
    st.none(),
    st.booleans(),
    numbers,
    st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00")),
    st.from_regex(r"[0-9]{15,25}", fullmatch=True),
)
documents = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=12,
)


def _load(text: str) -> Any:
    return OrjsonbBinaryLoader(0).load(memoryview(b"\x01" + text.encode()))


@given(documents)
def test_reads_as_the_standard_library_does(document: Any) -> None:
    text = _plain(document)
    # repr tells 1 from 1.0 and a rounded float from an exact int; == does not.
    assert repr(_load(text)) == repr(json.loads(text))


def test_an_int_beyond_64_bits_stays_exact() -> None:
    assert _load('{"n": 123456789012345678901234567890}') == {"n": 123456789012345678901234567890}


def test_a_document_too_deep_to_decode_fails_as_before() -> None:
    # The feed re-reads such a page as text to name the event: the error must
    # still come out of the loader, as the standard library raises it.
    with pytest.raises(RecursionError):
        _load('{"d": ' * 100_000 + "1" + "}" * 100_000)
