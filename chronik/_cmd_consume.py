"""``chronik consume`` and ``chronik consumers status|deadletters``: Kafka consumers.

``consume`` runs one member of a consumer group for a projection of the app (a
Kafka-fed read model) or a plain handler (``module:attr``, an ``async def
handle(event, context)``) until SIGINT/SIGTERM, then leaves the group cleanly.
Without ``KAFKA_BOOTSTRAP_SERVERS`` the commands run against an embedded mock
cluster, which lives (empty) as long as the command: useful to try the commands,
not to share topics between processes.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
from collections.abc import Sequence
from typing import Any

from projections import MongoReadModel, RedisReadModel

from ._app import aggregate_stream_prefix
from ._context import Context
from ._errors import ExitCode, UnavailableError, UsageError
from ._metrics_consumer import watch_consumer
from ._metrics_options import add_metrics_options, metrics_from
from ._output import print_json, print_table
from ._parsing import positive_int
from ._progress_kafka import consumer_catch_up, dead_letter_replay
from ._projecting import stop_on_signals

TOPIC_PREFIX = "chronik."

#: The read models a Kafka-fed projection can write (they keep per-partition offsets).
KAFKA_READ_MODELS = (RedisReadModel, MongoReadModel)


def _messaging() -> Any:
    """The messaging package, imported on use: confluent-kafka is an optional extra,
    and the rest of the command works without it."""
    try:
        import messaging
    except ImportError as error:
        raise UnavailableError(
            f"Kafka support is not installed ({error})", "pip install 'chronik[kafka]'"
        ) from None
    return messaging


def register(commands: Any, parents: list[argparse.ArgumentParser]) -> None:
    run = commands.add_parser(
        "consume",
        parents=parents,
        help="consume topics in a consumer group (until Ctrl-C / SIGTERM)",
        description="Run one member of consumer group GROUP: a projection of the app fed "
        "from Kafka (its per-partition offsets commit with the read model), or a handler "
        "'module:attr' (async def handle(event, context)). Failing messages are retried, "
        "then sent through TOPIC.retry.N to TOPIC.dlq. SIGINT/SIGTERM leave the group "
        "cleanly (exit 0).",
    )
    run.add_argument("--group", required=True, metavar="GROUP")
    what = run.add_mutually_exclusive_group(required=True)
    what.add_argument("--projection", metavar="NAME")
    what.add_argument("--handler", dest="handler_ref", metavar="MODULE:ATTR")
    _topics_option(run)
    run.add_argument("--batch-size", type=positive_int, default=500, metavar="N")
    run.add_argument(
        "--start",
        choices=("earliest", "latest"),
        default="earliest",
        help="where a handler's group starts on partitions it has no offset for (default: "
        "earliest, the whole retained history; projections always start at what their read "
        "model has not applied)",
    )
    run.add_argument(
        "--offset-gap",
        choices=("stop", "resume"),
        default="stop",
        help="when the offset to resume from was deleted by retention: stop that partition "
        "(default) or resume at the oldest retained message; reported either way",
    )
    add_metrics_options(run)
    run.set_defaults(handler=run_consume)

    group = commands.add_parser(
        "consumers",
        parents=parents,
        help="consumer lag and dead-letter topics",
        description="Lag per consumer group, topic and partition; the dead-letter topics.",
    )
    sub = group.add_subparsers(dest="consumers_command", metavar="COMMAND", required=True)
    status = sub.add_parser(
        "status",
        parents=parents,
        help="lag per group, topic and partition (events and seconds)",
        description="Lag of consumer groups (committed offset vs high watermark) and of the "
        "app's Kafka-fed projections (the offsets their read models hold).",
    )
    status.add_argument("--group", action="append", default=[], metavar="GROUP")
    _topics_option(status)
    status.add_argument("--json", action="store_true", help="print a JSON list")
    status.set_defaults(handler=run_status)

    letters = sub.add_parser("deadletters", parents=parents, help="list or replay a DLQ")
    letters_sub = letters.add_subparsers(dest="dlq_command", metavar="COMMAND", required=True)
    listing = letters_sub.add_parser("list", parents=parents, help="what TOPIC.dlq holds")
    listing.add_argument("topic", metavar="TOPIC", help="the original topic (or its .dlq)")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=run_dlq_list)
    replay = letters_sub.add_parser(
        "replay", parents=parents, help="send TOPIC.dlq's messages back to their topic"
    )
    replay.add_argument("topic", metavar="TOPIC", help="the original topic (or its .dlq)")
    replay.set_defaults(handler=run_dlq_replay)


def _topics_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--topic",
        action="append",
        default=[],
        metavar="TOPIC",
        help=f"a topic to read (repeatable; default: {TOPIC_PREFIX}<type> for each of the "
        "app's aggregate types, the relay's default mapping)",
    )


def default_topics(ctx: Context, given: Sequence[str]) -> list[str]:
    if given:
        return list(given)
    topics = []
    for aggregate in ctx.app().aggregates:
        prefix = aggregate_stream_prefix(aggregate)
        if prefix:
            topics.append(TOPIC_PREFIX + prefix.rstrip("-"))
    if not topics:
        raise UsageError("the app has no aggregate types to name topics after", "give --topic")
    return topics


def load_handler(reference: str) -> Any:
    module_name, colon, attribute = reference.partition(":")
    if not colon or not module_name or not attribute:
        raise UsageError(f"--handler {reference!r}: expected 'module:attr'")
    try:
        target: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as error:
        raise UsageError(f"--handler {reference!r}: {error}") from None
    if not callable(target):
        raise UsageError(f"--handler {reference!r} is not callable")
    return target


async def run_consume(ctx: Context, args: argparse.Namespace) -> int:
    messaging = _messaging()
    if not ctx.config.debug:
        logging.getLogger("chronik").setLevel(logging.INFO)
    topics = default_topics(ctx, args.topic)
    processor: Any
    # Everything the member is built from is checked before a server is asked or a
    # line is printed: the consume loop itself restarts on errors, as on an outage.
    try:
        topics = messaging.check_consumer(args.group, topics)
        options = messaging.ConsumerOptions(
            batch_size=args.batch_size, start=args.start, offset_gap=args.offset_gap
        )
        if args.projection:
            projection = ctx.app().projection(args.projection)
            read_model = await ctx.read_models.live(projection)
            if not isinstance(read_model, KAFKA_READ_MODELS):
                raise UsageError(
                    f"projection {args.projection!r}: Kafka-fed projections use Redis or MongoDB"
                )
            processor = messaging.KafkaProjection(projection, read_model, known=ctx.app().codec())
            what = f"projection {args.projection} ({ctx.read_models.describe(projection)})"
        else:
            processor = messaging.HandlerConsumer(
                args.group, load_handler(args.handler_ref), ctx.app().codec()
            )
            what = f"handler {args.handler_ref}"
    except messaging.MessagingConfigError as error:
        raise UsageError(str(error), "see 'chronik consume --help'") from None
    stop = asyncio.Event()
    bootstrap = await ctx.services.kafka()
    ctx.note(
        f"consuming {', '.join(topics)} as group {args.group} into {what}; "
        "Ctrl-C or SIGTERM leaves the group cleanly"
    )
    async with metrics_from(ctx, args) as metrics:
        fed = (projection.name, read_model) if args.projection else None
        watch_consumer(metrics, bootstrap=bootstrap, group=args.group, topics=topics, stop=stop,
                       what=what, projection_read_model=fed)  # fmt: skip
        catching_up = consumer_catch_up(messaging, bootstrap, args.group, topics, fed)
        with stop_on_signals(stop):
            async with catching_up:
                stats = await messaging.consume(
                    processor,
                    bootstrap=bootstrap,
                    group=args.group,
                    topics=topics,
                    stop=stop,
                    options=options,
                )
    ctx.note(f"left group {args.group}: {stats.messages} messages in {stats.batches} batches")
    return ExitCode.OK


async def kafka_partitions(ctx: Context, projection: Any, read_model: Any) -> list[Any]:
    """A Kafka-fed projection's per-partition lag for ``projections status`` ([] when the
    projection is fed from the store, or no broker is configured to ask)."""
    bootstrap = ctx.config.kafka_bootstrap_servers
    if not isinstance(read_model, KAFKA_READ_MODELS):
        return []
    try:
        import messaging
    except ImportError:
        return []  # without Kafka support nothing is fed from Kafka
    offsets = await messaging.partition_offsets(read_model, projection.name)
    if not offsets:
        return []
    topics = sorted({field.rpartition(":")[0] for field in offsets})
    if not bootstrap:
        ctx.note(
            f"{projection.name} is fed from Kafka ({', '.join(topics)}); set "
            "KAFKA_BOOTSTRAP_SERVERS to see its per-partition lag"
        )
        return []
    return list(await messaging.projection_lag(bootstrap, read_model, projection.name, topics))


async def kafka_fed_lag(ctx: Context, bootstrap: str) -> list[Any]:
    """Lag rows of the app's projections whose read model holds Kafka offsets."""
    messaging = _messaging()
    rows: list[Any] = []
    for projection in ctx.projection_targets():
        read_model = await ctx.read_models.live(projection)
        if not isinstance(read_model, KAFKA_READ_MODELS):
            continue
        offsets = await messaging.partition_offsets(read_model, projection.name)
        topics = sorted({field.rpartition(":")[0] for field in offsets})
        if topics:
            rows += await messaging.projection_lag(bootstrap, read_model, projection.name, topics)
    return rows


async def run_status(ctx: Context, args: argparse.Namespace) -> int:
    rows: list[Any] = []
    topics = default_topics(ctx, args.topic) if args.group else []
    for group in args.group:
        try:
            # Retry and DLQ topics may be listed here: a lag query reads any topic.
            _messaging().check_consumer(group, topics, side_topics=True)
        except _messaging().MessagingConfigError as error:
            raise UsageError(str(error), "see 'chronik consumers status --help'") from None
    bootstrap = await ctx.services.kafka()
    if args.group:
        for group in args.group:
            rows += await _messaging().consumer_lag(bootstrap, group, topics)
    rows += await kafka_fed_lag(ctx, bootstrap)
    if args.json:
        print_json([row.to_json() for row in rows], ctx.out)
        return ExitCode.OK
    print_table(
        ["group", "topic", "partition", "committed", "low", "high", "lag", "lag s", "lost"],
        [
            [
                r.group,
                r.topic,
                r.partition,
                r.committed,
                r.low_watermark,
                r.high_watermark,
                r.events,
                f"{r.seconds:.1f}",
                r.lost,
            ]
            for r in rows
        ],
        ctx.out,
    )
    if not rows:
        ctx.note("no lag to show: name consumer groups with --group")
    for r in rows:
        if r.lost:
            ctx.note(
                f"{r.group}: {r.topic}[{r.partition}] lost {r.lost} message(s) to retention "
                f"before they were processed (committed {r.committed}, oldest kept "
                f"{r.low_watermark}); a projection needs a rebuild from the event store"
            )
    return ExitCode.OK


async def run_dlq_list(ctx: Context, args: argparse.Namespace) -> int:
    bootstrap = await ctx.services.kafka()
    letters = await _messaging().list_dead_letters(bootstrap, args.topic)
    if args.json:
        print_json([letter.to_json() for letter in letters], ctx.out)
        return ExitCode.OK
    print_table(
        ["dlq", "partition", "offset", "type", "from", "attempts", "error", "replayed"],
        [
            [
                d.dlq,
                d.partition,
                d.offset,
                d.event_type,
                f"{d.original_topic}[{d.original_partition}]@{d.original_offset}",
                d.attempts,
                f"{d.error_type}: {d.error}",
                "yes" if d.replayed else "no",
            ]
            for d in letters
        ],
        ctx.out,
    )
    return ExitCode.OK


async def run_dlq_replay(ctx: Context, args: argparse.Namespace) -> int:
    bootstrap = await ctx.services.kafka()
    async with dead_letter_replay(_messaging(), bootstrap, args.topic) as bar:
        sent = await _messaging().replay_dead_letters(bootstrap, args.topic)
        bar.advance(max(sent - bar.done, 0))
    ctx.note(f"sent {sent} dead letters back to their topics")
    return ExitCode.OK
