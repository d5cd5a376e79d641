"""Choosing cases on the benchmark command line."""

from __future__ import annotations

from benchmarks._cli import _parser, _select


def test_only_repeated_selects_every_named_case() -> None:
    arguments = _parser().parse_args(["--only", "relay_kafka", "--only", "relay_freshness"])
    assert [case.name for case in _select(arguments)] == ["relay_kafka", "relay_freshness"]


def test_only_takes_several_names_at_once_too() -> None:
    arguments = _parser().parse_args(["--only", "relay_kafka", "freshness", "relay_kafka"])
    assert [case.name for case in _select(arguments)] == ["relay_kafka", "freshness"]
