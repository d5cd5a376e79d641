"""The version comes from package metadata, else from a checkout's pyproject.toml."""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

import pytest

import chronik
from chronik import _version

ROOT = Path(__file__).resolve().parents[2]
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def _not_installed(name: str) -> str:
    raise metadata.PackageNotFoundError(name)


def test_the_package_has_a_version() -> None:
    assert chronik.__version__ == _version.chronik_version()
    assert chronik.__version__ != _version.UNKNOWN


def test_metadata_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metadata, "version", lambda name: "9.8.7")
    assert _version.chronik_version() == "9.8.7"


def test_a_checkout_without_metadata_reads_pyproject(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metadata, "version", _not_installed)
    assert _version.chronik_version() == VERSION


def test_without_either_the_version_is_unknown(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(metadata, "version", _not_installed)
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "other"\nversion = "1.0"\n')
    (tmp_path / "chronik").mkdir()
    monkeypatch.setattr(_version, "__file__", str(tmp_path / "chronik" / "_version.py"))
    assert _version.chronik_version() == _version.UNKNOWN
