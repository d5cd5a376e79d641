"""The consumers' branch of the chronik error tree.

::

    ChronikError
     └── MessagingError                    (the relay's branch: ``_errors``)
          ├── BadMessageError              a message that cannot become an event (not a
          │                                CloudEvent, bad JSON, unknown type, incomplete
          │                                upcaster chain); names topic, partition, offset
          └── ConsumerError                names the consumer group it is about
               ├── OffsetConflictError     another member moved a partition's offset
               │                           in the read model (fencing)
               └── DeadLetterReplayError   a dead letter that cannot be sent back

Errors are picklable: each keeps its constructor arguments in ``args``.
"""

from __future__ import annotations

from ._errors import MessagingError


class ConsumerError(MessagingError):
    """Root of the consumer errors; ``group`` is the consumer group (or projection)."""

    def __init__(self, group: str, reason: str) -> None:
        super().__init__(group, reason)
        self.group = group
        self.reason = reason

    def __str__(self) -> str:
        return f"consumer {self.group!r}: {self.reason}"


class BadMessageError(MessagingError):
    """A Kafka message that cannot be decoded into an event; says where it is and why."""

    def __init__(self, topic: str, partition: int, offset: int, reason: str) -> None:
        super().__init__(topic, partition, offset, reason)
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.reason = reason

    def __str__(self) -> str:
        return f"message {self.topic}[{self.partition}]@{self.offset}: {self.reason}"


class OffsetConflictError(ConsumerError):
    """A partition's offset in the read model is not where this member left it."""

    def __init__(self, group: str, topic: str, partition: int, expected: int, found: int) -> None:
        ConsumerError.__init__(
            self,
            group,
            f"{topic}[{partition}] is at offset {found} in the read model, expected {expected} "
            "(another member owns the partition now)",
        )
        self.args = (group, topic, partition, expected, found)
        self.topic = topic
        self.partition = partition
        self.expected = expected
        self.found = found


class DeadLetterReplayError(ConsumerError):
    """A dead-letter message lacks what replaying it needs (its original topic)."""
