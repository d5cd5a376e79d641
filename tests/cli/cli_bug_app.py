"""Apps with a projection bug and its fix, for the CLI's rebuild and dead-letter tests.

``balances`` v1 adds withdrawals instead of subtracting them; v2 is fixed (a new
version: rebuilt beside the live one, then swapped in).  ``freezes`` crashes on
``ledger.Frozen`` in ``app_v1``; ``app_v2`` fixes the handler without a version
bump (so its parked events are replayed, not rebuilt).
"""

from __future__ import annotations

from aggregates.ledger import (
    LEDGER_EVENTS,
    LEDGER_UPCASTERS,
    Deposited,
    Frozen,
    Ledger,
    Withdrawn,
)
from chronik import App
from eventstore import EventCodec, RecordedEvent
from projections import Projection, RedisWrites, RetryPolicy

CODEC = EventCodec(LEDGER_EVENTS, LEDGER_UPCASTERS)


def _cents(amount: object) -> int:
    return int(str(amount).replace(".", "")) if "." in str(amount) else int(str(amount)) * 100


def balances(version: int) -> Projection[RedisWrites]:
    projection = Projection("balances", writes=RedisWrites, version=version, codec=CODEC)

    @projection.on(Deposited)
    def deposited(event: Deposited, envelope: RecordedEvent, w: RedisWrites) -> None:
        w.hincrby("cents", envelope.stream_id, _cents(f"{event.amount:.2f}"))

    @projection.on(Withdrawn)
    def withdrawn(event: Withdrawn, envelope: RecordedEvent, w: RedisWrites) -> None:
        sign = 1 if version == 1 else -1  # the bug, and its fix
        w.hincrby("cents", envelope.stream_id, sign * _cents(f"{event.amount:.2f}"))

    return projection


def freezes(*, fixed: bool) -> Projection[RedisWrites]:
    projection = Projection(
        "freezes", writes=RedisWrites, codec=CODEC, retry=RetryPolicy(attempts=1)
    )

    @projection.on(Frozen)
    def frozen(event: Frozen, envelope: RecordedEvent, w: RedisWrites) -> None:
        if not fixed:
            raise RuntimeError(f"cannot handle a freeze of {envelope.stream_id}")
        w.sadd("frozen", envelope.stream_id)

    return projection


app_v1 = App(name="buggy", aggregates=[Ledger], projections=[balances(1), freezes(fixed=False)])
app_v2 = App(name="fixed", aggregates=[Ledger], projections=[balances(2), freezes(fixed=True)])
