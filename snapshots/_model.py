"""The snapshot envelope and the checks every store runs before writing one.

Validation also serializes: the JSON text produced here is what the stores send,
so a state is encoded once and a state that cannot be encoded is rejected before
anything reaches a backend.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from eventstore import MAX_VERSION, InvalidInputError
from eventstore import check_stream_id as check_event_stream_id

from ._errors import InvalidSnapshotError, SnapshotCorruptError

DEFAULT_KEEP = 5
MAX_TYPE_LENGTH = 255

# PostgreSQL text and jsonb cannot hold U+0000; the check is shared so every
# store accepts the same states.  An even number of backslashes before \u0000
# means the backslash itself was escaped and the text is harmless.
_JSON_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")


@dataclass(frozen=True, slots=True)
class Snapshot:
    """An aggregate's state as of one stream version.

    ``fingerprint`` identifies the schema of ``state``; a reader whose schema
    differs ignores the snapshot.  ``recorded_at`` is set by the store on save
    (any value passed in is ignored).
    """

    stream_id: str
    aggregate_type: str
    version: int
    fingerprint: str
    state: dict[str, Any]
    recorded_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class PreparedSnapshot:
    """A validated snapshot with its state already encoded as JSON."""

    snapshot: Snapshot
    state_json: str


def check_stream_id(stream_id: object, version: object = None) -> str:
    # The event store's rules, so a stream the store accepts always takes snapshots.
    try:
        return check_event_stream_id(stream_id, InvalidInputError)
    except InvalidInputError as error:
        raise InvalidSnapshotError(error.stream_id, version, error.reason) from error


def check_max_version(stream_id: str, max_version: object) -> int | None:
    if max_version is None:
        return None
    if isinstance(max_version, int) and not isinstance(max_version, bool) and max_version >= 1:
        # An upper bound: past the last possible version means "any" (the column is
        # a bigint, and a larger parameter would not compare with it).
        return min(max_version, MAX_VERSION)
    raise InvalidSnapshotError(
        stream_id, None, f"max_version must be None or an int >= 1, got {max_version!r}"
    )


def check_keep(keep: object) -> int:
    if isinstance(keep, int) and not isinstance(keep, bool) and keep >= 1:
        return keep
    raise ValueError(f"keep must be an int >= 1 (snapshots kept per stream), got {keep!r}")


def prepare_snapshot(snapshot: object) -> PreparedSnapshot:
    """Validate ``snapshot`` and encode its state; raise ``InvalidSnapshotError``."""
    if not isinstance(snapshot, Snapshot):
        raise InvalidSnapshotError(
            "?", None, f"expected a snapshots.Snapshot, got {type(snapshot).__name__}"
        )
    version = snapshot.version
    stream_id = check_stream_id(snapshot.stream_id, version)
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version < 2**63:
        raise InvalidSnapshotError(stream_id, version, "the version must be an int in 1..2**63-1")
    _check_text(stream_id, version, "aggregate type", snapshot.aggregate_type, empty_ok=False)
    _check_text(stream_id, version, "fingerprint", snapshot.fingerprint, empty_ok=True)
    return PreparedSnapshot(snapshot, encode_state(stream_id, version, snapshot.state))


def encode_state(stream_id: str, version: int, state: object) -> str:
    if not isinstance(state, Mapping):
        raise InvalidSnapshotError(
            stream_id, version, f"the state must be a dict, got {type(state).__name__}"
        )
    try:
        text = json.dumps(state, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as error:
        raise InvalidSnapshotError(
            stream_id, version, f"the state is not JSON-serializable: {error}"
        ) from error
    # json.dumps turns keys 1, True and None into "1", "true" and "null": the
    # state would come back different from what was saved, so refuse it.
    bad_keys = _non_string_keys(state)
    if bad_keys:
        raise InvalidSnapshotError(
            stream_id,
            version,
            f"the state has a non-string key {bad_keys[0]!r} ({type(bad_keys[0]).__name__}); "
            "JSON object keys are strings",
        )
    if "\\u0000" in text and _JSON_NUL.search(text):
        raise InvalidSnapshotError(stream_id, version, "the state contains a NUL character")
    try:
        text.encode()
    except UnicodeEncodeError as error:
        # A lone surrogate: no backend can store it as UTF-8.
        raise InvalidSnapshotError(
            stream_id, version, f"the state has a string that is not valid Unicode: {error}"
        ) from error
    return text


def _non_string_keys(value: object) -> list[object]:
    """The first non-string key found (in a list: the key may itself be None)."""
    # Iterative: the state already passed json.dumps, so it has no cycles, but it
    # may be deeper than the recursion limit allows.
    pending: list[object] = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, Mapping):
            for key, child in item.items():
                if not isinstance(key, str):
                    return [key]
                pending.append(child)
        elif isinstance(item, (list, tuple)):
            pending.extend(item)
    return []


def _check_text(stream_id: str, version: int, what: str, value: object, *, empty_ok: bool) -> None:
    if not isinstance(value, str):
        raise InvalidSnapshotError(
            stream_id, version, f"the {what} must be a string, got {type(value).__name__}"
        )
    if not empty_ok and not value.strip():
        raise InvalidSnapshotError(stream_id, version, f"the {what} is empty")
    if len(value) > MAX_TYPE_LENGTH:
        raise InvalidSnapshotError(
            stream_id,
            version,
            f"the {what} is {len(value)} characters long, the limit is {MAX_TYPE_LENGTH}",
        )
    if "\x00" in value:
        raise InvalidSnapshotError(stream_id, version, f"the {what} has a NUL")
    try:
        value.encode()
    except UnicodeEncodeError as error:
        raise InvalidSnapshotError(
            stream_id, version, f"the {what} has a lone surrogate (not valid UTF-8)"
        ) from error


def decoded_state(stream_id: str, version: int, state: object) -> dict[str, Any]:
    """The state as read back; anything but a JSON object is a corrupt snapshot."""
    if not isinstance(state, dict):
        raise SnapshotCorruptError(
            stream_id, version, f"the stored state is a {type(state).__name__}, not an object"
        )
    return state
