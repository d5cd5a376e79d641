"""Guarded document writes: what makes a replayed Mongo batch a no-op where it landed.

Each queued operation becomes a request whose filter only matches while the
document's ``_last_position`` is older than the event, and which records the
event's position.  An upsert that fails that guard hits the ``_id`` unique index
instead of inserting a twin (duplicate key, code 11000) and is skipped as
"already applied".  Requests of one collection go in order (an ordered bulk, or
one by one), so a document sees its events in feed order.

Replays of dead letters are older than what the documents have seen: they are
guarded by a mark of their own (``_replayed``) instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bson.errors import BSONError
from pymongo import DeleteOne, ReplaceOne, UpdateOne
from pymongo.errors import BulkWriteError, DuplicateKeyError, OperationFailure

from ._errors import WriteRejectedError
from ._mongo_writes import LAST_POSITION, REPLAYED, MongoOp, OpKind
from ._slots import position_key

_DUPLICATE_KEY = 11000


def _with_position(body: dict[str, Any], key: str) -> dict[str, Any]:
    update = {op: dict(fields) for op, fields in body.items()}
    update.setdefault("$set", {})[LAST_POSITION] = key
    return update


@dataclass(frozen=True, slots=True)
class Request:
    """One write, sent in a bulk or on its own."""

    kind: OpKind
    match: dict[str, Any]
    body: dict[str, Any]
    upsert: bool

    def bulk(self) -> Any:
        if self.kind is OpKind.DELETE:
            return DeleteOne(self.match)
        if self.kind is OpKind.REPLACE:
            return ReplaceOne(self.match, self.body, upsert=self.upsert)
        return UpdateOne(self.match, self.body, upsert=self.upsert)

    async def send(self, target: Any, session: Any) -> None:
        if self.kind is OpKind.DELETE:
            await target.delete_one(self.match, session=session)
        elif self.kind is OpKind.REPLACE:
            await target.replace_one(self.match, self.body, upsert=self.upsert, session=session)
        else:
            await target.update_one(self.match, self.body, upsert=self.upsert, session=session)


def request(op: MongoOp, *, guarded: bool) -> Request:
    key = position_key(op.position)
    match: dict[str, Any] = {"_id": op.doc_id}
    if guarded:
        match[LAST_POSITION] = {"$lt": key}
    if op.kind is OpKind.DELETE:
        return Request(op.kind, match, {}, False)
    if op.kind is OpKind.REPLACE:
        return Request(op.kind, match, {**op.body, LAST_POSITION: key}, True)
    return Request(op.kind, match, _with_position(op.body, key), op.kind is OpKind.UPSERT)


def replay_request(op: MongoOp, key: str) -> Request:
    # A replayed event is older than what the documents have seen, so the position
    # guard does not fit; each replay is marked on the documents it reached instead.
    match = {"_id": op.doc_id, REPLAYED: {"$ne": key}}
    if op.kind is OpKind.DELETE:
        return Request(op.kind, match, {}, False)
    if op.kind is OpKind.REPLACE:
        return Request(op.kind, match, {**op.body, LAST_POSITION: key, REPLAYED: [key]}, True)
    update = {operator: dict(fields) for operator, fields in op.body.items()}
    update.setdefault("$addToSet", {})[REPLAYED] = key
    return Request(op.kind, match, update, op.kind is OpKind.UPSERT)


async def apply_ops(
    name: str,
    target: Any,
    ops: list[MongoOp],
    *,
    guarded: bool,
    session: Any,
    bulk: bool,
) -> None:
    """Send ``ops`` to collection ``target`` in order; guard refusals are skipped.

    ``WriteRejectedError`` names the event whose write MongoDB refused for another
    reason (the writes before it stay applied: guarded, they are safe to repeat).
    """
    requests = [request(op, guarded=guarded) for op in ops]
    start = 0
    while start < len(requests):
        if bulk:
            try:
                await target.bulk_write(
                    [r.bulk() for r in requests[start:]], ordered=True, session=session
                )
                return
            except BulkWriteError as error:
                failure = error.details["writeErrors"][0]
                index = start + int(failure["index"])
                if not (guarded and failure.get("code") == _DUPLICATE_KEY):
                    raise WriteRejectedError(
                        name, str(failure.get("errmsg")), ops[index].event_index
                    ) from error
                start = index + 1  # the guard refused it: already applied
            except (BSONError, TypeError, ValueError) as error:
                raise WriteRejectedError(name, f"cannot encode a write: {error}", None) from error
        else:
            for index in range(start, len(requests)):
                try:
                    await requests[index].send(target, session)
                except DuplicateKeyError:
                    if not guarded:
                        raise
                except (BSONError, TypeError, ValueError, OperationFailure) as error:
                    raise WriteRejectedError(name, str(error), ops[index].event_index) from error
            return
