"""``chronik demo``: seed realistic histories through the real framework."""

from __future__ import annotations

import argparse
from typing import Any

from ._context import Context
from ._errors import UnavailableError


def register(commands: Any, parents: list[argparse.ArgumentParser]) -> None:
    demo = commands.add_parser(
        "demo", parents=parents, help="seed demo ledgers and orders, project them",
        description="Seed ledger and order histories through the real framework (including "
        "old-version events and a snapshot), project them and show what to try next.",
    )
    demo.set_defaults(handler=run_demo)


async def run_demo(ctx: Context, args: argparse.Namespace) -> int:
    raise UnavailableError("'chronik demo' needs the aggregates package", "wait for it")
