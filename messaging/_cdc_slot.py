"""Reading a connector's slot: peek decoded changes, confirm them once delivered.

The SQL slot functions are used, not the streaming replication protocol:
``pg_logical_slot_peek_binary_changes`` decodes from the slot's confirmed
position without moving it, and ``pg_replication_slot_advance`` moves it once
the caller has delivered everything up to a transaction's end.  So a crash at
any moment leaves the slot at the last delivered transaction, and the next
start decodes the rest again (at-least-once).  The slot functions decode whole
transactions: a batch never ends inside one.

Each peek decodes from the confirmed position, so the caller confirms before
the next read; the reader keeps no changes across reads.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
import psycopg.errors

from ._cdc_envelope import ChangeDecoder, ChangeEvent
from ._cdc_errors import CdcSetupError
from ._cdc_pgoutput import format_lsn
from ._cdc_setup import ConnectorNames


@dataclass(frozen=True, slots=True)
class SlotBatch:
    """The change events of whole transactions, and where the slot may move after them.

    ``confirm_lsn`` is the end of the last transaction read (None: nothing to
    move).  An empty batch can still move it: WAL the slot holds for tables
    outside the publication is released too.
    """

    events: list[ChangeEvent]
    confirm_lsn: int | None
    messages: int


@dataclass(frozen=True, slots=True)
class SlotLag:
    slot: str
    active: bool
    retained_bytes: int
    confirmed_lsn: str | None
    wal_status: str | None


class SlotReader:
    """Reads one connector's slot on a connection of its own."""

    def __init__(
        self,
        connection: psycopg.AsyncConnection[tuple[object, ...]],
        names: ConnectorNames,
        decoder: ChangeDecoder,
        *,
        max_changes: int = 5000,
    ) -> None:
        self.connection = connection
        self.names = names
        self.decoder = decoder
        self.max_changes = max_changes
        self.confirmed: int | None = None

    async def start(self) -> None:
        """Learn where the slot stands; a missing slot is a setup error."""
        cursor = await self.connection.execute(
            "SELECT (confirmed_flush_lsn - '0/0'::pg_lsn)::bigint FROM pg_replication_slots "
            "WHERE slot_name = %s",
            (self.names.slot,),
        )
        row = await cursor.fetchone()
        if row is None:
            raise CdcSetupError(f"replication slot {self.names.slot} does not exist")
        self.confirmed = int(row[0]) if row[0] is not None else None  # type: ignore[call-overload]

    async def read(self) -> SlotBatch:
        """The next whole transactions after the confirmed position (up to ``max_changes``)."""
        cursor = await self.connection.execute(
            "SELECT (pg_current_wal_flush_lsn() - '0/0'::pg_lsn)::bigint"
        )
        row = await cursor.fetchone()
        assert row is not None
        flushed = int(row[0])  # type: ignore[call-overload]
        try:
            cursor = await self.connection.execute(
                "SELECT (lsn - '0/0'::pg_lsn)::bigint, data "
                "FROM pg_logical_slot_peek_binary_changes(%s, %s::pg_lsn, %s, "
                "'proto_version', '1', 'publication_names', %s)",
                (self.names.slot, format_lsn(flushed), self.max_changes, self.names.publication),
            )
            rows = await cursor.fetchall()
        except psycopg.errors.ObjectInUse as error:
            raise self._in_use(error) from error
        events: list[ChangeEvent] = []
        end: int | None = None
        decoder = self.decoder
        for lsn, data in rows:
            committed = decoder.feed(int(lsn), bytes(data))  # type: ignore[call-overload]
            if decoder.last_commit_end is not None:
                end = decoder.last_commit_end
            events += committed
        if not rows:
            # Nothing committed in the publication up to ``flushed``: every
            # transaction committing later ends beyond it, so moving there is safe.
            end = flushed
        if end is not None and self.confirmed is not None and end <= self.confirmed:
            end = None
        return SlotBatch(events, end, len(rows))

    async def confirm(self, lsn: int) -> None:
        """Move the slot to ``lsn``: everything before it was delivered."""
        if self.confirmed is not None and lsn <= self.confirmed:
            return
        try:
            await self.connection.execute(
                "SELECT pg_replication_slot_advance(%s, %s::pg_lsn)",
                (self.names.slot, format_lsn(lsn)),
            )
        except psycopg.errors.ObjectInUse as error:
            raise self._in_use(error) from error
        self.confirmed = lsn

    def _in_use(self, error: Exception) -> CdcSetupError:
        return CdcSetupError(
            f"replication slot {self.names.slot} is in use by another process (another CDC "
            f"run of connector {self.names.name!r}?): {str(error).strip()}"
        )


async def slot_lag(
    connection: psycopg.AsyncConnection[tuple[object, ...]], slot: str
) -> SlotLag | None:
    """How much WAL the slot keeps on the server's disk (None: no such slot)."""
    cursor = await connection.execute(
        "SELECT active, "
        "(pg_current_wal_lsn() - coalesce(restart_lsn, pg_current_wal_lsn()))::bigint, "
        "confirmed_flush_lsn::text, wal_status FROM pg_replication_slots WHERE slot_name = %s",
        (slot,),
    )
    row = await cursor.fetchone()
    if row is None:
        return None
    return SlotLag(
        slot,
        bool(row[0]),
        int(row[1]),  # type: ignore[call-overload]
        None if row[2] is None else str(row[2]),
        None if row[3] is None else str(row[3]),
    )
