"""Change data capture: row changes per second from commit to Kafka.

Each round first commits N row changes untimed (inserts in 100-row
transactions into a table with an integer key, an integer and a text column),
then times draining them:

chronik: ``publish_changes(..., until_idle=True)``: peek the slot, decode the
pgoutput messages into Debezium envelopes, produce them as JSON to Kafka (the
one broker setup of ``_brokers``: ``KAFKA_BOOTSTRAP_SERVERS``, or librdkafka's
mock cluster for the run), wait for every delivery report, advance the slot.

raw: ``pg_logical_slot_get_binary_changes`` with the same options over the same
backlog, ``fetchall()`` and nothing else: the server's WAL decoding and the
transfer, the floor any pgoutput consumer pays.

A separate pass splits one chronik drain into its parts (``extra``): the SQL
peek (the server decoding WAL), the Python decoding into envelopes, and the
Kafka produce + delivery wait.
"""

from __future__ import annotations

import uuid
from typing import Any

from psycopg import sql

from ._brokers import broker_description, cluster_for_run, kafka_missing
from ._cases import Case, not_available
from ._context import BenchContext
from ._harness import CaseResult, Round, Stopwatch, measure, per_second

GROUP = "cdc"
TRANSACTION = 100


async def _write(connection: Any, table: sql.Composable, rows: int, start: int) -> None:
    for first in range(start, start + rows, TRANSACTION):
        async with connection.transaction():
            await connection.execute(
                sql.SQL(
                    "INSERT INTO {} SELECT g, g %% 97, 'row ' || g "
                    "FROM generate_series(%s::bigint, %s::bigint) g"
                ).format(table),
                (first, first + TRANSACTION - 1),
            )


async def cdc_kafka(context: BenchContext) -> list[CaseResult]:
    description = "row changes from commit to Kafka (delivered, slot confirmed)"
    reason = kafka_missing()
    if reason is not None:
        return [not_available("cdc_kafka", GROUP, "changes/s", "throughput", reason, description)]
    from messaging import (
        CdcOptions,
        ChangeCapture,
        change_producer,
        change_record,
        publish_changes,
    )
    from messaging._cdc_envelope import ChangeDecoder, Envelopes

    connection = await context.raw_connection()
    cursor = await connection.execute("SHOW wal_level")
    level = await cursor.fetchone()
    if level is None or level[0] != "logical":
        return [
            not_available(
                "cdc_kafka", GROUP, "changes/s", "throughput",
                f"wal_level is {level[0] if level else '?'}, not logical", description,
            )
        ]  # fmt: skip
    changes = context.size(20_000, 500)
    schema = await context.create_schema("cdc")
    tables = {}
    for label in ("chronik", "raw"):
        tables[label] = sql.Identifier(schema, f"rows_{label}")
        await connection.execute(
            sql.SQL("CREATE TABLE {} (id bigint PRIMARY KEY, n int, note text)").format(
                tables[label]
            )
        )
    run = uuid.uuid4().hex[:8]
    producer = change_producer(cluster_for_run(context))
    options = CdcOptions(
        tables=(f"{schema}.rows_chronik",), name=f"bench_{run}", topic_prefix=f"bench{run}",
        state_schema=schema,
    )  # fmt: skip
    capture = await ChangeCapture(context.dsn, options).__aenter__()
    raw_slot, raw_publication = f"bench_raw_{run}", f"bench_raw_{run}"
    await connection.execute(
        sql.SQL("CREATE PUBLICATION {} FOR TABLE {}").format(
            sql.Identifier(raw_publication), tables["raw"]
        )
    )
    await connection.execute(
        "SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (raw_slot,)
    )

    async def cleanup() -> None:
        await capture.close()
        producer.close()
        for slot in (raw_slot, options.names.slot):
            await connection.execute(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                "WHERE slot_name = %s",
                (slot,),
            )
        for publication in (raw_publication, options.names.publication):
            await connection.execute(
                sql.SQL("DROP PUBLICATION IF EXISTS {}").format(sql.Identifier(publication))
            )

    context.push_async(cleanup)
    await publish_changes(capture, producer, until_idle=True)  # the (empty) snapshot
    written = {"chronik": 0, "raw": 0}

    async def chronik_round() -> float:
        await _write(connection, tables["chronik"], changes, written["chronik"])
        written["chronik"] += changes
        watch = Stopwatch()
        with watch.running():
            progress = await publish_changes(capture, producer, until_idle=True)
        if progress.changes != changes:
            raise RuntimeError(f"cdc delivered {progress.changes} changes, expected {changes}")
        return per_second(changes, watch.seconds)

    async def raw_round() -> float:
        await _write(connection, tables["raw"], changes, written["raw"])
        written["raw"] += changes
        watch = Stopwatch()
        with watch.running():
            cursor = await connection.execute(
                "SELECT data FROM pg_logical_slot_get_binary_changes(%s, NULL, NULL, "
                "'proto_version', '1', 'publication_names', %s)",
                (raw_slot, raw_publication),
            )
            rows = await cursor.fetchall()
        inserts = sum(1 for (data,) in rows if bytes(data[:1]) == b"I")
        if inserts != changes:
            raise RuntimeError(f"raw decoding returned {inserts} inserts, expected {changes}")
        return per_second(changes, watch.seconds)

    rounds: dict[str, Round] = {"chronik": chronik_round, "raw": raw_round}
    measured = await measure(rounds, repetitions=context.repetitions, warmup=context.warmup)

    # One drain taken apart: server decoding, Python decoding, Kafka.
    await _write(connection, tables["chronik"], changes, written["chronik"])
    parts = {"sql": Stopwatch(), "decode": Stopwatch(), "kafka": Stopwatch()}
    with parts["sql"].running():
        cursor = await connection.execute(
            "SELECT (lsn - '0/0'::pg_lsn)::bigint, data FROM "
            "pg_logical_slot_peek_binary_changes(%s, NULL, NULL, "
            "'proto_version', '1', 'publication_names', %s)",
            (options.names.slot, options.names.publication),
        )
        rows = await cursor.fetchall()
    decoder = ChangeDecoder(Envelopes(options.topic_prefix, "bench", lambda: 0))
    events = []
    with parts["decode"].running():
        for lsn, data in rows:
            events += decoder.feed(int(lsn), bytes(data))
    with parts["kafka"].running():
        for event in events:
            await producer.send(change_record(event), event.commit_lsn)
        await producer.drain()
    await publish_changes(capture, producer, until_idle=True)  # confirm the slot past them

    result = CaseResult(
        name="cdc_kafka",
        unit="changes/s",
        kind="throughput",
        group=GROUP,
        description=f"{description}; {changes} inserts in {TRANSACTION}-row transactions",
        raw_does=(
            "pg_logical_slot_get_binary_changes (pgoutput v1) over the same backlog, "
            "fetchall(), no decoding, no Kafka"
        ),
        extra={
            "changes": changes,
            "kafka": broker_description(),
            "wal_decoding_changes_per_s": round(per_second(changes, parts["sql"].seconds)),
            "python_decoding_changes_per_s": round(per_second(changes, parts["decode"].seconds)),
            "kafka_produce_changes_per_s": round(per_second(changes, parts["kafka"].seconds)),
        },
    ).record(measured)
    return [result]


CASES = (Case("cdc_kafka", GROUP, cdc_kafka, summary="row changes/s from commit to Kafka"),)
