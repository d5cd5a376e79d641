"""What ``chronik consume --metrics-port`` measures: the group's lag and its dead letters.

Lag is asked of the broker at scrape time (``messaging.consumer_lag``: committed
offset vs high watermark, per topic and partition), or, for a Kafka-fed
projection, from the offsets its read model holds (``messaging.projection_lag``),
which are the truth the group's commits trail.  It is the *group's* lag, not this
member's: a member of a group of three is ready when the group keeps up, which is
what a load balancer or an alert cares about.

Dead letters are counted twice.  ``chronik_consumer_dead_letters_total{group,topic}``
counts what this process sent to ``TOPIC.dlq`` (``MetricsServer`` counts the
``chronik.consume.dead_letter`` spans the router ends once the broker confirmed
a copy): a rate to alert on, reset when the process restarts.  On the broker,
``chronik_consumer_dlq_messages{topic}`` is what ``TOPIC.dlq`` holds (high minus
low watermark): shared by every group reading TOPIC, and counting what retention
still keeps; the per-message detail (group, error) is ``chronik consumers
deadletters list``.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from ._metrics import MetricsServer, Readiness
from ._progress_kafka import group_lag

log = logging.getLogger("chronik")

LagRows = Callable[[], Awaitable[Sequence[Any]]]


class ConsumerWatch:
    """Gauges and readiness of one consumer group member (``watch_consumer`` builds it)."""

    def __init__(
        self,
        server: MetricsServer,
        *,
        bootstrap: str,
        group: str,
        topics: Sequence[str],
        lag: LagRows,
        running: Callable[[], bool],
        what: str,
    ) -> None:
        prom, registry = server._prom, server.registry
        self.bootstrap = bootstrap
        self.group = group
        self.topics = list(topics)
        self.ready_lag = server.ready_lag
        self.what = what
        self._lag = lag
        self._running = running
        labels = ["group", "topic", "partition"]
        self.lag_events = prom.Gauge(
            "chronik_consumer_lag_events",
            "Messages of a partition the group has not processed yet",
            labels,
            registry=registry,
        )
        self.lag_seconds = prom.Gauge(
            "chronik_consumer_lag_seconds",
            "Age of the oldest message of a partition the group has not processed yet",
            labels,
            registry=registry,
        )
        self.dead_letters = prom.Gauge(
            "chronik_consumer_dlq_messages",
            "Messages held in TOPIC.dlq (every group reading TOPIC sends there)",
            ["topic"],
            registry=registry,
        )

    async def refresh(self) -> None:
        for row in await self._lag():
            labels = (self.group, row.topic, str(row.partition))
            self.lag_events.labels(*labels).set(row.events)
            self.lag_seconds.labels(*labels).set(row.seconds)
        held = await asyncio.to_thread(dead_letter_counts, self.bootstrap, self.topics)
        for topic, count in held.items():
            self.dead_letters.labels(topic).set(count)

    async def readiness(self) -> Readiness:
        """Ready while the member runs and its group is at most ``ready_lag`` messages
        behind on its topics; the body names the group and its worst partition."""
        detail: dict[str, Any] = {"group": self.group, "what": self.what}
        if not self._running():
            return Readiness(False, {"consumer": {**detail, "phase": "stopping", "ready": False}})
        try:
            rows = list(await self._lag())
        except Exception as error:
            # Not ready, and why: the broker is what a consumer cannot work without.
            detail.update(ready=False, error=f"{type(error).__name__}: {error}")
            return Readiness(False, {"consumer": detail})
        behind = sum(row.events for row in rows)
        ready = bool(rows) and behind <= self.ready_lag
        detail.update(phase="consuming", ready=ready, lag_events=behind)
        if not rows:
            detail["error"] = f"none of the topics exists yet: {', '.join(self.topics)}"
        else:
            worst = max(rows, key=lambda row: (row.events, row.seconds))
            detail["worst_partition"] = {
                "topic": worst.topic,
                "partition": worst.partition,
                "lag_events": worst.events,
                "lag_seconds": round(worst.seconds, 3),
            }
        return Readiness(ready, {"consumer": detail})


def watch_consumer(
    server: MetricsServer | None,
    *,
    bootstrap: str,
    group: str,
    topics: Sequence[str],
    stop: asyncio.Event,
    what: str,
    projection_read_model: tuple[str, Any] | None = None,
) -> None:
    """Serve the lag, dead letters and readiness of consumer ``group`` on ``server``
    (nothing when ``--metrics-port`` was not given).  ``projection_read_model``: the
    projection's name and read model when the member feeds a Kafka-fed projection."""
    if server is None:
        return
    import messaging  # the command imported it already; Kafka support is an extra

    lag = group_lag(messaging, bootstrap, group, topics, projection_read_model)
    watch = ConsumerWatch(
        server,
        bootstrap=bootstrap,
        group=group,
        topics=topics,
        lag=lag,
        running=lambda: not stop.is_set(),
        what=what,
    )
    server.watch_async(watch.refresh, watch.readiness)


def dead_letter_counts(bootstrap: str, topics: Sequence[str], wait: float = 10.0) -> dict[str, int]:
    """Messages each ``TOPIC.dlq`` holds, by original topic (absent: no such DLQ yet)."""
    import confluent_kafka

    # A throwaway group that never subscribes: reading watermarks joins nothing.
    reader = confluent_kafka.Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"chronik.dlq-count.{uuid.uuid4().hex}",
            "enable.auto.commit": False,
        }
    )
    try:
        metadata = reader.list_topics(timeout=wait)
        counts: dict[str, int] = {}
        for topic in topics:
            described = metadata.topics.get(f"{topic}.dlq")
            if described is None or described.error is not None:
                continue
            total = 0
            for partition in described.partitions:
                low, high = reader.get_watermark_offsets(
                    confluent_kafka.TopicPartition(f"{topic}.dlq", partition), timeout=wait
                )
                total += max(0, high - low)
            counts[topic] = total
        return counts
    finally:
        reader.close()
