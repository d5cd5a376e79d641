"""``chronik deadletters list|replay``: events projections parked, and replaying them."""

from __future__ import annotations

import argparse
from typing import Any

from projections import (
    DeadLetter,
    DeadLetterReplay,
    Projection,
    ReadModel,
    list_dead_letters,
    replay_dead_letters,
)

from ._context import Context
from ._errors import ExitCode
from ._output import print_json, print_table, printable
from ._parsing import feed_position
from ._progress import Progress

#: Dead letters replayed per call, between progress updates.
_CHUNK = 100


def register(commands: Any, parents: list[argparse.ArgumentParser]) -> None:
    group = commands.add_parser(
        "deadletters",
        parents=parents,
        help="list or replay events projections parked",
        description="Events a projection's handlers failed on (after retries) are parked "
        "with the error. List them; fix the handler; replay them.",
    )
    sub = group.add_subparsers(dest="deadletters_command", metavar="COMMAND", required=True)
    listing = sub.add_parser("list", parents=parents, help="list parked events")
    listing.add_argument(
        "projection",
        nargs="?",
        metavar="PROJECTION",
        help="only this projection (default: all of the app's)",
    )
    listing.add_argument(
        "--all-slots", action="store_true", help="also those of retired slots (old versions)"
    )
    listing.add_argument(
        "--json",
        action="store_true",
        help="print a JSON list (with tracebacks and the stored events)",
    )
    listing.set_defaults(handler=run_list)

    replay = sub.add_parser(
        "replay",
        parents=parents,
        help="run parked events through the handlers again",
        description="Apply parked events with the current handlers, oldest first; each "
        "success is applied and unparked atomically. Failures stay parked with the new error.",
    )
    replay.add_argument("projection", metavar="PROJECTION")
    replay.add_argument(
        "--position",
        dest="positions",
        action="append",
        type=feed_position,
        metavar="P",
        help="only the dead letter at this position (repeatable)",
    )
    replay.add_argument(
        "--force",
        action="store_true",
        help="also replay partial dead letters (their other writes were applied: they apply twice)",
    )
    replay.add_argument("--json", action="store_true", help="print the result as JSON")
    replay.set_defaults(handler=run_replay)


async def run_list(ctx: Context, args: argparse.Namespace) -> int:
    targets = ctx.projection_targets([args.projection] if args.projection else [])
    letters: list[DeadLetter] = []
    for projection in targets:
        model = await ctx.read_models.live(projection)
        letters += await list_dead_letters(model, projection.name, all_slots=args.all_slots)
    if args.json:
        print_json([_letter(d) for d in letters], ctx.out)
        return ExitCode.OK
    print_table(
        ["projection", "slot", "position", "stream", "version", "type", "tries", "error"],
        [
            [
                d.projection,
                d.slot,
                d.position,
                d.stream_id,
                d.version,
                d.event_type,
                d.attempts + d.replays,
                f"{'BLOCKING ' if d.blocking else ''}{'PARTIAL ' if d.partial else ''}"
                f"{d.error_type}: {d.error}",
            ]
            for d in letters
        ],
        ctx.out,
        empty="(no dead letters)",
    )
    return ExitCode.OK


async def run_replay(ctx: Context, args: argparse.Namespace) -> int:
    projection = ctx.app().projection(args.projection)
    model = await ctx.read_models.live(projection)
    result = await _replay(projection, model, args.positions, args.force, not args.json)
    if args.json:
        print_json(
            {"replayed": result.replayed, "failed": [_letter(d) for d in result.failed]}, ctx.out
        )
    else:
        ctx.say(f"{projection.name}: replayed {len(result.replayed)} dead letter(s)\n")
        for letter in result.failed:
            ctx.say(
                f"  still failing at {letter.position} ({printable(letter.stream_id)} "
                f"v{letter.version}, {printable(letter.event_type)}): "
                f"{printable(letter.error_type)}: {printable(letter.error)}\n"
            )
    if result.failed:
        ctx.note(
            f"chronik: {len(result.failed)} dead letter(s) failed again and stay parked; "
            "fix the handler and replay again"
        )
        return ExitCode.FAILURE
    return ExitCode.OK


async def _replay(
    projection: Projection[Any],
    model: ReadModel[Any],
    positions: list[Any] | None,
    force: bool,
    show: bool,
) -> DeadLetterReplay:
    """Replay in chunks, oldest first, with progress.  Each dead letter is applied and
    unparked atomically, so chunking changes nothing a single call would do; cases
    where one call must see them all (chosen positions, a partial one to refuse
    before applying anything) are left to a single call."""
    current = (await model.meta(projection.name)).current_slot(projection.version)
    letters = await model.dead_letters(projection.name, current.slot) if current else []
    if positions or current is None or (not force and any(d.partial for d in letters)):
        return await replay_dead_letters(projection, model, positions=positions, force=force)
    letters.sort(key=lambda d: d.position)
    replayed: list[Any] = []
    failed: list[DeadLetter] = []
    label = f"replaying dead letters of {projection.name}"
    with Progress(label, len(letters), unit="dead letters", enabled=None if show else False) as bar:
        for start in range(0, len(letters), _CHUNK):
            chunk = [d.position for d in letters[start : start + _CHUNK]]
            done = await replay_dead_letters(
                projection, model, positions=chunk, slot=current.slot, force=force
            )
            replayed += done.replayed
            failed += done.failed
            bar.advance(len(chunk))
    return DeadLetterReplay(replayed, failed)


def _letter(letter: DeadLetter) -> dict[str, Any]:
    return {
        "projection": letter.projection,
        "slot": letter.slot,
        "position": letter.position,
        "stream_id": letter.stream_id,
        "version": letter.version,
        "type": letter.event_type,
        "error_type": letter.error_type,
        "error": letter.error,
        "attempts": letter.attempts,
        "replays": letter.replays,
        "blocking": letter.blocking,
        "partial": letter.partial,
        "failed_at": letter.failed_at,
        "traceback": letter.traceback,
        "event": letter.event,
    }
