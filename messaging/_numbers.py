"""Checks of numeric settings (counts and seconds), shared by every messaging part.

A ``bool`` is an ``int`` to Python but never a count or a duration here
(``attempts=True`` is a mistake, not 1); NaN passes every comparison's negation
and infinity parks work forever, so both are refused with the setting's name.
"""

from __future__ import annotations

import math

from ._errors import MessagingConfigError


def check_count(value: object, name: str, subject: str, least: int = 1) -> int:
    """``value`` if it is an int >= ``least`` (a bool is not)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise MessagingConfigError(subject, f"{name} must be an int >= {least}, not {value!r}")
    return value


def check_seconds(value: object, name: str, subject: str, *, zero_ok: bool = False) -> float:
    """``value`` if it is finite seconds > 0 (>= 0 with ``zero_ok``; a bool is not)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < 0
        or (value == 0 and not zero_ok)
    ):
        bound = ">= 0" if zero_ok else "> 0"
        raise MessagingConfigError(subject, f"{name} must be finite seconds {bound}, not {value!r}")
    return float(value)
