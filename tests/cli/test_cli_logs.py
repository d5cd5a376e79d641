"""``--log-format json``: one JSON object per log line, with projection, position and
correlation id where they apply."""

from __future__ import annotations

import json

from cli_runner import Chronik


def test_json_logs_name_the_projection_position_and_correlation(chronik: Chronik) -> None:
    assert chronik("demo", "--json").code == 0
    result = chronik("run", "--until-caught-up", "--json", "--debug", "--log-format", "json")
    assert result.code == 0, result.describe()
    logged = [line for line in result.stderr.splitlines() if line.startswith(("{", "chronik:"))]
    # Every log line is JSON: none in the text format is left.
    assert not [line for line in logged if line.startswith("chronik: ")]
    lines = [json.loads(line) for line in logged]
    applied = [line for line in lines if line["message"].startswith("projection ")]
    batches = [line for line in applied if "applied" in line["message"]]
    assert batches, result.stderr[-2000:]
    for line in batches:
        assert line["projection"] in line["message"]
        assert line["position"] in line["message"]
        assert line["correlation_id"]
        assert line["level"] == "debug" and line["logger"] == "chronik.projections"


def test_an_unknown_log_format_is_a_usage_error(chronik: Chronik) -> None:
    result = chronik("streams", "--log-format", "xml")
    assert result.code == 2, result.describe()
