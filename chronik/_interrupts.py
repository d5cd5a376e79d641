"""How Ctrl-C (SIGINT) and SIGTERM end a command.

A command that can stop gracefully (``run``, ``rebuild``) registers a stop event
with ``stopping``: the first signal sets it, and the command finishes its batch
and returns.  Any other moment, or a second signal, cancels the command's task,
so every ``async with`` unwinds: connections close and the embedded servers the
command started stop with it.  Left to Python, SIGTERM would kill the process
on the spot and leave a redis-server or postgres behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterator

_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_current: Interrupts | None = None


class Interrupts:
    """Signal handling for the command running in ``task``."""

    def __init__(self, task: asyncio.Task[object]) -> None:
        self.task = task
        #: The name of the first signal received ("SIGINT"), or None.
        self.received: str | None = None
        #: Whether a signal cancelled the task (rather than asking a runner to stop).
        self.cancelled = False
        self._stops: list[asyncio.Event] = []

    @contextlib.contextmanager
    def installed(self) -> Iterator[Interrupts]:
        global _current
        loop = asyncio.get_running_loop()
        installed = []
        for number in _SIGNALS:
            try:
                loop.add_signal_handler(number, self._on_signal, number)
                installed.append(number)
            except (NotImplementedError, RuntimeError):  # not the main thread, or Windows
                pass
        previous, _current = _current, self
        try:
            yield self
        finally:
            _current = previous
            for number in installed:
                loop.remove_signal_handler(number)

    @contextlib.contextmanager
    def stopping(self, stop: asyncio.Event) -> Iterator[None]:
        """While inside, a first signal sets ``stop`` instead of cancelling."""
        self._stops.append(stop)
        try:
            yield
        finally:
            self._stops.remove(stop)

    def _on_signal(self, number: int) -> None:
        first = self.received is None
        self.received = self.received or signal.Signals(number).name
        if first and self._stops:
            self._stops[-1].set()
        elif not self.task.done():
            self.cancelled = True
            self.task.cancel()


@contextlib.contextmanager
def stop_on_signals(stop: asyncio.Event) -> Iterator[None]:
    """SIGINT and SIGTERM set ``stop``: runners finish their batch and return cleanly."""
    if _current is None:
        yield  # no command running (a test calling a handler): nothing to route
        return
    with _current.stopping(stop):
        yield


def current() -> Interrupts | None:
    return _current
