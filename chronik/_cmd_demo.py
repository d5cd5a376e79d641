"""``chronik demo``: seed realistic histories through the real framework, then project."""

from __future__ import annotations

import argparse
from typing import Any

from ._context import Context
from ._demo import SeedReport
from ._errors import UsageError
from ._output import print_json
from ._progress import Progress


def register(commands: Any, parents: list[argparse.ArgumentParser]) -> None:
    demo = commands.add_parser(
        "demo", parents=parents, help="seed demo ledgers and orders, project them",
        description="Seed ledger and order histories through the real framework (a few "
        "hundred events, some written as an older release wrote them, and snapshots), "
        "project them, and show what to try next. Running it again changes nothing.",
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
    with Progress("seeding", unit="commands") as bar:
        report: SeedReport = await app.seed(repository, bar)
    if args.json:
        print_json(report, ctx.out)
        return 0
    _print_summary(ctx, report)
    return 0


def _print_summary(ctx: Context, report: SeedReport) -> None:
    where = f"schema {ctx.config.schema!r} of {ctx.config.describe_database()}"
    out = ctx.out
    if report.already_seeded:
        out.write(f"The demo data is already in {where}; nothing was added.\n")
    else:
        out.write(
            f"Seeded {report.events} events in {report.streams} streams into {where}.\n"
            f"  {report.legacy_events} of them were appended raw, as release 1 wrote them "
            "(old types and schema versions), and are upcast on every read.\n"
            f"  {report.snapshots} snapshot(s) of the busy account were written by the "
            "repository's snapshot policy.\n"
        )
    out.write("\nTry next:\n")
    width = max(len(command) for command, _ in report.try_next)
    for command, why in report.try_next:
        out.write(f"  {command:<{width}}  # {why}\n")
