"""The outbox: messages written in the caller's transaction, published by the relay.

``publish(connection, ...)`` inserts one row into ``<schema>.outbox`` on the
caller's psycopg connection, so the message commits or rolls back with the
business rows written there; nothing reaches Kafka unless the transaction
commits.  The relay then publishes it like an event: key = ``aggregateid``,
value = ``payload`` as JSON, an ``id`` header (what Debezium's outbox event
router produces) plus CloudEvents binary headers and the caller's headers.

Rows the relay has published are deleted once its checkpoint has passed them
(in the same transaction as the checkpoint in at-least-once mode), so the table
holds only what is still to be published.

A message larger than the producer's ``message.max.bytes`` would be refused by
the relay long after the caller's transaction committed, and hold the relay up.
``publish`` refuses it instead (``MessageTooLargeError``); the limit is
``max_message_bytes``, the same number ``RelayOptions.max_message_bytes`` gives
the relay's producer (both default to ``DEFAULT_MAX_MESSAGE_BYTES``).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg import AsyncConnection, sql

from eventstore import DEFAULT_SCHEMA

from ._errors import MessageTooLargeError, MessagingConfigError, OutboxError
from ._topics import OUTBOX_PREFIX, check_topic

#: Kafka's (and librdkafka's) default ``message.max.bytes``.
DEFAULT_MAX_MESSAGE_BYTES = 1_000_000
#: librdkafka's own bounds on ``message.max.bytes``.
_LIMIT_RANGE = (1000, 1_000_000_000)
#: Bytes kept for what the relay adds and ``publish`` cannot know: the CloudEvents
#: headers (ce_specversion, ce_id, ce_source with the relay's source, ce_time,
#: ce_chronikoutbox), ``id``, ``content-type``, trace context headers (W3C allows a
#: 512-character tracestate) and Kafka's record framing.  With the default source
#: these come to about 400 bytes; the rest is slack for a long source.
RELAY_ALLOWANCE = 2048
#: Kafka's framing of one header (varint lengths), counted per caller header.
_HEADER_FRAMING = 10

# The payload is measured by PostgreSQL as it stores it (jsonb renders numbers in
# full, so ``1e300`` grows to 301 digits, and puts a space after ',' and ':'; the
# relay sends the compact form, never longer), in the statement that inserts it:
# an oversize message is left out without an error that would abort the caller's
# transaction.
_INSERT = """
    WITH message AS (SELECT %s::jsonb AS payload),
    written AS (
        INSERT INTO {outbox} (id, aggregatetype, aggregateid, type, payload, topic, headers)
        SELECT %s, %s, %s, %s, payload, %s, %s::jsonb FROM message
        WHERE octet_length(payload::text) <= %s
        RETURNING 1
    )
    SELECT octet_length(payload::text), (SELECT count(*) FROM written) FROM message
"""
# Header names the relay writes itself: a caller's header must not shadow them.
_RESERVED = ("ce_", "content-type", "id")


async def publish(
    connection: AsyncConnection[Any],
    *,
    aggregatetype: str,
    aggregateid: str,
    type: str,
    payload: Any,
    headers: Mapping[str, str] | None = None,
    topic: str | None = None,
    message_id: uuid.UUID | None = None,
    schema: str = DEFAULT_SCHEMA,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
) -> uuid.UUID:
    """Write an outbox message in ``connection``'s current transaction; return its id.

    The topic is ``outbox.event.<aggregatetype>`` (Debezium's default route)
    unless ``topic`` is given.  Bad input raises ``OutboxError`` and writes nothing.

    ``max_message_bytes`` must be the relay's ``RelayOptions.max_message_bytes``.  The
    size checked against it is an over-estimate on purpose: key, payload (as
    PostgreSQL stores it), type and subject, the caller's headers, and
    ``RELAY_ALLOWANCE`` bytes for the headers the relay adds and Kafka's framing.
    A message refused here may have just fitted; one accepted here always fits.
    Above it: ``MessageTooLargeError`` (an ``OutboxError``) naming topic, key, size
    and limit; nothing written, and the caller's transaction is still usable.
    """
    # Every check runs before the INSERT: a statement the server refuses would abort
    # the caller's transaction, and the business rows written in it with it.
    message_id = _message_id(message_id)
    subject = str(message_id)
    limit = check_max_message_bytes(max_message_bytes, f"outbox message {subject}")
    for name, value in (("aggregatetype", aggregatetype), ("aggregateid", aggregateid)):
        _check_text(subject, name, value)
    _check_text(subject, "type", type)
    if topic is not None:
        try:
            check_topic(topic, f"outbox message {subject}")
        except ValueError as error:
            raise OutboxError(subject, str(error)) from error
    try:
        check_topic("outbox.event." + aggregatetype, subject)
    except ValueError as error:
        if topic is None:
            raise OutboxError(
                subject, f"aggregatetype {aggregatetype!r} gives no valid topic; pass topic="
            ) from error
    encoded_headers = _headers(subject, headers)
    try:
        encoded = json.dumps(payload, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise OutboxError(subject, f"payload is not JSON: {error}") from error
    if "\\u0000" in encoded:
        raise OutboxError(subject, "payload contains NUL, which jsonb cannot store")
    for name, text in (("payload", encoded), ("headers", encoded_headers)):
        _check_utf8(subject, name, text)
    fixed = _fixed_bytes(aggregateid, type, headers or {})
    route = topic or OUTBOX_PREFIX + aggregatetype
    estimate = fixed + len(encoded.encode())
    if estimate > limit:
        # jsonb's text is never shorter than json.dumps' (the same separators and
        # escapes, numbers in full): no need to send the server what cannot fit.
        raise MessageTooLargeError(subject, route, aggregateid, estimate, limit)
    statement = sql.SQL(_INSERT).format(outbox=sql.Identifier(schema, "outbox"))
    try:
        cursor = await connection.execute(
            statement,
            (
                *(encoded, message_id, aggregatetype, aggregateid, type, topic),
                *(encoded_headers, limit - fixed),
            ),
        )
    except psycopg.errors.UndefinedTable as error:
        raise OutboxError(
            subject,
            f"schema {schema!r} has no outbox table: "
            "run messaging.migrate(connection, schema) once",
        ) from error
    row = await cursor.fetchone()
    if row is None or row[1] != 1:
        size = fixed + int(row[0]) if row is not None else estimate
        raise MessageTooLargeError(subject, route, aggregateid, size, limit)
    return message_id


def check_max_message_bytes(value: object, subject: str) -> int:
    """``value`` if librdkafka takes it as ``message.max.bytes``, else
    ``MessagingConfigError`` naming ``subject``."""
    low, high = _LIMIT_RANGE
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise MessagingConfigError(
            subject, f"max_message_bytes must be an int from {low} to {high}, not {value!r}"
        )
    return value


def _fixed_bytes(aggregateid: str, type: str, headers: Mapping[str, str]) -> int:
    """What the message takes besides its payload (an over-estimate, see ``publish``)."""
    # The aggregate id goes out twice (the key and ce_subject), the type once.
    size = 2 * len(aggregateid.encode()) + len(type.encode()) + RELAY_ALLOWANCE
    for name, value in headers.items():
        size += len(name.encode()) + len(value.encode()) + _HEADER_FRAMING
    return size


def _message_id(value: object) -> uuid.UUID:
    if value is None:
        return uuid.uuid4()
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise OutboxError(repr(value), "message_id must be a UUID") from None


def _check_utf8(subject: str, name: str, text: str) -> None:
    try:
        text.encode()
    except UnicodeEncodeError as error:
        raise OutboxError(
            subject, f"{name} is not valid text (a lone surrogate at {error.start})"
        ) from None


def _check_text(subject: str, name: str, value: object) -> None:
    if not isinstance(value, str) or not value or "\x00" in value:
        raise OutboxError(subject, f"{name} must be a non-empty string without NUL, not {value!r}")
    _check_utf8(subject, name, value)


def _headers(subject: str, headers: Mapping[str, str] | None) -> str:
    found = dict(headers or {})
    for name, value in found.items():
        if not isinstance(name, str) or not isinstance(value, str) or not name:
            raise OutboxError(subject, f"headers must map str to str, got {name!r}: {value!r}")
        if name.lower().startswith(_RESERVED[0]) or name.lower() in _RESERVED[1:]:
            raise OutboxError(subject, f"header {name!r} is written by the relay itself")
        if "\x00" in name or "\x00" in value:
            raise OutboxError(subject, f"header {name!r} contains NUL")
    return json.dumps(found, ensure_ascii=False)
