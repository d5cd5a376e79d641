"""librdkafka's mock Kafka cluster: an embedded broker for the CLI, tests and demos.

A client configured with ``test.mock.num.brokers`` starts a cluster of mock
brokers inside librdkafka, serving the real Kafka protocol on 127.0.0.1 ports.
The Python client has no call returning their address: librdkafka prints it in
the creating client's debug log ("Mock cluster ... bootstrap.servers=..."),
which reaches a Python logger only through ``poll()``.  So ``MockCluster``
routes that client's log to a private logger, polls until the line appears,
and keeps the client alive: the cluster dies with it.

Nothing can take a mock broker down from Python, so an outage test runs the
cluster in a child process (``MockClusterProcess``, this module's ``__main__``)
and kills it.

Measured limits: the mock fetch treats the whole log as committed, so aborted
transactions stay visible to ``read_committed`` consumers (see the relay's
exactly-once notes); and each partition keeps only its newest ~5 MB (older
segments are dropped as new batches arrive; nothing configures it), so a
backlog bigger than that loses its start: ~60,000 uncompressed CloudEvents on
the default 4 partitions.  A consumer then waits for offsets that are gone.
"""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import time
from typing import Any

from ._errors import MockClusterError

_ADDRESS = re.compile(r"bootstrap\.servers=(\S+)")
_SERVE = "import sys; from messaging._mock_cluster import serve; serve(*sys.argv[1:3])"


class _AddressCatcher(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.address: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        match = _ADDRESS.search(record.getMessage())
        if match and self.address is None:
            self.address = match.group(1).rstrip(",")


class MockCluster:
    """A mock cluster in this process, alive until ``close()``."""

    def __init__(self, brokers: int = 1, *, timeout: float = 10.0) -> None:
        from confluent_kafka import Producer

        if isinstance(brokers, bool) or not isinstance(brokers, int) or brokers < 1:
            # librdkafka starts no cluster then, and says nothing: we would wait it out.
            raise MockClusterError(f"a mock cluster needs at least one broker, not {brokers!r}")
        catcher = _AddressCatcher()
        # A logger of our own, not propagating: librdkafka's debug chatter must not
        # reach the application's handlers.
        logger = logging.getLogger(f"chronik.mockcluster.{id(catcher)}")
        logger.propagate = False
        logger.setLevel(logging.DEBUG)
        logger.addHandler(catcher)
        self._client: Any = Producer(
            {"test.mock.num.brokers": brokers, "debug": "mock", "logger": logger}
        )
        deadline = time.monotonic() + timeout
        while catcher.address is None and time.monotonic() < deadline:
            self._client.poll(0.05)
        if catcher.address is None:
            raise MockClusterError(f"librdkafka's mock cluster gave no address in {timeout} s")
        # Stop the debug log: it would fill memory if nobody polls it.
        logger.removeHandler(catcher)
        logger.addHandler(logging.NullHandler())
        self.bootstrap_servers: str = catcher.address
        self.brokers = brokers

    def close(self) -> None:
        """Stop the cluster (it lives as long as its creating client)."""
        client, self._client = self._client, None
        del client

    def __enter__(self) -> MockCluster:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"MockCluster({self.bootstrap_servers})"


class MockClusterProcess:
    """A mock cluster in a child process, so that a test can kill it (an outage)."""

    def __init__(self, brokers: int = 1, *, timeout: float = 10.0) -> None:
        self.process = subprocess.Popen(  # noqa: S603 (our interpreter, fixed arguments)
            # -c rather than -m: running a module of an imported package warns.
            [sys.executable, "-c", _SERVE, str(brokers), str(timeout)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        # The child prints one line once the cluster is up, or exits (EOF) when it
        # cannot start within ``timeout``: readline cannot hang past that.
        line = self.process.stdout.readline()
        if not line.startswith("bootstrap.servers="):
            self.kill()
            raise MockClusterError(f"the mock cluster process said {line!r}")
        self.bootstrap_servers = line.split("=", 1)[1].strip()

    def kill(self) -> None:
        """SIGKILL: every broker goes away at once, mid-request."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()

    def __enter__(self) -> MockClusterProcess:
        return self

    def __exit__(self, *_: object) -> None:
        self.kill()


def serve(brokers: str, timeout: str) -> None:
    """Run a cluster until stdin closes, after printing its address (the child's job)."""
    cluster = MockCluster(int(brokers), timeout=float(timeout))
    sys.stdout.write(f"bootstrap.servers={cluster.bootstrap_servers}\n")
    sys.stdout.flush()
    # Live until the parent closes our stdin (or kills us).
    sys.stdin.read()
    cluster.close()
