"""What a CDC connector sets up on the server: checks, publication, slot, snapshot.

A connector named ``N`` owns the publication and the logical replication slot
``chronik_cdc_N`` and a row in ``<state schema>.cdc_connectors`` that says
whether its initial snapshot was delivered.  A running capture holds an advisory
lock named after its slot for as long as its session lives (``claim``): a second
run of the same connector, and ``drop_connector``, refuse while it does.  The
slot alone cannot say so: the SQL slot functions mark it active only during a read.

Why the snapshot is consistent with the slot (nothing missed, nothing twice):
the slot is created on a *replication* connection with ``EXPORT_SNAPSHOT``.
PostgreSQL then returns the slot's consistent point and exports the MVCC
snapshot taken at exactly that point: every transaction that committed before
it is visible in the snapshot, and every transaction that commits after it is
decoded by the slot.  The snapshot rows are read in a REPEATABLE READ
transaction that imports that snapshot (``SET TRANSACTION SNAPSHOT``) while the
replication connection stays open and idle, which is what keeps the exported
snapshot valid.  A row change is therefore in exactly one of the two.

A crash before the snapshot was delivered leaves the state row unfinished; the
next start drops the slot and takes the snapshot again (at-least-once: those
rows may be delivered twice, never lost).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import psycopg
import psycopg.errors
from psycopg import sql

from . import _cdc_pgoutput as pg
from ._cdc_envelope import TableShape
from ._cdc_errors import CdcSetupError, WalLevelError

log = logging.getLogger("chronik.cdc")

#: Session settings that make the servers' text output what ``_cdc_values`` parses.
SESSION_SETTINGS = (
    "SET DateStyle = 'ISO, YMD'; SET TimeZone = 'UTC'; SET IntervalStyle = 'postgres'; "
    "SET extra_float_digits = 3; SET bytea_output = 'hex'"
)


@dataclass(frozen=True, slots=True)
class ConnectorNames:
    """The server-side names of a connector."""

    name: str
    state_schema: str = "chronik"

    @property
    def slot(self) -> str:
        return f"chronik_cdc_{self.name}"

    @property
    def publication(self) -> str:
        return f"chronik_cdc_{self.name}"


async def connect(dsn: str) -> psycopg.AsyncConnection[tuple[object, ...]]:
    connection = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
    await connection.execute(SESSION_SETTINGS)
    return connection


async def check_wal_level(connection: psycopg.AsyncConnection[tuple[object, ...]]) -> None:
    cursor = await connection.execute("SHOW wal_level")
    row = await cursor.fetchone()
    level = str(row[0]) if row else "unknown"
    if level != "logical":
        raise WalLevelError(level)


def split_table(name: str) -> tuple[str, str]:
    """``"public.rides"`` -> ``("public", "rides")``; a bare name is in ``public``."""
    schema, dot, table = name.partition(".")
    if not dot:
        return "public", schema
    if not schema or not table or "." in table:
        raise CdcSetupError(f"invalid table name {name!r}: expected 'schema.table'")
    return schema, table


async def table_shapes(
    connection: psycopg.AsyncConnection[tuple[object, ...]], tables: Sequence[str]
) -> list[TableShape]:
    """Columns (type oid and modifier) and primary key of each table, in its column order."""
    shapes = []
    for name in tables:
        schema, table = split_table(name)
        cursor = await connection.execute(
            """
            SELECT a.attname, a.atttypid::int, a.atttypmod,
                   coalesce(a.attnum = ANY (i.indkey), false), array_position(i.indkey, a.attnum)
              FROM pg_attribute a
              JOIN pg_class c ON c.oid = a.attrelid
              JOIN pg_namespace n ON n.oid = c.relnamespace
              LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary
             WHERE n.nspname = %s AND c.relname = %s AND c.relkind IN ('r', 'p')
               AND a.attnum > 0 AND NOT a.attisdropped
             ORDER BY a.attnum
            """,
            (schema, table),
        )
        rows = await cursor.fetchall()
        if not rows:
            raise CdcSetupError(f"table {schema}.{table} does not exist (or is not a table)")
        columns = tuple(
            pg.Column(str(r[0]), int(r[1]), int(r[2]), bool(r[3]))  # type: ignore[call-overload]
            for r in rows
        )
        key_rows = sorted((r for r in rows if r[3]), key=lambda r: int(r[4]))  # type: ignore[call-overload]
        shapes.append(TableShape(schema, table, columns, tuple(str(r[0]) for r in key_rows)))
    return shapes


async def prepare_tables(
    connection: psycopg.AsyncConnection[tuple[object, ...]],
    names: ConnectorNames,
    shapes: Sequence[TableShape],
    *,
    full_before: bool,
) -> None:
    """The publication over exactly these tables, and full old images when asked."""
    identifiers = sql.SQL(", ").join(sql.Identifier(s.schema, s.table) for s in shapes)
    for shape in shapes:
        if not shape.primary_key and not full_before:
            # Without a key or a full old row, PostgreSQL refuses UPDATE and DELETE
            # on a table in a publication: say so before breaking the application.
            raise CdcSetupError(
                f"table {shape.schema}.{shape.table} has no primary key: capture it with "
                "full before images (--full-before sets REPLICA IDENTITY FULL) or add a key"
            )
        if full_before:
            await connection.execute(
                sql.SQL("ALTER TABLE {} REPLICA IDENTITY FULL").format(
                    sql.Identifier(shape.schema, shape.table)
                )
            )
    cursor = await connection.execute(
        "SELECT 1 FROM pg_publication WHERE pubname = %s", (names.publication,)
    )
    verb = (
        "ALTER PUBLICATION {} SET TABLE {}"
        if await cursor.fetchone()
        else ("CREATE PUBLICATION {} FOR TABLE {}")
    )
    await connection.execute(sql.SQL(verb).format(sql.Identifier(names.publication), identifiers))


async def ensure_state_table(
    connection: psycopg.AsyncConnection[tuple[object, ...]], names: ConnectorNames
) -> None:
    await connection.execute(
        sql.SQL(
            "CREATE SCHEMA IF NOT EXISTS {schema}; "
            "CREATE TABLE IF NOT EXISTS {table} ("
            " name text PRIMARY KEY, slot_name text NOT NULL,"
            " snapshot_lsn pg_lsn, snapshot_done boolean NOT NULL DEFAULT false,"
            " created_at timestamptz NOT NULL DEFAULT now())"
        ).format(
            schema=sql.Identifier(names.state_schema),
            table=sql.Identifier(names.state_schema, "cdc_connectors"),
        )
    )


async def needs_snapshot(
    connection: psycopg.AsyncConnection[tuple[object, ...]], names: ConnectorNames
) -> bool:
    """True unless the slot exists and its snapshot was delivered."""
    cursor = await connection.execute(
        sql.SQL(
            "SELECT s.snapshot_done, r.slot_name IS NOT NULL FROM {} s "
            "LEFT JOIN pg_replication_slots r ON r.slot_name = s.slot_name WHERE s.name = %s"
        ).format(sql.Identifier(names.state_schema, "cdc_connectors")),
        (names.name,),
    )
    row = await cursor.fetchone()
    if row is None:
        return True
    done, slot_exists = bool(row[0]), bool(row[1])
    if done and not slot_exists:
        log.warning(
            "CDC connector %r: its slot %s is gone; taking a new snapshot (rows may repeat)",
            names.name,
            names.slot,
        )
    return not (done and slot_exists)


async def mark_snapshot_done(
    connection: psycopg.AsyncConnection[tuple[object, ...]], names: ConnectorNames
) -> None:
    await connection.execute(
        sql.SQL("UPDATE {} SET snapshot_done = true WHERE name = %s").format(
            sql.Identifier(names.state_schema, "cdc_connectors")
        ),
        (names.name,),
    )


async def drop_slot(connection: psycopg.AsyncConnection[tuple[object, ...]], slot: str) -> None:
    await connection.execute(
        "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = %s",
        (slot,),
    )


@dataclass(frozen=True, slots=True)
class ExportedSnapshot:
    consistent_lsn: int
    snapshot_name: str


@contextlib.asynccontextmanager
async def create_slot_with_snapshot(
    dsn: str,
    state: psycopg.AsyncConnection[tuple[object, ...]],
    names: ConnectorNames,
) -> AsyncIterator[ExportedSnapshot]:
    """A new slot, and its exported snapshot valid for as long as this context is open."""
    await drop_slot(state, names.slot)
    replication = await psycopg.AsyncConnection.connect(
        dsn, autocommit=True, replication="database"
    )
    try:
        # Replication commands take the simple query protocol: a client-side cursor.
        cursor = psycopg.AsyncClientCursor(replication)
        await cursor.execute(
            sql.SQL("CREATE_REPLICATION_SLOT {} LOGICAL pgoutput EXPORT_SNAPSHOT").format(
                sql.Identifier(names.slot)
            )
        )
        row = await cursor.fetchone()
        assert row is not None
        consistent = pg.parse_lsn(str(row[1]))
        await state.execute(
            sql.SQL(
                "INSERT INTO {} (name, slot_name, snapshot_lsn, snapshot_done) "
                "VALUES (%s, %s, %s::pg_lsn, false) ON CONFLICT (name) DO UPDATE "
                "SET slot_name = excluded.slot_name, snapshot_lsn = excluded.snapshot_lsn, "
                "snapshot_done = false"
            ).format(sql.Identifier(names.state_schema, "cdc_connectors")),
            (names.name, names.slot, pg.format_lsn(consistent)),
        )
        yield ExportedSnapshot(consistent, str(row[2]))
    finally:
        await replication.close()


async def read_snapshot(
    dsn: str, exported: ExportedSnapshot, shapes: Sequence[TableShape], page: int = 1000
) -> AsyncIterator[tuple[TableShape, tuple[str | None, ...]]]:
    """Every row of the tables as of the slot's consistent point, as text values."""
    async with await connect(dsn) as connection, connection.transaction():
        await connection.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        await connection.execute(
            sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(exported.snapshot_name))
        )
        for shape in shapes:
            columns = sql.SQL(", ").join(
                sql.SQL("{}::text").format(sql.Identifier(c.name)) for c in shape.columns
            )
            query = sql.SQL("SELECT {} FROM {}").format(
                columns, sql.Identifier(shape.schema, shape.table)
            )
            async with connection.cursor(name=f"chronik_cdc_{shape.table}"[:60]) as named:
                named.itersize = page
                await named.execute(query)
                async for row in named:
                    yield shape, tuple(None if v is None else str(v) for v in row)


def _claim_key(names: ConnectorNames) -> int:
    digest = hashlib.blake2b(f"chronik.cdc:{names.slot}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


async def claim(
    connection: psycopg.AsyncConnection[tuple[object, ...]], names: ConnectorNames
) -> None:
    """Take the connector's lock for this session; a clear error when a run holds it."""
    key = _claim_key(names)
    cursor = await connection.execute("SELECT pg_try_advisory_lock(%s)", (key,))
    row = await cursor.fetchone()
    if row is not None and row[0]:
        return
    cursor = await connection.execute(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1"
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        " AND ((classid::bigint << 32) | objid::bigint) = %s",
        (key,),
    )
    holder = await cursor.fetchone()
    pid = f" (PostgreSQL backend pid {holder[0]})" if holder else ""
    raise CdcSetupError(
        f"CDC connector {names.name!r} is running in another process{pid}: stop that "
        f"'chronik cdc --name {names.name}' first"
    )


@dataclass(frozen=True, slots=True)
class DroppedConnector:
    """What ``drop_connector`` removed (all False: nothing of it was left)."""

    name: str
    slot: bool
    publication: bool
    state: bool

    @property
    def anything(self) -> bool:
        return self.slot or self.publication or self.state


async def drop_connector(
    connection: psycopg.AsyncConnection[tuple[object, ...]], names: ConnectorNames
) -> DroppedConnector:
    """Remove the connector's slot (the WAL it keeps is released), publication and state.

    Refuses (``CdcSetupError``) while a capture of it runs or anything reads its
    slot.  Holding the connector's lock meanwhile, no run can start half-way.
    """
    await claim(connection, names)
    try:
        cursor = await connection.execute(
            "SELECT active, active_pid FROM pg_replication_slots WHERE slot_name = %s",
            (names.slot,),
        )
        row = await cursor.fetchone()
        if row is not None and row[0]:
            raise CdcSetupError(
                f"replication slot {names.slot} is active (read by PostgreSQL backend pid "
                f"{row[1]}): stop what reads it, then drop connector {names.name!r}"
            )
        if row is not None:
            try:
                await drop_slot(connection, names.slot)
            except psycopg.errors.ObjectInUse as error:
                raise CdcSetupError(
                    f"replication slot {names.slot} became active while dropping it: "
                    f"{str(error).strip()}"
                ) from error
        cursor = await connection.execute(
            "SELECT 1 FROM pg_publication WHERE pubname = %s", (names.publication,)
        )
        publication = await cursor.fetchone() is not None
        if publication:
            await connection.execute(
                sql.SQL("DROP PUBLICATION IF EXISTS {}").format(sql.Identifier(names.publication))
            )
        table = sql.Identifier(names.state_schema, "cdc_connectors")
        cursor = await connection.execute("SELECT to_regclass(%s)", (table.as_string(connection),))
        exists = await cursor.fetchone()
        state = False
        if exists is not None and exists[0] is not None:
            cursor = await connection.execute(
                sql.SQL("DELETE FROM {} WHERE name = %s RETURNING 1").format(table), (names.name,)
            )
            state = await cursor.fetchone() is not None
    finally:
        await connection.execute("SELECT pg_advisory_unlock(%s)", (_claim_key(names),))
    return DroppedConnector(names.name, row is not None, publication, state)


async def drop_cdc_connector(
    dsn: str, name: str, *, state_schema: str = "chronik"
) -> DroppedConnector:
    """``drop_connector`` on a connection of its own (what ``chronik cdc drop`` runs).

    ``name`` is the connector's name as given to ``CdcOptions`` (any case)."""
    names = ConnectorNames(cdc_connector_name(name), state_schema)
    async with await connect(dsn) as connection:
        return await drop_connector(connection, names)


#: PostgreSQL's limit on a replication slot's name (NAMEDATALEN - 1).
MAX_SLOT_NAME = 63


def cdc_connector_name(name: object) -> str:
    """The server-side form of a connector's name (lower case, as slots must be), or
    ``CdcSetupError``: checked before anything is created, so a name PostgreSQL
    refuses for the slot cannot fail after the publication was made."""
    if not isinstance(name, str) or not name.replace("_", "").isalnum() or not name.isascii():
        raise CdcSetupError(
            f"invalid CDC connector name {name!r}: use letters, digits and underscores"
        )
    if len(ConnectorNames(name).slot) > MAX_SLOT_NAME:
        raise CdcSetupError(
            f"CDC connector name {name!r} is too long: the slot chronik_cdc_<name> may "
            f"have at most {MAX_SLOT_NAME} characters"
        )
    return name.lower()
