"""Projection commands: ``projections status``, ``rebuild``, ``replay``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from datetime import UTC, datetime
from typing import Any

from eventstore import START, OpenTransaction, Position
from projections import (
    Projection,
    ProjectionStatus,
    SlotInfo,
    SlotState,
    StoreFeedSource,
    diff,
    diff_snapshots,
    drop_inactive_slots,
    list_dead_letters,
    rebuild,
    replay_into,
    statement_summary,
    status,
)

from . import _cmd_prune
from ._cmd_consume import kafka_partitions
from ._context import Context
from ._errors import ExitCode, Interrupted
from ._output import compact, print_json, print_table, printable
from ._parsing import feed_position, positive_int
from ._progress import Progress
from ._projecting import abandon_slot, drop_abandoned_slots, slot_progress, stop_on_signals


def register(commands: Any, parents: list[argparse.ArgumentParser]) -> None:
    group = commands.add_parser(
        "projections",
        parents=parents,
        help="projection status (checkpoint, lag, blockers)",
        description="Inspect the app's projections.",
    )
    sub = group.add_subparsers(dest="projections_command", metavar="COMMAND", required=True)
    state = sub.add_parser(
        "status",
        parents=parents,
        help="checkpoint, lag and what holds the feed back",
        description="Per projection: active slot and version, checkpoint, lag in events and "
        "seconds, dead letters, shadow builds; and the open transaction holding the feed "
        "back, if one does.",
    )
    state.add_argument("--json", action="store_true", help="print a JSON list")
    state.add_argument(
        "--watch",
        type=_interval,
        nargs="?",
        const=2.0,
        metavar="SECONDS",
        help="refresh every SECONDS (default 2) until Ctrl-C; with --json one line per refresh",
    )
    state.add_argument(
        "--count", type=positive_int, metavar="N", help="with --watch: stop after N refreshes"
    )
    state.set_defaults(handler=run_status)
    _cmd_prune.register(sub, parents)

    again = commands.add_parser(
        "rebuild",
        parents=parents,
        help="rebuild a projection without downtime",
        description="Build the projection afresh (current code) in a shadow slot beside the "
        "live one, then swap readers to it atomically once it has caught up. Readers keep "
        "using the old slot until the swap.",
    )
    again.add_argument("projection", metavar="PROJECTION")
    again.add_argument(
        "--from",
        dest="from_position",
        type=feed_position,
        metavar="POSITION",
        help="skip events at or before this feed position 'TXID:SEQ'",
    )
    again.add_argument(
        "--drop-old",
        action="store_true",
        help="delete the slots readers no longer use after the swap",
    )
    again.add_argument("--json", action="store_true", help="print the result as JSON")
    again.set_defaults(handler=run_rebuild)

    what_if = commands.add_parser(
        "replay",
        parents=parents,
        help="what-if: replay into a scratch read model and diff",
        description="Run the current handlers from the start into a scratch read model, "
        "e.g. to check a bug fix before switching; with --diff, stop at the live "
        "checkpoint and show where the scratch copy differs from the live one.",
    )
    what_if.add_argument("projection", metavar="PROJECTION")
    what_if.add_argument(
        "--into",
        required=True,
        metavar="SCRATCH",
        help="name of the scratch copy (replaced if it exists)",
    )
    what_if.add_argument("--diff", action="store_true", help="compare with the live read model")
    what_if.add_argument(
        "--limit",
        type=positive_int,
        default=50,
        metavar="N",
        help="show at most N differing keys (default 50; --json shows all)",
    )
    what_if.add_argument("--json", action="store_true", help="print the result as JSON")
    what_if.set_defaults(handler=run_replay)


# -- status ---------------------------------------------------------------------


async def run_status(ctx: Context, args: argparse.Namespace) -> int:
    if args.watch is None:
        return await _status_once(ctx, args)
    stop = asyncio.Event()
    shown = 0
    clear = not args.json and ctx.out.isatty()
    with stop_on_signals(stop):
        while not stop.is_set():
            if clear:
                ctx.out.write("\x1b[H\x1b[2J")
            elif shown and not args.json:
                ctx.out.write("\n")
            if not args.json:
                ctx.out.write(f"{datetime.now(UTC).isoformat(timespec='seconds')}\n")
            await _status_once(ctx, args, one_line=True)
            ctx.out.flush()
            shown += 1
            if args.count is not None and shown >= args.count:
                break
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(args.watch):
                    await stop.wait()
    return 0


def _interval(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not 0.05 <= value <= 86400:
        raise argparse.ArgumentTypeError(f"expected 0.05..86400 seconds, got {value}")
    return value


async def _status_once(ctx: Context, args: argparse.Namespace, *, one_line: bool = False) -> int:
    store = await ctx.services.store()
    rows: list[dict[str, Any]] = []
    blocker: dict[str, Any] | None = None
    for projection in ctx.projection_targets():
        model = await ctx.read_models.live(projection)
        found = await status(projection, model, store)
        meta = await model.meta(projection.name)
        rows.append(_status_row(ctx, projection, found, meta.active_slot))
        rows[-1]["kafka"] = [p.to_json() for p in await kafka_partitions(ctx, projection, model)]
        if found.held_back_by is not None:
            blocker = {
                "events": found.held_back_events,
                "transaction": _transaction(found.held_back_by),
            }
    if args.json:
        if one_line:
            ctx.out.write(compact(rows) + "\n")
        else:
            print_json(rows, ctx.out)
        return 0
    print_table(
        ["projection", "code", "active", "checkpoint", "lag", "lag s", "dead", "state"],
        [
            [
                r["name"],
                f"v{r['version']}",
                r["active_slot"] or "-",
                r["checkpoint"],
                r["lag_events"],
                f"{r['lag_seconds']:.1f}",
                r["dead_letters"],
                r["state"],
            ]
            for r in rows
        ],
        ctx.out,
        empty="(the app declares no projections)",
    )
    kafka = [p for r in rows for p in r["kafka"]]
    if kafka:
        ctx.out.write("\nKafka-fed (offsets kept in the read model):\n")
        print_table(
            ["projection", "topic", "partition", "offset", "high", "lag", "lag s"],
            [
                [
                    p["group"],
                    p["topic"],
                    p["partition"],
                    p["committed"],
                    p["high_watermark"],
                    p["events"],
                    f"{p['seconds']:.1f}",
                ]
                for p in kafka
            ],
            ctx.out,
        )
    if blocker is not None:
        held = blocker["transaction"]
        ctx.say(
            f"\nThe feed is held back: {blocker['events']} committed event(s) wait behind "
            f"open transaction {held['transaction_id']} (backend pid {held['pid']}, "
            f"application {printable(repr(held['application_name'] or ''))}, open for "
            f"{held['age_seconds'] or 0:.0f}s, state {held['state']}, statement "
            f"{printable(held['statement'] or '-')}). End it, or cancel its statement: "
            f"SELECT pg_cancel_backend({held['pid']});\n"
        )
    return 0


def _status_row(
    ctx: Context, projection: Projection[Any], found: ProjectionStatus, active: SlotInfo | None
) -> dict[str, Any]:
    return {
        "name": found.name,
        "version": projection.version,
        "backend": ctx.read_models.describe(projection),
        "persistent": ctx.read_models.is_persistent(projection),
        "active_slot": active.slot if active else None,
        "active_version": active.version if active else None,
        "slot": found.slot,
        "checkpoint": found.checkpoint,
        "head": found.head,
        "lag_events": found.lag_events,
        "lag_seconds": found.lag_seconds,
        "dead_letters": found.dead_letters,
        "stopped_at": found.stopped_at,
        "held_back_events": found.held_back_events,
        "held_back_by": _transaction(found.held_back_by) if found.held_back_by else None,
        "building": [s.slot for s in found.building],
        "state": _describe_state(projection, found, active),
        "slots": list(found.slots),
    }


def _transaction(held: OpenTransaction) -> dict[str, Any]:
    """What on-call needs about the transaction holding the feed back, and no more.

    Its SQL text is another connection's and can hold secrets: only the leading
    command keywords (``statement_summary``) are shown, whatever the library passes.
    """
    return {
        "pid": held.pid,
        "application_name": held.application_name,
        "transaction_id": held.transaction_id,
        "state": held.state,
        "started_at": held.started_at,
        "age_seconds": held.age_seconds,
        "query_started_at": held.query_started_at,
        "statement": statement_summary(held.query),
    }


def _describe_state(
    projection: Projection[Any], found: ProjectionStatus, active: SlotInfo | None
) -> str:
    if found.stopped_at is not None:
        return f"stopped at {found.stopped_at} (poison event; see 'chronik deadletters list')"
    parts = []
    if active is None:
        parts.append("never run" if not found.slots else "no active slot")
    elif active.version < projection.version:
        parts.append(f"v{active.version} live; v{projection.version} not active yet")
    elif active.version > projection.version:
        parts.append(f"v{active.version} live: newer than this code")
    else:
        parts.append("live" if found.lag_events == 0 else "behind")
    if found.building:
        built = ", ".join(f"{s.slot} at {s.position}" for s in found.building)
        parts.append(f"building {built}")
    abandoned = [s.slot for s in found.slots if s.state is SlotState.ABANDONED]
    if abandoned:
        parts.append(f"abandoned {', '.join(abandoned)} (the next rebuild or run drops it)")
    return "; ".join(parts)


# -- rebuild --------------------------------------------------------------------


async def run_rebuild(ctx: Context, args: argparse.Namespace) -> int:
    projection = ctx.app().projection(args.projection)
    store = await ctx.services.store()
    model = await ctx.read_models.live(projection)
    cleared = await drop_abandoned_slots(model, projection.name)
    if cleared:
        ctx.note(f"dropped slot(s) {', '.join(cleared)} left by interrupted rebuilds")
    before = set((await model.meta(projection.name)).slots)
    stop = asyncio.Event()
    total = await store.count_after(args.from_position)
    label = f"rebuilding {projection.name} v{projection.version}"
    quiet = False if args.json else None
    with stop_on_signals(stop), Progress(label, total, enabled=quiet) as bar:
        async with slot_progress(model, projection.name, _new_slot(before), bar):
            try:
                result = await rebuild(
                    projection,
                    model,
                    StoreFeedSource(store),
                    from_position=args.from_position,
                    stop=stop,
                )
            except (Exception, asyncio.CancelledError) as error:
                if not stop.is_set() and not isinstance(error, asyncio.CancelledError):
                    raise
                # Interrupted before the swap: readers still use the old slot.  Mark
                # the half-built one abandoned so status stops calling it "building";
                # the next rebuild or run drops it.
                unfinished = _new_slot(before)((await model.meta(projection.name)).slots)
                if unfinished is not None:
                    await abandon_slot(model, projection.name, unfinished.slot)
                if isinstance(error, asyncio.CancelledError):
                    raise
                left = f"; slot {unfinished.slot} is marked abandoned" if unfinished else ""
                raise Interrupted(
                    f"rebuild of {projection.name!r} interrupted before its swap: readers "
                    f"still use the old slot{left}",
                    "run the rebuild again; it, 'chronik run' or 'chronik projections "
                    "prune' drop the abandoned slot",
                ) from error
    dropped = await drop_inactive_slots(model, projection.name) if args.drop_old else []
    parked = len(await list_dead_letters(model, projection.name))
    if args.json:
        print_json({**_as_dict(result), "dropped": dropped, "dead_letters": parked}, ctx.out)
        return 0
    previous = f"readers were on {result.previous_slot}" if result.previous_slot else "first build"
    ctx.say(
        f"rebuilt {result.name} v{result.version} into slot {result.slot} ({previous}); "
        f"swapped at feed position {result.position}\n"
    )
    if parked:
        ctx.say(
            f"{parked} event(s) failed and are parked: see 'chronik deadletters list "
            f"{projection.name}'\n"
        )
    if dropped:
        ctx.say(f"dropped old slot(s): {', '.join(dropped)}\n")
    elif result.previous_slot:
        ctx.say(
            f"slot {result.previous_slot} is kept for readers still on it; "
            "rerun with --drop-old to delete it\n"
        )
    return 0


def _new_slot(before: set[str]) -> Any:
    def pick(slots: dict[str, SlotInfo]) -> SlotInfo | None:
        fresh = [s for s in slots.values() if s.slot not in before]
        return max(fresh, key=lambda s: (s.version, s.generation)) if fresh else None

    return pick


def _as_dict(result: Any) -> dict[str, Any]:
    return {name: getattr(result, name) for name in result.__dataclass_fields__}


# -- replay ---------------------------------------------------------------------


async def run_replay(ctx: Context, args: argparse.Namespace) -> int:
    projection = ctx.app().projection(args.projection)
    store = await ctx.services.store()
    live = await ctx.read_models.live(projection)
    scratch = await ctx.read_models.scratch(projection, args.into)
    live_checkpoint = await live.checkpoint(projection.name)
    # Compare like with like: stop the scratch copy where the live one is.
    up_to = live_checkpoint if args.diff and live_checkpoint is not None else None
    up_to = up_to or await store.head() or START
    total = await store.count_after(None) - await store.count_after(up_to)
    label = f"replaying {projection.name} v{projection.version} into {args.into}"
    with Progress(label, total, enabled=False if args.json else None) as bar:
        async with slot_progress(scratch, projection.name, _any_slot, bar):
            reached = await replay_into(projection, StoreFeedSource(store), scratch, up_to=up_to)
    letters = await list_dead_letters(scratch, projection.name)
    result: dict[str, Any] = {
        "projection": projection.name,
        "version": projection.version,
        "scratch": args.into,
        "where": ctx.read_models.describe(projection, args.into),
        "position": reached,
        "dead_letters": len(letters),
    }
    if args.diff:
        if live_checkpoint is None:
            # Never run live: everything the scratch copy holds is new.
            only_live, only_scratch, changed = diff_snapshots(
                {}, await scratch.snapshot(projection.name)
            )
        else:
            found = await diff(projection.name, live, scratch)
            only_live, only_scratch, changed = found.only_left, found.only_right, found.changed
        result.update(
            live_checkpoint=live_checkpoint,
            scratch_checkpoint=reached,
            identical=not (only_live or only_scratch or changed),
            changed={k: {"live": a, "scratch": b} for k, (a, b) in changed.items()},
            only_live=only_live,
            only_scratch=only_scratch,
        )
    if args.json:
        print_json(result, ctx.out)
        return ExitCode.OK
    ctx.say(
        f"replayed {projection.name} v{projection.version} into scratch {args.into!r} up to "
        f"{reached} ({result['where']}); {len(letters)} event(s) failed and were parked\n"
    )
    if args.diff:
        _print_diff(ctx, result, args.limit, live_checkpoint)
    return ExitCode.OK


def _print_diff(
    ctx: Context, result: dict[str, Any], limit: int, live_checkpoint: Position | None
) -> None:
    if live_checkpoint is None:
        ctx.say("the live read model has no active slot: everything is new\n")
    if result["identical"]:
        ctx.say(f"identical to the live read model at {result['live_checkpoint']}\n")
        return
    rows = [
        [key, "changed", compact(v["live"]), compact(v["scratch"])]
        for key, v in sorted(result["changed"].items())
    ]
    rows += [[key, "only live", compact(v), "-"] for key, v in sorted(result["only_live"].items())]
    rows += [
        [key, "only scratch", "-", compact(v)] for key, v in sorted(result["only_scratch"].items())
    ]
    ctx.say(
        f"{len(rows)} key(s) differ (live at {result['live_checkpoint'] or '-'}, scratch at "
        f"{result['scratch_checkpoint']}):\n"
    )
    print_table(["key", "difference", "live", "scratch"], rows[:limit], ctx.out)
    if len(rows) > limit:
        ctx.say(f"... and {len(rows) - limit} more (--limit, or --json for all)\n")


def _any_slot(slots: dict[str, SlotInfo]) -> SlotInfo | None:
    return max(slots.values(), key=lambda s: (s.version, s.generation)) if slots else None
