"""Where the benchmarks run: a given DSN, or an embedded PostgreSQL of their own.

Without ``--dsn`` (or ``DATABASE_URL``) the run starts pgserver in a fresh
temporary directory, so every run begins from the same empty server and leaves
nothing behind; ``--data-dir`` keeps the server's files (e.g.
``./.chronik/bench-pg``) between runs instead.  The benchmarks themselves only
ever create and drop schemas named ``bench_<run id>_...``.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from eventstore import describe_dsn
from eventstore._embedded import ensure_logical_wal


@dataclass(frozen=True, slots=True)
class Server:
    dsn: str
    description: str
    embedded: bool


@contextlib.contextmanager
def benchmark_server(dsn: str | None, data_dir: Path | None) -> Iterator[Server]:
    """Yield the server to benchmark on; stop (and delete) what this function started."""
    if dsn:
        yield Server(dsn, f"given DSN: {describe_dsn(dsn)}", embedded=False)
        return
    with warnings.catch_warnings():
        # platformdirs warns about XDG_RUNTIME_DIR on servers; nothing to act on.
        warnings.simplefilter("ignore")
        import pgserver

    temporary = data_dir is None
    # Short path: the server's unix socket lives in the data directory.
    path = Path(tempfile.mkdtemp(prefix="chronik-bench-")) if data_dir is None else data_dir
    path.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(path, cleanup_mode="stop")  # type: ignore[attr-defined]
    ensure_logical_wal(server)  # as chronik's embedded server: the CDC case needs it
    where = "a temporary directory" if temporary else str(path)
    try:
        yield Server(server.get_uri(), f"embedded pgserver in {where}", embedded=True)
    finally:
        server.cleanup()
        if temporary:
            shutil.rmtree(path, ignore_errors=True)
