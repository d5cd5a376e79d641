"""Checks every append passes before anything is written, shared by all stores.

Validation also serializes: the JSON text produced here is what the Postgres
store sends, so an event is encoded exactly once and an event that cannot be
encoded is rejected before the first byte reaches the database.
"""

from __future__ import annotations

import json
import json.encoder
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeGuard
from uuid import UUID

from ._errors import (
    DuplicateEventError,
    InvalidAppendError,
    InvalidConfigurationError,
    InvalidInputError,
)
from ._model import ExpectedVersion, NewEvent, Position

MAX_STREAM_ID_LENGTH = 255
MAX_TYPE_LENGTH = 255
MAX_SCHEMA_VERSION = 2**31 - 1  # the column is a PostgreSQL integer
#: The highest stream version (the column is a PostgreSQL bigint).  Upper bounds
#: past it are clamped to it; any other version past it is refused.
MAX_VERSION = 2**63 - 1
DEFAULT_MAX_EVENT_BYTES = 1024 * 1024
#: The most JSON (data + metadata, summed over its events) one append may carry.
#: PostgreSQL refuses a jsonb value over 256 MiB, and the whole batch travels as
#: one; measured worst case, a list of zeros, is 6 bytes of jsonb per byte of
#: text.  40 MiB stays below the limit whatever the data.
DEFAULT_MAX_BATCH_BYTES = 40 * 1024 * 1024
#: How deeply event data and metadata may nest (the top-level dict is depth 1).
#: Deeper data used to be accepted up to whatever Python's recursion allowed at
#: the call site, and then failed to decode on every read of the page holding it
#: (a stuck feed); 64 leaves readers ample stack at any call depth.
MAX_NESTING_DEPTH = 64
# What InvalidInputError names when a feed argument (not a stream's) is bad.
FEED = "(the global feed)"

# PostgreSQL text and jsonb cannot hold U+0000.  json.dumps writes it as the
# six characters \u0000; an even number of backslashes before them means the
# backslash itself was escaped and the text is harmless.
_JSON_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")


class SupportsNewEvent(Protocol):
    """Typed events (``eventstore.Event``) convert themselves for the store."""

    def to_new_event(self) -> NewEvent: ...


@dataclass(frozen=True, slots=True)
class PreparedEvent:
    """A validated event with its JSON already encoded."""

    event_id: UUID
    type: str
    schema_version: int
    data_json: str
    metadata_json: str


def check_byte_limits(max_event_bytes: object, max_batch_bytes: object) -> None:
    """A store's size settings: ints >= 1 (a bad one used to fail only at append)."""
    for setting, value in (
        ("max_event_bytes", max_event_bytes),
        ("max_batch_bytes", max_batch_bytes),
    ):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise InvalidConfigurationError(setting, f"expected an int >= 1, got {value!r}")


def check_stream_id(stream_id: object, error: type[InvalidInputError] = InvalidAppendError) -> str:
    if not isinstance(stream_id, str):
        raise error(repr(stream_id), "the stream id must be a string")
    if not stream_id or stream_id.isspace():
        raise error(stream_id, "the stream id is empty")
    if len(stream_id) > MAX_STREAM_ID_LENGTH:
        raise error(
            stream_id[:40] + "...",
            f"the stream id is {len(stream_id)} characters long, the limit is "
            f"{MAX_STREAM_ID_LENGTH}",
        )
    if "\x00" in stream_id:
        raise error(stream_id.replace("\x00", "\\x00"), "the stream id has a NUL")
    if not stream_id.isascii() and not _is_utf8(stream_id):
        # isascii() is a flag of the string: most ids skip the trial encoding.
        # A lone surrogate cannot be sent to PostgreSQL (UnicodeEncodeError deep in
        # the driver); the in-memory store must refuse it the same way.
        raise error(ascii(stream_id), "the stream id has a lone surrogate (not valid UTF-8)")
    return stream_id


def _is_utf8(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def check_limit(limit: object, about: str) -> int | None:
    """``None`` or an int >= 0; a negative limit used to mean different things per store."""
    if limit is None or (isinstance(limit, int) and not isinstance(limit, bool) and limit >= 0):
        return limit
    raise InvalidInputError(about, f"invalid limit {limit!r}: use None or an int >= 0")


def _is_valid_position(position: object) -> TypeGuard[Position]:
    # xid8 is unsigned 64-bit and the sequence a bigint: PostgreSQL would read a
    # negative transaction id as one near 2**64 and silently answer for that.
    return (
        isinstance(position, Position)
        and all(isinstance(part, int) and not isinstance(part, bool) for part in position)
        and 0 <= position.transaction_id < 2**63
        and 0 <= position.global_position < 2**63
    )


def check_after(after: object) -> Position | None:
    if after is None or _is_valid_position(after):
        return after
    raise InvalidInputError(
        FEED,
        f"invalid feed position {after!r}: use a Position of two ints in 0..2**63-1 "
        "(Position.parse(text))",
    )


def check_prefix(prefix: object) -> str | None:
    if prefix is None:
        return None
    if not isinstance(prefix, str):
        raise InvalidInputError(repr(prefix), "the stream id prefix must be a string")
    if "\x00" in prefix or not _is_utf8(prefix):
        raise InvalidInputError(ascii(prefix), "the stream id prefix has a NUL or a lone surrogate")
    return prefix


def check_stream_cut(stream_id: object, as_of: object, at_position: object) -> str:
    """The arguments of ``stream_version``, checked alike for every store."""
    checked = check_stream_id(stream_id, InvalidInputError)
    if as_of is not None and at_position is not None:
        raise InvalidInputError(checked, "give as_of or at_position, not both")
    if as_of is not None:
        if not isinstance(as_of, datetime):
            raise InvalidInputError(checked, f"as_of must be a datetime, got {as_of!r}")
        if as_of.utcoffset() is None:
            raise InvalidInputError(
                checked, f"as_of must be timezone-aware, got {as_of.isoformat()}"
            )
    if at_position is not None and not _is_valid_position(at_position):
        raise InvalidInputError(
            checked, f"at_position must be a Position of two ints >= 0, got {at_position!r}"
        )
    return checked


def check_expected_version(stream_id: str, expected: object) -> ExpectedVersion | int:
    if isinstance(expected, ExpectedVersion):
        return expected
    # bool is an int subclass; True as "version 1" is always a bug.
    if (
        isinstance(expected, int)
        and not isinstance(expected, bool)
        and 0 <= expected <= MAX_VERSION
    ):
        return expected
    raise InvalidAppendError(
        stream_id,
        f"invalid expected version {expected!r}: use ANY, NO_STREAM, STREAM_EXISTS "
        f"or a version number in 0..{MAX_VERSION}",
    )


def check_version_range(stream_id: str, low: object, high: object) -> tuple[int, int | None]:
    """A stream read's bounds: ``low`` in 1..MAX_VERSION, ``high`` None or >= 1.

    ``high`` past ``MAX_VERSION`` means "to the end" and is clamped: sent as is, it
    became a numeric parameter and the paged read function did not exist for it.
    """
    # bool is an int subclass; reading "from version True" is always a bug
    # (append already refuses True as an expected version).
    if (
        not _is_int(low)
        or not 1 <= low <= MAX_VERSION
        or (high is not None and (not _is_int(high) or high < 1))
    ):
        raise InvalidInputError(
            stream_id,
            f"invalid version range {low!r}..{high!r}: versions are ints in 1..{MAX_VERSION}",
        )
    return low, None if high is None else min(high, MAX_VERSION)


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


# One encoder for every event: ``json.dumps`` with options builds a new one per
# call, which cost as much as encoding a small event.  Same class, same output.
_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
# And the C encoder that ``_ENCODER.encode`` builds on every call, built once (the
# same arguments, so the same text): ~1 µs less per event in a loop, more between
# an append's round trips.  No circular-reference markers: check_json_shape has
# refused anything nested deeper than MAX_NESTING_DEPTH, cycles included, before
# anything is encoded, and without them the encoder keeps no state between calls
# (safe from several threads).
_make_c_encoder: Any = getattr(json.encoder, "c_make_encoder", None)  # not in the stubs
_C_ENCODER: Any = (
    _make_c_encoder(
        None,
        _ENCODER.default,
        json.encoder.encode_basestring,
        None,
        _ENCODER.key_separator,
        _ENCODER.item_separator,
        False,
        False,
        False,
    )
    if _make_c_encoder is not None
    else None
)


def to_json(value: Mapping[str, Any]) -> str:
    """``value`` (shape already checked) as the JSON text an event stores."""
    if _C_ENCODER is None:
        return _ENCODER.encode(value)
    text: str = "".join(_C_ENCODER(value, 0))
    return text


def _encode(
    stream_id: str, what: str, index: int, event_type: str, value: object
) -> tuple[str, int]:
    """``value`` as JSON text, and its size in UTF-8 bytes."""
    if type(value) is not dict and not isinstance(value, Mapping):
        raise InvalidAppendError(
            stream_id,
            f"event {index} ({event_type!r}): {what} must be a JSON object (a dict), "
            f"got {type(value).__name__}",
        )
    problem = check_json_shape(value, what)
    if problem is not None:
        raise InvalidAppendError(stream_id, f"event {index} ({event_type!r}): {problem}")
    try:
        text = to_json(value)
    except (TypeError, ValueError) as error:
        raise InvalidAppendError(
            stream_id, f"event {index} ({event_type!r}): {what} is not JSON-serializable: {error}"
        ) from error
    except RecursionError as error:
        # The encoder recurses once per level: Python's recursion limit (1000 by
        # default) bounds how deep an event's JSON may nest.
        raise InvalidAppendError(
            stream_id, f"event {index} ({event_type!r}): {what} is nested too deeply to encode"
        ) from error
    if "\\u0000" in text and _JSON_NUL.search(text):
        raise InvalidAppendError(
            stream_id, f"event {index} ({event_type!r}): {what} contains a NUL character"
        )
    if text.isascii():  # a flag of the string: no encoding needed to size it
        return text, len(text)
    try:
        return text, len(text.encode())
    except UnicodeEncodeError:
        # ensure_ascii=False lets a lone surrogate through; it would fail later as a
        # bare UnicodeEncodeError (Postgres) or be stored (in memory).
        raise InvalidAppendError(
            stream_id,
            f"event {index} ({event_type!r}): {what} contains a lone surrogate (not valid UTF-8)",
        ) from None


def check_json_shape(value: Mapping[Any, Any], name: str) -> str | None:
    """What is wrong with the shape of ``value`` as stored JSON, or None.

    Walked with an explicit stack, never by recursion: data nested thousands of
    levels deep must give this answer, not a ``RecursionError``.  Refused:

    * nesting deeper than ``MAX_NESTING_DEPTH`` (dicts and lists both count);
    * dict keys that are not strings: ``json.dumps`` turns ``1`` and ``True`` into
      ``"1"`` and ``"true"``, so ``{1: "a", "1": "b"}`` would read back as one key.

    Runs on every append, so the common case is kept cheap: plain leaves are
    skipped by exact type, and a container's path is only spelled out for an error
    (each stack entry links to its parent's).
    """
    stack: list[tuple[Any, int, _Trail]] = [(value, 1, None)]
    while stack:
        container, depth, trail = stack.pop()
        if depth > MAX_NESTING_DEPTH:
            return (
                f"{name} nests deeper than {MAX_NESTING_DEPTH} levels (at "
                f"{_path(name, trail)}); the limit is eventstore.MAX_NESTING_DEPTH"
            )
        if type(container) is dict or isinstance(container, Mapping):
            for key, item in container.items():
                if type(key) is not str and not isinstance(key, str):
                    return (
                        f"{name} has a non-string key {key!r} ({type(key).__name__}) at "
                        f"{_path(name, trail)}: JSON object keys are strings, so it would "
                        "read back as another key"
                    )
                if type(item) not in _LEAVES and isinstance(item, _CONTAINERS):
                    stack.append((item, depth + 1, (trail, repr(key))))
        else:
            for position, item in enumerate(container):
                if type(item) not in _LEAVES and isinstance(item, _CONTAINERS):
                    stack.append((item, depth + 1, (trail, str(position))))
    return None


# A container's place: its parent's trail and its key (None at the top).
_Trail = tuple[Any, str] | None
_LEAVES = frozenset({str, int, float, bool, type(None)})
_CONTAINERS = (dict, list, tuple, Mapping)


def _path(name: str, trail: _Trail) -> str:
    keys: list[str] = []
    while trail is not None:
        trail, key = trail
        keys.append(key)
    text = name + "".join(f"[{key}]" for key in reversed(keys))
    return text if len(text) <= 200 else text[:200] + "..."


def _check_is_batch(stream_id: str, events: object) -> None:
    """Refuse a single event, a string or a non-iterable given as the batch."""
    if isinstance(events, (NewEvent, str, bytes, Mapping)) or hasattr(events, "to_new_event"):
        raise InvalidAppendError(stream_id, "events must be a list of events, not a single one")
    if not isinstance(events, Iterable):
        # Without this, None or a number escaped as a bare TypeError.
        raise InvalidAppendError(
            stream_id, f"events must be a list of events, got {type(events).__name__}"
        )


#: Metadata every event of an append gets unless it sets the key itself
#: (correlation ids, trace context), and that metadata's JSON text when the caller
#: built it from values known to need no check (ASCII only), else None.
Stamp = tuple[Mapping[str, Any], str | None]


def prepare_batch(
    stream_id: str,
    events: Iterable[NewEvent | SupportsNewEvent],
    max_event_bytes: int,
    models: set[type[Any]] | None = None,
    max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES,
    stamp: Stamp | None = None,
) -> list[PreparedEvent]:
    """Validate and encode a batch; raise ``InvalidAppendError`` naming the culprit.

    ``models``, when given, receives the class of every typed event in the batch
    (for the schema registry).  ``stamp``: see :data:`Stamp`.
    """
    # A list (the usual case) skips the checks against abstract classes, which
    # are slow compared with the rest of a one-event append.
    if type(events) is not list:
        _check_is_batch(stream_id, events)
    prepared: list[PreparedEvent] = []
    seen_ids: set[UUID] = set()
    total = 0
    # What an event with no metadata of its own (the usual case) stores: the
    # stamp as it is, encoded once per batch rather than copied and encoded per
    # event (None: not encoded yet).
    stamp_values: Mapping[str, Any] | None = None
    bare_json: str | None = "{}"
    bare_size = 2
    if stamp is not None and stamp[0]:
        stamp_values, bare_json = stamp
        bare_size = len(bare_json) if bare_json is not None else 0
    for index, candidate in enumerate(events):
        if isinstance(candidate, NewEvent):
            event = candidate
        else:
            event = _convert(stream_id, index, candidate)
            if models is not None:
                models.add(type(candidate))
        if not isinstance(event.type, str) or not event.type or len(event.type) > MAX_TYPE_LENGTH:
            raise InvalidAppendError(
                stream_id,
                f"event {index}: the type must be a non-empty string of at most "
                f"{MAX_TYPE_LENGTH} characters, got {event.type!r}",
            )
        if "\x00" in event.type or (not event.type.isascii() and not _is_utf8(event.type)):
            # Postgres text cannot hold either; the in-memory store used to accept both.
            problem = "a NUL character" if "\x00" in event.type else "a lone surrogate"
            raise InvalidAppendError(
                stream_id, f"event {index}: the type {event.type!a} contains {problem}"
            )
        version = event.schema_version
        if (
            not isinstance(version, int)
            or isinstance(version, bool)
            or not 1 <= version <= MAX_SCHEMA_VERSION
        ):
            raise InvalidAppendError(
                stream_id,
                f"event {index} ({event.type!r}): schema_version must be an int in "
                f"1..{MAX_SCHEMA_VERSION}, got {version!r}",
            )
        event_id = _event_id(stream_id, index, event)
        if event_id in seen_ids:
            raise InvalidAppendError(
                stream_id, f"event {index} ({event.type!r}): event id {event_id} appears twice"
            )
        seen_ids.add(event_id)
        data_json, size = _encode(stream_id, "data", index, event.type, event.data)
        metadata = event.metadata
        if metadata is None or (type(metadata) is dict and not metadata):
            if bare_json is None:
                bare_json, bare_size = _encode(
                    stream_id, "metadata", index, event.type, stamp_values
                )
            metadata_json = bare_json
            size += bare_size
        else:
            if stamp_values and isinstance(metadata, Mapping):
                metadata = {**stamp_values, **metadata}
            metadata_json, metadata_size = _encode(
                stream_id, "metadata", index, event.type, metadata
            )
            size += metadata_size
        if size > max_event_bytes:
            raise InvalidAppendError(
                stream_id,
                f"event {index} ({event.type!r}) is {size} bytes of JSON, "
                f"the limit is {max_event_bytes}",
            )
        total += size
        if total > max_batch_bytes:
            raise InvalidAppendError(
                stream_id,
                f"event {index} ({event.type!r}) brings the batch to {total} bytes of JSON, "
                f"the limit for one append is {max_batch_bytes} (max_batch_bytes): "
                "append it in several batches",
            )
        prepared.append(PreparedEvent(event_id, event.type, version, data_json, metadata_json))
    if not prepared:
        raise InvalidAppendError(stream_id, "no events to append")
    return prepared


def check_replayed_content(
    stream_id: str, batch: Sequence[PreparedEvent], stored: Sequence[Sequence[Any]]
) -> None:
    """Refuse a "retry" whose events differ from the stored ones with their ids.

    ``stored`` holds (type, schema_version, data, metadata) per event.  Without
    this, a new event reusing an old id would be answered with the old result
    and never stored: a silent drop.  Compared as parsed JSON, which is how both
    stores keep data (key order and number spelling do not matter, values do).
    """
    for event, (kind, schema_version, data, metadata) in zip(batch, stored, strict=True):
        if (
            event.type != kind
            or event.schema_version != schema_version
            or json.loads(event.data_json) != data
            or _lasting(json.loads(event.metadata_json)) != _lasting(metadata)
        ):
            raise DuplicateEventError(
                stream_id,
                tuple(str(e.event_id) for e in batch),
                f"event id {event.event_id} was appended before with other content",
            )


#: Metadata about the attempt, not the event: a retry of the same batch from
#: another span or another delivery of its cause may differ here and is still the
#: same event (the stored values stay).
_PROVENANCE_KEYS = frozenset({"traceparent", "tracestate", "correlation_id", "causation_id"})


def _lasting(metadata: Any) -> Any:
    if not isinstance(metadata, dict) or _PROVENANCE_KEYS.isdisjoint(metadata):
        return metadata
    return {k: v for k, v in metadata.items() if k not in _PROVENANCE_KEYS}


def _convert(stream_id: str, index: int, candidate: Any) -> NewEvent:
    to_new_event = getattr(candidate, "to_new_event", None)
    if to_new_event is None:
        raise InvalidAppendError(
            stream_id,
            f"event {index} is a {type(candidate).__name__}, expected a NewEvent "
            "or an eventstore.Event",
        )
    event = to_new_event()
    if not isinstance(event, NewEvent):
        raise InvalidAppendError(stream_id, f"event {index}: to_new_event() must return NewEvent")
    return event


def _event_id(stream_id: str, index: int, event: NewEvent) -> UUID:
    if event.event_id is None:
        return uuid.uuid4()
    if isinstance(event.event_id, UUID):
        return event.event_id
    try:
        return UUID(str(event.event_id))
    except ValueError as error:
        raise InvalidAppendError(
            stream_id, f"event {index} ({event.type!r}): invalid event id {event.event_id!r}"
        ) from error
