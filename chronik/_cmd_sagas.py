"""``chronik sagas list|show|retry``: saga instances, their steps, and retrying failed ones."""

from __future__ import annotations

import argparse
from datetime import timedelta
from typing import Any

from projections import StoreFeedSource
from sagas import (
    DEFAULT_STUCK_AFTER,
    STATUSES,
    SagaConfigError,
    SagaReport,
    SagaRunner,
    SagaRunnerStats,
    list_sagas,
    retry_parked,
    retry_saga,
    show_saga,
)

from ._context import Context
from ._errors import ExitCode, UsageError
from ._output import print_fields, print_json, print_table
from ._parsing import positive_int


def register(commands: Any, parents: list[argparse.ArgumentParser]) -> None:
    group = commands.add_parser(
        "sagas",
        parents=parents,
        help="list saga instances, show their steps, retry failed ones",
        description="Saga instances keep their progress in streams 'saga-<id>' and an index "
        "beside the events. 'chronik run' drives them; these commands look at them. An "
        "event a reaction kept failing on is parked (status 'parked', id "
        "'<reaction>@<event id>') until 'sagas retry' handles it.",
    )
    sub = group.add_subparsers(dest="sagas_command", metavar="COMMAND", required=True)
    listing = sub.add_parser(
        "list",
        parents=parents,
        help="saga instances, oldest first",
        description="Saga instances with their status. 'stuck': running or compensating "
        "with no progress for --stuck-after seconds (a runner down, an answer that never "
        "came and no deadline).",
    )
    listing.add_argument("--status", choices=STATUSES, help="only instances in this status")
    listing.add_argument(
        "--stuck-after",
        type=positive_int,
        default=int(DEFAULT_STUCK_AFTER.total_seconds()),
        metavar="SECONDS",
        help="how long without progress makes a running saga stuck (default: %(default)s)",
    )
    listing.add_argument("--limit", type=positive_int, metavar="N")
    listing.add_argument("--json", action="store_true", help="print a JSON list")
    listing.set_defaults(handler=run_list)

    show = sub.add_parser(
        "show",
        parents=parents,
        help="one instance: its data, steps, timings and the events each step caused",
    )
    show.add_argument("saga_id", metavar="ID")
    show.add_argument("--json", action="store_true", help="print the instance as JSON")
    show.set_defaults(handler=run_show)

    retry = sub.add_parser(
        "retry",
        parents=parents,
        help="put a failed saga back to work (after fixing its cause) and drive it, or "
        "run a parked reaction trigger again",
        description="A saga fails when a compensation is refused (e.g. the ledger to refund "
        "is frozen) or a step raised an unexpected error. Fix the cause, then retry: the "
        "failed step or compensation runs again, with the same event ids as before. Given "
        "a parked trigger's id ('<reaction>@<event id>'), the reaction handles its event "
        "once more; it stays parked (exit 1) if it fails again.",
    )
    retry.add_argument("saga_id", metavar="ID")
    retry.add_argument("--reason", default="", help="why it is retried (kept in its stream)")
    retry.add_argument("--json", action="store_true", help="print the instance as JSON")
    retry.set_defaults(handler=run_retry)


async def run_list(ctx: Context, args: argparse.Namespace) -> int:
    store = await ctx.services.store()
    rows = await list_sagas(
        store,
        status=args.status,
        stuck_after=timedelta(seconds=args.stuck_after),
        limit=args.limit,
    )
    if args.json:
        print_json(rows, ctx.out)
        return ExitCode.OK
    print_table(
        ["id", "saga", "status", "step", "version", "started", "updated", "reason"],
        [
            [
                r.saga_id,
                r.saga,
                f"{r.status} (stuck)" if r.stuck else r.status,
                r.step,
                r.version,
                r.started_at,
                r.updated_at,
                r.reason,
            ]
            for r in rows
        ],
        ctx.out,
        empty="(no saga instances)",
    )
    return ExitCode.OK


async def run_show(ctx: Context, args: argparse.Namespace) -> int:
    report = await show_saga(await ctx.services.store(), args.saga_id)
    _print_report(ctx, report, args.json)
    return ExitCode.OK


async def run_retry(ctx: Context, args: argparse.Namespace) -> int:
    app = ctx.app()
    repository = await ctx.repository()
    found = await show_saga(repository.store, args.saga_id)
    try:
        if found.kind == "reaction":
            still = await retry_parked(repository, list(app.reactions), args.saga_id)
            if still is not None:
                _print_report(ctx, still, args.json)
                return ExitCode.FAILURE
            if args.json:
                print_json({"id": args.saga_id, "status": "handled"}, ctx.out)
            else:
                ctx.out.write(f"{args.saga_id}: handled; no longer parked\n")
            return ExitCode.OK
        await retry_saga(repository, list(app.sagas), args.saga_id, args.reason)
    except SagaConfigError as error:
        raise UsageError(
            str(error), "point --app at the app that declares this saga or reaction"
        ) from None
    report = await show_saga(repository.store, args.saga_id)
    _print_report(ctx, report, args.json)
    return ExitCode.OK if report.status != "failed" else ExitCode.FAILURE


def _print_report(ctx: Context, report: SagaReport, as_json: bool) -> None:
    if as_json:
        print_json(report, ctx.out)
        return
    if report.kind == "reaction":
        data = report.data
        print_fields(
            [
                ("reaction", report.saga),
                ("id", report.saga_id),
                ("status", report.status),
                ("trigger", f"{data['event_type']} {data['stream_id']}@{data['version']}"),
                ("event id", report.trigger_event_id),
                ("attempts", data["attempts"]),
                ("parked", report.started_at),
                ("error", report.reason),
            ],
            ctx.out,
        )
        return
    ended = report.ended_at
    took = f" ({(ended - report.started_at).total_seconds() * 1000:.0f} ms)" if ended else ""
    print_fields(
        [
            ("saga", report.saga),
            ("id", report.saga_id),
            ("status", report.status),
            ("stream", f"saga-{report.saga_id} (version {report.version})"),
            ("started", report.started_at),
            (
                "ended",
                f"{ended.isoformat(sep=' ', timespec='milliseconds')}{took}" if ended else None,
            ),
            ("data", report.data),
            ("reason", report.reason),
        ],
        ctx.out,
    )
    ctx.out.write("\n")
    print_table(
        ["step", "phase", "outcome", "at", "caused", "detail"],
        [
            [
                s.step,
                s.phase,
                s.outcome,
                s.at,
                ", ".join(f"{c['stream_id']}@{c['version']} {c['type']}" for c in s.caused) or None,
                s.detail,
            ]
            for s in report.steps
        ],
        ctx.out,
        empty="(no steps yet)",
    )


async def saga_runner(ctx: Context) -> SagaRunner | None:
    """A runner of the app's sagas and reactions on the store's feed (None: it has none)."""
    app = ctx.app()
    if not app.sagas and not app.reactions:
        return None
    repository = await ctx.repository()
    return SagaRunner(
        repository,
        StoreFeedSource(repository.store),
        sagas=app.sagas,
        reactions=app.reactions,
    )


async def drive_sagas(ctx: Context) -> SagaRunnerStats | None:
    """Catch the app's sagas up with the feed once (for ``demo`` and ``run --until-caught-up``)."""
    runner = await saga_runner(ctx)
    if runner is None:
        return None
    await runner.catch_up()
    return runner.stats
