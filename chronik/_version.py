"""The installed chronik's version, for ``chronik --version`` and ``chronik.__version__``."""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

UNKNOWN = "0+unknown"


def chronik_version() -> str:
    """The version in the package metadata; from a source checkout's pyproject.toml without it.

    A checkout run through PYTHONPATH (no install) has no metadata, and a stale editable
    install may name another checkout's version; the metadata still wins when present
    because it is what pip and bug reports refer to.
    """
    try:
        return metadata.version("chronik")
    except metadata.PackageNotFoundError:
        pass
    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    try:
        project = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {})
    except (OSError, tomllib.TOMLDecodeError):
        return UNKNOWN
    version = project.get("version") if project.get("name") == "chronik" else None
    return version if isinstance(version, str) else UNKNOWN
