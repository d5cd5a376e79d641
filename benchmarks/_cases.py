"""The registry of cases and what the peer column needs."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from ._context import BenchContext
from ._harness import CaseResult, Kind
from ._peer import make_application, unavailable

CaseRun = Callable[[BenchContext], Awaitable[list[CaseResult]]]


@dataclass(frozen=True, slots=True)
class Case:
    """A named benchmark; ``run`` returns its row(s)."""

    name: str
    group: str
    run: CaseRun
    in_default_run: bool = True
    summary: str = ""


def not_available(
    name: str, group: str, unit: str, kind: Kind, reason: str, description: str = ""
) -> CaseResult:
    """The row of a case whose code has not landed yet (or whose dependency is missing)."""
    return CaseResult(
        name=name,
        unit=unit,
        kind=kind,
        group=group,
        description=description,
        status="not available",
        reason=reason,
    )


async def peer_application(
    context: BenchContext, label: str, *, snapshot_every: int | None = None
) -> Any | None:
    """An ``eventsourcing`` Application in a schema of its own, or None without the library."""
    if unavailable() is not None:
        return None
    schema = await context.create_schema(label)
    env = context.eventsourcing_env(schema)
    app = await asyncio.to_thread(make_application, env, snapshot_every=snapshot_every)
    context.on_close(app.close)
    return app


def peer_note(result: CaseResult) -> None:
    reason = unavailable()
    if reason is not None:
        result.extra["eventsourcing_note"] = f"not measured: {reason}"
