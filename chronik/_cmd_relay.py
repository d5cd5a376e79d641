"""``chronik relay``: registered now so scripts get a clear answer until it is available."""

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
        description="Publish the event feed to Kafka topics. Not available in this "
        "version of chronik.",
    )
    relay.set_defaults(handler=run_relay)


async def run_relay(ctx: Context, args: argparse.Namespace) -> int:
    raise UnavailableError(
        "'chronik relay' (publishing the feed to Kafka) is not available in this version "
        "of chronik",
        "use 'chronik run' to project from the event store meanwhile",
    )
