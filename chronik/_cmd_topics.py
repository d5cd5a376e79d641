"""``chronik topics tail TOPIC``: what is on a Kafka topic, decoded as CloudEvents."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import uuid
from typing import Any

from messaging import CloudEventFormatError, decode

from ._context import Context
from ._errors import ExitCode, NotFoundError, UnavailableError
from ._output import compact, print_table
from ._parsing import positive_int
from ._projecting import stop_on_signals

_COLUMNS = ["partition", "offset", "key", "type", "id", "time", "data"]


def register(commands: Any, parents: list[argparse.ArgumentParser]) -> None:
    group = commands.add_parser(
        "topics",
        parents=parents,
        help="read Kafka topics (decoded as CloudEvents)",
        description="Read what the relay (or anyone) wrote to Kafka.",
    )
    sub = group.add_subparsers(dest="topics_command", metavar="COMMAND", required=True)
    tail = sub.add_parser(
        "tail",
        parents=parents,
        help="print a topic's messages, decoded as CloudEvents",
        description="Print the messages on TOPIC from the beginning (or the last --max), "
        "decoded as CloudEvents (binary or structured mode); --follow keeps printing new "
        "ones until Ctrl-C.",
    )
    tail.add_argument("topic", metavar="TOPIC")
    tail.add_argument(
        "--max", type=positive_int, default=None, metavar="N", help="the last N of each partition"
    )
    tail.add_argument("--follow", action="store_true", help="keep printing new messages")
    tail.add_argument("--json", action="store_true", help="one JSON object per line")
    tail.set_defaults(handler=run_tail)


async def run_tail(ctx: Context, args: argparse.Namespace) -> int:
    bootstrap = await ctx.services.kafka()
    stop = asyncio.Event()
    rows: list[dict[str, Any]] = []

    def show(row: dict[str, Any]) -> None:
        if args.json:
            ctx.out.write(json.dumps(row, ensure_ascii=False) + "\n")
            ctx.out.flush()
        elif args.follow:
            ctx.out.write("  ".join(_cell(row[c]) for c in _COLUMNS) + "\n")
            ctx.out.flush()
        else:
            rows.append(row)

    with stop_on_signals(stop):
        try:
            await asyncio.to_thread(
                read_topic, bootstrap, args.topic, args.max, args.follow, stop, show
            )
        except NotFoundError as error:
            if ctx.services.kafka_embedded:
                error.hint = (
                    "the embedded cluster lives inside one process and starts empty: set "
                    "KAFKA_BOOTSTRAP_SERVERS to a broker the relay publishes to"
                )
            raise
    if not args.json and not args.follow:
        print_table(
            _COLUMNS,
            [[row[c] for c in _COLUMNS] for row in rows],
            ctx.out,
            empty=f"(topic {args.topic!r} is empty)",
        )
    return ExitCode.OK


def _cell(value: Any) -> str:
    return "-" if value is None else value if isinstance(value, str) else compact(value)


def read_topic(
    bootstrap: str,
    topic: str,
    limit: int | None,
    follow: bool,
    stop: asyncio.Event,
    show: Any,
) -> None:
    """Read ``topic`` (all partitions) from the start, or its last ``limit`` messages."""
    from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"chronik-tail-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "isolation.level": "read_committed",
            "logger": logging.getLogger("chronik.messaging.kafka"),
        }
    )
    try:
        try:
            metadata = consumer.list_topics(timeout=10)
        except KafkaException as error:
            raise UnavailableError(
                f"cannot reach Kafka at {bootstrap}: {error}", "check KAFKA_BOOTSTRAP_SERVERS"
            ) from None
        if topic not in metadata.topics or metadata.topics[topic].error is not None:
            raise NotFoundError(
                f"no topic {topic!r} on {bootstrap}",
                "the relay names topics chronik.<aggregate type>, e.g. chronik.ledger",
            )
        assignments = []
        for partition in sorted(metadata.topics[topic].partitions):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), 10)
            start = low if limit is None else max(low, high - limit)
            assignments.append(TopicPartition(topic, partition, start))
        consumer.assign(assignments)
        open_partitions = {a.partition for a in assignments}
        shown = 0
        while not stop.is_set() and (follow or open_partitions):
            message = consumer.poll(0.5)
            if message is None:
                continue
            failure = message.error()
            if failure is not None:
                if failure.code() == KafkaError._PARTITION_EOF:
                    open_partitions.discard(message.partition())
                    continue
                raise UnavailableError(f"reading {topic!r}: {failure.str()}", "retry")
            show(_row(message))
            shown += 1
            if limit is not None and not follow and shown >= limit * len(assignments):
                break
    finally:
        consumer.close()


def _row(message: Any) -> dict[str, Any]:
    where = f"{message.topic()}[{message.partition()}]@{message.offset()}"
    key = message.key()
    row: dict[str, Any] = {
        "partition": message.partition(),
        "offset": message.offset(),
        "key": key.decode(errors="replace") if key is not None else None,
    }
    try:
        event = decode(message.headers(), message.value(), key, where=where)
    except CloudEventFormatError as error:
        value = message.value() or b""
        return {
            **row,
            "type": "(not a CloudEvent)",
            "id": None,
            "time": None,
            "data": value[:200].decode(errors="replace"),
            "error": error.reason,
        }
    return {
        **row,
        "type": event.type,
        "id": event.id,
        "time": event.time,
        "data": event.data,
        "subject": event.subject,
        "extensions": event.extensions,
    }
