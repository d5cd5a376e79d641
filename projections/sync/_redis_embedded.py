"""Generated from projections/_redis_embedded.py by tools/async_to_sync.py: do not edit.

The synchronous twin of ``projections._redis_embedded``; read the source for the reasons
behind the code (comments do not survive the conversion)."""

from __future__ import annotations

import os

from projections._redis_embedded import _embedded_url


def embedded_redis_url(data_dir: str | os.PathLike[str] | None = None) -> str:
    """Start (or reuse) the embedded Redis in ``data_dir``; its ``unix://`` URL."""
    return _embedded_url(data_dir)
