"""Progress of work measured from the outside: how much is left, asked every second.

Catch-up in ``chronik relay`` and ``chronik consume``, and ``chronik consumers
deadletters replay``, run inside messaging's loops, which report no progress of
their own.  What is left can be asked from elsewhere though: the feed after the
relay's checkpoint, the group's lag on its topics (``messaging.consumer_lag``),
the replay group's lag on the DLQ (the replay commits each dead letter it sent
back in that group).  :func:`following` turns those answers into a ``Progress``
that ends when nothing is left.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from ._progress import Left, Progress, following

#: The group ``messaging.replay_dead_letters`` commits its progress in.
REPLAY_GROUP = "chronik.deadletters"


def group_lag(
    messaging: Any,
    bootstrap: str,
    group: str,
    topics: Sequence[str],
    projection_read_model: tuple[str, Any] | None = None,
) -> Callable[[], Awaitable[Sequence[Any]]]:
    """The lag rows of consumer ``group`` (of a Kafka-fed projection: from the offsets
    its read model holds, the truth the group's commits trail)."""

    async def lag() -> Sequence[Any]:
        if projection_read_model is not None:
            name, model = projection_read_model
            return list(await messaging.projection_lag(bootstrap, model, name, topics))
        return list(await messaging.consumer_lag(bootstrap, group, topics))

    return lag


def total_lag(rows: Callable[[], Awaitable[Sequence[Any]]]) -> Left:
    async def left() -> int:
        return int(sum(row.events for row in await rows()))

    return left


def consumer_catch_up(
    messaging: Any,
    bootstrap: str,
    group: str,
    topics: Sequence[str],
    projection_read_model: tuple[str, Any] | None = None,
) -> contextlib.AbstractAsyncContextManager[Progress]:
    """Progress of a consumer group catching up with its topics."""
    rows = group_lag(messaging, bootstrap, group, topics, projection_read_model)
    return following(f"consuming as {group}", total_lag(rows), unit="messages")


def dead_letter_replay(
    messaging: Any, bootstrap: str, topic: str
) -> contextlib.AbstractAsyncContextManager[Progress]:
    """Progress of ``chronik consumers deadletters replay TOPIC``."""
    dlq = topic if topic.endswith(".dlq") else messaging.dlq_topic(topic)
    rows = group_lag(messaging, bootstrap, REPLAY_GROUP, [dlq])
    return following(f"replaying {dlq}", total_lag(rows), unit="dead letters")


def relay_catch_up(relay: Any) -> contextlib.AbstractAsyncContextManager[Progress]:
    """Progress of a relay publishing the feed after its checkpoint (the stored one
    until the relay has loaded it: a restarted relay is not behind by everything)."""
    stored: list[Any] = []

    async def left() -> int:
        if not stored:
            import messaging

            found = await messaging.relay_status(relay.store, relay.options.name)
            stored.append(found[0].checkpoint if found else relay.state.checkpoint.events)
        after = max(relay.state.checkpoint.events, stored[0])
        return int(await relay.store.count_after(after))

    return following(f"relaying {relay.options.name}", left)
