"""The tracing-cost tools run: an ``--instrument`` run seeds the same traceparent in
every mode and reports client CPU, ``benchmarks._span_costs`` measures every mode,
and the ``tracing_overhead`` case reports every mode against issue #15's targets.

Tiny sizes in subprocesses; no timing is asserted (shared, noisy machines).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(*arguments: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    completed = subprocess.run(
        [sys.executable, "-m", *arguments],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return completed.stdout


def test_an_instrumented_run_projects_traced_events_and_reports_cpu(tmp_path: Path) -> None:
    out = tmp_path / "otel-off.json"
    _run("benchmarks", "--quick", "--only", "append_1", "--only", "project_redis",
         "--instrument", "otel-off", "--json", str(out))  # fmt: skip
    document = json.loads(out.read_text())
    assert document["environment"]["instrument"] == "otel-off"
    rows = {row["name"]: row for row in document["cases"]}
    assert rows["project_redis"]["traced_metadata"] is True
    for name in ("append_1", "project_redis"):
        assert rows[name]["status"] == "ok", rows[name]
        assert rows[name]["chronik_cpu_us_per_event"] > 0, rows[name]


def test_span_costs_measures_every_mode() -> None:
    output = _run("benchmarks._span_costs", "--loops", "1", "--rounds", "1",
                  "--appends", "5", "--events", "200")  # fmt: skip
    tight = re.findall(r"^  (none|otel-off|otel-on) +([\d.]+) +([\d.]+)$", output, re.M)
    assert [mode for mode, *_ in tight] == ["none", "otel-off", "otel-on"], output
    assert all(float(a) > 0 and float(b) > 0 for _, a, b in tight), output
    measured = re.findall(
        r"^  (none|otel-off|otel-on|metrics) +min +([\d.]+) +median +([\d.]+)$", output, re.M
    )
    # The span clock, then wall and CPU for each of the two works: four modes each.
    assert len(measured) == 20, output
    assert all(float(low) > 0 for _, low, _ in measured), output


def test_the_overhead_case_reports_each_mode_against_its_target(tmp_path: Path) -> None:
    out = tmp_path / "overhead.json"
    _run("benchmarks", "--quick", "--only", "tracing_overhead", "--json", str(out))
    rows = {row["name"]: row for row in json.loads(out.read_text())["cases"]}
    targets = {"tracing_off": 1.05, "tracing_on": 1.15, "metrics": None}
    expected = {f"{work}.{mode}" for work in ("append_1", "project_redis") for mode in targets}
    assert set(rows) == expected
    for name, row in rows.items():
        assert row["status"] == "ok", row
        assert row["target_value"] == targets[name.split(".")[1]], name
        assert row["meets_target"] is (
            None if row["target_value"] is None else row["chronik"] <= row["target_value"]
        )
        # Ratios of paired rounds against the in-process baseline, `none`.
        assert row["baseline"] == "none" and row["rounds"] == len(
            row["detail"]["chronik"]["samples"]
        )
        assert all(sample > 0 for sample in row["detail"]["chronik"]["samples"]), name
        assert set(row["wall_us"]) == {"none", row["mode"]}, name


def test_the_overhead_case_refuses_a_whole_run_mode(tmp_path: Path) -> None:
    # It switches the modes itself; under --instrument every mode would be that one.
    out = tmp_path / "overhead.json"
    _run("benchmarks", "--quick", "--only", "tracing_overhead", "--instrument", "otel-on",
         "--json", str(out))  # fmt: skip
    rows = json.loads(out.read_text())["cases"]
    assert len(rows) == 6
    assert all(row["status"] == "not available" for row in rows), rows
    assert all("--instrument" in row["reason"] for row in rows), rows
