"""Ledger balances and per-owner totals, in Redis.

Relative keys of the active slot (see ``RedisReadModel.view``), every part taken
from event data escaped by ``projections.key`` so that no owner or stream id can
pose as another key (version 1 joined them raw: an owner named ``alice:ledgers``
took over alice's ledger set)::

    ledger:<stream id>         hash: owner, owner_key, currency, status,
                               overdraft_limit, balance (in units of 10^-4)
    owner:<owner>              hash: currency -> total of the owner's ledgers (units)
    owner:<owner>:ledgers      set of the owner's ledger stream ids

Money stays exact: amounts become integers of 10^-4 (every ISO 4217 currency has
at most four minor digits) and Redis adds integers.  An amount with more digits is
refused, so the event is parked, not rounded.  Deposits and withdrawals carry no
owner, and migrated ones no currency either, so a script reads both from the
ledger's hash inside the batch transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from aggregates.ledger import (
    LEDGER_EVENTS,
    LEDGER_UPCASTERS,
    Closed,
    Deposited,
    Frozen,
    Opened,
    Unfrozen,
    Withdrawn,
)
from eventstore import EventCodec, RecordedEvent

from .._keys import key
from .._projection import Projection
from .._redis import RedisReadModel
from .._redis_reads import RedisView
from .._redis_writes import RedisScript, RedisWrites

NAME = "ledger_balances"
#: Amounts are stored as integers of 10^-SCALE.
SCALE = 4

_MOVE = RedisScript(
    """
    local owner = redis.call('HGET', KEYS[1], 'owner')
    if not owner then
      return redis.error_reply('no ledger.Opened projected for ' .. KEYS[1])
    end
    local currency = ARGV[3]
    if currency == '' then
      currency = redis.call('HGET', KEYS[1], 'currency')
    end
    redis.call('HINCRBY', KEYS[1], 'balance', ARGV[2])
    redis.call('HINCRBY', ARGV[1] .. redis.call('HGET', KEYS[1], 'owner_key'), currency, ARGV[2])
    return 1
    """
)


def to_units(amount: Decimal) -> int:
    """``amount`` in integer units of 10^-SCALE; ValueError if that would round it."""
    units = amount.scaleb(SCALE)
    if units != units.to_integral_value():
        raise ValueError(f"amount {amount} has more than {SCALE} decimal places")
    return int(units)


def from_units(units: int | str) -> Decimal:
    return Decimal(int(units)).scaleb(-SCALE)


LEDGER_BALANCES: Projection[RedisWrites] = Projection(
    NAME,
    writes=RedisWrites,
    # 2: keys escaped with projections.key (a new version rebuilds beside the old).
    version=2,
    codec=EventCodec(LEDGER_EVENTS, LEDGER_UPCASTERS),
    description="ledger balances and per-owner totals",
    must_handle=("ledger.*",),
)


@LEDGER_BALANCES.on(Opened)
def _opened(event: Opened, envelope: RecordedEvent, w: RedisWrites) -> None:
    ledger = envelope.stream_id
    owner = key("owner", event.owner)
    w.hset(
        key("ledger", ledger),
        {
            "owner": event.owner,
            "owner_key": owner,
            "currency": event.currency,
            "status": "open",
            "overdraft_limit": str(event.overdraft_limit),
            "balance": 0,
        },
    )
    w.sadd(key("owner", event.owner, "ledgers"), ledger)
    w.hincrby(owner, event.currency, 0)


@LEDGER_BALANCES.on(Deposited)
def _deposited(event: Deposited, envelope: RecordedEvent, w: RedisWrites) -> None:
    units = to_units(event.amount)
    w.script(_MOVE, [key("ledger", envelope.stream_id)], [units, event.currency or ""])


@LEDGER_BALANCES.on(Withdrawn)
def _withdrawn(event: Withdrawn, envelope: RecordedEvent, w: RedisWrites) -> None:
    units = to_units(event.amount)
    w.script(_MOVE, [key("ledger", envelope.stream_id)], [-units, event.currency or ""])


@LEDGER_BALANCES.on(Frozen)
def _frozen(event: Frozen, envelope: RecordedEvent, w: RedisWrites) -> None:
    w.hset(key("ledger", envelope.stream_id), {"status": "frozen"})


@LEDGER_BALANCES.on(Unfrozen)
def _unfrozen(event: Unfrozen, envelope: RecordedEvent, w: RedisWrites) -> None:
    w.hset(key("ledger", envelope.stream_id), {"status": "open"})


@LEDGER_BALANCES.on(Closed)
def _closed(event: Closed, envelope: RecordedEvent, w: RedisWrites) -> None:
    w.hset(key("ledger", envelope.stream_id), {"status": "closed"})


# -- queries -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LedgerBalance:
    ledger: str
    owner: str
    currency: str
    status: str
    balance: Decimal
    overdraft_limit: Decimal


async def _view(read_model: RedisReadModel, view: RedisView | None) -> RedisView:
    return view if view is not None else await read_model.view(NAME)


async def ledger_balance(
    read_model: RedisReadModel, ledger: str, *, view: RedisView | None = None
) -> LedgerBalance | None:
    """The ledger (by stream id) as projected, or None if it is not there."""
    view = await _view(read_model, view)
    raw = await view.client.hgetall(view.key(key("ledger", ledger)))
    if not raw:
        return None
    data = {_text(k): _text(v) for k, v in raw.items()}
    return LedgerBalance(
        ledger=ledger,
        owner=data["owner"],
        currency=data["currency"],
        status=data["status"],
        balance=from_units(data.get("balance") or 0),
        overdraft_limit=Decimal(data.get("overdraft_limit") or "0"),
    )


async def owner_totals(
    read_model: RedisReadModel, owner: str, *, view: RedisView | None = None
) -> dict[str, Decimal]:
    """The sum of an owner's ledger balances, per currency."""
    view = await _view(read_model, view)
    raw = await view.client.hgetall(view.key(key("owner", owner)))
    return {_text(k): from_units(_text(v)) for k, v in sorted(raw.items())}


async def owner_ledgers(
    read_model: RedisReadModel, owner: str, *, view: RedisView | None = None
) -> list[str]:
    view = await _view(read_model, view)
    return sorted(
        _text(m) for m in await view.client.smembers(view.key(key("owner", owner, "ledgers")))
    )


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
