"""Status of a projection: where it is, how far behind, and what holds the feed back.

Lag is measured against the feed a runner can see.  The gap-safe feed hides
events of transactions newer than the oldest one still open, so one long-open
writing transaction holds every projection back; the status then names it
(backend pid, application, age, its statement's leading keywords) and counts
the committed events waiting behind it.  The statement's text stays out: it is
another connection's SQL and can hold secrets (``ALTER ROLE ... PASSWORD '...'``).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from eventstore import EventStore, OpenTransaction, Position, PostgresEventStore

from ._projection import Projection
from ._read_model import ReadModel
from ._slots import SlotInfo, SlotState, check_name


@dataclass(frozen=True, slots=True)
class ProjectionStatus:
    """One projection as the read model and the event store see it now."""

    name: str
    #: The slot reported on: the active one, or (none yet) the one being built.
    slot: str | None
    version: int | None
    #: Whether ``slot`` is the one readers use.
    active: bool
    checkpoint: Position | None
    head: Position | None
    #: Visible events after the checkpoint.
    lag_events: int
    #: Age of the oldest visible event not yet projected (0 when caught up).
    lag_seconds: float
    dead_letters: int
    #: Position of the event a stop-policy projection stopped at, if it did.
    stopped_at: Position | None
    #: Committed events the feed does not show yet because of ``held_back_by``.
    held_back_events: int
    #: The open transaction holding the feed back, when events wait behind it.
    held_back_by: OpenTransaction | None
    slots: tuple[SlotInfo, ...]

    @property
    def building(self) -> tuple[SlotInfo, ...]:
        """Shadow slots being built (a new version or a rebuild)."""
        return tuple(s for s in self.slots if s.state is SlotState.BUILDING)


async def held_back(store: EventStore) -> tuple[int, OpenTransaction | None]:
    """Committed events hidden from the feed, and the open transaction hiding them."""
    waiting = await store.held_back_count()
    if waiting == 0 or not isinstance(store, PostgresEventStore):
        return waiting, None
    # The feed horizon is the oldest running transaction id: the first one listed.
    transactions = await store.open_transactions()
    if not transactions:
        return waiting, None
    oldest = transactions[0]
    return waiting, dataclasses.replace(oldest, query=statement_summary(oldest.query))


# Leading comments, then the command word; a DDL or access-control command also
# keeps the kind of object it acts on ("ALTER ROLE"), which is all on-call needs.
_LEADING_COMMENTS = re.compile(r"\A(?:\s+|--[^\n]*(?:\n|\Z)|/\*.*?\*/)*", re.DOTALL)
_COMMAND = re.compile(r"([A-Za-z]+)(?:\s+([A-Za-z]+)\b)?")
_OBJECT_KIND_FOLLOWS = frozenset(
    {"ALTER", "CREATE", "DROP", "COMMENT", "GRANT", "REVOKE", "REFRESH", "SECURITY"}
)


def statement_summary(query: str | None) -> str | None:
    """Only the command keyword(s) of a statement: ``"ALTER ROLE ..."``, never its text."""
    if query is None:
        return None
    rest = _LEADING_COMMENTS.sub("", query)
    found = _COMMAND.match(rest)
    if found is None:
        return "..." if rest else ""
    words, end = [found.group(1).upper()], found.end(1)
    if words[0] in _OBJECT_KIND_FOLLOWS and found.group(2):
        words.append(found.group(2).upper())
        end = found.end(2)
    shown = " ".join(words)
    return shown if rest[end:].strip(" ;\n\t") == "" else f"{shown} ..."


async def status(
    projection: Projection[Any] | str,
    read_model: ReadModel[Any],
    store: EventStore,
) -> ProjectionStatus:
    """Checkpoint, lag (events and seconds), dead letters and what holds the feed back.

    Given a projection (not just a name), reports the slot of its version: the
    active one, or the one being built while an older version is active.
    """
    name = projection if isinstance(projection, str) else projection.name
    check_name(name)
    meta = await read_model.meta(name)
    version = None if isinstance(projection, str) else projection.version
    current = meta.current_slot(version)
    checkpoint = current.position if current is not None else None
    head = await store.head()
    lag_events = await store.count_after(checkpoint)
    lag_seconds = 0.0
    if lag_events:
        async for oldest in store.read_all(checkpoint, limit=1):
            lag_seconds = max(0.0, (datetime.now(UTC) - oldest.recorded_at).total_seconds())
    letters = await read_model.dead_letters(name, current.slot) if current is not None else []
    stopped = next((d.position for d in letters if d.blocking), None)
    waiting, blocker = await held_back(store)
    return ProjectionStatus(
        name=name,
        slot=current.slot if current is not None else None,
        version=current.version if current is not None else None,
        active=current is not None and current.slot == meta.active,
        checkpoint=checkpoint,
        head=head,
        lag_events=lag_events,
        lag_seconds=lag_seconds,
        dead_letters=len(letters),
        stopped_at=stopped,
        held_back_events=waiting,
        held_back_by=blocker,
        slots=tuple(sorted(meta.slots.values(), key=lambda s: (s.version, s.generation))),
    )


async def status_all(read_model: ReadModel[Any], store: EventStore) -> list[ProjectionStatus]:
    """``status`` of every projection the read model holds."""
    return [await status(name, read_model, store) for name in await read_model.projection_names()]
