"""Errors of change data capture (CDC).

::

    ChronikError
     └── MessagingError
          └── CdcError                 anything CDC refuses or fails to do
               ├── CdcDecodeError      bytes from the slot that are not pgoutput v1
               └── CdcSetupError       the server or a table cannot be captured as asked
                    └── WalLevelError  wal_level is not 'logical' (says how to fix it)

A change Kafka does not acknowledge is the producer's ``PublishError`` naming
the change's LSN and topic; the slot is not moved past it.
"""

from __future__ import annotations

from ._errors import MessagingError


class CdcError(MessagingError):
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
