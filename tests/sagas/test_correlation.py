"""Correlation and causation ids follow a command into the saga steps it leads to."""

from __future__ import annotations

from support.saga_runs import new_id, open_ledger, runner

from aggregates import Repository
from aggregates.ledger import Ledger
from eventstore import RecordedEvent, correlation
from sagas import SagaProcess, start_saga
from sagas.shipped import TRANSFER, transfer_data


async def _stream(repo: Repository, stream_id: str) -> list[RecordedEvent]:
    return [e async for e in repo.store.read_stream(stream_id)]


async def test_a_saga_steps_events_point_at_their_trigger(repo: Repository) -> None:
    a, b = await open_ledger(repo, 100), await open_ledger(repo, 5)
    saga_id = new_id()
    with correlation("request-42"):
        assert await start_saga(repo, TRANSFER, saga_id, transfer_data(a, b, 30, "EUR"))
    await runner(repo, sagas=[TRANSFER]).catch_up()

    process = await _stream(repo, SagaProcess.stream_id_for(saga_id))
    started = process[0]
    assert started.type == "saga.Started"
    assert started.metadata["correlation_id"] == "request-42"
    assert started.metadata["causation_id"] == "request-42"
    debit = (await _stream(repo, Ledger.stream_id_for(a)))[-1]
    credit = (await _stream(repo, Ledger.stream_id_for(b)))[-1]
    assert (debit.type, credit.type) == ("ledger.Withdrawn", "ledger.Deposited")
    for caused in (debit, credit, *process[1:]):
        # Every event the saga wrote is caused by an event of this correlation.
        assert caused.metadata["correlation_id"] == "request-42", caused
    assert debit.metadata["causation_id"] == str(started.event_id)
    # The ledgers' own history keeps the correlations of the commands that opened them.
    opened = (await _stream(repo, Ledger.stream_id_for(a)))[0]
    assert opened.metadata["correlation_id"] != "request-42"


async def test_a_command_outside_any_correlation_starts_one(repo: Repository) -> None:
    ledger_id = await open_ledger(repo, 10)
    events = await _stream(repo, Ledger.stream_id_for(ledger_id))
    root = str(events[0].event_id)
    assert [e.metadata for e in events] == [{"correlation_id": root, "causation_id": root}] * 2
    with correlation() as ids:
        await repo.update(Ledger, ledger_id, lambda ledger: ledger.deposit(1))
    last = (await _stream(repo, Ledger.stream_id_for(ledger_id)))[-1]
    assert last.metadata["correlation_id"] == ids.correlation_id != root
