"""``chronik run``: the app's projections and sagas, until SIGINT/SIGTERM (or caught up)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
from typing import Any

from projections import Phase, ProjectionRunner, RunnerOptions, StoreFeedSource, status
from sagas import SagaRunner

from ._cmd_sagas import saga_runner
from ._context import Context
from ._errors import ExitCode
from ._metrics import MetricsServer, Readiness
from ._metrics_options import add_metrics_options, metrics_from
from ._output import print_json, print_table
from ._parsing import positive_int
from ._progress import Progress, following
from ._projecting import Target, drop_abandoned_slots, run_projections, stop_on_signals


def register(commands: Any, parents: list[argparse.ArgumentParser]) -> None:
    run = commands.add_parser(
        "run",
        parents=parents,
        help="run projection runners and sagas (until Ctrl-C / SIGTERM)",
        description="Run the app's projections from the event store's feed: catch up from "
        "each checkpoint, then follow live. Several processes may run the same "
        "projections: one leads each, the others wait as standbys. Without PROJECTION "
        "names the app's sagas run too. SIGINT or SIGTERM finishes the batch at hand "
        "and exits cleanly.",
    )
    run.add_argument(
        "projections",
        nargs="*",
        metavar="PROJECTION",
        help="only these projections, and no sagas (default: all of the app's)",
    )
    run.add_argument(
        "--until-caught-up",
        action="store_true",
        help="stop once every projection has reached the feed's head",
    )
    run.add_argument("--batch-size", type=positive_int, default=500, metavar="N")
    add_metrics_options(run)
    run.add_argument("--json", action="store_true", help="print the final states as JSON")
    run.set_defaults(handler=run_runners)


async def run_runners(ctx: Context, args: argparse.Namespace) -> int:
    async with metrics_from(ctx, args) as metrics:
        return await _run_runners(ctx, args, metrics)


async def _run_runners(
    ctx: Context, args: argparse.Namespace, metrics: MetricsServer | None
) -> int:
    if not args.until_caught_up and not ctx.config.debug:
        # A long-running process: say what it does (leading, standby, restarts).
        logging.getLogger("chronik").setLevel(logging.INFO)
    targets = await live_targets(ctx, args.projections)
    sagas = None if args.projections else await saga_runner(ctx)
    if not targets and sagas is None:
        ctx.note("the app declares no projections and no sagas: nothing to run")
        return ExitCode.OK
    for projection, model in targets:
        cleared = await drop_abandoned_slots(model, projection.name)
        if cleared:
            ctx.note(
                f"{projection.name}: dropped slot(s) {', '.join(cleared)} left by "
                "interrupted rebuilds"
            )
    if sagas is not None and args.until_caught_up:
        # Sagas first: what they append is then in the read models too.
        await sagas.catch_up()
    elif sagas is not None:
        return await _run_live(ctx, args, targets, sagas, metrics)
    states = (
        await project(
            ctx,
            targets,
            until_caught_up=args.until_caught_up,
            batch_size=args.batch_size,
            metrics=metrics,
            progress=False if args.json else None,
        )
        if targets
        else {}
    )
    if sagas is not None:
        _note_sagas(ctx, sagas)
    return _report(ctx, args, states)


def _report(ctx: Context, args: argparse.Namespace, states: dict[str, Any]) -> int:
    rows = [
        {
            "projection": name,
            "phase": str(s.phase),
            "slot": s.slot,
            "position": s.position,
            "events": s.events,
            "restarts": s.restarts,
            "error": s.error,
        }
        for name, s in states.items()
    ]
    if args.json:
        print_json(rows, ctx.out)
    else:
        print_table(
            ["projection", "phase", "slot", "position", "events", "restarts", "error"],
            [list(row.values()) for row in rows],
            ctx.out,
        )
    stopped = [name for name, s in states.items() if s.phase is Phase.STOPPED]
    if stopped:
        ctx.note(
            f"chronik: {', '.join(stopped)} stopped at a poison event; see "
            "'chronik deadletters list', fix the handler, then 'chronik deadletters replay'"
        )
        return ExitCode.FAILURE
    return ExitCode.OK


async def _run_live(
    ctx: Context,
    args: argparse.Namespace,
    targets: list[Target],
    sagas: SagaRunner,
    metrics: MetricsServer | None,
) -> int:
    """Projections and sagas side by side until a signal."""
    stop = asyncio.Event()
    if metrics is not None:
        metrics.watch(lambda: _saga_readiness(sagas))
    with stop_on_signals(stop):
        saga_task = asyncio.create_task(sagas.run(stop), name="chronik-sagas")
        try:
            states = (
                await project(
                    ctx,
                    targets,
                    until_caught_up=False,
                    batch_size=args.batch_size,
                    stop=stop,
                    metrics=metrics,
                )
                if targets
                else {}
            )
            if not targets:
                ctx.note("running the sagas; Ctrl-C or SIGTERM stops cleanly")
                await stop.wait()
        finally:
            stop.set()
            await saga_task
    _note_sagas(ctx, sagas)
    return _report(ctx, args, states)


def _note_sagas(ctx: Context, sagas: SagaRunner) -> None:
    s = sagas.stats
    ctx.note(
        f"sagas: {s.events} events read, {s.started} started, {s.driven} driven, "
        f"{s.reactions} reactions, {s.deadlines} deadlines fired, {s.restarts} restarts"
        + (f" (last error: {s.error})" if s.error else "")
    )


async def live_targets(ctx: Context, names: list[str] | tuple[str, ...] = ()) -> list[Target]:
    return [(p, await ctx.read_models.live(p)) for p in ctx.projection_targets(names)]


async def project(
    ctx: Context,
    targets: list[Target],
    *,
    until_caught_up: bool,
    batch_size: int = 500,
    stop: asyncio.Event | None = None,
    metrics: MetricsServer | None = None,
    progress: bool | None = None,
) -> dict[str, Any]:
    """Run ``targets`` from the store's feed; the runner's final states by projection.

    ``stop``: the caller's (who handles the signals); else one of its own.
    ``progress``: ``False`` when the command prints JSON (see ``Progress``)."""
    store = await ctx.services.store()
    runner = ProjectionRunner(
        StoreFeedSource(store), targets, options=RunnerOptions(batch_size=batch_size)
    )
    if metrics is not None:
        metrics.watch_projections(store, runner, targets)
    own = stop is None
    stop = stop if stop is not None else asyncio.Event()
    with stop_on_signals(stop) if own else contextlib.nullcontext():
        if until_caught_up:
            with Progress("projecting", enabled=progress) as bar:
                await run_projections(store, runner, targets, stop, until_caught_up=True, bar=bar)
        else:
            names = ", ".join(f"{p.name} ({ctx.read_models.describe(p)})" for p, _ in targets)
            ctx.note(f"running {names}; Ctrl-C or SIGTERM stops cleanly")

            async def left() -> int:
                # The projections' lag, whoever leads them: a standby shows the
                # leader's catch-up, and nothing once there is none.
                found = [await status(p, m, store) for p, m in targets]
                return sum(f.lag_events for f in found)

            async with following("catching up", left, enabled=progress):
                await run_projections(store, runner, targets, stop, until_caught_up=False)
    return dict(runner.states)


def _saga_readiness(sagas: SagaRunner) -> Readiness:
    """Sagas are ready while their runner has not failed since its last good batch."""
    stats = sagas.stats
    return Readiness(
        stats.error is None,
        {
            "sagas": {
                "leading": stats.leading,
                "position": str(stats.position) if stats.position else None,
                "events": stats.events,
                "restarts": stats.restarts,
                "error": stats.error,
            }
        },
    )
