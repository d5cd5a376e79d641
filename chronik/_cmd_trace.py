"""``chronik trace ID``: what one event or one correlation led to, as a causal tree.

Events carry ``correlation_id`` and ``causation_id`` in their metadata (stamped by
every append, see ``eventstore._correlation``).  The tree is rebuilt from those:
an event's parent is the event its causation id names; an event whose cause is
not an event (a request id) is a root.  Each line says how long after the first
event it was recorded and which of the app's projections have applied it (their
checkpoint is at or past its feed position).

Kafka hops are shown as far as chronik's own tables tell them: a relay whose
checkpoint (``relay_checkpoints``) is at or past an event's position has published
it, to the topic the relay's mapping names (``--topic-prefix`` + aggregate type,
the ``chronik relay`` default).  What a consumer wrote in reaction carries the
relayed event's id as its causation, so it hangs under it like any other effect.
Partition and offset are not stored by chronik (the broker assigns them), nor is
which consumer group read the message: the tree does not guess them.
"""

from __future__ import annotations

import argparse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from eventstore import CAUSATION_ID, CORRELATION_ID, Position, RecordedEvent

from ._context import Context
from ._errors import NotFoundError, UsageError
from ._output import print_json, print_table
from ._parsing import positive_int
from ._trace_kafka import kafka_hops, relay_checkpoints, topic_prefixes


def register(commands: Any, parents: list[argparse.ArgumentParser]) -> None:
    trace = commands.add_parser(
        "trace",
        parents=parents,
        help="the causal tree of an event or a correlation id",
        description="Every event an event (by id) or a correlation id led to, across "
        "streams, as a tree of causes in the order they were recorded, with the time "
        "since the first and the projections that have applied each.",
    )
    trace.add_argument("id", metavar="ID", help="an event id or a correlation id")
    trace.add_argument(
        "--limit",
        type=positive_int,
        default=10_000,
        metavar="N",
        help="read at most N events of the correlation (default 10000)",
    )
    trace.add_argument(
        "--topic-prefix",
        dest="topic_prefixes",
        action="append",
        default=[],
        metavar="[RELAY=]PREFIX",
        help="the --topic-prefix a relay ran with, to name the topic a published event "
        "went to (repeatable; default: chronik., the relay's default)",
    )
    trace.add_argument("--json", action="store_true", help="print a JSON list of the nodes")
    trace.set_defaults(handler=run_trace)


@dataclass(frozen=True, slots=True)
class _Node:
    event: RecordedEvent
    depth: int
    parent: str | None


async def run_trace(ctx: Context, args: argparse.Namespace) -> int:
    if not args.id.strip() or not args.id.isprintable():
        # Checked before the store is opened: an empty id is a typo (an unset shell
        # variable), not a correlation that happens to have no events.
        raise UsageError(
            f"expected an event id or a correlation id, got {args.id!r}",
            "event ids are printed by 'chronik history STREAM --raw --json'",
        )
    store = await ctx.services.store()
    start = await _find_event(store, args.id)
    if start is not None:
        correlation_id = _text(start.metadata.get(CORRELATION_ID)) or str(start.event_id)
    else:
        correlation_id = args.id
    events = await store.correlated_events(correlation_id, limit=args.limit)
    if start is not None and all(e.event_id != start.event_id for e in events):
        events = sorted([start, *events], key=lambda e: e.position)
    if not events:
        raise NotFoundError(
            f"no event has the id or the correlation id {args.id!r}",
            "event ids are printed by 'chronik history STREAM --raw --json'",
        )
    nodes = list(_tree(events, str(start.event_id) if start is not None else None))
    applied = await _checkpoints(ctx)
    relays = await relay_checkpoints(store)
    prefixes = topic_prefixes(args.topic_prefixes)
    first = nodes[0].event.recorded_at
    rows: list[dict[str, Any]] = [
        {
            "event_id": str(node.event.event_id),
            "parent": node.parent,
            "depth": node.depth,
            "stream_id": node.event.stream_id,
            "version": node.event.version,
            "type": node.event.type,
            "position": str(node.event.position),
            "recorded_at": node.event.recorded_at,
            "after_ms": round((node.event.recorded_at - first).total_seconds() * 1000, 3),
            "correlation_id": _text(node.event.metadata.get(CORRELATION_ID)),
            "causation_id": _text(node.event.metadata.get(CAUSATION_ID)),
            "applied_by": [
                name
                for name, checkpoint in applied.items()
                if checkpoint is not None and checkpoint >= node.event.position
            ],
            "kafka": kafka_hops(node.event, relays, prefixes),
        }
        for node in nodes
    ]
    if args.json:
        print_json(rows, ctx.out)
        return 0
    ctx.out.write(f"correlation {correlation_id}: {len(rows)} event(s)\n")
    table: list[list[Any]] = []
    for r in rows:
        table.append(
            [
                "  " * r["depth"] + r["type"],
                r["stream_id"],
                r["version"],
                r["position"],
                f"{r['after_ms']:.1f}",
                ", ".join(r["applied_by"]) or "-",
            ]
        )
        for hop in r["kafka"]:
            where = hop["topic"] or "(no topic: the stream has no type)"
            table.append(
                ["  " * (r["depth"] + 1) + f"=> kafka {where}", "-", "-", "-", "-",
                 f"relay {hop['relay']}"]
            )  # fmt: skip
    print_table(["event", "stream", "version", "position", "+ms", "applied by"], table, ctx.out)
    return 0


async def _find_event(store: Any, text: str) -> RecordedEvent | None:
    try:
        event_id = uuid.UUID(text)
    except ValueError:
        return None
    found: RecordedEvent | None = await store.find_event(event_id)
    return found


def _tree(events: list[RecordedEvent], root: str | None) -> Iterator[_Node]:
    """Depth first, children in feed order; from ``root`` only when given."""
    ids = {str(e.event_id) for e in events}
    children: dict[str | None, list[RecordedEvent]] = {}
    for event in events:
        cause = _text(event.metadata.get(CAUSATION_ID))
        parent = cause if cause in ids and cause != str(event.event_id) else None
        children.setdefault(parent, []).append(event)
    if root is not None:
        top = [e for e in events if str(e.event_id) == root]
        parent_of_root = _text(top[0].metadata.get(CAUSATION_ID)) if top else None
        stack = [(e, 0, parent_of_root if parent_of_root in ids else None) for e in top]
    else:
        stack = [(e, 0, None) for e in children.get(None, [])]
    stack.reverse()
    seen: set[str] = set()
    while stack:
        event, depth, parent = stack.pop()
        key = str(event.event_id)
        if key in seen:  # a causation cycle in hand-written metadata: print once
            continue
        seen.add(key)
        yield _Node(event, depth, parent)
        stack.extend((c, depth + 1, key) for c in reversed(children.get(key, [])))


async def _checkpoints(ctx: Context) -> dict[str, Position | None]:
    """Each of the app's projections' checkpoint (``None``: never ran)."""
    checkpoints: dict[str, Position | None] = {}
    for projection in ctx.projection_targets():
        model = await ctx.read_models.live(projection)
        checkpoints[projection.name] = await model.checkpoint(projection.name)
    return checkpoints


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
