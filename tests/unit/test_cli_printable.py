"""``printable``: whatever the text, nothing a terminal would obey survives; JSON stays exact."""

from __future__ import annotations

import io
import json

from hypothesis import given
from hypothesis import strategies as st

from chronik._output import print_json, printable, printable_lines

# Controls, bidi overrides, zero-width and unassigned characters are all non-printable.
TRICKY = st.text(
    st.one_of(
        st.characters(),
        st.sampled_from("\x1b\r\n\x07\x9b\u202e\u2066\u200b\u2028\ufeff\U000e0001\ud800"),
    )
)


def _inert(text: str, keep: str = " ") -> bool:
    return all(char in keep or char.isprintable() for char in text)


@given(TRICKY)
def test_printable_leaves_only_printable_characters(text: str) -> None:
    shown = printable(text)
    assert _inert(shown)
    if text.isprintable():
        assert shown == text


@given(TRICKY)
def test_printable_lines_keeps_only_line_breaks(text: str) -> None:
    shown = printable_lines(text)
    assert _inert(shown, keep=" \n")
    assert shown.count("\n") == text.count("\n")


@given(TRICKY)
def test_json_output_is_exact_and_inert(text: str) -> None:
    out = io.StringIO()
    print_json({"value": text, text: [text]}, out)
    assert json.loads(out.getvalue()) == {"value": text, text: [text]}
    assert _inert(out.getvalue(), keep=" \n")
