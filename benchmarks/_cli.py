"""The command line: ``python -m benchmarks [--quick] [--only NAME ...] [--json PATH]``.

Starts its own embedded PostgreSQL unless ``--dsn`` or ``DATABASE_URL`` names
a server, runs the cases, prints the table and writes the JSON (default
``benchmarks/results/latest.json`` plus a timestamped copy; ``--quick`` runs
write ``latest-quick.json`` so they never replace a real result).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._cases import Case
from ._context import bench_context
from ._environment import record_environment
from ._harness import CaseResult
from ._instrument import MODES, instrument
from ._registry import ALL_CASES
from ._report import markdown_table, text_table, write_json
from ._runs import fold_runs
from ._server import benchmark_server

RESULTS = Path(__file__).resolve().parent / "results"
# Facts a case reports that must be zero for its numbers to count.
_MUST_BE_ZERO = ("skipped", "skipped_live", "duplicates", "duplicates_live", "out_of_order")


def _parser() -> argparse.ArgumentParser:
    names = ", ".join(
        case.name + ("" if case.in_default_run else " (only on request)") for case in ALL_CASES
    )
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="chronik side by side with raw psycopg and the eventsourcing library.",
        epilog=f"cases: {names}",
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    parser.add_argument(
        "--only",
        nargs="+",
        action="extend",  # --only a --only b runs both (the last one alone ran before)
        metavar="NAME",
        help="run only these cases (repeatable)",
    )
    parser.add_argument("--all", action="store_true", help="also run on-request cases")
    parser.add_argument("--json", type=Path, metavar="PATH", help="where to write the JSON")
    parser.add_argument("--dsn", help="PostgreSQL to use (default: $DATABASE_URL, else embedded)")
    parser.add_argument(
        "--data-dir", type=Path, help="keep the embedded server here (default: a temp dir)"
    )
    parser.add_argument("--repetitions", type=int, help="timed rounds (default 7, quick 2)")
    parser.add_argument(
        "--runs",
        type=int,
        default=1,
        help="repeat the whole selection N times; rows show the median of the run "
        "medians and their min-max (see benchmarks._runs)",
    )
    parser.add_argument("--warmup", type=int, help="untimed rounds first (default 1)")
    parser.add_argument(
        "--keep-schemas", action="store_true", help="do not drop the bench_* schemas"
    )
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    parser.add_argument(
        "--instrument",
        choices=MODES,
        help="tracing/metrics switched on while the cases run (see benchmarks._instrument); "
        "with it, seeded events carry a traceparent in every mode (default: none, plain events)",
    )
    return parser


def _select(arguments: argparse.Namespace) -> list[Case]:
    if not arguments.only:
        return [c for c in ALL_CASES if c.in_default_run or arguments.all]
    known = {case.name: case for case in ALL_CASES}
    unknown = [name for name in arguments.only if name not in known]
    if unknown:
        raise SystemExit(f"unknown case(s): {', '.join(unknown)}; known: {', '.join(known)}")
    return [known[name] for name in dict.fromkeys(arguments.only)]


def _check_invariants(result: CaseResult) -> None:
    broken = {key: result.extra[key] for key in _MUST_BE_ZERO if result.extra.get(key)}
    if broken and result.status == "ok":
        result.status = "failed"
        result.reason = "correctness check failed: " + ", ".join(
            f"{key}={value}" for key, value in broken.items()
        )


async def _run(
    cases: Sequence[Case], dsn: str, server: str, arguments: argparse.Namespace
) -> tuple[dict[str, Any], list[CaseResult]]:
    repetitions = arguments.repetitions or (2 if arguments.quick else 7)
    warmup = 1 if arguments.warmup is None else arguments.warmup
    environment = await record_environment(
        dsn, server=server, quick=arguments.quick, repetitions=repetitions, warmup=warmup
    )
    results: list[CaseResult] = []
    started = time.perf_counter()
    async with bench_context(
        dsn,
        quick=arguments.quick,
        repetitions=repetitions,
        warmup=warmup,
        keep_schemas=arguments.keep_schemas,
        traced_writes=arguments.instrument is not None,
    ) as context:
        for case in cases:
            print(f"[bench] {case.name} ...", file=sys.stderr, flush=True)
            begin = time.perf_counter()
            try:
                produced = await case.run(context)
            except Exception as error:
                traceback.print_exc(file=sys.stderr)
                produced = [
                    CaseResult(
                        case.name,
                        unit="-",
                        kind="throughput",
                        group=case.group,
                        status="failed",
                        reason=f"{type(error).__name__}: {error}",
                    )
                ]
            seconds = time.perf_counter() - begin
            for result in produced:
                result.repetitions = result.repetitions or repetitions
                result.warmup = result.warmup or warmup
                result.extra.setdefault("case_seconds", round(seconds, 2))
                _check_invariants(result)
                results.append(result)
            print(f"[bench] {case.name} done in {seconds:.1f} s", file=sys.stderr, flush=True)
    environment["total_seconds"] = round(time.perf_counter() - started, 1)
    return environment, results


def main(argv: Sequence[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    if arguments.list:
        for case in ALL_CASES:
            extra = "" if case.in_default_run else "  (only with --only/--all)"
            print(f"{case.name:20} {case.summary}{extra}")
        return 0
    cases = _select(arguments)
    dsn = arguments.dsn or os.environ.get("DATABASE_URL") or None
    switch_off = instrument(arguments.instrument or "none")
    try:
        if arguments.runs < 1:
            raise SystemExit("--runs must be at least 1")
        runs: list[list[CaseResult]] = []
        with benchmark_server(dsn, arguments.data_dir) as server:
            for run in range(arguments.runs):
                if arguments.runs > 1:
                    print(f"[bench] run {run + 1} of {arguments.runs}", file=sys.stderr)
                environment, results = asyncio.run(
                    _run(cases, server.dsn, server.description, arguments)
                )
                runs.append(results)
        results = fold_runs(runs)
        environment["runs"] = arguments.runs
    finally:
        switch_off()
    environment["instrument"] = arguments.instrument or "none"

    print(text_table(results))
    if arguments.json is not None:
        targets = [arguments.json]
    elif arguments.quick:
        targets = [RESULTS / "latest-quick.json"]
    else:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        targets = [RESULTS / "latest.json", RESULTS / f"{stamp}.json"]
        (RESULTS / "latest.md").parent.mkdir(parents=True, exist_ok=True)
        (RESULTS / "latest.md").write_text(markdown_table(results) + "\n")
    for target in targets:
        write_json(target, environment, results)
    print(f"results: {', '.join(str(t) for t in targets)}")
    return 1 if any(result.status == "failed" for result in results) else 0
