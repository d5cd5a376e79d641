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
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg import AsyncConnection, sql

from eventstore import DEFAULT_SCHEMA

from ._errors import OutboxError
from ._topics import check_topic

_INSERT = """
    INSERT INTO {outbox} (id, aggregatetype, aggregateid, type, payload, topic, headers)
    VALUES (%s, %s, %s, %s, %s::jsonb, %s, %s::jsonb)
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
) -> uuid.UUID:
    """Write an outbox message in ``connection``'s current transaction; return its id.

    The topic is ``outbox.event.<aggregatetype>`` (Debezium's default route)
    unless ``topic`` is given.  Bad input raises ``OutboxError`` and writes nothing.
    """
    # Every check runs before the INSERT: a statement the server refuses would abort
    # the caller's transaction, and the business rows written in it with it.
    message_id = _message_id(message_id)
    subject = str(message_id)
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
    statement = sql.SQL(_INSERT).format(outbox=sql.Identifier(schema, "outbox"))
    try:
        await connection.execute(
            statement,
            (message_id, aggregatetype, aggregateid, type, encoded, topic, encoded_headers),
        )
    except psycopg.errors.UndefinedTable as error:
        raise OutboxError(
            subject,
            f"schema {schema!r} has no outbox table: "
            "run messaging.migrate(connection, schema) once",
        ) from error
    return message_id


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
