"""``chronik --version`` names the release, without touching any server."""

from __future__ import annotations

import tomllib
from pathlib import Path

from cli_runner import REPO, Chronik

VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]


def test_version_prints_the_release_and_exits_0(bare_chronik: Chronik) -> None:
    result = bare_chronik("--version")
    assert result.code == 0, result.describe()
    assert result.stdout.strip() == f"chronik {VERSION}"
    assert not (Path(bare_chronik.cwd) / ".chronik").exists()  # nothing embedded started
