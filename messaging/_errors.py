"""The messaging branch of the chronik error tree.

::

    ChronikError
     └── MessagingError
          ├── TopicMappingError        no valid topic for an event or outbox message
          ├── PublishError             Kafka refused a message (names event, stream, topic)
          │    └── BrokerUnavailableError   the broker could not be reached in time (retryable)
          ├── RelayFencedError         another relay with the same name took over
          ├── CloudEventFormatError    a Kafka message that is not a CloudEvent we can decode
          ├── SchemaWireError          an event cannot carry the schema id the relay promised
          │    └── ConfluentRegistryError   the Confluent Schema Registry refused or is unreachable
          ├── OutboxError              bad input to ``publish``; nothing written
          │    └── MessageTooLargeError     the message would exceed the Kafka size limit
          ├── MessagingConfigError     options a relay, producer or consumer cannot run with
          └── MockClusterError         the embedded mock cluster did not start

Errors keep their constructor arguments in ``args`` (picklable) and the driver
error as ``__cause__``.
"""

from __future__ import annotations

from eventstore import ChronikError


class MessagingError(ChronikError):
    """A failure publishing to or reading from Kafka."""


class TopicMappingError(MessagingError, ValueError):
    """The topic mapping gave no valid topic for a message."""

    def __init__(self, subject: str, reason: str) -> None:
        super().__init__(subject, reason)
        self.subject = subject
        self.reason = reason

    def __str__(self) -> str:
        return f"no topic for {self.subject}: {self.reason}"


class PublishError(MessagingError):
    """Kafka refused a message; nothing after it was marked published.

    ``what`` names the message (event id, stream and position, or the outbox id),
    ``topic`` where it was going, ``reason`` the broker's or client's answer.
    """

    retriable: bool = False

    def __init__(self, what: str, topic: str, reason: str) -> None:
        super().__init__(what, topic, reason)
        self.what = what
        self.topic = topic
        self.reason = reason

    def __str__(self) -> str:
        return f"cannot publish {self.what} to topic {self.topic!r}: {self.reason}"


class BrokerUnavailableError(PublishError):
    """No delivery report came in time: the broker is down, slow or unreachable."""

    retriable = True


class RelayFencedError(MessagingError):
    """A newer relay with the same transactional id took over; this one must stop."""

    def __init__(self, relay: str, reason: str) -> None:
        super().__init__(relay, reason)
        self.relay = relay
        self.reason = reason

    def __str__(self) -> str:
        return f"relay {self.relay!r} was fenced off by a newer instance: {self.reason}"


class CloudEventFormatError(MessagingError, ValueError):
    """A Kafka message that does not carry a CloudEvent in a mode we decode."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(where, reason)
        self.where = where
        self.reason = reason

    def __str__(self) -> str:
        return f"not a CloudEvent at {self.where}: {self.reason}"


class OutboxError(MessagingError, ValueError):
    """Bad input to ``publish``; nothing was written."""

    def __init__(self, subject: str, reason: str) -> None:
        super().__init__(subject, reason)
        self.subject = subject
        self.reason = reason

    def __str__(self) -> str:
        return f"cannot publish outbox message {self.subject}: {self.reason}"


class MessageTooLargeError(OutboxError):
    """An outbox message the relay could not send: its estimated size on the wire
    (``size``, bytes) is above ``limit`` (the producer's ``message.max.bytes``).

    Refused by ``publish`` before anything is written, so the caller's transaction
    stays usable; the relay would otherwise fail on it later, far from the caller.
    """

    def __init__(self, subject: str, topic: str, key: str, size: int, limit: int) -> None:
        super().__init__(
            subject,
            f"about {size} bytes for topic {topic!r} (key {key!r}) is over the "
            f"{limit}-byte message limit (max_message_bytes): publish a smaller payload "
            "(a reference to the data, say), or raise max_message_bytes for publish() and "
            "the relay (RelayOptions.max_message_bytes) alike, within the broker's limit",
        )
        self.args = (subject, topic, key, size, limit)
        self.topic = topic
        self.key = key
        self.size = size
        self.limit = limit


class MessagingConfigError(MessagingError, ValueError):
    """Options a relay, producer, consumer or registry client cannot run with;
    raised before anything is sent or read.  ``subject`` names the relay, producer,
    consumer or option; the message names the field and the value given."""

    def __init__(self, subject: str, reason: str) -> None:
        super().__init__(subject, reason)
        self.subject = subject
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.subject}: {self.reason}"


class MockClusterError(MessagingError):
    """librdkafka's mock cluster did not start or did not say where it listens."""


class SchemaWireError(MessagingError):
    """An event cannot go out with the schema framing the relay was configured for.

    The relay reports it (stuck, retrying) rather than publish without the framing.
    """

    def __init__(self, subject: str, reason: str) -> None:
        super().__init__(subject, reason)
        self.subject = subject
        self.reason = reason

    def __str__(self) -> str:
        return f"no schema on the wire for {self.subject}: {self.reason}"


class ConfluentRegistryError(SchemaWireError):
    """The Confluent Schema Registry refused a schema or could not be reached.

    ``status`` is the HTTP status (``None``: no answer), ``error_code`` the
    registry's own code (409 incompatible, 42201 invalid schema...).  The URL in
    the message never carries credentials.
    """

    def __init__(
        self, subject: str, reason: str, status: int | None = None, error_code: int | None = None
    ) -> None:
        super().__init__(subject, reason)
        self.args = (subject, reason, status, error_code)
        self.status = status
        self.error_code = error_code

    def __str__(self) -> str:
        return f"schema registry subject {self.subject!r}: {self.reason}"
