"""The embedded PostgreSQL used when no database URL is given, and DSN masking."""

from __future__ import annotations

import asyncio
import os
import re
import warnings
from pathlib import Path
from typing import Any

from psycopg.conninfo import conninfo_to_dict

DEFAULT_DATA_DIR = Path(".chronik") / "pg"

# Keep a reference per data directory: pgserver stops the server when the last
# process holding it exits, so the handle must live as long as we do.
_servers: dict[Path, Any] = {}


async def embedded_dsn(data_dir: str | os.PathLike[str] | None = None) -> str:
    """Start (or reuse) the embedded PostgreSQL in ``data_dir`` and return its DSN."""
    server = await asyncio.to_thread(_start, Path(data_dir or DEFAULT_DATA_DIR))
    return str(server.get_uri())


def _start(path: Path) -> Any:
    path = path.resolve()
    if path in _servers:
        return _servers[path]
    with warnings.catch_warnings():
        # platformdirs warns about XDG_RUNTIME_DIR on servers; nothing to act on.
        warnings.simplefilter("ignore")
        import pgserver  # imported late: it is only needed without a DATABASE_URL

    path.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(path)  # type: ignore[attr-defined]
    ensure_logical_wal(server)
    _servers[path] = server
    return server


def ensure_logical_wal(server: Any) -> None:
    """Turn on logical decoding (``wal_level = logical``) on a pgserver, once.

    Change data capture needs it, and it only takes effect at server start, so a
    data directory that does not have it yet gets it and one restart (~0.2 s);
    later starts find it in ``postgresql.auto.conf``.  The extra WAL it writes is
    small: it only adds what decoding needs to the records already written.
    """
    import psycopg
    from pgserver._commands import pg_ctl  # type: ignore[attr-defined]

    with psycopg.connect(server.get_uri(), autocommit=True) as connection:
        row = connection.execute("SHOW wal_level").fetchone()
        if row is not None and row[0] == "logical":
            return
        connection.execute("ALTER SYSTEM SET wal_level = logical")
    with server._lock:  # pgserver's own inter-process lock around start and stop
        pg_ctl(["-w", "stop"], pgdata=server.pgdata, user=server.system_user)
        server.ensure_postgres_running()


_URL_PASSWORD = re.compile(r"(://[^:/@]*:)([^@]*)(@)")
# key=value DSNs: password=secret or password='se cret'.
_KEYWORD_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


def _mask_patterns(text: str) -> str:
    return _KEYWORD_PASSWORD.sub(r"\1***", _URL_PASSWORD.sub(r"\1***\3", text))


def describe_dsn(dsn: str) -> str:
    """Where a DSN points (host, port, database, user), never its password."""
    try:
        parts = conninfo_to_dict(dsn)
    except Exception:
        # An unparseable DSN is still masked as best we can, never echoed raw;
        # the URL pattern alone let "host=x password=secret dbname" through.
        if "://" in dsn:
            return _mask_patterns(dsn).split("?")[0]
        return "an unparseable connection string"
    host = parts.get("host") or "localhost"
    port = parts.get("port") or "5432"
    database = parts.get("dbname") or parts.get("user") or "postgres"
    user = parts.get("user") or "(default user)"
    return f"database {database!r} on {host}:{port} as {user}"


def mask_password(text: str, dsn: str) -> str:
    """Remove the DSN's password from a message (driver errors may echo it)."""
    try:
        password = conninfo_to_dict(dsn).get("password")
    except Exception:
        password = None
    masked = _mask_patterns(text)
    if password:
        masked = masked.replace(str(password), "***")
    return masked
