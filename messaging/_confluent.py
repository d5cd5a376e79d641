"""Confluent Schema Registry: a tiny REST client and Confluent's wire format.

Confluent's serializers frame every value as one magic byte ``0``, the schema id
as 4 bytes big-endian, then the payload (for JSON Schema: the JSON text, with
nothing else in between; only Protobuf adds message indexes).  A consumer using
Confluent's deserializers reads the id, fetches the schema and validates.

The relay registers each event (type, version)'s JSON Schema under a subject
once per process, with ``POST /subjects/<subject>/versions`` and
``{"schemaType": "JSON", "schema": "<the schema as text>"}``; the registry
answers ``{"id": N}`` (the same id for the same schema text, so registering
again is harmless), or an error ``{"error_code": ..., "message": ...}`` (409: not
compatible with the subject's earlier versions; 422/42201: not a valid schema;
401/403: credentials).

Subjects follow Confluent's naming strategies: ``topic`` (``<topic>-value``, the
TopicNameStrategy, Confluent's default), ``record`` (``<event type>``, the
RecordNameStrategy, for topics that carry several event types) and
``topic_record`` (``<topic>-<event type>``).

The client uses ``urllib`` (no extra dependency) in a worker thread: it talks to
the registry once per (subject, schema), never per message.
"""

from __future__ import annotations

import asyncio
import base64
import enum
import json
import re
import struct
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from ._errors import ConfluentRegistryError, MessagingConfigError

MAGIC_BYTE = 0
#: The length of the framing before the payload: magic byte + 4-byte schema id.
FRAME_SIZE = 5
#: The header the relay adds to framed messages (the id as decimal text), for
#: humans and tools; decoders recognise the framing by its magic byte anyway.
SCHEMA_ID_HEADER = "confluent-schema-id"
CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
ACCEPT = "application/vnd.schemaregistry.v1+json, application/vnd.schemaregistry+json, " + (
    "application/json"
)


class SubjectStrategy(enum.Enum):
    TOPIC = "topic"
    RECORD = "record"
    TOPIC_RECORD = "topic_record"

    def subject(self, topic: str, event_type: str) -> str:
        if self is SubjectStrategy.TOPIC:
            return f"{topic}-value"
        if self is SubjectStrategy.RECORD:
            return event_type
        return f"{topic}-{event_type}"


@dataclass(frozen=True, slots=True)
class SchemaRegistryOptions:
    """Where the Confluent Schema Registry is and how the relay names subjects.

    ``url`` may carry ``user:password@`` (basic auth, as Confluent Cloud's API
    keys); it is masked in every message.
    """

    url: str
    subject_strategy: SubjectStrategy = SubjectStrategy.TOPIC
    #: Seconds for one HTTP request.
    timeout: float = 10.0

    def __post_init__(self) -> None:
        if not isinstance(self.url, str):
            raise MessagingConfigError("schema registry", f"url must be a str, not {self.url!r}")
        try:
            parts = urlsplit(self.url)
            parts.port  # noqa: B018 (a port out of range raises only when read)
        except ValueError as error:
            raise MessagingConfigError(
                "schema registry", f"URL {mask_url(self.url)!r} is malformed: {error}"
            ) from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise MessagingConfigError(
                "schema registry", f"URL {mask_url(self.url)!r} is not an http(s):// URL"
            )
        if isinstance(self.subject_strategy, str):
            try:
                # Frozen: set the enum the text names (the CLI's choices are its values).
                object.__setattr__(self, "subject_strategy", SubjectStrategy(self.subject_strategy))
            except ValueError:
                raise MessagingConfigError(
                    "schema registry",
                    f"unknown subject strategy {self.subject_strategy!r} (one of "
                    f"{', '.join(s.value for s in SubjectStrategy)})",
                ) from None
        if not isinstance(self.subject_strategy, SubjectStrategy):
            raise MessagingConfigError(
                "schema registry",
                f"subject_strategy must be a SubjectStrategy, not {self.subject_strategy!r}",
            )
        timeout = self.timeout
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
            raise MessagingConfigError(
                "schema registry", f"timeout must be seconds > 0, not {timeout!r}"
            )


def frame(schema_id: int) -> bytes:
    """The 5 bytes that go before a payload registered under ``schema_id``."""
    return struct.pack(">bI", MAGIC_BYTE, schema_id)


def unframe(value: bytes) -> tuple[int, bytes] | None:
    """``(schema id, payload)`` if ``value`` is in Confluent's wire format, else None.

    Unambiguous for JSON: a JSON text never starts with a NUL byte.
    """
    if len(value) < FRAME_SIZE or value[0] != MAGIC_BYTE:
        return None
    return struct.unpack(">I", value[1:FRAME_SIZE])[0], value[FRAME_SIZE:]


def mask_url(url: str) -> str:
    """``url`` without its password (``user:***@host``)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        # Malformed (an unclosed IPv6 bracket...): mask by shape, it is still shown.
        return re.sub(r"(//[^/@:]*:)[^/]*@", r"\1***@", url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


class ConfluentRegistryClient:
    """``await client.register(subject, schema_text)`` -> the schema id."""

    def __init__(self, options: SchemaRegistryOptions) -> None:
        parts = urlsplit(options.url)
        self.options = options
        host = parts.netloc.rsplit("@", 1)[-1]
        self.base = urlunsplit(parts._replace(netloc=host)).rstrip("/")
        self.shown = mask_url(options.url)
        self._auth: str | None = None
        if parts.username is not None:
            pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            self._auth = "Basic " + base64.b64encode(pair.encode()).decode()

    async def register(self, subject: str, schema: str) -> int:
        return await asyncio.to_thread(self._register, subject, schema)

    def _register(self, subject: str, schema: str) -> int:
        url = f"{self.base}/subjects/{quote(subject, safe='')}/versions"
        body = json.dumps({"schemaType": "JSON", "schema": schema}).encode()
        # The scheme was checked to be http(s) when the options were made.
        request = urllib.request.Request(url, data=body, method="POST")  # noqa: S310
        request.add_header("Content-Type", CONTENT_TYPE)
        request.add_header("Accept", ACCEPT)
        if self._auth is not None:
            request.add_header("Authorization", self._auth)
        try:
            with urllib.request.urlopen(request, timeout=self.options.timeout) as response:  # noqa: S310
                answer = _json(response.read())
        except urllib.error.HTTPError as error:
            raise self._refused(subject, error) from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise ConfluentRegistryError(
                subject, f"cannot reach the schema registry at {self.shown}: {reason}"
            ) from None
        schema_id = answer.get("id") if isinstance(answer, dict) else None
        if not isinstance(schema_id, int) or isinstance(schema_id, bool):
            raise ConfluentRegistryError(
                subject, f"the schema registry at {self.shown} answered without an id: {answer!r}"
            )
        return schema_id

    def _refused(self, subject: str, error: urllib.error.HTTPError) -> ConfluentRegistryError:
        with error:
            answer = _json(error.read())
        code = answer.get("error_code") if isinstance(answer, dict) else None
        message = answer.get("message") if isinstance(answer, dict) else None
        text = " ".join(str(message or error.reason or "").split())[:500]
        return ConfluentRegistryError(
            subject,
            f"the schema registry at {self.shown} refused the schema: HTTP {error.code}"
            f"{f' (error code {code})' if code is not None else ''}: {text}",
            error.code,
            code if isinstance(code, int) else None,
        )

    def __repr__(self) -> str:
        return f"ConfluentRegistryClient({self.shown!r})"


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None
