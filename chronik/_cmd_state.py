"""``chronik state``: an aggregate's state now or at a point in the past."""

from __future__ import annotations

import argparse
from typing import Any

from aggregates import Repository
from eventstore import StreamNotFoundError

from ._app import aggregate_type_name
from ._context import Context
from ._errors import NotFoundError
from ._output import print_fields, print_json, printable
from ._parsing import feed_position, positive_int, timestamp


def register(commands: Any, parents: list[argparse.ArgumentParser]) -> None:
    state = commands.add_parser(
        "state",
        parents=parents,
        help="an aggregate's state, now or back in time",
        description="Load an aggregate through the repository (snapshots, upcasters) and "
        "print its state: now, at a stream version, at a time, or at a feed position.",
    )
    state.add_argument("aggregate_type", metavar="TYPE", help="aggregate type, e.g. ledger")
    state.add_argument("aggregate_id", metavar="ID", help="aggregate id")
    when = state.add_mutually_exclusive_group()
    when.add_argument(
        "--at-version",
        type=positive_int,
        metavar="N",
        help="the state after the stream's N-th event",
    )
    when.add_argument(
        "--as-of",
        type=timestamp,
        metavar="TIME",
        help="the state at a time (ISO 8601; no offset means local time)",
    )
    when.add_argument(
        "--at-position",
        type=feed_position,
        metavar="P",
        help="the state at a global feed position 'TXID:SEQ' (a consistent cut)",
    )
    state.add_argument("--json", action="store_true", help="print {version, state} as JSON")
    state.set_defaults(handler=run_state)


async def run_state(ctx: Context, args: argparse.Namespace) -> int:
    kind = ctx.app().aggregate(args.aggregate_type)
    repository = await ctx.repository()
    try:
        aggregate = await repository.load(
            kind,
            args.aggregate_id,
            at_version=args.at_version,
            as_of=args.as_of,
            at_position=args.at_position,
        )
    except StreamNotFoundError as error:
        await _suggest_id(ctx, repository, kind, args.aggregate_id, error)
        raise
    store = repository.store
    if args.at_position is not None:
        head = await store.head()
        if head is None or args.at_position > head:
            ctx.note(
                f"note: position {args.at_position} is past the feed's head "
                f"({head or 'empty feed'}): showing the state as of the head"
            )
    snapshot_version = await _snapshot_used(repository, aggregate.stream_id, aggregate.version)
    recorded_at = None
    async for event in store.read_stream(aggregate.stream_id, aggregate.version, aggregate.version):
        recorded_at = event.recorded_at
    latest = await store.stream_version(aggregate.stream_id)
    state = aggregate.state_dict()
    if args.json:
        print_json(
            {
                "type": aggregate.type_name,
                "id": aggregate.id,
                "stream_id": aggregate.stream_id,
                "version": aggregate.version,
                "latest_version": latest,
                "recorded_at": recorded_at,
                "snapshot_version": snapshot_version,
                "state": state,
            },
            ctx.out,
        )
        return 0
    when = _requested(args)
    ctx.say(
        f"{aggregate.type_name} {printable(repr(aggregate.id))} {when}: "
        f"version {aggregate.version} of {latest}, "
        f"last event recorded {recorded_at.isoformat() if recorded_at else '-'}\n"
    )
    if snapshot_version is None:
        ctx.say(f"(replayed all {aggregate.version} events: no usable snapshot)\n")
    else:
        ctx.say(
            f"(from the snapshot at version {snapshot_version}, then "
            f"{aggregate.version - snapshot_version} events replayed)\n"
        )
    print_fields(list(state.items()), ctx.out)
    return 0


async def _suggest_id(
    ctx: Context, repository: Repository, kind: type[Any], wanted: str, error: Exception
) -> None:
    """An id given with its stream prefix ('ledger-alice') gets 'did you mean 'alice'?'."""
    prefix = ctx.app().stream_prefix(aggregate_type_name(kind)) or ""
    if not prefix or not wanted.startswith(prefix) or len(wanted) == len(prefix):
        return
    bare = wanted[len(prefix) :]
    if await repository.store.stream_version(prefix + bare) == 0:
        return
    raise NotFoundError(
        f"{aggregate_type_name(kind)} {printable(repr(wanted))} does not exist "
        f"(its stream would be {printable(repr(prefix + wanted))})",
        f"did you mean {printable(repr(bare))}? 'chronik state' takes the id, not the stream id",
    ) from error


async def _snapshot_used(repository: Repository, stream_id: str, version: int) -> int | None:
    """The version of the snapshot the load started from, or None when it used none."""
    snapshots = repository.snapshots
    if snapshots is None or repository.snapshots_ignored:
        return None
    found = await snapshots.load(stream_id, max_version=version)
    return found.version if found is not None else None


def _requested(args: argparse.Namespace) -> str:
    if args.at_version is not None:
        return f"at version {args.at_version}"
    if args.as_of is not None:
        return f"as of {args.as_of.isoformat()}"
    if args.at_position is not None:
        return f"at feed position {args.at_position}"
    return "now"
