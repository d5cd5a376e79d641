"""The Kafka every Kafka case runs against: a real broker, or a mock cluster.

``KAFKA_BOOTSTRAP_SERVERS`` set: that broker, for every case.  Otherwise
librdkafka's mock cluster (``messaging.MockCluster``) in this process, one
broker; it lives as long as the ``with`` block (it keeps every message in
memory, so a case that produces a lot starts a fresh one per round).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

ENVIRONMENT = "KAFKA_BOOTSTRAP_SERVERS"


def given_servers() -> str | None:
    """The real broker's bootstrap servers, if one is configured."""
    return os.environ.get(ENVIRONMENT) or None


def broker_description(per_round: bool = False) -> str:
    """What the rows' ``extra`` says the case ran against."""
    if given_servers():
        return ENVIRONMENT
    return "librdkafka mock cluster" + (" (fresh per round)" if per_round else " (1 broker)")


def kafka_missing() -> str | None:
    """Why the Kafka cases cannot run here (``None``: they can)."""
    try:
        import confluent_kafka  # noqa: F401

        from messaging import MockCluster, Relay  # noqa: F401
    except ImportError as error:
        return f"messaging (or confluent-kafka) cannot be imported ({error})"
    return None


@contextlib.contextmanager
def kafka_cluster() -> Iterator[str]:
    """Yield bootstrap servers: the configured broker, or a mock cluster of one broker."""
    servers = given_servers()
    if servers:
        yield servers
        return
    from messaging import MockCluster

    with MockCluster(1) as cluster:
        yield cluster.bootstrap_servers


def cluster_for_run(context: Any) -> str:
    """Bootstrap servers that stay up until the run ends (``context``: a
    ``BenchContext``, which closes the mock cluster, if one was started)."""
    servers = given_servers()
    if servers:
        return servers
    from messaging import MockCluster

    cluster = MockCluster(1)
    context.on_close(cluster.close)
    return cluster.bootstrap_servers
