"""One piece of outside work followed through every hop chronik has.

A request deposits into a ledger through the Repository; the relay publishes the
event to Kafka (the mock cluster); a member of a consumer group (chronik's
consumer API, ``messaging.consume``) reacts by starting a transfer saga; the saga
runner issues its steps on the ledgers; a projection applies all of it.  Every
event written carries the request's correlation id and points at its direct
cause, and every span belongs to one OpenTelemetry trace, parent to child across
the relay and the consumer (the SDK's in-memory exporter).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from decimal import Decimal

import pytest
import redis.asyncio as aioredis
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from support.kafka import relay_options
from support.projection_runs import run_until_caught_up
from support.saga_runs import open_ledger
from support.saga_runs import runner as saga_runner
from support.tracing import in_memory_tracing

from aggregates import Repository
from aggregates.ledger import LEDGER_EVENTS, LEDGER_UPCASTERS, Deposited, Ledger
from eventstore import (
    CAUSATION_ID,
    CORRELATION_ID,
    Event,
    EventCodec,
    PostgresEventStore,
    RecordedEvent,
    correlation,
)
from messaging import ConsumerOptions, HandlerConsumer, HandlerContext, Relay, consume
from projections import ProjectionRunner, RedisReadModel, RunnerOptions, StoreFeedSource
from projections.shipped import LEDGER_BALANCES, ledger_balance
from sagas import SagaProcess, migrate_sagas, start_saga
from sagas.shipped import TRANSFER, transfer_data

DEADLINE = 90.0  # a hang guard, not a timing assertion


@pytest.fixture
def traced() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    with in_memory_tracing() as tracing:
        yield tracing


@pytest.fixture
async def store(
    make_pg_store: Callable[..., Awaitable[PostgresEventStore]],
) -> AsyncIterator[PostgresEventStore]:
    store = await make_pg_store()
    await migrate_sagas(store)
    yield store
    await store.close()


@pytest.fixture
async def read_model(redis_url: str) -> AsyncIterator[RedisReadModel]:
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    yield RedisReadModel(client, prefix=f"e2e{uuid.uuid4().hex[:8]}:")
    await client.aclose()


async def test_one_request_through_store_relay_consumer_saga_and_projection(
    traced: tuple[TracerProvider, InMemorySpanExporter],
    store: PostgresEventStore,
    read_model: RedisReadModel,
    kafka_bootstrap: str,
) -> None:
    provider, exporter = traced
    repo = Repository(store, [Ledger])
    payer, payee = await open_ledger(repo, 100), await open_ledger(repo, 5)
    projector = ProjectionRunner(
        StoreFeedSource(store),
        [(LEDGER_BALANCES, read_model)],
        options=RunnerOptions(batch_size=500, idle_timeout=0.02, standby_poll=0.02),
    )
    # The projection holds the ledgers' openings already: its next batch is the request's.
    await run_until_caught_up(projector, store)
    exporter.clear()

    # 1. The edge: a request with its own id deposits through the Repository.
    request_id = f"req-{uuid.uuid4().hex[:8]}"
    tracer = provider.get_tracer("e2e")
    with tracer.start_as_current_span("request") as request, correlation(request_id):
        await repo.update(Ledger, payer, lambda ledger: ledger.deposit(Decimal(7)))
    trace_id = request.get_span_context().trace_id

    # 2. The relay publishes the feed to Kafka.
    prefix = f"e2e{uuid.uuid4().hex[:8]}."
    await Relay(store, kafka_bootstrap, relay_options(prefix)).publish_pending()

    # 3. A consumer group member reacts to the request's deposit by starting a transfer.
    saga_id = uuid.uuid4().hex[:12]
    started = asyncio.Event()

    async def react(event: Event, context: HandlerContext) -> None:
        if not isinstance(event, Deposited):
            return
        if context.envelope.metadata.get(CORRELATION_ID) != request_id:
            return  # the ledgers' openings, relayed too
        await start_saga(repo, TRANSFER, saga_id, transfer_data(payer, payee, 30, "EUR"))
        started.set()

    stop = asyncio.Event()
    member = asyncio.create_task(
        consume(
            HandlerConsumer("reactor", react, EventCodec(LEDGER_EVENTS, LEDGER_UPCASTERS)),
            bootstrap=kafka_bootstrap,
            group=f"e2e-{uuid.uuid4().hex[:8]}",
            topics=[prefix + "ledger"],
            stop=stop,
            options=ConsumerOptions(poll_timeout=0.1),
        )
    )
    try:
        async with asyncio.timeout(DEADLINE):
            await started.wait()
    finally:
        stop.set()
        await member

    # 4. The saga runner takes its steps; 5. the projection applies what they wrote.
    await saga_runner(repo, sagas=[TRANSFER]).catch_up()
    await run_until_caught_up(projector, store)

    # One correlation: every event the request led to, each pointing at its cause.
    chain = await store.correlated_events(request_id)
    by_id = {str(e.event_id): e for e in chain}
    [deposit] = [e for e in chain if e.stream_id == Ledger.stream_id_for(payer)][:1]
    assert deposit.type == "ledger.Deposited"
    assert deposit.metadata[CAUSATION_ID] == request_id
    saga = [e for e in chain if e.stream_id == SagaProcess.stream_id_for(saga_id)]
    assert saga[0].type == "saga.Started"
    assert saga[0].metadata[CAUSATION_ID] == str(deposit.event_id)  # through Kafka
    withdrawn = _one(chain, "ledger.Withdrawn")
    credited = [e for e in chain if e.stream_id == Ledger.stream_id_for(payee)]
    assert [e.type for e in credited] == ["ledger.Deposited"]
    for step in (withdrawn, *credited):
        assert by_id[step.metadata[CAUSATION_ID]].stream_id == saga[0].stream_id
    assert all(e.metadata[CORRELATION_ID] == request_id for e in chain)
    for event in chain[1:]:
        assert event.metadata[CAUSATION_ID] in by_id  # nothing hangs outside the tree

    # The projection applied the transfer: the balances moved and its checkpoint is past.
    checkpoint = await read_model.checkpoint(LEDGER_BALANCES.name)
    assert checkpoint is not None and checkpoint >= chain[-1].position
    paid = await ledger_balance(read_model, Ledger.stream_id_for(payer))
    received = await ledger_balance(read_model, Ledger.stream_id_for(payee))
    assert paid is not None and paid.balance == Decimal(100 + 7 - 30)
    assert received is not None and received.balance == Decimal(5 + 30)

    # One trace: every span of it hangs under another span of it, up to the request.
    spans = [s for s in exporter.get_finished_spans() if s.context.trace_id == trace_id]
    ids = {s.context.span_id: s for s in spans}
    root = request.get_span_context().span_id
    assert all(_parent(s) in ids for s in spans if s.context.span_id != root)
    payer_appends = _appends(spans, Ledger.stream_id_for(payer))
    [deposit_append] = [a for a in payer_appends if _parent(a) == root]
    publishes = [s for s in spans if s.name == "chronik.relay.publish"]
    assert [_parent(p) for p in publishes] == [deposit_append.context.span_id]
    consumed = [s for s in spans if s.name == "chronik.consume"]
    assert [_parent(c) for c in consumed] == [publishes[0].context.span_id]
    saga_start = min(_appends(spans, saga[0].stream_id), key=lambda s: s.start_time or 0)
    assert consumed[0].context.span_id in _ancestors(saga_start, ids)
    for stream in (Ledger.stream_id_for(payer), Ledger.stream_id_for(payee)):
        # The saga's steps (appended by the runner) descend from the consumer's span.
        step_appends = [a for a in _appends(spans, stream) if a is not deposit_append]
        assert step_appends, f"no step append on {stream} in the trace"
        assert all(consumed[0].context.span_id in _ancestors(a, ids) for a in step_appends)
    batches = [s for s in spans if s.name == "chronik.projection.batch"]
    assert deposit_append.context.span_id in {_parent(b) for b in batches}


def _one(events: list[RecordedEvent], kind: str) -> RecordedEvent:
    [found] = [e for e in events if e.type == kind]
    return found


def _parent(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def _ancestors(span: ReadableSpan, ids: dict[int, ReadableSpan]) -> list[int]:
    found: list[int] = []
    parent = _parent(span)
    while parent is not None and parent in ids:
        found.append(parent)
        parent = _parent(ids[parent])
    return found


def _appends(spans: list[ReadableSpan], stream_id: str) -> list[ReadableSpan]:
    return [
        s
        for s in spans
        if s.name == "chronik.append"
        and s.attributes is not None
        and s.attributes.get("chronik.stream_id") == stream_id
    ]
