"""The ``--metrics-port`` / ``--metrics-host`` options every long-running command takes."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from ._context import Context
from ._metrics import DEFAULT_HOST, DEFAULT_READY_LAG, MetricsServer
from ._parsing import positive_int


def add_metrics_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--metrics-port",
        type=_port,
        metavar="PORT",
        help="serve /metrics (Prometheus), /healthz and /readyz on this port (0: any free one)",
    )
    parser.add_argument(
        "--metrics-host",
        default=DEFAULT_HOST,
        metavar="HOST",
        help=f"address to serve metrics on (default {DEFAULT_HOST}: this machine only)",
    )
    parser.add_argument(
        "--ready-lag",
        type=positive_int,
        default=DEFAULT_READY_LAG,
        metavar="N",
        help=f"/readyz fails while a led projection, the relay or the consumer group is "
        f"more than N events behind (default {DEFAULT_READY_LAG})",
    )


@contextlib.asynccontextmanager
async def metrics_from(ctx: Context, args: argparse.Namespace) -> AsyncIterator[Any]:
    """A serving ``MetricsServer`` when ``--metrics-port`` was given, else ``None``."""
    if args.metrics_port is None:
        yield None
        return
    server = MetricsServer(args.metrics_port, host=args.metrics_host, ready_lag=args.ready_lag)
    async with server.serving():
        # On stderr whatever the log level: with port 0 this is how to find it.
        ctx.note(f"chronik: metrics on http://{server.host}:{server.port}/metrics")
        yield server


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0..65535, got {value}")
    return value
