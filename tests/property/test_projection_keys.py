"""Read-model keys built with ``projections.key`` never collide."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from projections import key, key_part, split_key

# Biased towards the characters that matter: the separator and the escape.
parts = st.text(alphabet=st.sampled_from(":%3A25a"), max_size=6) | st.text(max_size=10)
part_tuples = st.lists(parts, min_size=1, max_size=4).map(tuple)


@given(part_tuples, part_tuples)
def test_distinct_part_tuples_give_distinct_keys(
    first: tuple[str, ...], second: tuple[str, ...]
) -> None:
    assert (key(*first) == key(*second)) == (first == second)


@given(part_tuples)
def test_a_key_splits_back_into_its_parts(given_parts: tuple[str, ...]) -> None:
    assert split_key(key(*given_parts)) == given_parts
    assert all(":" not in key_part(part) for part in given_parts)


def test_constant_parts_read_as_written_and_data_cannot_pose_as_a_key() -> None:
    assert key("owner", "alice", "ledgers") == "owner:alice:ledgers"
    assert key("owner", "alice:ledgers") == "owner:alice%3Aledgers"
    assert key("owner", "100%") == "owner:100%25"


@pytest.mark.parametrize("bad", [1, None, b"x", True])
def test_parts_must_be_strings(bad: object) -> None:
    # str(1) == "1" would let an int part collide with a str part.
    with pytest.raises(TypeError, match="must be a str"):
        key("owner", bad)  # type: ignore[arg-type]


def test_a_key_needs_a_part() -> None:
    with pytest.raises(ValueError, match="at least one part"):
        key()
