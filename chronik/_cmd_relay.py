"""``chronik relay``: publish the feed and the outbox to Kafka; ``relay status``."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
from typing import Any

from psycopg import sql

from messaging import (
    DEFAULT_MAX_MESSAGE_BYTES,
    BrokerUnavailableError,
    CloudEventMode,
    ConfluentRegistryError,
    MessagingConfigError,
    Relay,
    RelayOptions,
    RelayStatus,
    SchemaRegistryOptions,
    SubjectStrategy,
    TopicMapping,
    check_topic,
    relay_status,
)

from ._context import Context
from ._errors import ExitCode, NotFoundError, UnavailableError, UsageError
from ._metrics_options import add_metrics_options, metrics_from
from ._output import print_json, print_table
from ._parsing import positive_int
from ._progress_kafka import relay_catch_up
from ._projecting import stop_on_signals

#: The relay name used with the embedded mock cluster: its checkpoint is reset on
#: every run, because the cluster (and all it was sent) dies with the process.
EMBEDDED_RELAY = "embedded"


def register(commands: Any, parents: list[argparse.ArgumentParser]) -> None:
    relay = commands.add_parser(
        "relay",
        parents=parents,
        help="publish the feed and the outbox to Kafka (until Ctrl-C / SIGTERM)",
        description="Publish every event of the feed, and every outbox message, to Kafka as "
        "CloudEvents (key = stream id; topic per aggregate type, e.g. chronik.ledger). "
        "At-least-once with a checkpoint in PostgreSQL, or --exactly-once with Kafka "
        "transactions. Several processes may run the same relay: one leads, the others "
        "stand by. Without KAFKA_BOOTSTRAP_SERVERS it publishes to an embedded mock "
        "cluster that lives only as long as this process.",
    )
    relay.add_argument("--name", default="default", help="relay name (default: default)")
    relay.add_argument(
        "--exactly-once",
        action="store_true",
        help="commit messages and checkpoint in one Kafka transaction",
    )
    relay.add_argument(
        "--structured",
        action="store_true",
        help="CloudEvents structured mode (the whole event as the JSON value)",
    )
    relay.add_argument(
        "--topic-prefix",
        default="chronik.",
        metavar="PREFIX",
        help="events go to PREFIX<aggregate type> (default: chronik.)",
    )
    relay.add_argument("--batch-size", type=positive_int, default=1000, metavar="N")
    relay.add_argument(
        "--delivery-timeout",
        type=positive_int,
        default=30,
        metavar="SECONDS",
        help="a message without a delivery report after this long counts as failed (default: 30)",
    )
    relay.add_argument(
        "--max-message-bytes",
        type=positive_int,
        default=DEFAULT_MAX_MESSAGE_BYTES,
        metavar="BYTES",
        help="the producer's message.max.bytes; give publish() the same max_message_bytes "
        f"(default: {DEFAULT_MAX_MESSAGE_BYTES}, Kafka's)",
    )
    schemas = relay.add_argument_group("schemas on the wire")
    schemas.add_argument(
        "--schema-base-url",
        metavar="URL",
        help="where 'chronik schemas export --out' output is served: dataschema becomes "
        "URL/<type>/v<version>.json (env CHRONIK_SCHEMA_BASE_URL; default "
        "urn:chronik:schema:<type>:<version>)",
    )
    schemas.add_argument(
        "--no-dataschema",
        action="store_true",
        help="do not set CloudEvents dataschema (set by default for registered schemas)",
    )
    schemas.add_argument(
        "--schema-registry-url",
        metavar="URL",
        help="register JSON Schemas with this Confluent Schema Registry and write values in "
        "its wire format (env SCHEMA_REGISTRY_URL; binary mode only)",
    )
    schemas.add_argument(
        "--subject-strategy",
        choices=[s.value for s in SubjectStrategy],
        default=SubjectStrategy.TOPIC.value,
        help="Schema Registry subject names: topic = <topic>-value (default), record = "
        "<event type>, topic_record = <topic>-<event type>",
    )
    relay.add_argument(
        "--until-caught-up",
        action="store_true",
        help="publish what is there now, then exit (no leader lock, no retries)",
    )
    add_metrics_options(relay)
    relay.set_defaults(handler=run_relay)
    sub = relay.add_subparsers(dest="relay_command", metavar="COMMAND")
    state = sub.add_parser(
        "status",
        parents=parents,
        help="checkpoint, lag, leader, published counts, last error",
        description="Per relay: mode, leader (backend pid holding its lock), checkpoint, lag "
        "in events and seconds, unpublished outbox messages, published counts, and the "
        "error it is stuck on; and the open transaction holding the feed back, if one does.",
    )
    state.add_argument("--name", default=None, help="only this relay")
    state.add_argument("--json", action="store_true", help="print a JSON list")
    state.set_defaults(handler=run_status)


async def run_relay(ctx: Context, args: argparse.Namespace) -> int:
    # The flags are checked before any server is touched.
    try:
        check_topic(args.topic_prefix + "x", "--topic-prefix")
    except ValueError as error:
        raise UsageError(str(error), "use letters, digits, '.', '_' and '-'") from None
    try:
        options = _options(ctx, args, args.name)
    except MessagingConfigError as error:
        raise UsageError(str(error), "see 'chronik relay --help'") from None
    store = await ctx.services.store()
    bootstrap = await ctx.services.kafka()
    name = args.name
    if ctx.services.kafka_embedded:
        name = EMBEDDED_RELAY
        await forget_checkpoint(store, name)
        ctx.note(f"relay {name!r}: publishing the whole feed to the embedded cluster")
        # The mock cluster has no controller to create topics with.
        options = dataclasses.replace(options, name=name, create_checkpoint_topic=False)
    relay = Relay(store, bootstrap, options)
    try:
        if args.until_caught_up:
            async with relay_catch_up(relay):
                checkpoint = await relay.publish_pending()
            ctx.note(
                f"relay {name!r} caught up at {checkpoint.events}: "
                f"{checkpoint.published_events} events, {checkpoint.published_outbox} outbox "
                "messages published in all"
            )
            return ExitCode.OK
        if not ctx.config.debug:
            # A long-running process: say what it does (leading, standby, stuck).
            logging.getLogger("chronik").setLevel(logging.INFO)
        ctx.note(f"relay {name!r} ({options.mode_name}); Ctrl-C or SIGTERM stops cleanly")
        stop = asyncio.Event()
        async with metrics_from(ctx, args) as metrics:
            if metrics is not None:
                metrics.watch_relay(relay)
            with stop_on_signals(stop):
                async with relay_catch_up(relay):
                    await relay.run(stop)
    except BrokerUnavailableError as error:
        raise UnavailableError(str(error), "check KAFKA_BOOTSTRAP_SERVERS") from None
    except ConfluentRegistryError as error:
        if error.status is not None:
            raise  # the registry answered: its refusal is the message
        raise UnavailableError(str(error), "check SCHEMA_REGISTRY_URL") from None
    return ExitCode.OK


def _options(ctx: Context, args: argparse.Namespace, name: str) -> RelayOptions:
    return RelayOptions(
        name=name,
        topics=TopicMapping(prefix=args.topic_prefix),
        source=f"chronik/{ctx.config.schema}",
        mode=CloudEventMode.STRUCTURED if args.structured else CloudEventMode.BINARY,
        exactly_once=args.exactly_once,
        batch_size=args.batch_size,
        delivery_timeout=float(args.delivery_timeout),
        max_message_bytes=args.max_message_bytes,
        dataschema=not args.no_dataschema,
        schema_base_url=ctx.config.schema_base_url,
        schema_registry=_registry_options(ctx, args),
    )


def _registry_options(ctx: Context, args: argparse.Namespace) -> SchemaRegistryOptions | None:
    url = ctx.config.schema_registry_url
    if url is None:
        return None
    if args.structured:
        raise UsageError(
            "the Confluent wire format needs CloudEvents binary mode, not --structured",
            "drop --structured, or unset --schema-registry-url / SCHEMA_REGISTRY_URL",
        )
    try:
        return SchemaRegistryOptions(url, subject_strategy=SubjectStrategy(args.subject_strategy))
    except ValueError as error:
        raise UsageError(str(error), "use http(s)://host:8081") from None


async def forget_checkpoint(store: Any, name: str) -> None:
    """Drop a relay's checkpoint (its messages went to a cluster that is gone)."""
    async with store.connection() as connection:
        cursor = await connection.execute(
            "SELECT to_regclass(%s)",
            (sql.Identifier(store.schema, "relay_checkpoints").as_string(connection),),
        )
        found = await cursor.fetchone()
        if found and found[0]:
            await connection.execute(
                sql.SQL("DELETE FROM {} WHERE relay = %s").format(
                    sql.Identifier(store.schema, "relay_checkpoints")
                ),
                (name,),
            )


async def run_status(ctx: Context, args: argparse.Namespace) -> int:
    store = await ctx.services.store()
    found = await relay_status(store, args.name)
    if args.name is not None and not found:
        raise NotFoundError(
            f"no relay named {args.name!r} has run in schema {ctx.config.schema!r}",
            "run 'chronik relay status' to list them",
        )
    if args.json:
        print_json(found, ctx.out)
        return ExitCode.OK
    print_table(
        ["relay", "mode", "leader", "checkpoint", "lag", "lag_s", "outbox", "published", "error"],
        [_row(s) for s in found],
        ctx.out,
        empty="(no relay has run yet: start one with 'chronik relay')",
    )
    blocker = next((s.held_back_by for s in found if s.held_back_by is not None), None)
    if blocker is not None:
        ctx.out.write(
            f"\n{found[0].held_back_events} committed events wait behind transaction "
            f"{blocker.transaction_id} (pid {blocker.pid}, open {blocker.age_seconds or 0:.0f} "
            "s): the feed shows them once it ends\n"
        )
    return ExitCode.OK


def _row(status: RelayStatus) -> list[Any]:
    return [
        status.name,
        status.mode,
        f"pid {status.leader_pid}" if status.leader_pid else "-",
        str(status.checkpoint),
        status.lag_events,
        f"{status.lag_seconds:.1f}",
        status.outbox_pending,
        f"{status.published_events}+{status.published_outbox}",
        status.last_error,
    ]
