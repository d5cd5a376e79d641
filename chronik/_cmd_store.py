"""Commands on the event store alone: ``init``, ``streams``, ``history``."""

from __future__ import annotations

import argparse
import functools
from typing import Any

from eventstore import EventCodec, RecordedEvent, StreamNotFoundError

from ._context import Context
from ._errors import UsageError
from ._output import JsonArrayWriter, TableWriter, print_json, print_table, printable
from ._parsing import positive_int
from ._progress import Progress


def register(commands: Any, parents: list[argparse.ArgumentParser]) -> None:
    init = commands.add_parser(
        "init",
        parents=parents,
        help="create or migrate the database schema",
        description="Create the event store schema, or bring it to the current version. "
        "Safe to run again: it only applies what is missing.",
    )
    init.set_defaults(handler=run_init)

    streams = commands.add_parser(
        "streams",
        parents=parents,
        help="list streams with their type and version",
        description="List the streams, ordered by id.",
    )
    streams.add_argument(
        "--type",
        dest="stream_type",
        metavar="TYPE",
        help="only streams of this aggregate type (e.g. ledger)",
    )
    streams.add_argument("--prefix", help="only streams whose id starts with this")
    streams.add_argument("--limit", type=positive_int, metavar="N", help="at most N streams")
    streams.add_argument(
        "--json", action="store_true", help="print a JSON list of {stream_id, type, version, ...}"
    )
    streams.set_defaults(handler=run_streams)

    history = commands.add_parser(
        "history",
        parents=parents,
        help="the events of one stream",
        description="The events of a stream, oldest first, decoded through the app's "
        "event classes with upcasting (as the application sees them today).",
    )
    history.add_argument("stream", metavar="STREAM", help="the stream id")
    history.add_argument(
        "--raw",
        action="store_true",
        help="show events as stored: type, schema version and data as written",
    )
    history.add_argument("--from-version", type=positive_int, default=1, metavar="N")
    history.add_argument("--to-version", type=positive_int, metavar="N")
    history.add_argument("--json", action="store_true", help="print a JSON list")
    history.set_defaults(handler=run_history)


async def run_init(ctx: Context, args: argparse.Namespace) -> int:
    store = await ctx.services.store(require_schema=False)
    steps = await store.migrate()
    snapshot_steps = await (await ctx.services.snapshots()).migrate()
    done = (
        f"applied {steps + snapshot_steps} migration step(s)"
        if steps or snapshot_steps
        else "already up to date"
    )
    ctx.say(
        f"event store and snapshot tables in schema {store.schema!r} of "
        f"{ctx.config.describe_database()}: {done}\n"
    )
    return 0


async def run_streams(ctx: Context, args: argparse.Namespace) -> int:
    app = ctx.app()
    store = await ctx.services.store()
    prefix = args.prefix
    if args.stream_type:
        # Narrow in the database when the app knows the type's stream prefix.
        known = app.stream_prefix(args.stream_type)
        if known and (prefix is None or known.startswith(prefix)):
            prefix = known
    rows: list[dict[str, Any]] = []
    matching = 0
    async for info in store.list_streams(prefix):
        kind = app.stream_type(info.stream_id)
        if args.stream_type and kind.casefold() != args.stream_type.casefold():
            continue
        matching += 1
        if args.limit is not None and len(rows) >= args.limit:
            continue  # only counted, so the note can say how many there are
        rows.append(
            {
                "stream_id": info.stream_id,
                "type": kind,
                "version": info.version,
                "created_at": info.created_at,
                "updated_at": info.updated_at,
            }
        )
    if args.json:
        print_json(rows, ctx.out)
    else:
        print_table(
            ["stream", "type", "version", "updated"],
            [[r["stream_id"], r["type"], r["version"], r["updated_at"]] for r in rows],
            ctx.out,
            empty="(no streams)",
        )
    if matching > len(rows):
        ctx.note(f"{len(rows)} of {matching} stream(s) shown (--limit {args.limit})")
    return 0


async def run_history(ctx: Context, args: argparse.Namespace) -> int:
    if args.to_version is not None and args.to_version < args.from_version:
        raise UsageError(
            f"--to-version {args.to_version} is before --from-version {args.from_version}",
            "swap them",
        )
    codec = None if args.raw else ctx.app().codec()
    store = await ctx.services.store()
    version = await store.stream_version(args.stream)
    if version == 0:
        raise StreamNotFoundError(args.stream)
    last = min(version, args.to_version) if args.to_version else version
    # Each event is written as it is read: a stream of any length stays in
    # constant memory, and the first lines show before the last page is read.
    events = store.read_stream(args.stream, args.from_version, last)
    row_of = _raw_row if codec is None else functools.partial(_decoded_row, codec)
    shown = 0
    total = max(last - args.from_version + 1, 0)
    with Progress(f"reading {args.stream}", total, enabled=False if args.json else None) as bar:
        if args.json:
            with JsonArrayWriter(ctx.out) as array:
                async for recorded in events:
                    array.add(
                        _raw_row(recorded) if codec is None else _decoded_row(codec, recorded)
                    )
                    bar.advance()
            return 0
        headers = ["version", "position", "recorded", "type", "schema", "data"]
        empty = f"(no events in versions {args.from_version}..{last})"
        with TableWriter(headers, ctx.out, empty=empty) as table:
            async for recorded in events:
                row = row_of(recorded)
                table.add(
                    [
                        row["version"],
                        row["position"],
                        row["recorded_at"],
                        row["type"],
                        f"v{row['schema_version']}" if args.raw else _schema(row),
                        row["data"],
                    ]
                )
                bar.advance()
            shown = table.rows
    ctx.note(f"{printable(args.stream)}: {shown} of {version} event(s) shown")
    return 0


def _raw_row(recorded: RecordedEvent) -> dict[str, Any]:
    return {
        "stream_id": recorded.stream_id,
        "version": recorded.version,
        "position": str(recorded.position),
        "recorded_at": recorded.recorded_at,
        "event_id": str(recorded.event_id),
        "type": recorded.type,
        "schema_version": recorded.schema_version,
        "data": recorded.data,
        "metadata": recorded.metadata,
    }


def _decoded_row(codec: EventCodec, recorded: RecordedEvent) -> dict[str, Any]:
    event = codec.decode(recorded)
    row = _raw_row(recorded)
    row.update(
        type=event.event_type,
        schema_version=event.event_version,
        data=event.model_dump(mode="json"),
        stored_type=recorded.type,
        stored_schema_version=recorded.schema_version,
    )
    return row


def _schema(row: dict[str, Any]) -> str:
    current = f"v{row['schema_version']}"
    if row["stored_schema_version"] == row["schema_version"] and row["stored_type"] == row["type"]:
        return current
    stored = f"v{row['stored_schema_version']}"
    if row["stored_type"] != row["type"]:
        stored = f"{row['stored_type']} {stored}"
    return f"{current} (stored {stored})"
