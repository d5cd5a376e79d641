"""Progress with rate and ETA on stderr: a bar on a terminal, plain lines otherwise.

On a terminal the bar redraws in place.  Redirected (a log, CI, a pipe), a bar's
carriage returns would be noise, so it writes a plain line now and then instead:
every ``LINE_SECONDS`` seconds, or as each tenth of a known total completes (at
most once a second), and a last line with the total and the rate when done.
Commands printing ``--json`` pass ``enabled=False``: nothing extra at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from types import TracebackType
from typing import Any, Self, TextIO

from ._output import printable

_REDRAW_SECONDS = 0.1
_BAR_WIDTH = 24
#: Without a terminal: a line at least this often while work goes on ...
LINE_SECONDS = 5.0
#: ... and one per tenth of a known total, but never more than one a second.
_LINE_STEPS = 10
_LINE_MIN_SECONDS = 1.0
#: How often :func:`following` asks what is left, and how long it waits for the first answer.
_POLL_SECONDS = 1.0
_FIRST_LOOK_SECONDS = 10.0

log = logging.getLogger("chronik")

#: What is left to do, asked of whoever knows (a lag, a count after a checkpoint).
Left = Callable[[], Awaitable[int]]


class Progress:
    """``with Progress("rebuild", total=n) as bar: bar.advance(k)``; ``total`` may be unknown.

    ``enabled``: ``None`` (a bar on a terminal, plain lines otherwise), ``False``
    (nothing: the command prints JSON), ``True`` (a bar whatever the stream).
    """

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
        self._bar = _is_tty(self._stream) if enabled is None else enabled
        self._lines = enabled is None and not self._bar
        self._started = time.monotonic()
        self._drawn_at = 0.0
        self._drawn = False
        self._line_at = self._started
        self._line_step = 0

    def advance(self, count: int = 1, *, now: float | None = None) -> None:
        self.done += count
        now = time.monotonic() if now is None else now
        if self._bar and now - self._drawn_at >= _REDRAW_SECONDS:
            self._draw(now)
        elif self._lines and self._line_due(now):
            self._line(now)

    def _line_due(self, now: float) -> bool:
        since = now - self._line_at
        if since >= LINE_SECONDS:
            return True
        if not self.total or since < _LINE_MIN_SECONDS:
            return False
        return int(min(self.done / self.total, 1.0) * _LINE_STEPS) > self._line_step

    def _line(self, now: float) -> None:
        self._line_at = now
        if self.total:
            self._line_step = int(min(self.done / self.total, 1.0) * _LINE_STEPS)
        self._stream.write(self.render(now, bar=False) + "\n")
        self._stream.flush()

    def set_total(self, total: int | None) -> None:
        self.total = total

    def render(self, now: float | None = None, *, bar: bool = True) -> str:
        """The bar's current text (without the carriage return); ``bar=False``: as a
        plain line, the percentage without the drawing."""
        elapsed = max((now if now is not None else time.monotonic()) - self._started, 1e-9)
        rate = self.done / elapsed
        parts = [self.label]
        if self.total:
            fraction = min(self.done / self.total, 1.0)
            filled = int(fraction * _BAR_WIDTH)
            drawn = f"[{'#' * filled}{'.' * (_BAR_WIDTH - filled)}] " if bar else ""
            parts.append(f"{drawn}{fraction:4.0%}" if bar else f"{fraction:.0%}")
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
        if self._bar and self._drawn:
            self._draw(time.monotonic())
            self._stream.write("\n")
            self._stream.flush()
            self._drawn = False
        elif self._lines and self.done:
            # The last word: how much, how fast (a run that did nothing says nothing).
            self._line(time.monotonic())
            self._lines = False

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


@contextlib.asynccontextmanager
async def following(
    label: str, left: Left, *, unit: str = "events", enabled: bool | None = None
) -> AsyncIterator[Progress]:
    """A ``Progress`` for the body's work: ``left()`` at the start is the total; asked
    again every second, the difference is what was done.  It closes (its last line)
    once nothing is left, so a long-running body goes quiet after catching up."""
    try:
        # Bounded: a broker that does not answer must not hold the work up for long
        # (the work finds out about it itself, and says so).
        async with asyncio.timeout(_FIRST_LOOK_SECONDS):
            total = await left()
    except Exception as error:
        log.warning("no progress for %s: %s", label, str(error) or type(error).__name__)
        total = 0
    with Progress(label, total, unit=unit, enabled=enabled) as bar:

        async def update() -> int:
            remaining = await left()
            gained = total - remaining - bar.done
            if gained > 0:
                bar.advance(gained)
            return remaining

        async def follow() -> None:
            remaining = total
            while remaining > 0:
                await asyncio.sleep(_POLL_SECONDS)
                remaining = await update()
            bar.close()

        async with alongside(label, follow, update if total else None):
            yield bar


@contextlib.asynccontextmanager
async def alongside(
    label: str,
    follow: Callable[[], Coroutine[Any, Any, None]],
    last: Callable[[], Awaitable[object]] | None = None,
) -> AsyncIterator[None]:
    """Run ``follow()`` (a display's refresh loop) beside the body; when the body is
    done, stop it and, if the body finished, run ``last()`` once: the last count, so
    that the closing line says how much was done in the end.  A display that fails
    only logs a warning: the work it followed reports its own errors."""
    task: asyncio.Task[None] = asyncio.create_task(follow())
    finished = False
    try:
        yield
        finished = True
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            try:
                await task
            except Exception as error:
                log.warning("progress display for %s stopped: %s", label, error)
    if finished and last is not None:
        try:
            await last()
        except Exception as error:
            log.warning("progress display for %s stopped: %s", label, error)
