"""``--runs N`` folds whole runs into one row per case: medians of run medians."""

from __future__ import annotations

from benchmarks._harness import CaseResult, Measurement
from benchmarks._report import rows
from benchmarks._runs import fold_runs


def _row(chronik: tuple[float, ...], raw: tuple[float, ...], name: str = "feed") -> CaseResult:
    return CaseResult(
        name, "events/s", "throughput", "g", target=1.0, target_text=">= 1.0x raw"
    ).record({"chronik": Measurement(chronik), "raw": Measurement(raw)})


def test_one_run_is_left_as_it_is() -> None:
    only = [_row((1.0, 2.0, 3.0), (1.0, 1.0, 1.0))]
    assert fold_runs([only]) == only


def test_rows_show_the_median_and_spread_of_the_run_medians() -> None:
    runs = [
        [_row((9.0, 10.0, 11.0), (10.0, 10.0, 10.0)), _row((1.0, 1.0, 1.0), (1.0,) * 3, "b")],
        [_row((7.0, 8.0, 30.0), (10.0, 10.0, 10.0)), _row((2.0, 2.0, 2.0), (1.0,) * 3, "b")],
        [_row((11.0, 12.0, 13.0), (8.0, 8.0, 8.0)), _row((3.0, 3.0, 3.0), (1.0,) * 3, "b")],
    ]
    folded = fold_runs(runs)
    assert [row.name for row in folded] == ["feed", "b"]
    feed = folded[0]
    assert feed.chronik is not None and feed.chronik.samples == (10.0, 8.0, 12.0)
    assert (feed.chronik.median, feed.chronik.low, feed.chronik.high) == (10.0, 8.0, 12.0)
    assert feed.extra["runs"] == 3
    assert feed.extra["runs_detail"]["ratio_raw"] == [1.0, 0.8, 1.5]
    assert (feed.extra["ratio_raw_min"], feed.extra["ratio_raw_max"]) == (0.8, 1.5)
    assert feed.extra["runs_detail"]["meets_target"] == [True, False, True]
    assert rows(folded)[0][9] == "8.00-12.0"


def test_a_row_failed_in_any_run_is_failed() -> None:
    broken = _row((1.0,) * 3, (1.0,) * 3)
    broken.status, broken.reason = "failed", "skipped=3"
    folded = fold_runs([[_row((1.0,) * 3, (1.0,) * 3)], [broken], [_row((1.0,) * 3, (1.0,) * 3)]])
    assert [(row.status, row.reason) for row in folded] == [("failed", "skipped=3")]


def test_a_row_missing_from_a_run_is_failed() -> None:
    folded = fold_runs([[_row((1.0,) * 3, (1.0,) * 3)], []])
    assert folded[0].status == "failed" and "1 of 2 runs" in folded[0].reason


def test_the_ratio_and_verdict_are_the_median_of_the_runs_own_ratios() -> None:
    # chronik is 0.85, 0.92 and 0.85 of raw in its own runs: two runs of three miss
    # a 0.9 target.  The median chronik (9.2, run 2) over the median raw (10.0, runs
    # 1 and 2) would pair numbers from different runs: 0.92, "met".
    runs = [
        [_row((8.5,) * 3, (10.0,) * 3)],
        [_row((9.2,) * 3, (10.0,) * 3)],
        [_row((10.2,) * 3, (12.0,) * 3)],
    ]
    for run in runs:
        run[0].target = 0.9
    folded = fold_runs(runs)[0]
    assert folded.ratio_raw is not None and abs(folded.ratio_raw - 0.85) < 1e-9
    assert folded.meets_target is False
    assert rows([folded])[0][4] == "0.85"
