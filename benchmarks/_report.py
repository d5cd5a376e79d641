"""The printed table, its Markdown twin for the README, and the JSON file."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._harness import CaseResult, Measurement

RATIO_NOTE = (
    "x raw / x es: chronik's speed relative to raw psycopg / the eventsourcing library; "
    ">= 1.00 means as fast or faster (throughput rows: chronik/other, latency rows: "
    "other/chronik). wire / x wire: the physical limit where it differs from raw (the "
    "server delivering the same rows, nothing decoded) and chronik's share of it. "
    "Values are medians; min-max is chronik's spread over the rounds (with --runs N: "
    "the median of the N run medians, and min-max the lowest and highest run median)."
)
_COLUMNS = (
    "case",
    "unit",
    "chronik",
    "raw",
    "x raw",
    "wire",
    "x wire",
    "eventsourcing",
    "x es",
    "chronik min-max",
    "target / note",
)


def _number(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "-"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def _median(measurement: Measurement | None) -> str:
    return "-" if measurement is None else _number(measurement.median)


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _target(result: CaseResult) -> str:
    if not result.target_text:
        return ""
    verdict = result.meets_target
    mark = "" if verdict is None else (" ok" if verdict else " MISSED")
    return result.target_text + mark


def rows(results: Sequence[CaseResult]) -> list[list[str]]:
    table: list[list[str]] = []
    for result in results:
        if result.status != "ok":
            reason = result.reason.splitlines()[0] if result.reason else ""
            table.append([result.name, result.unit, result.status.upper(), reason[:90]])
            continue
        spread = (
            "-"
            if result.chronik is None
            else f"{_number(result.chronik.low)}-{_number(result.chronik.high)}"
        )
        table.append(
            [
                result.name,
                result.unit,
                _median(result.chronik),
                _median(result.raw),
                _ratio(result.ratio_raw),
                _median(result.wire),
                _ratio(result.ratio_wire),
                _median(result.eventsourcing),
                _ratio(result.ratio_eventsourcing),
                spread,
                _target(result),
            ]
        )
    return table


def text_table(results: Sequence[CaseResult]) -> str:
    body = rows(results)
    full = [r for r in body if len(r) == len(_COLUMNS)]
    widths = [
        max([len(_COLUMNS[i])] + [len(r[i]) for r in (body if i < 2 else full)])
        for i in range(len(_COLUMNS))
    ]
    numeric = {2, 3, 4, 5, 6, 7, 8, 9}

    def line(cells: Sequence[str]) -> str:
        if len(cells) != len(_COLUMNS):  # a "not available" / "failed" row
            return "  ".join(
                [cells[0].ljust(widths[0]), cells[1].ljust(widths[1]), *cells[2:]]
            ).rstrip()
        return "  ".join(
            cell.rjust(widths[i]) if i in numeric else cell.ljust(widths[i])
            for i, cell in enumerate(cells)
        ).rstrip()

    rule = "-" * len(line(list(_COLUMNS)))
    return "\n".join([line(list(_COLUMNS)), rule, *(line(r) for r in body), rule, RATIO_NOTE])


def markdown_table(results: Sequence[CaseResult]) -> str:
    lines = ["| " + " | ".join(_COLUMNS) + " |", "|" + "---|" * len(_COLUMNS)]
    for cells in rows(results):
        padded = cells + [""] * (len(_COLUMNS) - len(cells))
        lines.append("| " + " | ".join(c.replace("|", "/") for c in padded) + " |")
    return "\n".join([*lines, "", RATIO_NOTE])


def write_json(path: Path, environment: dict[str, Any], results: Sequence[CaseResult]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "environment": environment,
        "ratio_note": RATIO_NOTE,
        "cases": [result.to_json() for result in results],
    }
    temporary = path.with_suffix(path.suffix + ".tmp")
    temporary.write_text(json.dumps(document, indent=2, default=str) + "\n")
    temporary.replace(path)
