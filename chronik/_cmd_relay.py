"""``chronik relay``: registered now so scripts get a clear answer until Kafka lands."""

from __future__ import annotations

import argparse
from typing import Any

from ._context import Context
from ._errors import UnavailableError


def register(commands: Any, parents: list[argparse.ArgumentParser]) -> None:
    relay = commands.add_parser(
        "relay",
        parents=parents,
        help="publish the feed to Kafka (not available yet)",
        description="Publish the event feed to Kafka topics. Not available yet: it lands "
        "with the Kafka issue.",
    )
    relay.set_defaults(handler=run_relay)


async def run_relay(ctx: Context, args: argparse.Namespace) -> int:
    raise UnavailableError(
        "'chronik relay' is not available yet: lands with the Kafka issue",
        "use 'chronik run' to project from the event store meanwhile",
    )
