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


def _lines(stream: Iterable[str]) -> queue.Queue[str]:
    """The stream's lines, read in a thread so that waiting on them can time out."""
    found: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in stream:
            found.put(line)
        found.put("")  # the process closed it

    threading.Thread(target=pump, daemon=True).start()
    return found


def metrics_url(process: subprocess.Popen[str], *, deadline: float = DEADLINE) -> str:
    """The address the process printed on stderr (it was given port 0: any free one)."""
    assert process.stderr is not None
    lines = _lines(process.stderr)
    while True:
        line = lines.get(timeout=deadline)
        assert line, f"the process ended before serving metrics: exit {process.wait()}"
        match = _ADDRESS.search(line)
        if match:
            return match.group(1)
