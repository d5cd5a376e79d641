"""Writes into a MongoDB read model: per-document operations queued for the batch.

Every operation names one document (collection + ``_id``) and carries the feed
position of the event that queued it.  The read model turns each into a guarded
write: it only applies if the document's ``_last_position`` is older than the
event, and records the event's position.  That makes a replayed batch a no-op for
the documents it already reached, which is what keeps a crash between the writes
and the checkpoint from applying an event twice where there are no transactions.

A handler may touch several documents per event; two operator updates of the same
document in one event are merged into one (a guard can only be passed once per
event), anything else on the same document in one event is refused.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from eventstore import Position

from ._writes import Writes

_COLLECTION = re.compile(r"^[A-Za-z0-9_-]{1,60}$")

#: The guard field every projected document carries.
LAST_POSITION = "_last_position"
#: Dead-letter replays applied to a document (their guard: each at most once).
REPLAYED = "_replayed"


class OpKind(enum.Enum):
    UPSERT = "upsert"  # operator update; creates the document when missing
    UPDATE = "update"  # operator update; nothing when the document is missing
    REPLACE = "replace"  # whole document
    DELETE = "delete"


@dataclass(slots=True)
class MongoOp:
    """One guarded write of one document, queued by the event at ``event_index``."""

    event_index: int
    position: Position
    kind: OpKind
    doc_id: Any
    body: dict[str, Any]


def check_collection(name: object) -> str:
    if not isinstance(name, str) or not _COLLECTION.match(name):
        raise ValueError(f"collection name must be 1-60 letters, digits, '_' or '-', got {name!r}")
    return name


class MongoWrites(Writes):
    """Document writes queued for one batch; collection names are relative to the slot."""

    def __init__(self, namespace: str) -> None:
        super().__init__(namespace)
        #: Operations per relative collection name, in the order queued.
        self.ops: dict[str, list[MongoOp]] = {}
        self._log: list[tuple[str, int]] = []  # (collection, index) in queue order
        self._this_event: dict[tuple[str, Any], MongoOp] = {}

    def begin_event(self, index: int, position: Position) -> int:
        self._this_event = {}
        return super().begin_event(index, position)

    def _mark(self) -> int:
        return len(self._log)

    def _rollback(self, mark: int) -> None:
        for collection, _ in self._log[mark:]:
            self.ops[collection].pop()
        del self._log[mark:]
        self._this_event = {}

    def event_of(self, write_index: int) -> int:
        collection, index = self._log[write_index]
        return self.ops[collection][index].event_index

    def upsert(self, collection: str, doc_id: Any, update: Mapping[str, Any]) -> None:
        """Apply an operator update (``$set``, ``$inc``, ...), creating the document if needed."""
        self._queue(collection, doc_id, OpKind.UPSERT, _operators(collection, doc_id, update))

    def update(self, collection: str, doc_id: Any, update: Mapping[str, Any]) -> None:
        """Apply an operator update to the document if it exists."""
        self._queue(collection, doc_id, OpKind.UPDATE, _operators(collection, doc_id, update))

    def replace(self, collection: str, doc_id: Any, document: Mapping[str, Any]) -> None:
        """Replace (or create) the whole document; ``_id`` comes from ``doc_id``."""
        body = {k: v for k, v in document.items() if k != "_id"}
        if any(k.startswith("$") for k in body):
            raise ValueError(f"replace of {collection}/{doc_id!r}: use upsert() for operators")
        self._queue(collection, doc_id, OpKind.REPLACE, body)

    def delete(self, collection: str, doc_id: Any) -> None:
        self._queue(collection, doc_id, OpKind.DELETE, {})

    def _queue(self, collection: str, doc_id: Any, kind: OpKind, body: dict[str, Any]) -> None:
        check_collection(collection)
        if self.event_index < 0:
            raise RuntimeError("writes can only be queued by a handler during a batch")
        earlier = self._this_event.get((collection, doc_id))
        if earlier is not None:
            _merge(collection, doc_id, earlier, kind, body)
            return
        op = MongoOp(self.event_index, self.position, kind, doc_id, body)
        queue = self.ops.setdefault(collection, [])
        self._log.append((collection, len(queue)))
        queue.append(op)
        self._this_event[(collection, doc_id)] = op


def _operators(collection: str, doc_id: Any, update: Mapping[str, Any]) -> dict[str, Any]:
    if not update or not all(isinstance(k, str) and k.startswith("$") for k in update):
        raise ValueError(
            f"update of {collection}/{doc_id!r} must be operators like $set or $inc, got "
            f"{sorted(update)!r}"
        )
    for operator, fields in update.items():
        if not isinstance(fields, Mapping):
            raise ValueError(f"{operator} of {collection}/{doc_id!r} needs a mapping of fields")
        if LAST_POSITION in fields or REPLAYED in fields:
            raise ValueError(f"{LAST_POSITION} and {REPLAYED} are the projection's own fields")
    return {operator: dict(fields) for operator, fields in update.items()}


def _merge(
    collection: str, doc_id: Any, earlier: MongoOp, kind: OpKind, body: dict[str, Any]
) -> None:
    operator_kinds = (OpKind.UPSERT, OpKind.UPDATE)
    if earlier.kind not in operator_kinds or kind not in operator_kinds:
        raise ValueError(
            f"{collection}/{doc_id!r} is written twice by one event; only operator updates "
            "of one document can be combined within an event"
        )
    for operator, fields in body.items():
        merged = earlier.body.setdefault(operator, {})
        clash = set(merged) & set(fields)
        if clash:
            raise ValueError(
                f"{collection}/{doc_id!r}: {operator} of {sorted(clash)} twice in one event"
            )
        merged.update(fields)
    if kind is OpKind.UPSERT:
        earlier.kind = OpKind.UPSERT
