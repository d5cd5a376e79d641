"""The bank's read models: balances and closures in Redis, statements in MongoDB."""

from __future__ import annotations

from typing import Any

from aggregates import build_codec
from eventstore import RecordedEvent
from projections import MongoReadModel, MongoWrites, Projection, RedisWrites

from .account import Account, Closed, Deposited, Opened, Withdrawn

# One codec with the account's events and upcasters: projections then see every
# stored Deposited as v2, whatever release wrote it.
CODEC = build_codec([Account])


def cents(amount: Any) -> int:
    return int(amount * 100)


# --8<-- [start:balances]
BALANCES: Projection[RedisWrites] = Projection(
    "balances", writes=RedisWrites, version=2, codec=CODEC
)


@BALANCES.on(Deposited)
def deposited(event: Deposited, envelope: RecordedEvent, writes: RedisWrites) -> None:
    writes.hincrby("cents", envelope.stream_id, cents(event.amount))


@BALANCES.on(Withdrawn)
def withdrawn(event: Withdrawn, envelope: RecordedEvent, writes: RedisWrites) -> None:
    writes.hincrby("cents", envelope.stream_id, -cents(event.amount))


# --8<-- [end:balances]


# --8<-- [start:closures]
CLOSURES: Projection[RedisWrites] = Projection("closures", writes=RedisWrites, codec=CODEC)


@CLOSURES.on(Closed)
def closed(event: Closed, envelope: RecordedEvent, writes: RedisWrites) -> None:
    writes.hset("reasons", {envelope.stream_id: (event.reason or "unknown").lower()})


# --8<-- [end:closures]


# --8<-- [start:statements]
STATEMENTS: Projection[MongoWrites] = Projection("statements", writes=MongoWrites, codec=CODEC)


@STATEMENTS.on(Opened)
def statement_opened(event: Opened, envelope: RecordedEvent, writes: MongoWrites) -> None:
    # Every operation names one document: (collection, _id). Operator updates.
    writes.upsert("statements", envelope.stream_id, {"$set": {"owner": event.owner}})


@STATEMENTS.on(Deposited, Withdrawn)  # one handler for both: its event is their union
def statement_line(
    event: Deposited | Withdrawn, envelope: RecordedEvent, writes: MongoWrites
) -> None:
    signed = cents(event.amount) if isinstance(event, Deposited) else -cents(event.amount)
    line = {"version": envelope.version, "cents": signed, "at": envelope.recorded_at}
    writes.upsert(
        "statements",
        envelope.stream_id,
        {"$push": {"lines": line}, "$inc": {"balance_cents": signed}},
    )


async def statement(read_model: MongoReadModel, stream_id: str) -> dict[str, Any] | None:
    view = await read_model.view(STATEMENTS.name)  # the active slot, resolved once
    document: dict[str, Any] | None = await view.collection("statements").find_one(
        {"_id": stream_id}
    )
    return document


# --8<-- [end:statements]
