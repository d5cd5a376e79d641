"""The release that had the bugs, for the runbook: the app as it was deployed."""

from __future__ import annotations

from chronik import App
from eventstore import RecordedEvent
from projections import Projection, RedisWrites, RetryPolicy

from .account import Account, Closed, Deposited, Withdrawn
from .views import CODEC, cents

# --8<-- [start:bugs]
BALANCES_V1: Projection[RedisWrites] = Projection(
    "balances", writes=RedisWrites, version=1, codec=CODEC
)


@BALANCES_V1.on(Deposited)
def deposited(event: Deposited, envelope: RecordedEvent, writes: RedisWrites) -> None:
    writes.hincrby("cents", envelope.stream_id, cents(event.amount))


@BALANCES_V1.on(Withdrawn)
def withdrawn(event: Withdrawn, envelope: RecordedEvent, writes: RedisWrites) -> None:
    writes.hincrby("cents", envelope.stream_id, cents(event.amount))  # BUG: adds withdrawals


CLOSURES_V1: Projection[RedisWrites] = Projection(
    "closures", writes=RedisWrites, codec=CODEC, retry=RetryPolicy(attempts=2)
)


@CLOSURES_V1.on(Closed)
def closed(event: Closed, envelope: RecordedEvent, writes: RedisWrites) -> None:
    if event.reason is None:  # BUG: the reason is optional
        raise ValueError(f"{envelope.stream_id} was closed without a reason")
    writes.hset("reasons", {envelope.stream_id: event.reason.lower()})


# --8<-- [end:bugs]

app = App(name="bank", aggregates=[Account], projections=[BALANCES_V1, CLOSURES_V1])
