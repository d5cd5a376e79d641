"""The aggregates branch of the chronik error tree.

::

    ChronikError
     └── AggregateError
          ├── DomainError                 a command broke a business rule; nothing was recorded
          │    ├── InvalidAmount          money given as a float, not a number, or not positive
          │    ├── LedgerError            the rules of aggregates.ledger (see there)
          │    └── OrderError             the rules of aggregates.order (see there)
          ├── AggregateDefinitionError    an Aggregate subclass is declared wrongly (at import)
          ├── UnhandledEventError         an event reached an aggregate with no apply method for it
          ├── AggregateNotFoundError      no stream for this aggregate (also StreamNotFoundError)
          ├── TimeTravelError             the requested version/time/position is outside the stream
          ├── InvalidStateError           stored state (a snapshot) does not fit the state model
          ├── UnsavedEventsError          the operation needs an aggregate without pending events
          └── RepositoryConfigError       unknown aggregate type, clashing names or upcasters

``AggregateNotFoundError`` derives from both ``AggregateError`` and
``eventstore.StreamNotFoundError``, so callers written against the store keep working.
``ConcurrencyError`` (and ``StreamOrderConflict``) reach callers of ``Repository.save``
unchanged from the store; ``Repository.update`` retries them.

Errors are picklable: each keeps its constructor arguments in ``args``.
"""

from __future__ import annotations

from eventstore import ChronikError, StreamNotFoundError


class AggregateError(ChronikError):
    """Root of the errors raised by aggregates and repositories."""


class DomainError(AggregateError):
    """A command broke a business rule and recorded nothing.

    ``aggregate_type`` and ``aggregate_id`` say which aggregate refused; ``rule`` is a
    short stable name of the rule (for mapping errors to responses), set per subclass;
    ``detail`` says what exactly was wrong.
    """

    rule: str = "domain-rule"

    def __init__(
        self, aggregate_type: str, aggregate_id: str, detail: str, rule: str | None = None
    ) -> None:
        rule = rule if rule is not None else type(self).rule
        super().__init__(aggregate_type, aggregate_id, detail, rule)
        self.aggregate_type = aggregate_type
        self.aggregate_id = aggregate_id
        self.detail = detail
        self.rule = rule

    def __str__(self) -> str:
        return f"{self.aggregate_type} {self.aggregate_id!r} refused ({self.rule}): {self.detail}"


class InvalidAmount(DomainError, ValueError):
    """An amount of money is not acceptable: a float, not a number, not positive."""

    rule = "invalid-amount"


class AggregateDefinitionError(AggregateError, TypeError):
    """An ``Aggregate`` subclass is declared wrongly; raised when the class is created."""

    def __init__(self, aggregate: str, reason: str) -> None:
        super().__init__(aggregate, reason)
        self.aggregate = aggregate
        self.reason = reason

    def __str__(self) -> str:
        return f"aggregate {self.aggregate}: {self.reason}"


class UnhandledEventError(AggregateError):
    """An event reached an aggregate that has no apply method for its class.

    ``stream_id`` and ``version`` are set when the event came from a stored stream.
    """

    def __init__(
        self,
        aggregate_type: str,
        event_type: str,
        stream_id: str | None = None,
        version: int | None = None,
    ) -> None:
        super().__init__(aggregate_type, event_type, stream_id, version)
        self.aggregate_type = aggregate_type
        self.event_type = event_type
        self.stream_id = stream_id
        self.version = version

    def __str__(self) -> str:
        where = ""
        if self.stream_id is not None:
            where = f" (stream {self.stream_id!r} version {self.version})"
        return (
            f"aggregate {self.aggregate_type!r} has no apply method for event type "
            f"{self.event_type!r}{where}"
        )


class AggregateNotFoundError(StreamNotFoundError, AggregateError):
    """No events exist for this aggregate."""

    def __init__(self, stream_id: str, aggregate_type: str, aggregate_id: str) -> None:
        super().__init__(stream_id)
        self.args = (stream_id, aggregate_type, aggregate_id)
        self.aggregate_type = aggregate_type
        self.aggregate_id = aggregate_id

    def __str__(self) -> str:
        return (
            f"{self.aggregate_type} {self.aggregate_id!r} does not exist "
            f"(stream {self.stream_id!r} has no events)"
        )


class TimeTravelError(AggregateError, LookupError):
    """A load asked for a point the stream does not cover.

    ``requested`` describes the point (``"version 12"``, ``"as of 2024-05-01T..."``,
    ``"at position 812:90"``); ``actual`` what the stream holds instead.
    """

    def __init__(self, stream_id: str, requested: str, actual: str) -> None:
        super().__init__(stream_id, requested, actual)
        self.stream_id = stream_id
        self.requested = requested
        self.actual = actual

    def __str__(self) -> str:
        return f"cannot load stream {self.stream_id!r} {self.requested}: {self.actual}"


class UnsavedEventsError(AggregateError):
    """The operation needs the aggregate's state to match a stored version."""

    def __init__(self, stream_id: str, version: int, pending: int, operation: str) -> None:
        super().__init__(stream_id, version, pending, operation)
        self.stream_id = stream_id
        self.version = version
        self.pending = pending
        self.operation = operation

    def __str__(self) -> str:
        return (
            f"cannot {self.operation} {self.stream_id!r} at version {self.version}: "
            f"it has {self.pending} unsaved event(s); save it first"
        )


class InvalidStateError(AggregateError, ValueError):
    """Stored state (a snapshot) does not validate into the aggregate's state model."""

    def __init__(self, aggregate_type: str, aggregate_id: str, version: int, reason: str) -> None:
        super().__init__(aggregate_type, aggregate_id, version, reason)
        self.aggregate_type = aggregate_type
        self.aggregate_id = aggregate_id
        self.version = version
        self.reason = reason

    def __str__(self) -> str:
        return (
            f"state of {self.aggregate_type} {self.aggregate_id!r} at version {self.version} "
            f"does not load: {self.reason}"
        )


class RepositoryConfigError(AggregateError, ValueError):
    """A Repository was set up or called with aggregate types it cannot serve."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return f"repository: {self.reason}"
