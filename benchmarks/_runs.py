"""Several whole runs folded into one table: how noisy each row is across runs.

One run's min-max is the spread of its rounds, which are interleaved minutes apart
at most; a shared machine is noisier than that from one run to the next (a row
near its target can pass in one run and miss in the next).  ``--runs N`` repeats
the whole selection N times and reports, per row, the median of the N run
medians, and in the min-max column the lowest and highest run median.  Its ratios
("x raw", "x es") and the target verdict are the median of the runs' own ratios:
each ratio compares two implementations measured in the same run.  The JSON
keeps every run's medians and ratios (``runs_detail``), so the spread of a ratio
is there too.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from ._harness import IMPLEMENTATIONS, CaseResult, Measurement


def fold_runs(runs: Sequence[Sequence[CaseResult]]) -> list[CaseResult]:
    """One row per row name (first run's order): its measurements are run medians."""
    if len(runs) == 1:
        return list(runs[0])
    by_name: dict[str, list[CaseResult]] = {}
    for results in runs:
        for result in results:
            by_name.setdefault(result.name, []).append(result)
    return [_fold(rows, len(runs)) for rows in by_name.values()]


def _fold(rows: list[CaseResult], runs: int) -> CaseResult:
    failed = [row for row in rows if row.status != "ok"]
    if failed or len(rows) < runs:
        row = failed[0] if failed else rows[-1]
        if not failed:
            row.status, row.reason = "failed", f"measured in {len(rows)} of {runs} runs"
        return row
    last = rows[-1]
    medians: dict[str, Measurement] = {}
    for name in IMPLEMENTATIONS:
        measured = [getattr(row, name) for row in rows]
        if all(m is not None for m in measured):
            medians[name] = Measurement(tuple(m.median for m in measured))
    detail: dict[str, Any] = {
        "medians": {name: list(m.samples) for name, m in medians.items()},
        "ratio_raw": [row.ratio_raw for row in rows],
        "ratio_eventsourcing": [row.ratio_eventsourcing for row in rows],
        "meets_target": [row.meets_target for row in rows],
    }
    ratios = [r for r in detail["ratio_raw"] if r is not None]
    folded = CaseResult(
        name=last.name,
        unit=last.unit,
        kind=last.kind,
        group=last.group,
        description=last.description,
        raw_does=last.raw_does,
        target=last.target,
        target_eventsourcing=last.target_eventsourcing,
        target_text=last.target_text,
        target_value=last.target_value,
        extra={
            **last.extra,
            "runs": runs,
            "runs_detail": detail,
            "ratio_raw_min": min(ratios) if ratios else None,
            "ratio_raw_max": max(ratios) if ratios else None,
            "ratio_raw_median_of_runs": statistics.median(ratios) if ratios else None,
        },
        repetitions=last.repetitions,
        warmup=last.warmup,
    )
    folded.record(medians)
    for name in IMPLEMENTATIONS:
        if name != "chronik" and name in medians:
            per_run = [row.ratio_to(name) for row in rows]
            known = [r for r in per_run if r is not None]
            folded.run_ratios[name] = statistics.median(known) if known else None
    return folded
