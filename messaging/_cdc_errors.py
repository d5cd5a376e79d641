"""Errors of change data capture (CDC).

::

    ChronikError
     └── CdcError                 anything CDC refuses or fails to do
     ├── CdcDecodeError           bytes from the slot that are not pgoutput v1
     ├── CdcSetupError            the server or a table cannot be captured as asked
     │    └── WalLevelError       wal_level is not 'logical' (says how to fix it)
     └── CdcDeliveryError         Kafka did not confirm a change (the slot stays put)

Each names what it is about (table, slot, topic, LSN) and keeps its cause.
"""

from __future__ import annotations

from eventstore import ChronikError


class CdcError(ChronikError):
    """Base class of the CDC errors."""


class CdcDecodeError(CdcError):
    """A replication message that is not valid pgoutput protocol v1."""


class CdcSetupError(CdcError):
    """The server or a table cannot be captured as asked (missing table, no key...)."""


class WalLevelError(CdcSetupError):
    """Logical decoding is off on the server."""

    def __init__(self, wal_level: str) -> None:
        super().__init__(
            f"wal_level is {wal_level!r}; change data capture needs 'logical': run "
            '"ALTER SYSTEM SET wal_level = logical" as a superuser and restart PostgreSQL '
            "(chronik's embedded server is configured this way already)"
        )
        self.wal_level = wal_level

    def __reduce__(self) -> tuple[type[WalLevelError], tuple[str]]:
        return (WalLevelError, (self.wal_level,))


class CdcDeliveryError(CdcError):
    """Kafka did not acknowledge a change message; the slot was not advanced past it."""

    def __init__(self, topic: str, lsn: str, reason: str) -> None:
        super().__init__(
            f"delivery to topic {topic!r} failed for the change at LSN {lsn}: {reason}"
        )
        self.topic = topic
        self.lsn = lsn
        self.reason = reason

    def __reduce__(self) -> tuple[type[CdcDeliveryError], tuple[str, str, str]]:
        return (CdcDeliveryError, (self.topic, self.lsn, self.reason))
