"""``chronik cdc``: stream row changes of tables to Kafka; ``chronik cdc status``: slot lag;
``chronik cdc drop``: remove a connector's slot and publication."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from typing import Any

import psycopg
from psycopg import sql

from messaging import (
    CdcOptions,
    CdcSetupError,
    ChangeCapture,
    MockCluster,
    cdc_connector_name,
    change_producer,
    drop_cdc_connector,
    publish_changes,
    slot_lag,
)

from ._context import Context
from ._errors import CommandError, ExitCode, NotFoundError, UsageError
from ._output import print_fields, print_json, print_table
from ._parsing import positive_int
from ._projecting import stop_on_signals

#: Retained WAL above which ``cdc status`` warns: a stuck slot fills the disk.
DEFAULT_WARN_BYTES = 1 << 30


def register(commands: Any, parents: list[argparse.ArgumentParser]) -> None:
    cdc = commands.add_parser(
        "cdc",
        parents=parents,
        help="stream row changes of tables to Kafka (Debezium format)",
        description="Change data capture: stream the row changes of PostgreSQL tables to "
        "Kafka as Debezium change events (topic <prefix>.<schema>.<table>, key = primary "
        "key), after an initial snapshot of their rows. Needs wal_level=logical (the "
        "embedded server has it). The replication slot moves only over messages Kafka "
        "acknowledged, so a killed run resumes where it was. SIGINT/SIGTERM stop cleanly.",
    )
    cdc.add_argument(
        "--table",
        dest="tables",
        action="append",
        metavar="SCHEMA.TABLE",
        help="a table to capture (repeat for more)",
    )
    cdc.add_argument("--name", default="default", help="connector name (slot chronik_cdc_NAME)")
    cdc.add_argument(
        "--topic-prefix",
        default="chronik",
        metavar="PREFIX",
        help="Debezium's topic.prefix: topics are PREFIX.SCHEMA.TABLE (default: chronik)",
    )
    cdc.add_argument(
        "--full-before",
        action="store_true",
        help="set REPLICA IDENTITY FULL: updates and deletes carry the whole old row",
    )
    cdc.add_argument(
        "--no-snapshot", action="store_true", help="skip the initial snapshot of existing rows"
    )
    cdc.add_argument(
        "--until-idle", action="store_true", help="stop once no change is left to send"
    )
    cdc.add_argument(
        "--max-changes",
        type=positive_int,
        default=5000,
        metavar="N",
        help="decode about N changes per read of the slot (whole transactions)",
    )
    cdc.set_defaults(handler=run_cdc)
    actions = cdc.add_subparsers(dest="cdc_action", metavar="ACTION", title="actions")
    status = actions.add_parser(
        "status",
        parents=parents,
        help="each connector's slot and the WAL it keeps",
        description="Each CDC connector's replication slot: active or not, confirmed "
        "position, and the WAL it keeps on the server's disk. Exits 1 when a slot keeps "
        "more than --warn-bytes (a stuck slot fills the disk).",
    )
    status.add_argument("--name", help="only this connector")
    status.add_argument(
        "--warn-bytes", type=positive_int, default=DEFAULT_WARN_BYTES, metavar="BYTES"
    )
    status.add_argument("--json", action="store_true")
    status.set_defaults(handler=cdc_status)
    drop = actions.add_parser(
        "drop",
        parents=parents,
        help="remove a connector's replication slot and publication (--yes)",
        description="Remove connector CONNECTOR's replication slot (chronik_cdc_CONNECTOR), "
        "its publication and its state row. A slot nobody reads makes PostgreSQL keep WAL "
        "forever; dropping it releases that WAL, and the changes not yet sent are lost to "
        "the connector (a new run starts with a fresh snapshot). Refuses while a "
        "'chronik cdc' run of it is going. Asks first on a terminal; elsewhere needs --yes.",
    )
    drop.add_argument("connector", metavar="CONNECTOR", help="the connector's --name")
    drop.add_argument("--yes", action="store_true", help="drop without asking")
    drop.set_defaults(handler=cdc_drop)


async def run_cdc(ctx: Context, args: argparse.Namespace) -> int:
    if not args.tables:
        raise UsageError("no table to capture", "name one with --table SCHEMA.TABLE")
    if not args.until_idle and not ctx.config.debug:
        logging.getLogger("chronik").setLevel(logging.INFO)
    try:
        # The flags are checked before any server is touched: nothing is set up half.
        options = CdcOptions(
            tables=tuple(args.tables),
            name=args.name,
            topic_prefix=args.topic_prefix,
            full_before=args.full_before,
            snapshot=not args.no_snapshot,
            state_schema=ctx.config.schema,
            max_changes=args.max_changes,
        )
    except CdcSetupError as error:
        raise UsageError(str(error), "see 'chronik cdc --help'") from None
    store = await ctx.services.store(require_schema=False)
    bootstrap = ctx.config.kafka_bootstrap_servers
    cluster = None
    if bootstrap is None:
        cluster = MockCluster()
        bootstrap = cluster.bootstrap_servers
        ctx.note(
            f"note: no KAFKA_BOOTSTRAP_SERVERS: publishing to an embedded mock cluster at "
            f"{bootstrap}, which lives only as long as this process"
        )
    producer = change_producer(bootstrap)
    try:
        async with ChangeCapture(store.dsn, options) as capture:
            stop = asyncio.Event()
            with stop_on_signals(stop):
                if not args.until_idle:
                    ctx.note(
                        f"capturing {', '.join(args.tables)} to {args.topic_prefix}.*; "
                        "Ctrl-C or SIGTERM stops cleanly"
                    )
                progress = await publish_changes(
                    capture, producer, stop=stop, until_idle=args.until_idle
                )
    finally:
        producer.close()
        if cluster is not None:
            cluster.close()
    print_fields(
        [
            ("connector", args.name),
            ("snapshot rows", progress.snapshot_rows),
            ("changes", progress.changes),
            ("confirmed lsn", _lsn(progress.confirmed_lsn)),
        ],
        ctx.out,
    )
    return ExitCode.OK


def _checked_name(name: str) -> str:
    """``name`` if it can name a connector, else a usage error (exit 2): checked before
    anything is asked or connected, as ``chronik cdc --name`` does."""
    try:
        cdc_connector_name(name)
    except CdcSetupError as error:
        raise UsageError(str(error), "see 'chronik cdc status' for the connectors") from None
    return name


async def cdc_status(ctx: Context, args: argparse.Namespace) -> int:
    if args.name is not None:
        _checked_name(args.name)
    store = await ctx.services.store(require_schema=False)
    async with await psycopg.AsyncConnection.connect(store.dsn, autocommit=True) as connection:
        slots = await _connector_slots(connection, ctx.config.schema, args.name)
        if args.name and not slots:
            raise NotFoundError(
                f"no CDC connector {args.name!r}", "start one with 'chronik cdc --table ...'"
            )
        lags = [await slot_lag(connection, slot) for _, slot in slots]
    rows = [
        {
            "connector": name,
            "slot": slot,
            "active": lag.active if lag else None,
            "confirmed_lsn": lag.confirmed_lsn if lag else None,
            "retained_bytes": lag.retained_bytes if lag else None,
            "wal_status": lag.wal_status if lag else "missing",
        }
        for (name, slot), lag in zip(slots, lags, strict=True)
    ]
    if args.json:
        print_json(rows, ctx.out)
    elif rows:
        print_table(list(rows[0]), [list(row.values()) for row in rows], ctx.out)
    else:
        ctx.note("no CDC connectors: start one with 'chronik cdc --table SCHEMA.TABLE'")
    over = [r for r in rows if (r["retained_bytes"] or 0) > args.warn_bytes]
    for row in over:
        ctx.note(
            f"warning: slot {row['slot']} keeps {row['retained_bytes']} bytes of WAL "
            f"(over {args.warn_bytes}); run 'chronik cdc --name {row['connector']}' to "
            f"drain it, or 'chronik cdc drop {row['connector']}' if the connector is gone"
        )
    return ExitCode.FAILURE if over else ExitCode.OK


async def cdc_drop(ctx: Context, args: argparse.Namespace) -> int:
    name = _checked_name(args.connector)
    if not args.yes:
        if not sys.stdin.isatty():
            raise UsageError(
                f"dropping connector {name!r} discards the changes its slot still holds",
                "pass --yes to drop it",
            )
        answer = await _ask(
            f"Drop CDC connector {name!r} (slot and publication chronik_cdc_{name.lower()})? "
            "Changes it has not sent are lost to it. [y/N] "
        )
        if answer.strip().lower() not in ("y", "yes"):
            ctx.note("nothing dropped")
            return ExitCode.FAILURE
    store = await ctx.services.store(require_schema=False)
    try:
        dropped = await drop_cdc_connector(store.dsn, name, state_schema=ctx.config.schema)
    except CdcSetupError as error:
        raise CommandError(str(error)) from None
    if not dropped.anything:
        ctx.note(f"CDC connector {name!r}: nothing to drop (no slot, publication or state left)")
        return ExitCode.OK
    gone = [
        what
        for what, done in (
            (f"slot chronik_cdc_{name.lower()}", dropped.slot),
            (f"publication chronik_cdc_{name.lower()}", dropped.publication),
            ("its state", dropped.state),
        )
        if done
    ]
    ctx.out.write(f"dropped CDC connector {name!r}: {', '.join(gone)}\n")
    return ExitCode.OK


async def _ask(prompt: str) -> str:
    """A line from the terminal, waited for on the loop: Ctrl-C still ends the command
    (a blocking ``input()`` would hold the signal until Enter)."""
    sys.stderr.write(prompt)
    sys.stderr.flush()
    loop = asyncio.get_running_loop()
    answered: asyncio.Future[str] = loop.create_future()

    def ready() -> None:
        if not answered.done():
            answered.set_result(sys.stdin.readline())

    loop.add_reader(sys.stdin.fileno(), ready)
    try:
        return await answered
    finally:
        loop.remove_reader(sys.stdin.fileno())


async def _connector_slots(
    connection: psycopg.AsyncConnection[tuple[object, ...]], schema: str, name: str | None
) -> list[tuple[str, str]]:
    """(connector, slot) from the state table, plus chronik_cdc_* slots it does not list."""
    cursor = await connection.execute(
        "SELECT to_regclass(%s)", (sql.Identifier(schema, "cdc_connectors").as_string(connection),)
    )
    row = await cursor.fetchone()
    found: dict[str, str] = {}
    if row is not None and row[0] is not None:
        cursor = await connection.execute(
            sql.SQL("SELECT name, slot_name FROM {} ORDER BY name").format(
                sql.Identifier(schema, "cdc_connectors")
            )
        )
        found = {str(n): str(s) for n, s in await cursor.fetchall()}
    cursor = await connection.execute(
        "SELECT slot_name FROM pg_replication_slots WHERE slot_name LIKE 'chronik\\_cdc\\_%'"
    )
    for (slot,) in await cursor.fetchall():
        if str(slot) not in found.values():
            found[str(slot).removeprefix("chronik_cdc_")] = str(slot)
    pairs = sorted(found.items())
    # Connector names are stored in lower case (as slot names must be).
    return [p for p in pairs if name is None or p[0] == name.lower()]


def _lsn(lsn: int | None) -> str | None:
    return None if lsn is None else f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"
