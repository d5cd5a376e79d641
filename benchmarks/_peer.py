"""The ``eventsourcing`` library (9.x) as the peer, with its default settings.

Its PostgreSQL persistence is configured only through the ``POSTGRES_*``
settings (connection and a schema of its own); everything else is the
library's default: JSON transcoder, connection pool of 5, no aggregate cache,
``LOCK TABLE ... IN EXCLUSIVE MODE`` around every insert (its gap-safety
mechanism), no snapshots unless a case asks for them.  The library is
synchronous, so cases run it in a worker thread.

``Account`` is the equivalent of chronik's benchmark stream: an aggregate whose
one trivial event carries ``{"amount": int}``.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from eventsourcing.application import Application

_UNAVAILABLE: str | None = None
try:
    from eventsourcing.domain import Aggregate, event
except ImportError as error:  # the peer is optional: its column is left empty
    _UNAVAILABLE = f"eventsourcing is not installed ({error})"
else:

    class Account(Aggregate):
        def __init__(self) -> None:
            self.balance: int | Decimal = 0

        @event("Deposited")
        def deposit(self, amount: int | Decimal) -> None:
            self.balance += amount


def unavailable() -> str | None:
    """Why the peer cannot run, or None."""
    return _UNAVAILABLE


def make_application(env: dict[str, str], *, snapshot_every: int | None = None) -> Application[Any]:
    from eventsourcing.application import Application

    if snapshot_every is None:
        return Application(env=env)
    interval: int = snapshot_every

    class SnapshottingApplication(Application[Any]):
        # The same name as the plain application: it names the tables, so both
        # read the same events (one with snapshots, one without).
        name = "Application"
        snapshotting_intervals = {Account: interval}

    return SnapshottingApplication(env=env)


def new_account(app: Application[Any], deposits: int = 0, per_save: int = 100) -> Any:
    """A saved account with ``1 + deposits`` events, saved ``per_save`` events at a time."""
    account = Account()
    pending = 1
    for amount in range(deposits):
        account.deposit(amount)
        pending += 1
        if pending >= per_save:
            app.save(account)
            pending = 0
    app.save(account)
    return account


def append(app: Application[Any], account: Any, transactions: int, per_transaction: int) -> int:
    """``transactions`` saves of ``per_transaction`` events each; returns the event count."""
    for _ in range(transactions):
        for amount in range(per_transaction):
            account.deposit(amount)
        app.save(account)
    return transactions * per_transaction


def read_feed(app: Application[Any], page: int = 1000) -> int:
    """Read the whole notification log, decoding each item into its domain event."""
    count, start = 0, 1
    recorder: Any = app.recorder
    while True:
        notifications = recorder.select_notifications(start=start, limit=page)
        for notification in notifications:
            app.mapper.to_domain_event(notification)
        count += len(notifications)
        if len(notifications) < page:
            return count
        start = notifications[-1].id + 1


def load(app: Application[Any], ids: Iterable[Any]) -> int:
    loaded = 0
    for aggregate_id in ids:
        app.repository.get(aggregate_id)
        loaded += 1
    return loaded
