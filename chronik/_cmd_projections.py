"""Projection commands: status, rebuild, replay, dead letters, run."""

from __future__ import annotations

import argparse
from typing import Any


def register(commands: Any, parents: list[argparse.ArgumentParser]) -> None:
    pass
