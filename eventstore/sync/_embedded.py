"""Generated from eventstore/_embedded.py by tools/async_to_sync.py: do not edit.

The synchronous twin of ``eventstore._embedded``; read the source for the reasons
behind the code (comments do not survive the conversion)."""

from __future__ import annotations

import os
from pathlib import Path

from eventstore._embedded import DEFAULT_DATA_DIR, _start


def embedded_dsn(data_dir: str | os.PathLike[str] | None = None) -> str:
    """Start (or reuse) the embedded PostgreSQL in ``data_dir`` and return its DSN."""
    server = _start(Path(data_dir or DEFAULT_DATA_DIR))
    return str(server.get_uri())
