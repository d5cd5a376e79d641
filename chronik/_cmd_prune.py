"""``chronik projections prune``: drop what rebuilds and what-if replays leave behind.

Retired slots (the copies readers used before a rebuild's swap), abandoned
slots (interrupted or replaced rebuilds) and scratch copies from ``replay
--into`` stay until someone drops them.  Without ``--yes`` the command only
lists them: dropping is for good.
"""

from __future__ import annotations

import argparse
from typing import Any

from projections import SlotState

from ._context import Context
from ._output import print_json, print_table


def register(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    prune = sub.add_parser(
        "prune",
        parents=parents,
        help="drop old slots and scratch copies of a projection (--yes)",
        description="List a projection's retired and abandoned slots and its scratch copies "
        "(from 'chronik replay --into'); with --yes, drop them. The active slot and slots "
        "being built are never touched. Scratch copies in Redis are found by themselves; "
        "name others with --scratch.",
    )
    prune.add_argument("projection", metavar="PROJECTION")
    prune.add_argument(
        "--scratch",
        action="append",
        default=[],
        metavar="NAME",
        help="also this scratch copy (repeatable)",
    )
    prune.add_argument("--yes", action="store_true", help="drop them (default: only list)")
    prune.add_argument("--json", action="store_true", help="print what was found as JSON")
    prune.set_defaults(handler=run_prune)


async def run_prune(ctx: Context, args: argparse.Namespace) -> int:
    projection = ctx.app().projection(args.projection)
    name = projection.name
    live = await ctx.read_models.live(projection)
    meta = await live.meta(name)
    slots = sorted(
        (
            info
            for info in meta.slots.values()
            if info.state in (SlotState.RETIRED, SlotState.ABANDONED) and info.slot != meta.active
        ),
        key=lambda info: (info.version, info.generation),
    )
    scratches = []
    for scratch in sorted({*args.scratch, *await ctx.read_models.scratch_names(projection)}):
        model = await ctx.read_models.scratch(projection, scratch)
        if (await model.meta(name)).slots:
            scratches.append((scratch, model))
    if args.yes:
        for info in slots:
            await live.drop_slot(name, info.slot)
        for _, model in scratches:
            await model.drop_projection(name)
    found = {
        "projection": name,
        "slots": [
            {"slot": i.slot, "state": i.state, "version": i.version, "events": i.events}
            for i in slots
        ],
        "scratch": [
            {"name": s, "where": ctx.read_models.describe(projection, s)} for s, _ in scratches
        ],
        "dropped": args.yes,
    }
    if args.json:
        print_json(found, ctx.out)
        return 0
    rows = [["slot", i.slot, f"{i.state} v{i.version}, {i.events} event(s)"] for i in slots]
    rows += [["scratch", s["name"], s["where"]] for s in found["scratch"]]
    if not rows:
        ctx.say(f"{name}: nothing to prune (no retired or abandoned slots, no scratch copies)\n")
        return 0
    print_table(["kind", "name", "what"], rows, ctx.out)
    if args.yes:
        ctx.say(f"{name}: dropped {len(rows)} slot(s) and scratch copies listed above\n")
    else:
        ctx.note(f"{name}: nothing dropped yet; run again with --yes to drop the {len(rows)} above")
    return 0
