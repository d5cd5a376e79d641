"""Progress of ``chronik consumers deadletters replay``, read off the broker.

The replay (``messaging.replay_dead_letters``) commits each dead letter it sent
back as an offset of its own consumer group on ``TOPIC.dlq``.  So what is left is
that group's lag on the DLQ, which ``messaging.consumer_lag`` reports: asked
before the replay (the total) and every second while it runs (the progress),
without a hook inside the replay itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from ._progress import Progress

log = logging.getLogger("chronik")

#: The group ``messaging.replay_dead_letters`` commits its progress in.
REPLAY_GROUP = "chronik.deadletters"
_POLL_SECONDS = 1.0


async def _pending(messaging: Any, bootstrap: str, dlq: str) -> int:
    rows = await messaging.consumer_lag(bootstrap, REPLAY_GROUP, [dlq])
    return int(sum(row.events for row in rows))


@contextlib.asynccontextmanager
async def dead_letter_replay_progress(
    messaging: Any, bootstrap: str, topic: str, *, enabled: bool | None = None
) -> AsyncIterator[Progress]:
    """A progress bar (or plain lines) following a replay of ``topic``'s DLQ."""
    dlq = topic if topic.endswith(".dlq") else messaging.dlq_topic(topic)
    total = await _pending(messaging, bootstrap, dlq)
    with Progress(f"replaying {dlq}", total, unit="dead letters", enabled=enabled) as bar:

        async def follow() -> None:
            while True:
                await asyncio.sleep(_POLL_SECONDS)
                left = await _pending(messaging, bootstrap, dlq)
                if total - left > bar.done:
                    bar.advance(total - left - bar.done)

        task = asyncio.create_task(follow())
        try:
            yield bar
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                try:
                    await task
                except Exception as error:
                    # Only the display stopped; the replay reports its own errors.
                    log.warning("progress display for %s stopped: %s", dlq, error)
