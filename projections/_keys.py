"""Read-model keys built from event data that cannot collide.

A key made by joining values with ``:`` lets one value pose as another key: an
owner named ``alice:ledgers`` turned ``owner:<owner>`` into alice's
``owner:alice:ledgers`` set (``WRONGTYPE``, dead letters).  ``key`` escapes each
part first (``%`` as ``%25``, ``:`` as ``%3A``), so no part contains the
separator and distinct tuples of parts always give distinct keys.  Constant parts
like ``"ledger"`` come out unchanged.
"""

from __future__ import annotations

import re

SEPARATOR = ":"


def key_part(value: str) -> str:
    """``value`` made safe as one part of a ``:``-separated key (reversible)."""
    if not isinstance(value, str):
        # str(1) == "1": mixing types would let two parts collide.
        raise TypeError(f"a key part must be a str, got {type(value).__name__}: {value!r}")
    return value.replace("%", "%25").replace(SEPARATOR, "%3A")


def key(*parts: str) -> str:
    """A relative read-model key of escaped ``parts``: ``key("owner", owner, "ledgers")``.

    Use it for every key that holds a value taken from event data; pass the
    result to ``RedisWrites`` methods, and read with ``view.key(key(...))``.
    """
    if not parts:
        raise ValueError("a key needs at least one part")
    return SEPARATOR.join(key_part(part) for part in parts)


def split_key(text: str) -> tuple[str, ...]:
    """The parts ``key`` was given, back from its result."""
    return tuple(_ESCAPED.sub(_unescape, part) for part in text.split(SEPARATOR))


_ESCAPED = re.compile("%25|%3A")


def _unescape(match: re.Match[str]) -> str:
    # One pass over the text: sequential replaces could decode what an escape made.
    return "%" if match.group() == "%25" else SEPARATOR
