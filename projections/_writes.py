"""The base of what handlers write into: a per-batch buffer of queued writes.

Handlers never write to a read model directly.  They queue writes into the
batch's ``Writes``; the runner commits the whole buffer with the checkpoint in
one transaction.  A buffer knows which event queued which write, so a handler
that fails half-way has its writes taken back before it is retried or parked.
"""

from __future__ import annotations

from eventstore import START, Position


class Writes:
    """Writes queued for one batch of one projection slot (backend subclasses add verbs)."""

    def __init__(self, namespace: str) -> None:
        #: Where this slot's data lives (a key prefix or a collection prefix).
        self.namespace = namespace
        #: Index within the batch of the event whose handler is running.
        self.event_index = -1
        #: Feed position of that event.
        self.position: Position = START

    def begin_event(self, index: int, position: Position) -> int:
        """Start queueing for the event at ``index``; returns a mark to roll back to."""
        self.event_index = index
        self.position = position
        return self._mark()

    def rollback(self, mark: int) -> None:
        """Drop everything queued since ``mark`` (the handler failed)."""
        self._rollback(mark)

    def _mark(self) -> int:
        raise NotImplementedError

    def _rollback(self, mark: int) -> None:
        raise NotImplementedError

    def __len__(self) -> int:
        return self._mark()

    def event_of(self, write_index: int) -> int:
        """The batch index of the event that queued the ``write_index``-th write."""
        raise NotImplementedError
