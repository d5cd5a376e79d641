"""Projecting events into Redis."""

from __future__ import annotations

from ._cases import Case, not_available
from ._context import BenchContext
from ._harness import CaseResult

GROUP = "projections"


async def project_redis(context: BenchContext) -> list[CaseResult]:
    return [
        not_available(
            "project_redis", GROUP, "events/s", "throughput", "projections does not exist yet"
        )
    ]


CASES = (Case("project_redis", GROUP, project_redis, summary="project events into Redis"),)
