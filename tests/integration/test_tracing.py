"""One OpenTelemetry trace from a command through the store, a projection, the relay,
Kafka and a consumer, and into a saga's steps (the SDK's in-memory exporter)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import confluent_kafka
import pytest
import redis.asyncio as aioredis
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from support.kafka import Consumed, consume, relay_options
from support.projection_runs import run_until_caught_up
from support.saga_runs import runner as saga_runner
from support.tracing import in_memory_tracing

from aggregates import Repository
from aggregates.ledger import LEDGER_EVENTS, LEDGER_UPCASTERS, Deposited, Ledger
from eventstore import Event, EventCodec, NewEvent, PostgresEventStore
from messaging import HandlerConsumer, HandlerContext, Relay
from projections import ProjectionRunner, RedisReadModel, RunnerOptions, StoreFeedSource
from projections.shipped import LEDGER_BALANCES
from sagas import migrate_sagas, start_saga
from sagas.shipped import TRANSFER, transfer_data


@pytest.fixture
def spans() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    with in_memory_tracing() as traced:
        yield traced


@pytest.fixture
async def store(
    make_pg_store: Callable[..., Awaitable[PostgresEventStore]],
) -> AsyncIterator[PostgresEventStore]:
    store = await make_pg_store()
    await migrate_sagas(store)
    yield store
    await store.close()


def _by_name(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.name == name]


def _parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


async def test_one_trace_from_the_command_to_the_read_model_and_kafka(
    spans: tuple[TracerProvider, InMemorySpanExporter],
    store: PostgresEventStore,
    redis_url: str,
    kafka_bootstrap: str,
) -> None:
    provider, exporter = spans
    repo = Repository(store, [Ledger])
    ledger_id = uuid.uuid4().hex[:12]
    with provider.get_tracer("test").start_as_current_span("command") as command:
        await repo.create(Ledger, ledger_id, lambda a: (a.open("ann", "EUR"), a.deposit(5)))
    trace_id = command.get_span_context().trace_id
    [append] = _by_name(exporter, "chronik.append")
    assert _parent_of(append) == command.get_span_context().span_id
    [stored, _] = [e async for e in store.read_stream(Ledger.stream_id_for(ledger_id))]
    assert stored.metadata["traceparent"].split("-")[2] == f"{append.context.span_id:016x}"

    # The projection's batch continues the trace under the append.
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        model = RedisReadModel(client, prefix=f"trace{uuid.uuid4().hex[:8]}:")
        options = RunnerOptions(batch_size=50, idle_timeout=0.02, standby_poll=0.02)
        runner = ProjectionRunner(
            StoreFeedSource(store), [(LEDGER_BALANCES, model)], options=options
        )
        await run_until_caught_up(runner, store)
    finally:
        await client.aclose()
    batches = [
        s for s in _by_name(exporter, "chronik.projection.batch") if s.context.trace_id == trace_id
    ]
    assert batches and all(_parent_of(b) == append.context.span_id for b in batches)

    # The relay publishes as a child of the append; the message carries the publish
    # span, so a consumer's work is a child of that.
    prefix = f"t{uuid.uuid4().hex[:10]}."
    await Relay(store, kafka_bootstrap, relay_options(prefix)).publish_pending()
    publishes = [
        s for s in _by_name(exporter, "chronik.relay.publish") if s.context.trace_id == trace_id
    ]
    assert len(publishes) == 2 and all(_parent_of(p) == append.context.span_id for p in publishes)
    messages = consume(kafka_bootstrap, [prefix + "ledger"])
    carried = {"-".join(str(m.header("traceparent")).split("-")[1:3]) for m in messages}
    assert carried == {f"{trace_id:032x}-{p.context.span_id:016x}" for p in publishes}

    # A consumer's handler runs in a span under the publish, and what it appends is
    # caused by the consumed event, in the command's correlation and trace.
    async def handle(event: Event, context: HandlerContext) -> None:
        if isinstance(event, Deposited):
            await store.append(f"mail-{ledger_id}", [NewEvent("mail.Sent", {})])

    handler = HandlerConsumer("mailer", handle, EventCodec(LEDGER_EVENTS, LEDGER_UPCASTERS))
    await handler.process([_message(m) for m in messages])
    [mail] = [e async for e in store.read_stream(f"mail-{ledger_id}")]
    deposited = (await store.correlated_events(stored.metadata["correlation_id"]))[1]
    assert deposited.type == "ledger.Deposited"
    assert mail.metadata["causation_id"] == str(deposited.event_id)
    assert mail.metadata["correlation_id"] == stored.metadata["correlation_id"]
    consumes = {s.context.span_id: s for s in _by_name(exporter, "chronik.consume")}
    assert {_parent_of(c) for c in consumes.values()} == {p.context.span_id for p in publishes}
    [mail_append] = [
        s
        for s in _by_name(exporter, "chronik.append")
        if s.attributes and s.attributes["chronik.stream_id"] == f"mail-{ledger_id}"
    ]
    assert _parent_of(mail_append) in consumes
    assert mail_append.context.trace_id == trace_id


async def test_saga_steps_continue_the_trace_of_their_trigger(
    spans: tuple[TracerProvider, InMemorySpanExporter], store: PostgresEventStore
) -> None:
    provider, exporter = spans
    repo = Repository(store, [Ledger])
    a, b = uuid.uuid4().hex[:12], uuid.uuid4().hex[:12]
    for ledger_id in (a, b):
        await repo.create(Ledger, ledger_id, lambda x: (x.open("o", "EUR"), x.deposit(50)))
    with provider.get_tracer("test").start_as_current_span("request") as request:
        await start_saga(repo, TRANSFER, uuid.uuid4().hex[:12], transfer_data(a, b, 20, "EUR"))
    trace_id = request.get_span_context().trace_id
    await saga_runner(repo, sagas=[TRANSFER]).catch_up()
    in_trace = [s for s in exporter.get_finished_spans() if s.context.trace_id == trace_id]
    ids = {s.context.span_id for s in in_trace}
    # The steps' appends belong to the request's trace, each under a span of it.
    step_appends = [
        s
        for s in in_trace
        if s.name == "chronik.append"
        and s.attributes is not None
        and str(s.attributes["chronik.stream_id"]).startswith("ledger-")
    ]
    assert len(step_appends) == 2
    root = request.get_span_context().span_id
    assert all(_parent_of(s) in ids for s in in_trace if s.context.span_id != root)


def _message(consumed: Consumed) -> confluent_kafka.Message:
    return confluent_kafka.Message(
        topic=consumed.topic,
        partition=consumed.partition,
        offset=consumed.offset,
        key=consumed.key,
        value=consumed.value,
        headers=consumed.headers,
    )
