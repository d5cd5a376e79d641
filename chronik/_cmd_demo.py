"""``chronik demo``: seed realistic histories through the real framework, then project."""

from __future__ import annotations

import argparse
from typing import Any

from ._cmd_run import live_targets, project
from ._cmd_sagas import drive_sagas
from ._context import Context
from ._demo import SeedReport
from ._errors import UsageError
from ._kafka_demo import print_kafka, publish_demo
from ._output import print_json, to_jsonable
from ._progress import Progress


def register(commands: Any, parents: list[argparse.ArgumentParser]) -> None:
    demo = commands.add_parser(
        "demo",
        parents=parents,
        help="seed demo ledgers and orders, project them",
        description="Seed ledger and order histories through the real framework (a few "
        "hundred events, some written as an older release wrote them, and snapshots), "
        "run a few transfer sagas (one is refunded), project them, and show what to try "
        "next. Running it again changes nothing.",
    )
    demo.add_argument("--json", action="store_true", help="print the summary as JSON")
    demo.set_defaults(handler=run_demo)


async def run_demo(ctx: Context, args: argparse.Namespace) -> int:
    app = ctx.app()
    if app.seed is None:
        raise UsageError(
            f"app {app.name!r} has no demo seed",
            "give it one with App(seed=...), or run the demo without --app",
        )
    store = await ctx.services.store(require_schema=False)
    await store.migrate()
    await (await ctx.services.snapshots()).migrate()
    repository = await ctx.repository()
    with Progress("seeding", unit="commands", enabled=False if args.json else None) as bar:
        report: SeedReport = await app.seed(repository, bar)
    before = await store.head()
    if await drive_sagas(ctx) is not None:
        # What the sagas appended (their progress, the ledgers' movements) is seeded too.
        report.events += await store.count_after(before)
    targets = await live_targets(ctx)
    states = (
        await project(ctx, targets, until_caught_up=True, progress=False if args.json else None)
        if targets
        else {}
    )
    projected = [
        {
            "projection": projection.name,
            "version": projection.version,
            "where": ctx.read_models.describe(projection),
            "persistent": ctx.read_models.is_persistent(projection),
            "position": states[projection.name].position,
            "phase": str(states[projection.name].phase),
        }
        for projection, _ in targets
    ]
    kafka = await publish_demo(ctx, [aggregate.type_name for aggregate in app.aggregates])
    if args.json:
        print_json({**to_jsonable(report), "projections": projected, "kafka": kafka}, ctx.out)
        return 0
    _print_summary(ctx, report, projected, kafka)
    return 0


def _print_summary(
    ctx: Context, report: SeedReport, projected: list[dict[str, Any]], kafka: dict[str, Any]
) -> None:
    where = f"schema {ctx.config.schema!r} of {ctx.config.describe_database()}"
    if report.already_seeded:
        ctx.say(f"The demo data is already in {where}; nothing was added.\n")
    else:
        ctx.say(
            f"Seeded {report.events} events in {report.streams} streams into {where}.\n"
            f"  {report.legacy_events} of them were appended raw, as release 1 wrote them "
            "(old types and schema versions), and are upcast on every read.\n"
            f"  {report.snapshots} snapshot(s) of the busy account were written by the "
            "repository's snapshot policy.\n"
        )
    for row in projected:
        ctx.say(
            f"  projected {row['projection']} v{row['version']} up to {row['position']} into "
            f"{row['where']}\n"
        )
    print_kafka(ctx, kafka)
    hints = list(report.try_next)
    if projected:
        name = projected[0]["projection"]
        hints += [
            ("chronik projections status", "checkpoints, lag, dead letters"),
            (f"chronik replay {name} --into check --diff", "replay into scratch and compare"),
            (f"chronik rebuild {name}", "rebuild beside the live copy, then swap"),
            ("chronik run", "keep projecting live (Ctrl-C stops)"),
            ("chronik relay", "keep publishing to Kafka (set KAFKA_BOOTSTRAP_SERVERS)"),
        ]
    ctx.say("\nTry next:\n")
    width = max(len(command) for command, _ in hints)
    for command, why in hints:
        ctx.say(f"  {command:<{width}}  # {why}\n")
