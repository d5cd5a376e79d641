"""``chronik state``: an aggregate's state now or at a point in the past."""

from __future__ import annotations

import argparse
from typing import Any

from ._context import Context
from ._errors import UnavailableError
from ._parsing import feed_position, positive_int, timestamp


def register(commands: Any, parents: list[argparse.ArgumentParser]) -> None:
    state = commands.add_parser(
        "state", parents=parents, help="an aggregate's state, now or back in time",
        description="Load an aggregate through the repository (snapshots, upcasters) and "
        "print its state: now, at a stream version, at a time, or at a feed position.",
    )
    state.add_argument("aggregate_type", metavar="TYPE", help="aggregate type, e.g. ledger")
    state.add_argument("aggregate_id", metavar="ID", help="aggregate id")
    when = state.add_mutually_exclusive_group()
    when.add_argument("--at-version", type=positive_int, metavar="N",
                      help="the state after the stream's N-th event")
    when.add_argument("--as-of", type=timestamp, metavar="TIME",
                      help="the state at a time (ISO 8601; no offset means local time)")
    when.add_argument("--at-position", type=feed_position, metavar="P",
                      help="the state at a global feed position 'TXID:SEQ' (a consistent cut)")
    state.add_argument("--json", action="store_true", help="print {version, state} as JSON")
    state.set_defaults(handler=run_state)


async def run_state(ctx: Context, args: argparse.Namespace) -> int:
    raise UnavailableError(
        "'chronik state' needs the aggregates package, which has not landed yet",
        "use 'chronik history STREAM' meanwhile",
    )
