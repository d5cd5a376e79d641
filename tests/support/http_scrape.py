"""Scraping a command's ``--metrics-port`` endpoints from a test: find the address
it printed, GET a path, poll until a condition holds (a hang guard, not a timing)."""

from __future__ import annotations

import queue
import re
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from typing import TypeVar

T = TypeVar("T")

#: A hang guard, not a timing assertion: the conditions normally hold in a second.
DEADLINE = 90.0
_ADDRESS = re.compile(r"metrics on (http://127\.0\.0\.1:\d+)/metrics")


def get(url: str, *, timeout: float = 60.0) -> tuple[int, str]:
    """The status and body of ``GET url`` (an HTTP error status is an answer too)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def poll(check: Callable[[], T | None], *, deadline: float = DEADLINE) -> T:
    """The first truthy result of ``check()``; fail the test if none comes in time."""
    give_up = time.monotonic() + deadline
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < give_up, "condition never held"
        time.sleep(0.05)


class StderrReader:
    """A process's stderr, read line by line in a thread: the pipe never fills up (a
    full pipe would block the process), and waiting for a line can time out."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        assert process.stderr is not None
        self.lines: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        self._process = process
        self._thread = threading.Thread(target=self._pump, args=(process.stderr,), daemon=True)
        self._thread.start()

    def _pump(self, stream: Iterable[str]) -> None:
        for line in stream:
            self.lines.append(line)
            self._queue.put(line)
        self._queue.put("")  # the process closed it

    def metrics_url(self, *, deadline: float = DEADLINE) -> str:
        """The address the process printed (it was given port 0: any free one)."""
        while True:
            line = self._queue.get(timeout=deadline)
            assert line, f"the process ended before serving metrics: exit {self._process.wait()}"
            match = _ADDRESS.search(line)
            if match:
                return match.group(1)

    def text(self, *, deadline: float = DEADLINE) -> str:
        """All of stderr, once the process has closed it."""
        self._thread.join(timeout=deadline)
        assert not self._thread.is_alive(), "the process never closed its stderr"
        return "".join(self.lines)


def metrics_url(process: subprocess.Popen[str], *, deadline: float = DEADLINE) -> str:
    """The address a process printed on stderr; the rest of stderr is drained unread."""
    return StderrReader(process).metrics_url(deadline=deadline)
