"""The demo's Kafka part: relay what was seeded, then show a few events on their topics."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from messaging import Relay, RelayOptions

from ._cmd_relay import forget_checkpoint
from ._cmd_topics import read_topic
from ._context import Context
from ._output import compact

DEMO_RELAY = "demo"
SAMPLES_PER_TOPIC = 2


async def publish_demo(ctx: Context, stream_types: list[str]) -> dict[str, Any]:
    """Publish the feed with the relay; what arrived on which topic, and a few samples."""
    store = await ctx.services.store()
    bootstrap = await ctx.services.kafka()
    if ctx.services.kafka_embedded:
        # A new mock cluster is empty: publish everything again.
        await forget_checkpoint(store, DEMO_RELAY)
    options = RelayOptions(
        name=DEMO_RELAY,
        source=f"chronik/{ctx.config.schema}",
        delivery_timeout=10.0,
        create_checkpoint_topic=not ctx.services.kafka_embedded,
    )
    checkpoint = await Relay(store, bootstrap, options).publish_pending()
    counts: Counter[str] = Counter()
    samples: list[dict[str, Any]] = []
    for kind in stream_types:
        topic = options.topics.prefix + kind
        seen: list[dict[str, Any]] = []
        await asyncio.to_thread(
            read_topic, bootstrap, topic, None, False, asyncio.Event(), seen.append
        )
        counts[topic] = len(seen)
        samples += [{"topic": topic, **row} for row in seen[:SAMPLES_PER_TOPIC]]
    return {
        "bootstrap_servers": bootstrap,
        "embedded": ctx.services.kafka_embedded,
        "published_events": checkpoint.published_events,
        "topics": dict(counts),
        "samples": samples,
    }


def print_kafka(ctx: Context, kafka: dict[str, Any]) -> None:
    where = (
        "the embedded mock cluster (gone when this command ends; set KAFKA_BOOTSTRAP_SERVERS "
        "to keep them)"
        if kafka["embedded"]
        else kafka["bootstrap_servers"]
    )
    topics = ", ".join(f"{topic} ({n})" for topic, n in kafka["topics"].items())
    ctx.out.write(f"  relayed {kafka['published_events']} events to Kafka on {where}: {topics}\n")
    for row in kafka["samples"]:
        ctx.out.write(
            f"    {row['topic']}[{row['partition']}]@{row['offset']} key={row['key']} "
            f"{row['type']} {compact(row['data'])}\n"
        )
