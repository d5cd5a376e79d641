"""At most one active runner per projection: leader locks, standbys wait.

``PostgresAdvisoryLocks`` takes a session-level advisory lock on a connection of
its own to the event store's database.  The lock lives exactly as long as that
connection: when the holding process dies (or its connection is cut) PostgreSQL
releases it and a standby's next try succeeds.  A holder checks its connection
now and then; if it is gone, so is the lock, and the runner steps down.

The lock only saves work: correctness does not depend on it.  Every commit is
fenced by the slot's checkpoint (see ``_read_model``), so even a runner that
lost its lock without noticing cannot apply an event a second time.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import hashlib
import logging
from typing import Any

import psycopg

from eventstore import PostgresEventStore, mask_password

log = logging.getLogger("chronik.projections")


def lock_key(name: str) -> int:
    """A stable signed 64-bit advisory lock key for a lock name."""
    digest = hashlib.blake2b(name.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def raise_if_cancelled() -> None:
    """Re-raise a cancellation a library swallowed.

    On Python 3.11, ``asyncio.wait_for`` (used inside redis-py when a socket
    timeout is set) drops a cancellation that arrives just as its wait ends; the
    task then runs on with its cancel request still counted.  Loops call this at
    safe points so that cancelling a runner stops it.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def wait_or_stop(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep up to ``seconds``; True if ``stop`` was set meanwhile."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await stop.wait()
    return stop.is_set()


class LeaderLock(abc.ABC):
    """One named lock, held by at most one holder at a time across processes."""

    def __init__(self, name: str) -> None:
        self.name = name

    @abc.abstractmethod
    async def acquire(self, stop: asyncio.Event, poll_interval: float) -> bool:
        """Wait until the lock is ours (True) or ``stop`` is set (False)."""

    @abc.abstractmethod
    async def held(self) -> bool:
        """Whether we still hold it (False after losing the connection that held it)."""

    @abc.abstractmethod
    async def release(self) -> None: ...


class LockProvider(abc.ABC):
    @abc.abstractmethod
    def lock(self, name: str) -> LeaderLock: ...


class PostgresAdvisoryLocks(LockProvider):
    """Advisory locks, each on a dedicated connection to the event store's database."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn

    @classmethod
    def for_store(cls, store: PostgresEventStore) -> PostgresAdvisoryLocks:
        return cls(store.dsn)

    def lock(self, name: str) -> LeaderLock:
        return _PostgresLock(self.dsn, name)


class _PostgresLock(LeaderLock):
    def __init__(self, dsn: str, name: str) -> None:
        super().__init__(name)
        self._dsn = dsn
        self.key = lock_key(name)
        self._connection: psycopg.AsyncConnection[Any] | None = None

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        if self._connection is None or self._connection.closed:
            self._connection = await psycopg.AsyncConnection.connect(
                self._dsn, autocommit=True, application_name=f"chronik lock {self.name}"[:63]
            )
        return self._connection

    @property
    def backend_pid(self) -> int | None:
        """The PostgreSQL backend holding (or trying for) the lock, for diagnostics."""
        connection = self._connection
        return connection.info.backend_pid if connection and not connection.closed else None

    async def acquire(self, stop: asyncio.Event, poll_interval: float) -> bool:
        while not stop.is_set():
            try:
                connection = await self._connect()
                cursor = await connection.execute("SELECT pg_try_advisory_lock(%s)", (self.key,))
                row = await cursor.fetchone()
                if row is not None and row[0]:
                    return True
            except psycopg.OperationalError as error:
                # A standby that cannot reach the database keeps trying; it holds nothing.
                log.warning(
                    "lock %s: cannot reach the database: %s",
                    self.name,
                    mask_password(str(error).strip(), self._dsn),
                )
                await self._close()
            if await wait_or_stop(stop, poll_interval):
                break
        return False

    async def held(self) -> bool:
        connection = self._connection
        if connection is None or connection.closed:
            return False
        try:
            await connection.execute("SELECT 1")
        except psycopg.Error:
            await self._close()
            return False
        return True

    async def release(self) -> None:
        # Closing the session releases every session lock it holds.
        await self._close()

    async def _close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None and not connection.closed:
            await connection.close()


class LocalLocks(LockProvider):
    """In-process locks (the in-memory store, tests): exclusive within one process only."""

    def __init__(self) -> None:
        self._held: dict[str, object] = {}

    def lock(self, name: str) -> LeaderLock:
        return _LocalLock(self, name)


class _LocalLock(LeaderLock):
    def __init__(self, provider: LocalLocks, name: str) -> None:
        super().__init__(name)
        self._provider = provider
        self._token = object()

    async def acquire(self, stop: asyncio.Event, poll_interval: float) -> bool:
        held = self._provider._held
        while not stop.is_set():
            if held.setdefault(self.name, self._token) is self._token:
                return True
            if await wait_or_stop(stop, poll_interval):
                break
        return False

    async def held(self) -> bool:
        return self._provider._held.get(self.name) is self._token

    async def release(self) -> None:
        if self._provider._held.get(self.name) is self._token:
            del self._provider._held[self.name]
