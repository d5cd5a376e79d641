"""A progress bar with rate and ETA, drawn on stderr only when stderr is a terminal.

Scripts and logs never see it: a redirected stderr gets nothing, so output stays
parseable and CI logs stay short.
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import Self, TextIO

from ._output import printable

_REDRAW_SECONDS = 0.1
_BAR_WIDTH = 24


class Progress:
    """``with Progress("rebuild", total=n) as bar: bar.advance(k)``; ``total`` may be unknown."""

    def __init__(
        self,
        label: str,
        total: int | None = None,
        *,
        unit: str = "events",
        stream: TextIO | None = None,
        enabled: bool | None = None,
    ) -> None:
        self.label = printable(label)
        self.total = total
        self.unit = unit
        self.done = 0
        self._stream = stream or sys.stderr
        self._enabled = _is_tty(self._stream) if enabled is None else enabled
        self._started = time.monotonic()
        self._drawn_at = 0.0
        self._drawn = False

    def advance(self, count: int = 1) -> None:
        self.done += count
        now = time.monotonic()
        if self._enabled and now - self._drawn_at >= _REDRAW_SECONDS:
            self._draw(now)

    def set_total(self, total: int | None) -> None:
        self.total = total

    def render(self, now: float | None = None) -> str:
        """The bar's current text (without the carriage return)."""
        elapsed = max((now if now is not None else time.monotonic()) - self._started, 1e-9)
        rate = self.done / elapsed
        parts = [self.label]
        if self.total:
            fraction = min(self.done / self.total, 1.0)
            filled = int(fraction * _BAR_WIDTH)
            parts.append(f"[{'#' * filled}{'.' * (_BAR_WIDTH - filled)}] {fraction:4.0%}")
            parts.append(f"{self.done:,}/{self.total:,} {self.unit}")
        else:
            parts.append(f"{self.done:,} {self.unit}")
        parts.append(f"{_human(rate)} {self.unit}/s")
        if self.total and rate > 0 and self.done < self.total:
            parts.append(f"ETA {_duration((self.total - self.done) / rate)}")
        else:
            parts.append(f"elapsed {_duration(elapsed)}")
        return "  ".join(parts)

    def _draw(self, now: float) -> None:
        self._drawn_at = now
        self._drawn = True
        self._stream.write("\r\x1b[2K" + self.render(now))
        self._stream.flush()

    def close(self) -> None:
        if self._enabled and self._drawn:
            self._draw(time.monotonic())
            self._stream.write("\n")
            self._stream.flush()
            self._drawn = False

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _human(value: float) -> str:
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= limit:
            return f"{value / limit:.1f}{suffix}"
    return f"{value:.0f}"


def _duration(seconds: float) -> str:
    seconds = int(seconds + 0.5)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
