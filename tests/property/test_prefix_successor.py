"""The stream listing's prefix range holds exactly the ids that start with the prefix."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from eventstore._pg_read import prefix_successor

# Stored ids are valid UTF-8: no surrogates.  Bias towards the edges of the range.
text = st.text(
    alphabet=st.one_of(
        st.characters(blacklist_categories=["Cs"]),
        st.sampled_from(["\U0010ffff", "\ud7ff", "\ue000", "a", "b"]),
    ),
    max_size=6,
)


@given(prefix=text, candidate=text)
def test_the_range_is_exactly_the_prefix(prefix: str, candidate: str) -> None:
    upper = prefix_successor(prefix)
    in_range = prefix <= candidate and (upper is None or candidate < upper)
    assert in_range == candidate.startswith(prefix)
