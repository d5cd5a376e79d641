"""Loading aggregates: a 1,000-event Ledger, and a 10,000-event one with snapshots."""

from __future__ import annotations

from ._cases import Case, not_available
from ._context import BenchContext
from ._harness import CaseResult

GROUP = "aggregates"


def _missing() -> str | None:
    try:
        import aggregates
    except ImportError as error:
        return f"aggregates cannot be imported ({error})"
    if not hasattr(aggregates, "Repository"):
        return "aggregates.Repository does not exist yet"
    return None


async def load_ledger_1000(context: BenchContext) -> list[CaseResult]:
    reason = _missing()
    return [not_available("load_ledger_1000", GROUP, "ms", "latency", reason or "")]


async def load_with_snapshot(context: BenchContext) -> list[CaseResult]:
    reason = _missing()
    return [not_available("load_with_snapshot", GROUP, "ms", "latency", reason or "")]


CASES = (
    Case("load_ledger_1000", GROUP, load_ledger_1000, summary="load a 1,000-event Ledger"),
    Case("load_with_snapshot", GROUP, load_with_snapshot, summary="10,000 events, snapshots"),
)
